#!/usr/bin/env node
// `npm install` step: use a prebuilt addon from prebuilds/ when one loads here, otherwise build
// from source with cmake-js (CMakeLists.txt), falling back to node-gyp (binding.gyp) when
// cmake-js is not installed. Flags: --force (always build), --clean (rebuild from scratch).
// Nothing is downloaded: the Node-API headers come from the node-api-headers package.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { locateLibTorch } = require('./libtorch.js');

const root = path.resolve(__dirname, '..');
const argv = process.argv.slice(2);
const force = argv.includes('--force') || process.env.npm_config_build_from_source === 'true';
const stampFile = path.join(root, 'build', '.libtorch');

function log(message) {
  console.log(`torch-attn: ${message}`);
}

function prebuildLoads() {
  try {
    const file = require('node-gyp-build').path(root);
    if (!file.includes(`${path.sep}prebuilds${path.sep}`)) return null;
    require(file);
    return file;
  } catch {
    return null;
  }
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

// npm names its bundled node-gyp in npm_config_node_gyp while it runs install scripts.
function nodeGyp() {
  return process.env.npm_config_node_gyp || require.resolve('node-gyp/bin/node-gyp.js');
}

// node-gyp downloads Node's headers unless told where they are: use the running Node's own.
function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function main() {
  if (!force) {
    const prebuilt = prebuildLoads();
    if (prebuilt) {
      log(`using the prebuilt addon ${path.relative(root, prebuilt)}`);
      return 0;
    }
  }
  const libtorch = locateLibTorch();
  if (libtorch instanceof Error) {
    console.error(libtorch.message);
    return 1;
  }
  log(`building the addon against LibTorch in ${libtorch.libDir} (${libtorch.source})`);

  // A different LibTorch than the last build's means a clean configure: CMake caches the old one.
  const previous = fs.existsSync(stampFile) ? fs.readFileSync(stampFile, 'utf8') : '';
  const clean = argv.includes('--clean') || previous !== libtorch.cmakeDir;
  const jobs = String(Math.max(1, Math.min(os.availableParallelism(), 4)));

  let cmakeJs = null;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    log('cmake-js is not installed; building with node-gyp and binding.gyp instead');
  }
  const status = cmakeJs
    ? // CMakeLists.txt asks scripts/libtorch.js what to turn on: with the node running this, PATH or not.
      run(process.execPath, [cmakeJs, clean ? 'rebuild' : 'build', '--parallel', jobs, '--log-level', 'warn', `--CDTORCH_ATTN_NODE=${process.execPath}`])
    : run(process.execPath, [nodeGyp(), 'rebuild', '--jobs', jobs, ...nodeDirArgs()]);
  if (status !== 0) {
    console.error('torch-attn: the native build failed (see the compiler output above).');
    return status;
  }
  fs.mkdirSync(path.dirname(stampFile), { recursive: true });
  fs.writeFileSync(stampFile, libtorch.cmakeDir);
  return 0;
}

process.exitCode = main();
