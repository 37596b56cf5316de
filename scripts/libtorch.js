#!/usr/bin/env node
// Finds the LibTorch the addon builds against: TORCH_ATTN_LIBTORCH when set, else Debian's
// libtorch-dev. Used by scripts/install.js (pre-flight) and by binding.gyp (compiler flags).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const FIX =
  'Install it with `sudo apt-get install -y libtorch-dev` (Debian/Ubuntu), or set ' +
  'TORCH_ATTN_LIBTORCH=/path/to/libtorch (an unpacked LibTorch archive, or a Python torch ' +
  "package folder: python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))').";

/** The first of `dirs` that holds `file` (a path relative to it); undefined when none does. */
function firstWith(dirs, file) {
  return dirs.find((dir) => fs.existsSync(path.join(dir, file)));
}

/** Debian's multiarch folders under a library root (/usr/lib/x86_64-linux-gnu); none when the root
 *  cannot be read. */
function multiarchDirs(libRoot) {
  try {
    return fs.readdirSync(libRoot).filter((d) => d.endsWith('-linux-gnu')).map((d) => path.join(libRoot, d));
  } catch {
    return [];
  }
}

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
  const root = firstWith([up(3), up(4)], 'include/torch') ?? up(3);
  const libDir = firstWith([path.join(up(3), 'lib'), up(2)], 'libtorch.so') ?? path.join(up(3), 'lib');
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
    const cmakeDir = firstWith(candidates, 'TorchConfig.cmake');
    if (!cmakeDir) {
      return new Error(
        `torch-attn: TORCH_ATTN_LIBTORCH=${requested} holds no TorchConfig.cmake (looked in ` +
          `share/cmake/Torch, Torch and the folder itself). ${FIX}`,
      );
    }
    return fromCMakeDir(cmakeDir, 'TORCH_ATTN_LIBTORCH');
  }
  const systemDir = firstWith(['/usr/lib', '/usr/local/lib'].flatMap(multiarchDirs), 'cmake/Torch/TorchConfig.cmake');
  if (systemDir) return fromCMakeDir(path.join(systemDir, 'cmake/Torch'), 'system');
  return new Error(`torch-attn: LibTorch was not found. ${FIX}`);
}

/** The LibTorch libraries to link, CUDA ones included when that LibTorch has them. */
function libraries(libDir) {
  const names = ['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda'];
  return names.filter((name) => fs.existsSync(path.join(libDir, `lib${name}.so`)));
}

/** The libraries a shared library names as NEEDED (readelf, from binutils, beside every compiler);
 *  none when it cannot be read. */
