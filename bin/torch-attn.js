#!/usr/bin/env node
// The torch-attn command (see `torch-attn help`). Runs the compiled CLI from dist/ (built by
// `npm install` / `npm run build:ts`).
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const compiled = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
if (!fs.existsSync(compiled)) {
  console.error('torch-attn: the TypeScript is not compiled yet; run `npm run build:ts` in ' + path.dirname(__dirname));
  process.exit(1);
}
// A closed pipe (`torch-attn predict ... | head`) ends the command quietly, as other CLIs do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err && err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
require(compiled)
  .main(process.argv.slice(2))
  .then((code) => { process.exitCode = code; });
