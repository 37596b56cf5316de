#!/usr/bin/env node
// prebuildify runs a node-gyp binary; this stands in for it and builds with cmake-js instead.
// prebuildify's node-gyp arguments (rebuild --target=... --devdir=...) are not needed: the addon
// targets Node-API 8, whose headers come from the node-api-headers package. CMake asks
// scripts/libtorch.js what to turn on with this node (as scripts/install.js does), not PATH's.
'use strict';

const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'rebuild', '--parallel', '2', '--log-level', 'warn', `--CDTORCH_ATTN_NODE=${process.execPath}`], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
