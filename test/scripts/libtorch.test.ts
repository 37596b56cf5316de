// Locating LibTorch: TORCH_ATTN_LIBTORCH in each accepted form, and the one message a user gets
// when nothing is found; what the build turns on for the LibTorch found (CMake and node-gyp alike).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInfo } from '../../lib/runtime';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { locateLibTorch, buildFeatures } = require('../../scripts/libtorch.js') as {
  locateLibTorch(env: Record<string, string | undefined>): Error | { source: string; cmakeDir: string; includeDirs: string[]; libDir: string; cxxFlags: string[] };
  buildFeatures(
    found: { libDir: string; includeDirs: string[] },
    compiler: { id: string; version: string },
  ): {
    cuda: boolean;
    nccl: { includeDir: string } | null;
    onednn: { includeDir: string; libDir: string } | null;
    openmp: boolean;
    compatInclude: boolean;
    fileFlags: Record<string, string[]>;
  };
};

const root = path.resolve(__dirname, '..', '..');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-libtorch-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function fakeLibTorch(layout: string): string {
  const base = path.join(scratch, layout.replace(/\W/g, '_'));
  const cmakeDir = path.join(base, layout);
  fs.mkdirSync(cmakeDir, { recursive: true });
  fs.writeFileSync(path.join(cmakeDir, 'TorchConfig.cmake'), 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")\n');
  return base;
}

describe('locateLibTorch()', () => {
  it('takes an unpacked LibTorch archive (share/cmake/Torch inside)', () => {
    const dir = fakeLibTorch('share/cmake/Torch');
    const found = locateLibTorch({ TORCH_ATTN_LIBTORCH: dir });
    if (found instanceof Error) throw found;
    expect(found.source).toBe('TORCH_ATTN_LIBTORCH');
    expect(found.libDir).toBe(path.join(dir, 'lib'));
    expect(found.includeDirs).toEqual([path.join(dir, 'include'), path.join(dir, 'include/torch/csrc/api/include')]);
    expect(found.cxxFlags).toEqual(['-D_GLIBCXX_USE_CXX11_ABI=0']);
  });

  it("takes torch.utils.cmake_prefix_path (a folder holding Torch/)", () => {
    const dir = fakeLibTorch('Torch');
    const found = locateLibTorch({ TORCH_ATTN_LIBTORCH: dir });
    expect(found).not.toBeInstanceOf(Error);
  });

  it('names the fix when TORCH_ATTN_LIBTORCH holds no LibTorch', () => {
    const found = locateLibTorch({ TORCH_ATTN_LIBTORCH: path.join(scratch, 'nothing-here') });
    expect(found).toBeInstanceOf(Error);
    expect((found as Error).message).toMatch(/holds no TorchConfig\.cmake/);
    expect((found as Error).message).toMatch(/apt-get install -y libtorch-dev/);
  });

  it('finds the system LibTorch when the variable is unset (as on CI)', () => {
    const found = locateLibTorch({});
    if (found instanceof Error) {
      expect(found.message).toMatch(/LibTorch was not found\. Install it with `sudo apt-get install -y libtorch-dev`.*TORCH_ATTN_LIBTORCH/);
    } else {
      expect(fs.existsSync(path.join(found.cmakeDir, 'TorchConfig.cmake'))).toBe(true);
    }
  });
});

describe('buildFeatures(): what CMakeLists.txt and binding.gyp turn on', () => {
  function fakeTree(files: string[]): { libDir: string; includeDirs: string[] } {
    const base = fs.mkdtempSync(path.join(scratch, 'tree-'));
    for (const file of files) {
      fs.mkdirSync(path.dirname(path.join(base, file)), { recursive: true });
      fs.writeFileSync(path.join(base, file), '');
    }
    return { libDir: path.join(base, 'lib'), includeDirs: [path.join(base, 'include')] };
  }

  it('a CPU LibTorch without a readable libtorch_cpu: no CUDA, no NCCL, no OpenMP, the compat headers', () => {
    const f = buildFeatures(fakeTree(['lib/libtorch.so', 'include/nccl.h']), { id: 'GNU', version: '12.2.0' });
    expect(f).toMatchObject({ cuda: false, nccl: null, onednn: null, openmp: false, compatInclude: true, fileFlags: {} });
  });

  it('a CUDA LibTorch: NCCL where its header is, and LibTorch 2.x headers need no compat ones', () => {
    const tree = fakeTree(['lib/libtorch.so', 'lib/libtorch_cuda.so', 'include/nccl.h', 'include/torch/csrc/distributed/autograd/context/context.h']);
    const f = buildFeatures(tree, { id: 'GNU', version: '14.2.0' });
    expect(f.cuda).toBe(true);
    expect(f.compatInclude).toBe(false);
    // nccl.h from the tree's include folder (a system libnccl-dev would do as well).
    expect(f.nccl).not.toBeNull();
  });

  it("quiets GCC 14's false positive in one file only, and only under GCC 14 or later", () => {
    const tree = fakeTree(['lib/libtorch.so']);
    expect(buildFeatures(tree, { id: 'GNU', version: '14.2.0' }).fileFlags).toEqual({
      'native/models/winograd_training.cc': ['-Wno-array-bounds', '-Wno-stringop-overflow'],
    });
    expect(buildFeatures(tree, { id: 'GNU', version: '12.2.0' }).fileFlags).toEqual({});
    expect(buildFeatures(tree, { id: 'Clang', version: '18.1.8' }).fileFlags).toEqual({});
    for (const file of Object.keys(buildFeatures(tree, { id: 'GNU', version: '14' }).fileFlags)) {
      expect(fs.existsSync(path.join(root, file)), file).toBe(true);
    }
  });

  const system = locateLibTorch({});
  const info = buildInfo();
  const builtOnSystem = !(system instanceof Error) && path.resolve(info.libtorchDir) === path.resolve(system.libDir);
  it.skipIf(!builtOnSystem)('agrees with the addon this suite runs (built against the system LibTorch)', () => {
    const found = system as Exclude<typeof system, Error>;
    const f = buildFeatures(found, { id: 'GNU', version: '12' });
    expect(info.cuda).toBe(f.cuda);
    // planConvolutions says 'onednn' only where the build compiled oneDNN's API in.
    if (info.inferencePlans && process.env.TORCH_ATTN_DIRECT_ONEDNN !== '0') {
      expect(info.planConvolutions === 'onednn').toBe(f.onednn !== null);
    }
    // Whatever LibTorch links (readelf), GCC gets OpenMP exactly when that is libgomp.
    const needed = spawnSync('readelf', ['-d', path.join(found.libDir, 'libtorch_cpu.so')], { encoding: 'utf8' }).stdout ?? '';
    expect(f.openmp).toBe(needed.includes('[libgomp.so.1]'));
    expect(buildFeatures(found, { id: 'Clang', version: '18' }).openmp).toBe(false);
  });
});

describe('scripts/install.js', () => {
  it('stops with one clear message and exit code 1 when LibTorch is missing', () => {
    const result = spawnSync(process.execPath, [path.join(root, 'scripts/install.js'), '--force'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, TORCH_ATTN_LIBTORCH: path.join(scratch, 'missing') },
    });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/TORCH_ATTN_LIBTORCH=.*missing holds no TorchConfig\.cmake/);
  });
});
