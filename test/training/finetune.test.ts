// StagedFineTuner and evaluate() on small models and generated data: stage transitions, frozen
// parameters and BatchNorm statistics, learning, resume after abort, NAM sparsity, errors.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CBAMCNN,
  ErrorCode,
  ResNetNAM,
  StagedFineTuner,
  classMetrics,
  evaluate,
  manualSeed,
  type EpochRecord,
  type Model,
} from '../../lib/index';
import { colourData, rejection, thrown } from '../helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-fit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function snapshot(model: Model, prefix: RegExp): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of Object.entries(model.stateDict())) if (prefix.test(name)) out.set(name, t.toFloat32Array());
  return out;
}

function same(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  return [...a].every(([k, v]) => Buffer.from(v.buffer).equals(Buffer.from(b.get(k)!.buffer)));
}

describe('StagedFineTuner', () => {
  it('changes exactly the declared trainable sets and learning rates at stage boundaries', async () => {
    manualSeed(1);
    const model = new CBAMCNN({ numClasses: 3 });
    const frozenAlways = /^(conv1|bn1|conv2|bn2|cbam1|cbam2)\./;
    const before = snapshot(model, frozenAlways);
    const block3Before = snapshot(model, /^(conv3|bn3)\./);
    let block3AtStageB: Map<string, Float32Array> | undefined;
    const stages: Record<string, string>[] = [];
    const tuner = new StagedFineTuner(model, {
      optimizer: { type: 'adam' },
      stages: [
        { name: 'A', epochs: 1, train: ['head', 'cbam3.*'], lr: 1e-2 },
        { name: 'B', epochs: 1, train: ['head', 'block3'], lr: { head: 1e-3, block3: 5e-4 } },
      ],
      logEvery: 0,
    });
    const result = await tuner.fit(colourData(64), null, {
      batchSize: 16,
      seed: 3,
      onStage: ({ name, groups }) => {
        stages.push(groups);
        if (name === 'B') block3AtStageB = snapshot(model, /^(conv3|bn3)\./);
      },
    });
    expect(Object.keys(result.groups)).toEqual(['block1', 'attention', 'block2', 'block3', 'attention[cbam3.*]', 'head']);
    expect(result.groups['attention[cbam3.*]']).toEqual(['cbam3.channel_attn.fc.0.weight', 'cbam3.channel_attn.fc.2.weight', 'cbam3.spatial_attn.conv.weight']);
    expect(stages[0]).toEqual({ block1: 'frozen', block2: 'frozen', 'attention[cbam3.*]': 'trainable', block3: 'frozen', head: 'trainable', attention: 'frozen' });
    expect(stages[1]).toEqual({ block1: 'frozen', block2: 'frozen', 'attention[cbam3.*]': 'frozen', block3: 'trainable', head: 'trainable', attention: 'frozen' });
    const [a, b] = result.epochs;
    expect(a.lr).toEqual({ block1: 0, block2: 0, 'attention[cbam3.*]': 1e-2, block3: 0, head: 1e-2, attention: 0 });
    expect(b.lr).toEqual({ block1: 0, block2: 0, 'attention[cbam3.*]': 0, block3: 5e-4, head: 1e-3, attention: 0 });
    // Frozen throughout: weights and BatchNorm running statistics untouched.
    expect(same(before, snapshot(model, frozenAlways))).toBe(true);
    // block3 frozen in A (BN statistics too), trained in B.
    expect(same(block3Before, block3AtStageB!)).toBe(true);
    expect(same(block3Before, snapshot(model, /^(conv3|bn3)\./))).toBe(false);
    expect(result.epochs.map((r) => [r.stage, r.epoch])).toEqual([['A', 1], ['B', 2]]);
  }, 60_000);

  it('learns a learnable task; records hold the documented fields', async () => {
    manualSeed(2);
    const model = new CBAMCNN({ numClasses: 3 });
    const batches: number[] = [];
    const tuner = new StagedFineTuner(model, { stages: [{ name: 'all', epochs: 4, train: 'all', lr: 1e-3 }], logEvery: 2 });
    const test = colourData(48, 32, 9);
    const { epochs, best } = await tuner.fit(colourData(96), test, { batchSize: 16, seed: 1, onBatch: (e) => batches.push(e.batch) });
    expect(batches).toEqual([2, 4, 6, 2, 4, 6, 2, 4, 6, 2, 4, 6]);
    const first = epochs[0], last = epochs[epochs.length - 1];
    expect(last.trainLoss).toBeLessThan(first.trainLoss * 0.8);
    expect(last.testTop1!).toBeGreaterThan(0.6);
    for (const r of epochs) {
      for (const k of ['trainAcc', 'testTop1', 'testTop5'] as const) expect(r[k]).toBeGreaterThanOrEqual(0), expect(r[k]).toBeLessThanOrEqual(1);
      expect(r.testTop5).toBe(1); // 3 classes
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.imagesPerSecond).toBeGreaterThan(0);
    }
    expect(best!.metric).toBe(Math.max(...epochs.map((r) => r.testTop1!)));
    const ev = await evaluate(model, test);
    expect(ev.count).toBe(48);
    expect(ev.top1).toBeCloseTo(last.testTop1!, 10);
    expect(ev.loss).toBeCloseTo(last.testLoss!, 6);
    expect(ev.confusion.flat().reduce((x, y) => x + y, 0)).toBe(48);
    expect(ev.perClass.map((m) => m.support)).toEqual([16, 16, 16]);
  }, 60_000);

  it('keeps a last partial batch and drops only a last batch of one image (BatchNorm cannot train on it)', async () => {
    const count = async (n: number) => {
      manualSeed(1);
      let batches = 0;
      await new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), { stages: [{ name: 'all', epochs: 1, train: 'all', lr: 1e-3 }], logEvery: 1 })
        .fit(colourData(n), null, { batchSize: 16, seed: 1, onBatch: (e) => (batches = e.batches) });
      return batches;
    };
    expect(await count(37)).toBe(3); // 16 + 16 + 5
    expect(await count(33)).toBe(2); // 16 + 16, the 1 left over dropped
  }, 60_000);

  it('reduces the rates on a plateau of the monitored metric at epoch ends, and resumes its state', async () => {
    // threshold 1: nothing after the first epoch counts as better; patience 0: every epoch after
    // the first halves the rates (PyTorch: reductions at the ends of epochs 2, 3, 4).
    const config = (dir: string) => ({
      optimizer: { type: 'sgd' as const, momentum: 0.9 },
      stages: [{ name: 'all', epochs: 4, train: 'all', lr: 0.08 }],
      scheduler: { type: 'plateau' as const, monitor: 'trainLoss' as const, factor: 0.5, patience: 0, threshold: 1 },
      logEvery: 1,
      checkpointDir: dir,
    });
    const data = colourData(48);
    manualSeed(3);
    const straight = await new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), config(path.join(tmp, 'plateau-a'))).fit(data, null, { batchSize: 16, seed: 2 });
    expect(straight.epochs.map((r) => r.lr.head)).toEqual([0.08, 0.08, 0.04, 0.02]);
    // Stopped in epoch 3, resumed: the halving so far comes from the checkpoint.
    manualSeed(3);
    const controller = new AbortController();
    const err = await rejection(
      new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), config(path.join(tmp, 'plateau-b'))).fit(data, null, {
        batchSize: 16, seed: 2, signal: controller.signal, onBatch: (e) => e.epoch === 3 && e.batch === 1 && controller.abort(),
      }),
    );
    const resumed = await new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), config(path.join(tmp, 'plateau-b'))).fit(data, null, { batchSize: 16, resume: (err as Error & { checkpoint: string }).checkpoint });
    expect(resumed.epochs.map((r) => r.lr.head)).toEqual([0.08, 0.08, 0.04, 0.02]);
    expect(resumed.epochs.map((r) => r.trainLoss)).toEqual(straight.epochs.map((r) => r.trainLoss));
    // Monitoring the test loss needs a test set.
    const blind = new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), { stages: [{ name: 'all', epochs: 1, train: 'all', lr: 1e-3 }], scheduler: { type: 'plateau' } });
    expect((await rejection(blind.fit(data, null, { batchSize: 16 }))).message).toMatch(/reduces its rates on plateaus of testLoss, which needs a test set/);
    expect(() => new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), { stages: [{ name: 'all', epochs: 1, train: 'all', lr: 1e-3 }], scheduler: { type: 'plateau', factor: 1 } })).toThrow(/factor must be in \(0, 1\), got 1/);
  }, 120_000);

  it('resumes after an abort to the same final weights as an uninterrupted run', async () => {
    const config = (dir: string) => ({
      optimizer: { type: 'adam' as const },
      stages: [
        { name: 'head', epochs: 1, train: ['head', 'attention'], lr: 1e-3 },
        { name: 'all', epochs: 2, train: 'all', lr: 5e-4 },
      ],
      scheduler: { type: 'step' as const, stepSize: 1, gamma: 0.5 },
      logEvery: 1,
      checkpointDir: dir,
    });
    const data = colourData(64);
    manualSeed(5);
    const straight = new CBAMCNN({ numClasses: 3 });
    const full = await new StagedFineTuner(straight, config(path.join(tmp, 'a'))).fit(data, null, { batchSize: 16, seed: 11 });

    manualSeed(5);
    const interrupted = new CBAMCNN({ numClasses: 3 });
    const controller = new AbortController();
    const err = await rejection(
      new StagedFineTuner(interrupted, config(path.join(tmp, 'b'))).fit(data, null, {
        batchSize: 16,
        seed: 11,
        signal: controller.signal,
        onBatch: (e) => e.epoch === 2 && e.batch === 2 && controller.abort(),
      }),
    );
    expect(err.name).toBe('AbortError');
    const checkpoint = (err as Error & { checkpoint?: string }).checkpoint!;
    expect(checkpoint).toBe(path.join(tmp, 'b', 'last.pth'));

    manualSeed(99); // a different initialisation: everything comes from the checkpoint
    const resumed = new CBAMCNN({ numClasses: 3 });
    const rest = await new StagedFineTuner(resumed, config(path.join(tmp, 'b'))).fit(data, null, { batchSize: 16, resume: checkpoint });
    expect(rest.epochs.map((r: EpochRecord) => r.epoch)).toEqual([1, 2, 3]);
    expect(rest.epochs.map((r) => r.trainLoss)).toEqual(full.epochs.map((r) => r.trainLoss));
    expect(same(snapshot(resumed, /./), snapshot(straight, /./))).toBe(true);
    // The checkpoint's model part is a plain state dict under model_state_dict.
    const loaded = new CBAMCNN({ numClasses: 3 });
    await loaded.loadStateDict(path.join(tmp, 'a', 'last.pth'), { strict: true });
    expect(same(snapshot(loaded, /./), snapshot(straight, /./))).toBe(true);
  }, 120_000);

  it('NAM sparsity shrinks the |gamma| scaling factors', async () => {
    const data = colourData(32, 16);
    const gammaSum = (m: Model) =>
      (m as ResNetNAM).namScalingFactors().reduce((sum, name) => sum + [...m.stateDict()[name].toFloat32Array()].reduce((a, v) => a + Math.abs(v), 0), 0);
    const run = async (lambda: number) => {
      manualSeed(4);
      const model = new ResNetNAM({ depth: 18, numClasses: 3, stem: 'cifar' });
      await new StagedFineTuner(model, { stages: [{ name: 'nam', epochs: 2, train: ['attention', 'head'], lr: 1e-2 }], namSparsity: lambda, logEvery: 0 }).fit(data, null, { batchSize: 8, seed: 1 });
      return gammaSum(model);
    };
    const plain = await run(0);
    const sparse = await run(0.05);
    expect(sparse).toBeLessThan(plain * 0.95);
  }, 120_000);

  it('refuses bad configurations, naming the field', () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const stage = { name: 's', epochs: 1, train: 'all', lr: 1e-3 };
    expect(thrown(() => new StagedFineTuner(model, { stages: [] })).message).toMatch(/options.stages/);
    expect(thrown(() => new StagedFineTuner(model, { stages: [{ ...stage, epochs: 0 }] })).message).toMatch(/stages\[0\].epochs must be at least 1/);
    expect(thrown(() => new StagedFineTuner(model, { stages: [{ ...stage, train: ['layer9'] }] })).message).toMatch(/'layer9' is neither a group/);
    expect(thrown(() => new StagedFineTuner(model, { stages: [{ ...stage, lr: -1 }] })).message).toMatch(/stages\[0\].lr must be a non-negative number/);
    expect(thrown(() => new StagedFineTuner(model, { stages: [stage], optimizer: { type: 'rmsprop' as never } })).message).toMatch(/'sgd', 'adam', 'adamw'/);
    expect(thrown(() => new StagedFineTuner(model, { stages: [stage], scheduler: { type: 'step' } as never })).message).toMatch(/stepLR\(stepSize\)/);
    expect(thrown(() => new StagedFineTuner(model, { stages: [stage], lossFn: 1 } as never)).message).toMatch(/Unknown option 'lossFn'/);
  });

  it('fit() refuses a signal that is not an AbortSignal before it starts', async () => {
    const tuner = new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), { stages: [{ name: 's', epochs: 1, train: 'all', lr: 1e-3 }] });
    for (const signal of [5, {}, { aborted: true }]) {
      expect((await rejection(tuner.fit(colourData(8), null, { batchSize: 4, signal: signal as never }))).message).toMatch(/Expected an AbortSignal \(AbortController.signal, AbortSignal.timeout\(ms\)\) for fit\(\) options.signal/);
    }
  });

  it('a stage whose per-group rates miss a training group is refused when fit starts', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const tuner = new StagedFineTuner(model, { stages: [{ name: 's', epochs: 1, train: ['head', 'block3'], lr: { head: 1e-3 } }] });
    expect((await rejection(tuner.fit(colourData(16), null, { batchSize: 8 }))).message).toMatch(/lr has no rate for the group 'block3'; add a key for it or 'default'/);
  });

  it('keeps the model busy while it trains and rejects a second job clearly', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const tuner = new StagedFineTuner(model, { stages: [{ name: 's', epochs: 1, train: 'all', lr: 1e-3 }], logEvery: 0 });
    const running = tuner.fit(colourData(64), null, { batchSize: 8 });
    await new Promise((r) => setTimeout(r, 50));
    expect((await rejection(tuner.fit(colourData(16), null, { batchSize: 8 }))).code).toBe(ErrorCode.BUSY);
    expect(thrown(() => model.train()).code).toBe(ErrorCode.BUSY);
    expect((await rejection(evaluate(model, colourData(8)))).code).toBe(ErrorCode.BUSY);
    await running;
    expect((await evaluate(model, colourData(8))).count).toBe(8);
  }, 60_000);

  it('a listener that throws stops the run and fit() rejects with its error', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const tuner = new StagedFineTuner(model, { stages: [{ name: 's', epochs: 20, train: 'all', lr: 1e-3 }], logEvery: 1 });
    const seen: number[] = [];
    const epochs: number[] = [];
    const err = await rejection(
      tuner.fit(colourData(64), null, {
        batchSize: 16,
        onBatch: (e) => {
          seen.push(e.batch);
          if (seen.length === 2) throw new Error('listener failed');
        },
        onEpoch: (r) => epochs.push(r.epoch),
      }),
    );
    expect(err.message).toBe('listener failed');
    expect(seen).toEqual([1, 2]); // no listener runs after the error
    expect(epochs.length).toBeLessThanOrEqual(1); // cancelled at the next batch boundary, not after 20 epochs
    expect((await evaluate(model, colourData(8))).count).toBe(8); // and the model is free again
  }, 60_000);

  it('while a stage starts the model can be read, not used for work', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const tuner = new StagedFineTuner(model, { stages: [{ name: 'head', epochs: 1, train: 'head', lr: 1e-3 }], logEvery: 0 });
    let groups: Record<string, string> | undefined;
    let code: string | undefined;
    await tuner.fit(colourData(32), null, {
      batchSize: 16,
      onStage: () => {
        groups = model.trainableGroups();
        code = thrown(() => model.train()).code;
      },
    });
    expect(groups).toMatchObject({ head: 'trainable', block1: 'frozen', attention: 'frozen' });
    expect(code).toBe(ErrorCode.BUSY);
  }, 60_000);

  it('checkpoint writes never follow a planted link, and a killed writer\'s temporaries are cleaned (hardening classes 21, 22)', async () => {
    const dir = path.join(tmp, 'planted');
    fs.mkdirSync(dir);
    const victim = path.join(tmp, 'victim.txt');
    fs.writeFileSync(victim, 'precious');
    // The names the writer used to use, and one a kill -9 left behind.
    fs.symlinkSync(victim, path.join(dir, `last.pth.tmp-${process.pid}`));
    fs.writeFileSync(path.join(dir, 'last.pth.tmp-a1B2c3'), 'half a checkpoint');
    const model = new CBAMCNN({ numClasses: 3 });
    await new StagedFineTuner(model, { stages: [{ name: 's', epochs: 1, train: 'all', lr: 1e-3 }], checkpointDir: dir, logEvery: 0 }).fit(colourData(32), null, { batchSize: 16 });
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(fs.existsSync(path.join(dir, 'last.pth.tmp-a1B2c3'))).toBe(false);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-') && !n.endsWith(String(process.pid)))).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'last.pth'))).toBe(true);
  }, 60_000);

  it('a million epochs do not build a gigabyte learning-rate table (hardening class 14)', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const tuner = new StagedFineTuner(model, { stages: [{ name: 's', epochs: 1_000_000, train: 'all', lr: 1e-3 }], scheduler: { type: 'cosine' }, logEvery: 1 });
    const controller = new AbortController();
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    let heapAtFirstBatch = 0;
    const started = Date.now();
    const err = await rejection(
      tuner.fit(colourData(32), null, {
        batchSize: 16,
        signal: controller.signal,
        onBatch: () => {
          heapAtFirstBatch = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
          controller.abort();
        },
      }),
    );
    expect(err.name).toBe('AbortError');
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(heapAtFirstBatch - heapBefore).toBeLessThan(200 * 2 ** 20); // the per-step table was 1.4 GB
    // Per step, the table is bounded with a message that says what to do.
    const perStep = new StagedFineTuner(model, { stages: [{ name: 's', epochs: 1_000_000, train: 'all', lr: 1e-3 }], scheduler: { type: 'cosine', unit: 'step' } });
    expect((await rejection(perStep.fit(colourData(32), null, { batchSize: 2 }))).message).toMatch(/use unit 'epoch' or fewer epochs/);
  }, 60_000);

  it('an already-aborted signal rejects before anything runs', async () => {
    const controller = new AbortController();
    controller.abort();
    const model = new CBAMCNN({ numClasses: 3 });
    const err = await rejection(new StagedFineTuner(model, { stages: [{ name: 's', epochs: 1, train: 'all', lr: 1e-3 }] }).fit(colourData(8), null, { signal: controller.signal }));
    expect(err.name).toBe('AbortError');
  });
});

describe('classMetrics', () => {
  it('precision, recall and F1 per class, checked by hand', () => {
    // true\\pred: a b c
    const confusion = [
      [5, 1, 0],
      [2, 3, 1],
      [0, 0, 0],
    ];
    const m = classMetrics(confusion, ['a', 'b', 'c']);
    expect(m[0]).toEqual({ class: 'a', precision: 5 / 7, recall: 5 / 6, f1: (2 * (5 / 7) * (5 / 6)) / (5 / 7 + 5 / 6), support: 6 });
    expect(m[1].precision).toBe(3 / 4);
    expect(m[1].recall).toBe(3 / 6);
    expect(m[2]).toEqual({ class: 'c', precision: 0, recall: 0, f1: 0, support: 0 });
  });
});
