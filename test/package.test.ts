// The package as a consumer sees it: `require` and `import` of 'torch-attn' from another folder,
// through package.json's exports map and the built dist/ (npm install/ci builds it via prepare).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
let consumer: string;

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: consumer, encoding: 'utf8' });
}

beforeAll(() => {
  if (!fs.existsSync(path.join(root, 'dist', 'index.mjs'))) {
    throw new Error('dist/ is not built: run `npm run build:ts` (npm install does it through prepare)');
  }
  consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-consumer-'));
  fs.mkdirSync(path.join(consumer, 'node_modules'));
  fs.symlinkSync(root, path.join(consumer, 'node_modules', 'torch-attn'), 'dir');
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
});

afterAll(() => {
  if (consumer) fs.rmSync(consumer, { recursive: true, force: true });
});

describe('package entry points', () => {
  it('require("torch-attn") works', () => {
    const out = node(['-e', "const t = require('torch-attn'); console.log(JSON.stringify({ info: t.buildInfo(), data: Array.from(t.tensor([1, 2]).data()) }))"]);
    const parsed = JSON.parse(out);
    expect(parsed.info.napiVersion).toBe(8);
    expect(parsed.data).toEqual([1, 2]);
  });

  it('import from "torch-attn" works, named and default, sharing one module instance', () => {
    const code = [
      "import ta, { buildInfo, tensor, Tensor } from 'torch-attn';",
      "import { createRequire } from 'node:module';",
      "const cjs = createRequire(import.meta.url)('torch-attn');",
      'const t = tensor([3, 4]);',
      'console.log(JSON.stringify({ v: buildInfo().version, same: ta.Tensor === Tensor && cjs.Tensor === Tensor && t instanceof cjs.Tensor }));',
    ].join('\n');
    const parsed = JSON.parse(node(['--input-type=module', '-e', code]));
    expect(parsed.v).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    expect(parsed.same).toBe(true);
  });

  it('ships declaration files for both entry points', () => {
    expect(fs.existsSync(path.join(root, 'dist', 'index.d.ts'))).toBe(true);
    expect(fs.readFileSync(path.join(root, 'dist', 'index.d.mts'), 'utf8')).toMatch(/export \* from '\.\/index\.js'/);
    expect(fs.readFileSync(path.join(root, 'dist', 'tensor', 'tensor.d.ts'), 'utf8')).toMatch(/export declare function tensor/);
  });

  it('packs what a user needs and no more: no data, no tests, the build tools of the cmake-js path left to development', () => {
    const pack = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }))[0];
    const files: string[] = pack.files.map((f: { path: string }) => f.path);
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.mjs', 'dist/index.js', 'bin/torch-attn.js', 'scripts/install.js', 'recipes/cbamcnn-cifar10.yaml', 'native/sources.json']) expect(files, f).toContain(f);
    expect(files.filter((f) => /^(data|test|runs|fuzz|build)\//.test(f) || /^scripts\/(?!install\.js|libtorch\.js|cmake-js-shim\.js)/.test(f))).toEqual([]);
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const tool of ['cmake-js', 'node-api-headers']) expect(Object.keys(manifest.dependencies)).not.toContain(tool);
    expect(manifest.dependencies).toHaveProperty('node-addon-api'); // every source build (node-gyp's binding.gyp too) includes its headers
    expect(manifest.keywords).toContain('cbam');
    expect(manifest.engines.node).toMatch(/^>=20/);
  }, 60_000);
});
