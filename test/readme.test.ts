// Every example in README.md runs, in order, in one working folder whose node_modules/torch-attn
// is this checkout (so `import ... from 'torch-attn'` is the package, through its exports, and
// node_modules/torch-attn/recipes its recipes): ts blocks with tsx,
// sh blocks with bash (`npx torch-attn` is this checkout's bin), yaml blocks checked as run
// configurations. A comment line before a block changes how it runs:
//   <!-- readme-test: install -->              apt/npm install lines: checked against .ci/run's packages and the package's name
//   <!-- readme-test: needs-weights NAME -->   runs when torchvision's NAME weights are in PyTorch's cache
//   <!-- readme-test: file NAME -->            a ts block written to NAME for the blocks after it (not run itself)
// The working folder starts with `my-photos/{train,val}/{cat,dog}` (the test images of
// test/fixtures) and `cifar-10-batches-py` (the tiny CIFAR-10 fixture).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../lib/runs/config';
import { weightsPath } from '../lib/models/weights';

const root = path.join(__dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const bin = path.join(root, 'bin', 'torch-attn.js');
const npxPath = spawnSync('sh', ['-c', 'command -v npx'], { encoding: 'utf8' }).stdout.trim() || 'npx';
const fixtures = path.join(__dirname, 'fixtures', 'data');

interface Block {
  lang: string;
  line: number;
  code: string;
  directive?: { kind: string; arg: string };
}

function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    const before = /^<!-- readme-test: ([\w-]+)\s*(.*?)\s*-->$/.exec(lines[start - 1] ?? '');
    blocks.push({ lang: open[1], line: start + 1, code: body.join('\n'), directive: before ? { kind: before[1], arg: before[2] } : undefined });
  }
  return blocks;
}

const blocks = readmeBlocks(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).filter((b) => ['ts', 'sh', 'yaml'].includes(b.lang));
const built = fs.existsSync(path.join(root, 'dist', 'index.mjs'));
let work = '';

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-readme-'));
  fs.mkdirSync(path.join(work, 'node_modules'));
  fs.symlinkSync(root, path.join(work, 'node_modules', 'torch-attn'), 'dir');
  // What the examples' own project would have installed beside torch-attn.
  for (const dep of ['fastify', 'tsx']) fs.symlinkSync(path.join(root, 'node_modules', dep), path.join(work, 'node_modules', dep), 'dir');
  fs.mkdirSync(path.join(work, 'node_modules', '.bin'));
  fs.symlinkSync(path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(work, 'node_modules', '.bin', 'tsx'));
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'readme-examples', private: true }));
  // `npx torch-attn` is this checkout's bin, exec'd (so `kill %1` reaches the command itself).
  fs.mkdirSync(path.join(work, '.bin'));
  fs.writeFileSync(path.join(work, '.bin', 'npx'), `#!/bin/sh\nif [ "$1" = torch-attn ]; then shift; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} "$@"; fi\nexec ${JSON.stringify(npxPath)} "$@"\n`, { mode: 0o755 });
  for (const split of ['train', 'val']) {
    for (const [cls, files] of [['cat', ['a.png', 'b.jpg', 'nested/c.png']], ['dog', ['d.png', 'e.png', 'f.JPEG']]] as const) {
      fs.mkdirSync(path.join(work, 'my-photos', split, cls), { recursive: true });
      for (const f of files) fs.copyFileSync(path.join(fixtures, 'folder', cls, f), path.join(work, 'my-photos', split, cls, path.basename(f)));
    }
  }
  fs.cpSync(path.join(fixtures, 'cifar-10-batches-py'), path.join(work, 'cifar-10-batches-py'), { recursive: true });
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function runIn(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(command, args, { cwd: work, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1', ...env } });
  return { status: r.status, output: `${r.stdout}${r.stderr}`, error: r.error };
}


describe('README examples', () => {
  it('has examples to run', () => {
    expect(blocks.filter((b) => b.lang === 'ts').length).toBeGreaterThan(5);
    expect(blocks.filter((b) => b.lang === 'sh').length).toBeGreaterThan(3);
  });

  for (const [n, block] of blocks.entries()) {
    const name = `README.md line ${block.line} (${block.lang})`;
    const d = block.directive;
    if (d !== undefined && !['install', 'needs-weights', 'file'].includes(d.kind)) throw new Error(`${name}: unknown readme-test directive '${d.kind}'`);
    if (d?.kind === 'install') {
      it(`${name}: installs what CI installs`, () => {
        const ci = /apt-get install -y ([^\n]+)/.exec(fs.readFileSync(path.join(root, '.ci', 'run'), 'utf8'))![1].split(/\s+/);
        const apt = /apt-get install -y ([^\n]+)/.exec(block.code)![1].split(/\s+/);
        expect(apt.filter((p) => !ci.includes(p))).toEqual([]);
        expect(block.code).toContain(`npm install ${JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name}`);
      });
      continue;
    }
    if (block.lang !== 'yaml' && !built) {
      it.skip(`${name}: skipped, dist/ is not built (npm run build:ts)`, () => {});
      continue;
    }
    if (d?.kind === 'needs-weights' && !fs.existsSync(weightsPath(d.arg))) {
      it.skip(`${name}: skipped, torchvision's ${d.arg} weights are not in PyTorch's cache (npx torch-attn weights pull ${d.arg})`, () => {});
      continue;
    }
    it(name, () => {
      if (block.lang === 'yaml') {
        expect(() => checkConfig(YAML.parse(block.code), name)).not.toThrow();
        return;
      }
      let r: ReturnType<typeof runIn>;
      if (block.lang === 'sh') {
        r = runIn('bash', ['-c', `set -euo pipefail\n${block.code}`], { PATH: `${path.join(work, '.bin')}:${process.env.PATH}` });
      } else {
        const file = path.join(work, d?.kind === 'file' ? d.arg : `example-${n}.mts`);
        fs.writeFileSync(file, `${block.code}\n`);
        if (d?.kind === 'file') return; // run by a later block
        r = runIn(tsx, [file]);
      }
      expect(r.error, r.output).toBeUndefined();
      expect(r.status, r.output).toBe(0);
    }, 300_000);
  }
});
