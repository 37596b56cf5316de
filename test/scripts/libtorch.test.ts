// Locating LibTorch: TORCH_ATTN_LIBTORCH in each accepted form, and the one message a user gets
// when nothing is found.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { locateLibTorch } = require('../../scripts/libtorch.js') as {
  locateLibTorch(env: Record<string, string | undefined>): Error | { source: string; cmakeDir: string; includeDirs: string[]; libDir: string; cxxFlags: string[] };
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
