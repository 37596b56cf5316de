#!/usr/bin/env node
// Finds the LibTorch the addon builds against: TORCH_ATTN_LIBTORCH when set, else Debian's
// libtorch-dev. Used by scripts/install.js (pre-flight) and by binding.gyp (compiler flags).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const FIX =
  'Install it with `sudo apt-get install -y libtorch-dev` (Debian/Ubuntu), or set ' +
  'TORCH_ATTN_LIBTORCH=/path/to/libtorch (an unpacked LibTorch archive, or a Python torch ' +
  "package folder: python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))').";

function readCxxFlags(configFile) {
  const text = fs.readFileSync(configFile, 'utf8');
  const match = /set\(TORCH_CXX_FLAGS "([^"]*)"\)/.exec(text);
  return match ? match[1].split(/\s+/).filter(Boolean) : [];
}

/** A LibTorch's folders, from the folder holding its TorchConfig.cmake. Upstream archives keep
 *  it in <root>/share/cmake/Torch (headers in <root>/include, libraries in <root>/lib); Debian
 *  in /usr/lib/<arch>/cmake/Torch (headers in /usr/include, libraries beside cmake/). */
function fromCMakeDir(cmakeDir, source) {
  const up = (n) => path.resolve(cmakeDir, ...Array(n).fill('..'));
  const root = [up(3), up(4)].find((dir) => fs.existsSync(path.join(dir, 'include', 'torch'))) ?? up(3);
  const libDir = [path.join(up(3), 'lib'), up(2)].find((dir) => fs.existsSync(path.join(dir, 'libtorch.so'))) ?? path.join(up(3), 'lib');
  return {
    source,
    cmakeDir,
    includeDirs: [path.join(root, 'include'), path.join(root, 'include/torch/csrc/api/include')],
    libDir,
    cxxFlags: readCxxFlags(path.join(cmakeDir, 'TorchConfig.cmake')),
  };
}

/** Where LibTorch is, or an Error saying what to install or set. */
function locateLibTorch(env = process.env) {
  const requested = env.TORCH_ATTN_LIBTORCH;
  if (requested) {
    const root = path.resolve(requested);
    const candidates = [path.join(root, 'share/cmake/Torch'), path.join(root, 'Torch'), root];
    const cmakeDir = candidates.find((dir) => fs.existsSync(path.join(dir, 'TorchConfig.cmake')));
    if (!cmakeDir) {
      return new Error(
        `torch-attn: TORCH_ATTN_LIBTORCH=${requested} holds no TorchConfig.cmake (looked in ` +
          `share/cmake/Torch, Torch and the folder itself). ${FIX}`,
      );
    }
    return fromCMakeDir(cmakeDir, 'TORCH_ATTN_LIBTORCH');
  }
  for (const libRoot of ['/usr/lib', '/usr/local/lib']) {
    let arches = [];
    try {
      arches = fs.readdirSync(libRoot).filter((d) => d.endsWith('-linux-gnu'));
    } catch {
      continue;
    }
    for (const arch of arches) {
      const cmakeDir = path.join(libRoot, arch, 'cmake/Torch');
      if (fs.existsSync(path.join(cmakeDir, 'TorchConfig.cmake'))) return fromCMakeDir(cmakeDir, 'system');
    }
  }
  return new Error(`torch-attn: LibTorch was not found. ${FIX}`);
}

/** The LibTorch libraries to link, CUDA ones included when that LibTorch has them. */
function libraries(libDir) {
  const names = ['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda'];
  return names.filter((name) => fs.existsSync(path.join(libDir, `lib${name}.so`)));
}

/** Whether c10d's NCCL backend can be compiled: a CUDA LibTorch and NCCL's header (libnccl-dev).
 *  CMake learns it from torch_cuda's target (USE_C10D_NCCL); the gyp build asks here. */
function hasNccl(found) {
  return libraries(found.libDir).includes('torch_cuda') && [...found.includeDirs, '/usr/include'].some((d) => fs.existsSync(path.join(d, 'nccl.h')));
}

module.exports = { locateLibTorch, libraries, hasNccl, FIX };

if (require.main === module) {
  const found = locateLibTorch();
  if (found instanceof Error) {
    console.error(found.message);
    process.exit(1);
  }
  const mode = process.argv[2];
  const out = {
    // c10d's reducer.hpp includes a header Debian 12's libtorch-dev lacks (CMakeLists.txt does the same).
    '--gyp-include': () =>
      [...found.includeDirs, ...(found.includeDirs.some((d) => fs.existsSync(path.join(d, 'torch/csrc/distributed/autograd/context/context.h'))) ? [] : ['native/compat/include'])].join(' '),
    '--gyp-cflags': () => found.cxxFlags.join(' '),
    '--gyp-ldflags': () => `-L${found.libDir} -Wl,-rpath,${found.libDir} -Wl,--disable-new-dtags`,
    '--gyp-libs': () => libraries(found.libDir).map((name) => `-l${name}`).join(' '),
    '--gyp-defines': () =>
      [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_CPP_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
        'USE_DISTRIBUTED',
        'USE_C10D_GLOO',
        ...(hasNccl(found) ? ['USE_C10D_NCCL', 'TORCH_ATTN_NCCL=1'] : []),
        `TORCH_ATTN_WITH_CUDA=${libraries(found.libDir).includes('torch_cuda') ? 1 : 0}`,
        'TORCH_ATTN_CUDA_VERSION=\\"\\"',
        `TORCH_ATTN_LIBTORCH_DIR=\\"${found.libDir}\\"`,
      ].join(' '),
    '--gyp-sources': () => require('../native/sources.json').sources.join(' '),
  }[mode];
  console.log(out ? out() : JSON.stringify(found, null, 2));
}
