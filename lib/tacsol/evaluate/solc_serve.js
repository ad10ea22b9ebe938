// A persistent solcjs compiler for tacsol.evaluate.behaviour (behaviour.SolcServer): loads one soljson once, then
// compiles one standard-JSON input per stdin line, {"key": ..., "input": {...}}, answering one stdout line per
// input, {"key": ..., "output": {...}} or {"key": ..., "error": "..."}. solcjs spends ~1 s of CPU on its first
// compile (WebAssembly tiering up) and ~0.15 s loading: a process kept for many compiles pays that once.
// argv[2]: the solc package folder (node_modules/solc-X). Python resolves every import into input.sources.
'use strict';
const fs = require('fs');
const readline = require('readline');

const solc = require(process.argv[2]);
// 0.4.x solcjs exposes the standard-JSON entry point as compileStandardWrapper; later ones as compile.
const compile = typeof solc.compileStandardWrapper === 'function' && solc.version().startsWith('0.4.')
  ? solc.compileStandardWrapper : solc.compile;

function write(line) {
  const buf = Buffer.from(line + '\n');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
rl.on('line', (line) => {
  let key = null;
  try {
    const req = JSON.parse(line);
    key = req.key;
    const out = compile(JSON.stringify(req.input));
    write(JSON.stringify({ key, output: JSON.parse(out) }));
  } catch (e) {
    write(JSON.stringify({ key, error: String(e && e.message || e).slice(0, 500) }));
  }
});
