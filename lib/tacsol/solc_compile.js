// The one solcjs driver: compile standard-JSON units with one solcjs version.
// Batch (tacsol.corpus, one process per small batch): no argument;
//   stdin: {"solc_dir": "<node_modules/solc-X>", "units": [{"key": "...", "input": {standard JSON}}]}
// Serve (tacsol.evaluate.behaviour.SolcServer, a process kept for many compiles): argv[2] is the solc package
//   folder; one {"key": ..., "input": {...}} per stdin line. solcjs spends ~1 s of CPU on its first compile
//   (WebAssembly tiering up) and ~0.15 s loading: a kept process pays that once.
// stdout, both modes: one JSON line per unit, {"key": ..., "output": {...}} or {"key": ..., "error": "..."}, written
// as each unit finishes so that a wasm crash mid-batch still returns the units compiled before it.
// Python resolves every import into input.sources; a missing one comes back as a solc error, not a callback.
'use strict';
const fs = require('fs');

function compiler(solcDir) {
  const solc = require(solcDir);
  // 0.4.x solcjs exposes the standard-JSON entry point as compileStandardWrapper; later ones as compile.
  return typeof solc.compileStandardWrapper === 'function' && solc.version().startsWith('0.4.')
    ? solc.compileStandardWrapper : solc.compile;
}

function write(line) {
  const buf = Buffer.from(line + '\n');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;  // a pipe the reader has not drained yet
    }
  }
}

function answer(compile, key, input) {
  try {
    write(JSON.stringify({ key, output: JSON.parse(compile(JSON.stringify(input))) }));
  } catch (e) {
    write(JSON.stringify({ key, error: String(e && e.message || e).slice(0, 500) }));
  }
}

if (process.argv[2]) {
  const compile = compiler(process.argv[2]);
  const rl = require('readline').createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
  rl.on('line', (line) => {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      write(JSON.stringify({ key: null, error: String(e && e.message || e).slice(0, 500) }));
      return;
    }
    answer(compile, req.key, req.input);
  });
} else {
  const req = JSON.parse(fs.readFileSync(0, 'utf8'));
  const compile = compiler(req.solc_dir);
  for (const unit of req.units) answer(compile, unit.key, unit.input);
}
