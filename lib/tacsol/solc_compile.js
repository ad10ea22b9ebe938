// Compile standard-JSON units with one solcjs version (called by tacsol.corpus, one process per small batch).
// stdin: {"solc_dir": "<node_modules/solc-X>", "units": [{"key": "...", "input": {standard JSON}}]}
// stdout: one JSON line per unit: {"key": ..., "output": {...}} or {"key": ..., "error": "..."}; written as each
// unit finishes so that a wasm crash mid-batch still returns the units compiled before it.
'use strict';
const fs = require('fs');

const req = JSON.parse(fs.readFileSync(0, 'utf8'));
const solc = require(req.solc_dir);
// 0.4.x solcjs exposes the standard-JSON entry point as compileStandardWrapper; later ones as compile.
const compile = typeof solc.compileStandardWrapper === 'function' && solc.version().startsWith('0.4.')
  ? solc.compileStandardWrapper : solc.compile;

for (const unit of req.units) {
  let line;
  try {
    // Python resolves every import into input.sources; a missing one comes back as a solc error, not a callback.
    const out = compile(JSON.stringify(unit.input));
    line = JSON.stringify({ key: unit.key, output: JSON.parse(out) });
  } catch (e) {
    line = JSON.stringify({ key: unit.key, error: String(e && e.message || e).slice(0, 500) });
  }
  fs.writeSync(1, line + '\n');
}
