// Crashes at teardown and from careless callers, each scenario in a child process of its own so
// that a crash shows as a signal or an abort instead of taking the test runner down:
// a worker terminated while it makes tensors, process.exit() in the middle of a fit or with
// inference jobs queued, and native getters called on another class's object.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResNetCBAM, randn } from '../../lib/index';
import { addonFile } from '../../lib/native';

const root = path.resolve(__dirname, '..', '..');
const index = JSON.stringify(path.join(root, 'lib', 'index.ts'));

// Runs `source` (TypeScript that imports torch-attn from `index`) with tsx, `times` times; each run
// must end by itself with status 0, no signal and no crash report.
function expectCleanExits(source: string, times: number) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-exit-')), 'exit.ts');
  fs.writeFileSync(file, source);
  try {
    for (let i = 0; i < times; i++) {
      const run = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), [file], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      expect(run.stderr).not.toMatch(/Segmentation|terminate called|FATAL|Aborted/);
      expect(run.signal).toBeNull();
      expect(run.status).toBe(0);
    }
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

function runNode(code: string, timeout = 60_000) {
  const run = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, ADDON: addonFile } });
  return { status: run.status, signal: run.signal, stderr: run.stderr, stdout: run.stdout };
}

describe('teardown', () => {
  it('a worker terminated while it makes tensors goes away; the process lives on (class 1)', () => {
    const run = runNode(`
      const { Worker } = require('node:worker_threads');
      const code = "const a = require(process.env.ADDON); require('node:worker_threads').parentPort.postMessage('go'); for (;;) { a.randn([64, 64]); a.zeros([8]).data(); }";
      (async () => {
        for (let i = 0; i < 12; i++) {
          const w = new Worker(code, { eval: true });
          await new Promise((r) => w.once('message', r));
          await new Promise((r) => setTimeout(r, 5 + i * 3));
          await w.terminate();
        }
        console.log('alive');
      })();
    `);
    expect(run.stderr).not.toMatch(/terminate called|FATAL|Aborted/);
    expect(run.signal).toBeNull();
    expect(run.stdout.trim()).toBe('alive');
    expect(run.status).toBe(0);
  }, 90_000);

  it('process.exit() in the middle of a fit exits cleanly (class 2)', () => {
    expectCleanExits(`
      import { CBAMCNN, StagedFineTuner, datasets, transforms } from ${index};
      const n = 64;
      const images = new Uint8Array(n * 3 * 32 * 32).map((_, i) => (i * 31) % 251);
      const data = datasets.fromArrays({ images, shape: [n, 3, 32, 32], labels: Array.from({ length: n }, (_, i) => i % 3), classes: ['a', 'b', 'c'], transform: transforms.toTensor() });
      const tuner = new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), { stages: [{ name: 's', epochs: 50, train: 'all', lr: 1e-3 }], logEvery: 1 });
      void tuner.fit(data, null, { batchSize: 16, workers: 2, onBatch: (e) => { if (e.batch === 2) process.exit(0); } });
    `, 3);
  }, 120_000);

  it('process.exit() while inference jobs wait for the compute thread exits instead of hanging (class 2b)', () => {
    // The jobs wait on libuv's pool threads, which process.exit() joins: a job still queued when
    // the compute thread stops must be given up, or the join never returns.
    expectCleanExits(`
      import { ResNetCBAM, randn } from ${index};
      const model = new ResNetCBAM({ depth: 18, numClasses: 3 }).eval();
      const x = randn([64, 3, 64, 64]);
      for (let i = 0; i < 4; i++) void model.predict(x);
      setTimeout(() => process.exit(0), 300);
    `, 1);
  }, 90_000);

  it("a native getter called on another class's object is a TypeError, not a read of foreign memory (class 3)", () => {
    const model = new ResNetCBAM({ depth: 18 });
    const x = randn([2, 3, 8, 8]);
    const modelProto = Object.getPrototypeOf(model.native);
    const tensorProto = Object.getPrototypeOf(x);
    for (const [proto, other] of [[modelProto, x], [tensorProto, model.native]] as const) {
      for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
        if (!d.get) continue;
        expect(() => d.get!.call(other), name).toThrow(TypeError);
        expect(() => d.get!.call({}), name).toThrow(); // not a wrapped object at all: node-addon-api refuses it
      }
    }
    expect(() => Object.getOwnPropertyDescriptor(tensorProto, 'shape')!.get!.call(model.native)).toThrow(/Illegal invocation/);
  });
});