function neededLibraries(file) {
  const run = spawnSync('readelf', ['-d', file], { encoding: 'utf8' });
  if (run.status !== 0) return [];
  return [...run.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/** The C++ compiler node-gyp runs (CXX, else g++): { id: 'GNU' | 'Clang' | ..., version }, in
 *  CMake's words (CMAKE_CXX_COMPILER_ID, CMAKE_CXX_COMPILER_VERSION). */
function gypCompiler(env = process.env) {
  const cxx = env.CXX || 'g++';
  const banner = spawnSync(cxx, ['--version'], { encoding: 'utf8' }).stdout ?? '';
  const version = (spawnSync(cxx, ['-dumpfullversion', '-dumpversion'], { encoding: 'utf8' }).stdout ?? '').trim();
  const id = /clang/i.test(banner) ? 'Clang' : /\b(g\+\+|gcc|Free Software Foundation)\b/i.test(banner) ? 'GNU' : 'unknown';
  return { id, version };
}

/** System folders for headers and libraries, after a LibTorch's own. */
function systemDirs() {
  return {
    include: ['/usr/local/include', '/usr/include', '/usr/local/cuda/include'],
    lib: ['/usr/local/lib', ...multiarchDirs('/usr/lib'), '/usr/lib'],
  };
}

/**
 * What the addon's build turns on for a LibTorch (its library folder and include folders) and a
 * compiler. The one owner of these decisions: CMakeLists.txt reads them (--cmake-features) and
 * binding.gyp takes them through the --gyp-* flags below.
 *  - cuda: a CUDA LibTorch (libtorch_cuda beside libtorch).
 *  - nccl: c10d's NCCL backend (distributed.init({ backend: 'nccl' })): a CUDA LibTorch and NCCL's
 *    header (libnccl-dev) to compile against; its folder.
 *  - onednn: oneDNN's own API for the inference plans' convolutions (native/models/onednn_conv.h):
 *    only against the libdnnl LibTorch itself links (Debian's libtorch-dev links libdnnl2; its
 *    headers come from libdnnl-dev), and only oneDNN 2.x, the API and the versions plans are
 *    checked on; its header and library folders. Without it the plans run their convolutions
 *    through LibTorch's prepacked ops.
 *  - openmp: LibTorch's at::parallel_for is a header template whose OpenMP pragma splits the work
 *    over the calling thread's team only in code compiled with OpenMP; elsewhere it runs the whole
 *    range on one thread. The addon's own kernels (Winograd bf16, the fused Adam step) use it, so they
 *    are compiled with OpenMP where that is LibTorch's own runtime (it links the system libgomp.so.1
 *    and GCC compiles us: one runtime, one team per thread). Elsewhere (clang, whose -fopenmp is
 *    libomp; a LibTorch bundling its own OpenMP) they run on one thread rather than start a second
 *    runtime.
 *  - compatInclude: c10d's reducer.hpp includes distributed autograd's context.h, which Debian 12's
 *    libtorch-dev lacks: native/compat/include declares the two names it needs.
 *  - fileFlags: compiler flags for single files. GCC 14 warns inside LibTorch 2.x's
 *    autograd::Function<T>::apply, which winograd_training.cc instantiates: a std::vector<bool>'s
 *    reserve() inlined there copies, to the optimizer's eye, past an 8-byte array (-Warray-bounds,
 *    and with that off -Wstringop-overflow: libstdc++'s vector<bool> under GCC 14, not this code).
 *    The warning points into the header, where no pragma in the file reaches; GCC 12 keeps both.
 */
function buildFeatures({ libDir, includeDirs }, compiler) {
  const needed = neededLibraries(path.join(libDir, 'libtorch_cpu.so'));
  const system = systemDirs();
  const headerDirs = [...includeDirs, ...system.include];
  const cuda = libraries(libDir).includes('torch_cuda');
  const ncclDir = cuda ? firstWith(headerDirs, 'nccl.h') : undefined;
  let onednn = null;
  const dnnlInclude = firstWith(headerDirs, 'oneapi/dnnl/dnnl.hpp');
  const dnnlLib = firstWith([libDir, ...system.lib], 'libdnnl.so');
  const dnnlVersion = dnnlInclude ? path.join(dnnlInclude, 'oneapi/dnnl/dnnl_version.h') : '';
  if (dnnlLib && needed.includes('libdnnl.so.2') && fs.existsSync(dnnlVersion)) {
    if (/#define DNNL_VERSION_MAJOR 2\b/.test(fs.readFileSync(dnnlVersion, 'utf8'))) onednn = { includeDir: dnnlInclude, libDir: dnnlLib };
  }
  const gcc = compiler.id === 'GNU';
  const gccMajor = gcc ? Number.parseInt(compiler.version, 10) : 0;
  return {
    cuda,
    nccl: ncclDir ? { includeDir: ncclDir } : null,
    onednn,
    openmp: gcc && needed.includes('libgomp.so.1'),
    compatInclude: !includeDirs.some((d) => fs.existsSync(path.join(d, 'torch/csrc/distributed/autograd/context/context.h'))),
    fileFlags: gccMajor >= 14 ? { 'native/models/winograd_training.cc': ['-Wno-array-bounds', '-Wno-stringop-overflow'] } : {},
  };
}

/** The decisions as CMake code (set() and set_source_files_properties() lines), for
 *  CMakeLists.txt to evaluate. */
function cmakeFeatures(features) {
  const quote = (value) => `"${String(value).replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
  const lines = [
    `set(TORCH_ATTN_WITH_CUDA ${features.cuda ? 1 : 0})`,
    `set(TORCH_ATTN_NCCL ${features.nccl ? 1 : 0})`,
    `set(TORCH_ATTN_NCCL_INCLUDE_DIR ${quote(features.nccl?.includeDir ?? '')})`,
    `set(TORCH_ATTN_DIRECT_ONEDNN ${features.onednn ? 1 : 0})`,
    `set(TORCH_ATTN_DNNL_INCLUDE_DIR ${quote(features.onednn?.includeDir ?? '')})`,
    `set(TORCH_ATTN_DNNL_LIBRARY ${quote(features.onednn ? path.join(features.onednn.libDir, 'libdnnl.so') : '')})`,
    `set(TORCH_ATTN_OPENMP ${features.openmp ? 1 : 0})`,
    `set(TORCH_ATTN_COMPAT_INCLUDE ${features.compatInclude ? 1 : 0})`,
    ...Object.entries(features.fileFlags).map(
      ([file, flags]) => `set_source_files_properties("\${CMAKE_CURRENT_SOURCE_DIR}/${file}" PROPERTIES COMPILE_OPTIONS ${quote(flags.join(';'))})`,
    ),
  ];
  return lines.join('\n');
}

module.exports = { locateLibTorch, libraries, buildFeatures, gypCompiler, FIX };

if (require.main === module) {
  const mode = process.argv[2];
  if (mode === '--cmake-features') {
    // CMake's own findings: node scripts/libtorch.js --cmake-features LIBDIR "INCLUDE;DIRS" ID VERSION
    const [libDir, includeDirs, id, version] = process.argv.slice(3);
    console.log(cmakeFeatures(buildFeatures({ libDir, includeDirs: includeDirs.split(';').filter(Boolean) }, { id, version })));
    process.exit(0);
  }
  const found = locateLibTorch();
  if (found instanceof Error) {
    console.error(found.message);
    process.exit(1);
  }
  const features = () => buildFeatures(found, gypCompiler());
  const out = {
    '--gyp-include': () => {
      const f = features();
      const dirs = [...found.includeDirs];
      if (f.compatInclude) dirs.push('native/compat/include');
      if (f.onednn) dirs.push(f.onednn.includeDir);
      if (f.nccl) dirs.push(f.nccl.includeDir);
      return [...new Set(dirs)].join(' ');
    },
    // node-gyp has no flags for single files: a file's flags (fileFlags) apply to every file here.
    '--gyp-cflags': () => {
      const f = features();
      return [...found.cxxFlags, ...(f.openmp ? ['-fopenmp'] : []), ...new Set(Object.values(f.fileFlags).flat())].join(' ');
    },
    '--gyp-ldflags': () => [`-L${found.libDir}`, `-Wl,-rpath,${found.libDir}`, '-Wl,--disable-new-dtags', ...(features().openmp ? ['-fopenmp'] : [])].join(' '),
    '--gyp-libs': () => {
      const f = features();
      const libs = libraries(found.libDir).map((name) => `-l${name}`);
      if (f.onednn) libs.push(...(f.onednn.libDir === found.libDir ? [] : [`-L${f.onednn.libDir}`]), '-ldnnl');
      return libs.join(' ');
    },
    '--gyp-defines': () => {
      const f = features();
      return [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_CPP_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
        'USE_DISTRIBUTED',
        'USE_C10D_GLOO',
        ...(f.nccl ? ['USE_C10D_NCCL'] : []),
        `TORCH_ATTN_WITH_CUDA=${f.cuda ? 1 : 0}`,
        `TORCH_ATTN_NCCL=${f.nccl ? 1 : 0}`,
        `TORCH_ATTN_DIRECT_ONEDNN=${f.onednn ? 1 : 0}`,
        `TORCH_ATTN_LIBTORCH_DIR=\\"${found.libDir}\\"`,
      ].join(' ');
    },
    '--gyp-sources': () => require('../native/sources.json').sources.join(' '),
  }[mode];
  console.log(out ? out() : JSON.stringify({ ...found, features: features() }, null, 2));
}
