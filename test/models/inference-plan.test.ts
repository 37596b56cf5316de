// Inference plans: eval-mode calls run folded, prepacked, fused convolutions; outputs stay within
// 1e-4 of the modules' own forward passes; a plan never serves stale weights (training steps,
// loads, mode switches, layout changes); plans cost at most their weights in memory.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CBAM,
  CBAMCNN,
  ResNetCBAM,
  ResNetNAM,
  buildInfo,
  datasets,
  evaluate,
  manualSeed,
  optim,
  randn,
  resnet,
  tensor,
  transforms,
  vgg,
  type Model,
  type Tensor,
} from '../../lib/index';
import { cpuHasAvx512BwVl, rejection, sanitized, withEnv } from '../helpers';

// Plans need LibTorch's oneDNN 2.x (Debian 12's LibTorch 1.13; see buildInfo().inferencePlans).
const hasPlans = buildInfo().inferencePlans;

/** The bytes of a model's float32 convolution weights (its 4-dimensional tensors). */
function convWeightBytes(m: Model): number {
  let bytes = 0;
  for (const t of Object.values(m.stateDict())) if (t.shape.length === 4) bytes += t.shape.reduce((a, b) => a * b, 1) * 4;
  return bytes;
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return d / scale;
}

/** Logits with plans, and with every module run eagerly, for the same input. */
function planned(model: Model, x: Tensor): { plan: Float32Array; eager: Float32Array } {
  model.inferencePlans = false;
  const eager = model.forward(x).toFloat32Array();
  model.inferencePlans = true;
  const plan = model.forward(x).toFloat32Array();
  return { plan, eager };
}

const labels = (n: number) => tensor(BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 10)), [n]);

describe('whether plans are used', () => {
  it('eval holds plans exactly when buildInfo().inferencePlans says so (not with oneDNN 3.x)', async () => {
    const m = new CBAMCNN({ numClasses: 10 }).eval();
    m.forward(randn([1, 3, 32, 32]));
    expect(m.inferencePlan().length).toBe(hasPlans ? 1 : 0);
    const prepared = await m.prepareInference({ shapes: [[2, 3, 32, 32]] });
    expect(prepared.map((p) => p.shape)).toEqual(hasPlans ? [[2, 3, 32, 32], [1, 3, 32, 32]] : []);
  });
});

/** The JSON that `script` (an ES module, torch-attn importable by path) prints last, run in a Node
 *  process of its own with `env` added. */
function scriptInChildProcess<T>(script: string, env: Record<string, string> = {}): T {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as T;
}

/** A model's plan against its eager modules in a process of its own, with `env` added (the
 *  switches are read once per process), in `precision`: the relative difference to the eager
 *  modules in that precision (`rel`) and in fp32 (`relFp32`), what plans run convolutions on, how
 *  many plans, and how many convolutions took Winograd; `meanRelFp32`, the mean absolute difference
 *  to fp32 relative to fp32's largest logit, sees differences that bf16's rounding of the logits
 *  hides from the largest one. ResNet18-CBAM unless `model` says
 *  'cbam-cnn', its BatchNorms given random statistics and affine parameters (folded, non-zero
 *  biases). */
function planInChildProcess(env: Record<string, string>, batch: number, options: { size?: number; precision?: 'fp32' | 'bf16'; model?: 'resnet18-cbam' | 'cbam-cnn' } = {}) {
  const { size = 32, precision = 'fp32', model = 'resnet18-cbam' } = options;
  const script = `
    const lib = await import(${JSON.stringify(path.resolve(__dirname, '../../lib/index.ts'))});
    const { ResNetCBAM, CBAMCNN, buildInfo, manualSeed, randn, tensor } = lib.default ?? lib;
    manualSeed(0);
    const m = (${JSON.stringify(model)} === 'cbam-cnn' ? new CBAMCNN({ numClasses: 10 }) : new ResNetCBAM({ depth: 18, numClasses: 10 })).eval();
    // BatchNorms as training leaves them (a fresh one folds into a zero bias and a scale of ~1).
    const weights = m.stateDict();
    for (const key of Object.keys(weights).filter((k) => k.endsWith('.running_mean') || k === 'running_mean')) {
      const bn = key.slice(0, -'running_mean'.length);
      const n = weights[key].shape[0];
      const noise = (scale, offset, abs) => tensor(randn([n]).toFloat32Array().map((v) => offset + scale * (abs ? Math.abs(v) : v)), [n]);
      Object.assign(weights, { [bn + 'running_mean']: noise(0.2, 0), [bn + 'running_var']: noise(0.5, 0.5, true), [bn + 'weight']: noise(0.5, 0.5, true), [bn + 'bias']: noise(0.2, 0) });
    }
    await m.loadStateDict(weights);
    const x = randn([${batch}, 3, ${size}, ${size}]);
    const scale = (b) => b.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
    const rel = (a, b) => a.reduce((d, v, i) => Math.max(d, Math.abs(v - b[i])), 0) / scale(b);
    const meanRel = (a, b) => a.reduce((d, v, i) => d + Math.abs(v - b[i]), 0) / a.length / scale(b);
    m.inferencePlans = false;
    const fp32 = (await m.predict(x)).toFloat32Array();
    const eager = (await m.predict(x, { precision: '${precision}' })).toFloat32Array();
    m.inferencePlans = true;
    const plan = (await m.predict(x, { precision: '${precision}' })).toFloat32Array();
    const plans = m.inferencePlan();
    console.log(JSON.stringify({ kind: buildInfo().planConvolutions, rel: rel(plan, eager), relFp32: rel(plan, fp32), meanRelFp32: meanRel(plan, fp32), plans: plans.length, winograd: plans[0].winogradConvolutions, winogradF4: plans[0].winogradF4Convolutions }));`;
  return scriptInChildProcess<{ kind: string; rel: number; relFp32: number; meanRelFp32: number; plans: number; winograd: number; winogradF4: number }>(script, env);
}

describe.runIf(hasPlans)('inference plans', () => {
  it.each([
    // name, model, convolutions, folded BatchNorms, fused ReLUs, residual blocks without attention inside
    ['ResNet18-CBAM (stage)', () => new ResNetCBAM({ depth: 18, numClasses: 10 }), 24, 20, 9, 8],
    ['ResNet50-NAM (block)', () => new ResNetNAM({ depth: 50, numClasses: 10 }), 53, 53, 33, 0],
    ['VGG11-BN-CBAM', () => vgg({ depth: 11, numClasses: 10 }), 13, 8, 8, 0],
    ['CBAM-CNN', () => new CBAMCNN({ numClasses: 10 }), 6, 3, 3, 0],
    ['ResNet18 without attention, ImageNet stem', () => resnet({ depth: 18, numClasses: 10, attention: 'none', stem: 'imagenet' }), 20, 20, 9, 8],
  ])('%s: eval forward runs the plan (folded, fused; CBAM spatial convolutions prepared too) within 1e-4 of the eager modules', (_name, make, convs, folded, relus, blocks) => {
    manualSeed(0);
    const m = make().eval();
    const x = randn([2, 3, 32, 32]);
    const { plan, eager } = planned(m, x);
    expect(relDiff(plan, eager)).toBeLessThan(1e-4);
    const [info] = m.inferencePlan();
    // On oneDNN's API each such block's last convolution also adds the identity, and its ReLU is
    // fused with it (none of them is a matrix-product candidate at this size).
    const residual = buildInfo().planConvolutions === 'onednn' ? blocks : 0;
    expect(info).toMatchObject({
      shape: [2, 3, 32, 32],
      precision: 'fp32',
      convolutions: convs,
      foldedBatchNorms: folded,
      fusedRelus: relus + residual,
      fusedResidualAdds: residual,
    });
    expect(info.weightBytes).toBeGreaterThan(0);
    expect(info.uses).toBe(1);
  });

  it('convolutions with large weights over many output positions run as one matrix product (im2col), within 1e-4 of the eager modules', () => {
    manualSeed(0);
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    m.planTuning = false;  // every candidate takes the product
    // Batch 2: layer4's 3 x 3 convolutions (9.4 MB weights) see 2 x 4 x 4 = 32 positions, too few;
    // only the three strided 1 x 1 shortcuts take the product.
    const small = planned(m, randn([2, 3, 32, 32]));
    expect(relDiff(small.plan, small.eager)).toBeLessThan(1e-4);
    expect(m.inferencePlan()[0].gemmConvolutions).toBe(3);
    // Batch 8: 128 positions; layer4's four 3 x 3 convolutions (4.7 and 9.4 MB) join them.
    for (const x of [randn([8, 3, 32, 32]), tensor(randn([8, 3, 32, 32]).toFloat32Array().map((v) => 10 * v), [8, 3, 32, 32])]) {
      const { plan, eager } = planned(m, x);
      expect(relDiff(plan, eager)).toBeLessThan(1e-4);
    }
    expect(m.inferencePlan().find((p) => p.shape[0] === 8)).toMatchObject({ convolutions: 24, gemmConvolutions: 7 });
  });

  it('planTuning (the default): each candidate takes the form it measured faster; fp32 within 1e-4 of the eager modules either way; off, the product again', async () => {
    manualSeed(0);
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    expect(m.planTuning).toBe(true);
    const x = randn([8, 3, 32, 32]);
    for (const precision of ['fp32', 'bf16'] as const) {
      m.inferencePlans = false;
      const eager = (await m.predict(x, { precision })).toFloat32Array();
      m.inferencePlans = true;
      const y = (await m.predict(x, { precision })).toFloat32Array();
      expect(relDiff(y, eager)).toBeLessThan(precision === 'fp32' ? 1e-4 : 5e-2);
      // Batch 8: the fixed rule's 7 candidates (above), each in either form now.
      const plan = m.inferencePlan().find((p) => p.precision === precision)!;
      expect(plan.gemmConvolutions).toBeGreaterThanOrEqual(0);
      expect(plan.gemmConvolutions).toBeLessThanOrEqual(7);
      expect((await m.predict(x, { precision })).toFloat32Array()).toEqual(y);
    }
    m.planTuning = false;
    expect(m.inferencePlan()).toEqual([]);
    await m.predict(x);
    expect(m.inferencePlan()[0].gemmConvolutions).toBe(7);
    expect(() => {
      (m as unknown as { planTuning: unknown }).planTuning = 'yes';
    }).toThrow(/Expected a boolean for planTuning/);
  });

  it('training mode and gradients never use plans; summary traces the eager modules', () => {
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 });
    m.train();
    m.forward(randn([2, 3, 32, 32]));
    expect(m.inferencePlan()).toEqual([]);
    expect(m.summary([1, 3, 32, 32]).length).toBeGreaterThan(5);
    expect(m.inferencePlan()).toEqual([]);
  });

  it('never serves stale weights: after a training step, a load, a mode switch and a layout change it matches the unprepared model', async () => {
    manualSeed(0);
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    // The reference: the same weights, copied over after every change, run without plans.
    const ref = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    ref.inferencePlans = false;
    const x = randn([4, 3, 32, 32]);
    const check = async () => {
      await ref.loadStateDict(m.stateDict());
      const eager = ref.forward(x).toFloat32Array();
      const plan = m.forward(x).toFloat32Array();
      expect(relDiff(plan, eager)).toBeLessThan(1e-4);
      expect(relDiff((await m.predict(x)).toFloat32Array(), eager)).toBeLessThan(1e-4);
      return plan;
    };
    const before = await check();
    expect(m.inferencePlan()[0].uses).toBe(2);
    // A training step (SGD, large steps): the plan made before must not answer.
    const opt = optim.sgd(m, [{ params: 'all' }], { lr: 0.5 });
    m.train();
    await m.trainStep(opt, randn([8, 3, 32, 32]), labels(8));
    m.eval();
    expect(relDiff(await check(), before)).toBeGreaterThan(1e-2);
    // A state dict loaded from another model.
    manualSeed(7);
    await m.loadStateDict(new ResNetCBAM({ depth: 18, numClasses: 10 }).stateDict());
    await check();
    // BatchNorm statistics moved by a training-mode forward pass (no optimizer, no version bump).
    m.train();
    m.forward(randn([8, 3, 32, 32]));
    m.eval();
    await check();
    // Channels-last weights.
    m.to({ memoryFormat: 'channels-last' });
    await check();
    // One plan per shape; stale ones are replaced, not kept.
    expect(m.inferencePlan().map((i) => i.shape)).toEqual([[4, 3, 32, 32]]);
  });

  it('plans are kept for the 8 shapes used last; a predictor keeps them for every batch size it forms', async () => {
    manualSeed(0);
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    const sizes = Array.from({ length: 12 }, (_, i) => i + 1);
    const all = async () => {
      for (const b of sizes) (await m.predict(randn([b, 3, 32, 32]))).dispose();
    };
    await all();
    expect(m.inferencePlan().map((p) => p.shape[0])).toEqual([12, 11, 10, 9, 8, 7, 6, 5]);
    m.predictor({ maxBatch: 4 });
    await all();
    expect(m.inferencePlan().length).toBe(12);  // 8 + 4
    m.predictor({ maxBatch: 2 });  // never fewer than asked before
    await all();
    expect(m.inferencePlan().length).toBe(12);
    // None made again: each served the last two rounds at least.
    expect(m.inferencePlan().map((p) => p.uses).every((uses) => uses >= 2)).toBe(true);
  });

  it('prepareInference makes plans ahead, per shape and precision; bad shapes are refused clearly', async () => {
    manualSeed(0);
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    const plans = await m.prepareInference({ shapes: [[1, 3, 32, 32], [8, 3, 32, 32]], precision: 'bf16' });
    expect(plans.map((p) => [p.shape, p.precision])).toEqual([
      [[8, 3, 32, 32], 'bf16'],
      [[1, 3, 32, 32], 'bf16'],
    ]);
    // What they read: the plain bf16 convolution weights (oneDNN may pad a few channels), plus
    // what Winograd's transformed ones add (16/9 of the plain), more at batch 8 (layer4's 32 tiles).
    const plain = convWeightBytes(m) / 2;
    for (const p of plans) {
      expect(p.weightBytes).toBeGreaterThanOrEqual(plain);
      expect(p.weightBytes).toBeLessThan(plain * (16 / 9) * 1.01);
    }
    expect(Math.sign(plans[0].weightBytes - plans[1].weightBytes)).toBe(Math.sign(plans[0].winogradConvolutions - plans[1].winogradConvolutions));
    const x = randn([8, 3, 32, 32]);
    const bf16 = (await m.predict(x, { precision: 'bf16' })).toFloat32Array();
    expect(m.inferencePlan()[0].uses).toBe(2);
    const fp32 = planned(m, x).eager;
    expect(relDiff(bf16, fp32)).toBeLessThan(5e-2);
    expect((await rejection(m.prepareInference({ shapes: [[3, 32, 32]] }))).message).toMatch(/must be \[batch, channels, height, width\], got 3 dimensions/);
    expect((await rejection(m.prepareInference({ shapes: [[1, 4, 32, 32]] }))).message).toMatch(/expects 3 input channels, got 4/);
    expect((await rejection(m.prepareInference({ shapes: 'x' as never }))).name).toBe('TypeError');
    expect((await m.prepareInference()).some((p) => p.shape.join() === '1,3,32,32' && p.precision === 'fp32')).toBe(true);
  });

  it.skipIf(sanitized)('memory: plans for 3 more shapes share the prepared weights (together they add less than one copy of them a plan); 2,000 batch-1 predictions keep RSS flat', () => {
    // In a process of its own: RSS after this file's earlier tests (their models, freed or not
    // yet collected, and the allocator's state they leave) moved the difference by ~100 MB when
    // the other core was busy, where a fresh process stayed within 50 MB.
    const script = `
      const lib = await import(${JSON.stringify(path.resolve(__dirname, '../../lib/index.ts'))});
      const { ResNetCBAM, manualSeed, randn } = lib.default ?? lib;
      manualSeed(0);
      const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
      let weights = 0;
      for (const t of Object.values(m.stateDict())) if (t.shape.length === 4) weights += t.shape.reduce((a, b) => a * b, 1) * 4;
      const x1 = randn([1, 3, 32, 32]);
      for (let i = 0; i < 20; i++) (await m.predict(x1)).dispose();
      const before = process.memoryUsage().rss;
      const plans = await m.prepareInference({ shapes: [[2, 3, 32, 32], [4, 3, 32, 32], [16, 3, 32, 32]] });
      const grown = process.memoryUsage().rss - before;
      for (let i = 0; i < 200; i++) (await m.predict(x1)).dispose();
      const start = process.memoryUsage().rss;
      for (let i = 0; i < 2000; i++) (await m.predict(x1)).dispose();
      const flat = process.memoryUsage().rss - start;
      console.log(JSON.stringify({ weights, grown, flat, gemm16: plans.find((p) => p.shape[0] === 16)?.gemmConvolutions }));`;
    const out = scriptInChildProcess<{ weights: number; grown: number; flat: number; gemm16: number }>(script);
    // Plans share the folded and prepacked weights (44.6 MB for ResNet18-CBAM) across batch sizes:
    // batch 4 and 16 add the Winograd weights of layouts no other plan has (at most 3 copies of
    // the model's convolution weights per plan; here ~111 MB in all, most of it batch 16's F(4x4)
    // for layer3-4) and layer4's matrix-product form (9.4 MB a convolution) only where it timed
    // clearly faster (kGemmMaxTimeShare: on near-ties this test had failed one run in four, with
    // two or three of them taken, 128.6-137.6 MB), batch 2 nothing; the warm-up passes'
    // activations are not kept. The issue's bound: no more than the weights' size per plan, for
    // the three together.
    expect(out.gemm16).toBeLessThanOrEqual(7);
    expect(out.grown).toBeLessThan(3 * out.weights);
    expect(out.flat).toBeLessThan(16 * 2 ** 20);
  }, 120_000);

  it.each([
    ['default layout', {}],
    ["the original code's layout (max-mean, spatial BatchNorm, MLP biases)", { spatialPoolOrder: 'max-mean', spatialNorm: 'bn', mlpBias: true }],
    ['channel attention only', { spatial: false }],
    ['a 3 x 3 spatial convolution, ratio 4', { kernelSize: 3, ratio: 4 }],
  ] as const)('CBAM under a plan (%s) matches the eager module, channel counts with and without a remainder of 16', (_name, options) => {
    for (const channels of [24, 64, 20]) {
      manualSeed(1);
      const m = new CBAM({ channels, ...options }).eval();
      const x = randn([3, channels, 9, 7]);
      const { plan, eager } = planned(m, x);
      expect(m.inferencePlan()).toHaveLength(1);
      expect(relDiff(plan, eager)).toBeLessThan(1e-5);
    }
  });

  it('CBAM under a plan propagates NaN and infinities as the eager module does', () => {
    manualSeed(2);
    const m = new CBAM({ channels: 32 }).eval();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const values = randn([1, 32, 6, 6]).toFloat32Array();
      values[5 * 32 + 3] = bad;
      const { plan, eager } = planned(m, tensor(values, [1, 32, 6, 6]));
      expect(Array.from(plan, Number.isNaN)).toEqual(Array.from(eager, Number.isNaN));
      plan.forEach((v, i) => {
        if (Number.isFinite(eager[i])) expect(Math.abs(v - eager[i])).toBeLessThan(1e-5 * (1 + Math.abs(eager[i])));
        else expect(v).toBe(eager[i]);
      });
    }
  });

  it.runIf(buildInfo().nativePrecisions.cpu.includes('bf16'))(
    "bf16: CBAM's three passes on bf16 activations give LibTorch's ops' results (TORCH_ATTN_CBAM_KERNELS=0) within 1e-3",
    async () => {
      const viaOps = <T>(fn: () => Promise<T>) => withEnv('TORCH_ATTN_CBAM_KERNELS', '0', fn); // read on every call
      for (const make of [() => new ResNetCBAM({ depth: 18, numClasses: 10 }), () => new CBAMCNN({ numClasses: 10 })]) {
        manualSeed(1);
        const m = make().eval();
        const x = randn([3, 3, 32, 32]);
        const kernels = (await m.predict(x, { precision: 'bf16' })).toFloat32Array();
        expect(m.inferencePlan().map((p) => p.precision)).toEqual(['bf16']);
        const ops = (await viaOps(() => m.predict(x, { precision: 'bf16' }))).toFloat32Array();
        expect(relDiff(kernels, ops)).toBeLessThan(1e-3);
      }
    },
  );

  it.runIf(buildInfo().nativePrecisions.cpu.includes('bf16'))(
    "bf16: CBAM alone under a plan rounds as autocast's ops do (the MLP's layers, their sum, the sigmoid): LibTorch's ops' values but for a rare one bfloat16 step (sum order)",
    async () => {
      // Measured: no value differs; without the MLP's bfloat16 roundings every one did (up to 1.4%).
      for (const [channels, mlpBias] of [[64, true], [256, false], [24, true]] as const) {
        manualSeed(1);
        const m = new CBAM({ channels, mlpBias }).eval();
        const x = randn([3, channels, 9, 7]);
        const kernels = (await m.predict(x, { precision: 'bf16' })).toFloat32Array();
        expect(m.inferencePlan().map((p) => p.precision)).toEqual(['bf16']);
        const ops = (await withEnv('TORCH_ATTN_CBAM_KERNELS', '0', () => m.predict(x, { precision: 'bf16' }))).toFloat32Array();
        let differ = 0;
        kernels.forEach((v, i) => {
          if (v === ops[i]) return;
          differ++;
          expect(Math.abs(v - ops[i])).toBeLessThanOrEqual(2 ** -7 * Math.abs(ops[i]));
        });
        expect(differ).toBeLessThanOrEqual(kernels.length / 100);
      }
    },
  );

  it('a NaN or an infinity in the input, the weights or the folded weights runs eagerly: the logits are non-finite where the modules\' are, never finite (fp32 and bf16)', async () => {
    // oneDNN's fused ReLU is a maximum with 0, which turns NaN into 0: planned, one NaN pixel gave
    // finite logits where the modules (and PyTorch) give NaN.
    const precisions = buildInfo().nativePrecisions.cpu.includes('bf16') ? (['fp32', 'bf16'] as const) : (['fp32'] as const);
    const compare = async (m: Model, x: Tensor, precision: 'fp32' | 'bf16') => {
      const plan = (await m.predict(x, { precision })).toFloat32Array();
      m.inferencePlans = false;
      const eager = (await m.predict(x, { precision })).toFloat32Array();
      m.inferencePlans = true;
      expect(Array.from(plan, Number.isFinite)).toEqual(Array.from(eager, Number.isFinite));
      return plan;
    };
    manualSeed(1);
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const values = randn([2, 3, 32, 32]).toFloat32Array();
      values[3 * 32 * 32 + 100] = bad; // one pixel of the second image
      for (const precision of precisions) {
        const plan = await compare(m, tensor(values, [2, 3, 32, 32]), precision);
        expect(plan.slice(10).some(Number.isFinite)).toBe(false);
        expect(plan.slice(0, 10).every(Number.isFinite)).toBe(true);
      }
    }
    const x = randn([2, 3, 32, 32]);
    expect((await m.predict(x)).toFloat32Array().every(Number.isFinite)).toBe(true);
    expect(m.inferencePlan().length).toBeGreaterThan(0); // finite calls still take plans
    const weights = m.stateDict();
    const changed = (name: string, index: number, value: number) => {
      const w = weights[name].toFloat32Array();
      w[index] = value;
      return { ...weights, [name]: tensor(w, weights[name].shape) };
    };
    // A NaN weight; then finite weights that fold into non-finite ones (a BatchNorm's running
    // variance below -eps: its scale 1 / sqrt(var + eps) is NaN, eagerly too).
    for (const bad of [changed('backbone.layer2.0.conv1.weight', 17, Number.NaN), changed('backbone.layer2.0.bn1.running_var', 3, -1)]) {
      await m.loadStateDict(bad);
      for (const precision of precisions) expect((await compare(m, x, precision)).some(Number.isFinite)).toBe(false);
    }
    await m.loadStateDict(weights); // finite again: plans again
    expect((await m.predict(x)).toFloat32Array().every(Number.isFinite)).toBe(true);
    expect(m.inferencePlan().filter((p) => p.precision === 'fp32' && p.uses > 0)).toHaveLength(1);
  });

  it("buildInfo().planConvolutions says what plans run convolutions on; LibTorch's prepacked ops (TORCH_ATTN_DIRECT_ONEDNN=0) give the same results", () => {
    expect(['onednn', 'prepacked']).toContain(buildInfo().planConvolutions);
    const out = planInChildProcess({ TORCH_ATTN_DIRECT_ONEDNN: '0' }, 2);
    expect(out).toMatchObject({ kind: 'prepacked', plans: 1 });
    expect(out.rel).toBeLessThan(1e-4);
  }, 60_000);

  it('fp32 3 x 3 convolutions of stride 1 run by Winograd on AVX-512 where the input gives 32 tiles or more, F(4x4, 3x3) where it gives 64 4 x 4 tiles (32 with 256 input channels) and has at most 256 x 256 channels, or 16 with more (weights-stationary) (batch 1: layer1 F(4x4), layer2 F(2x2); batch 8: layer1-3 F(4x4), layer4 F(2x2); batch 16, a plan made alone too: all by F(4x4), within the weight budget), within 1e-4 of the eager modules; not with TORCH_ATTN_WINOGRAD=0', async () => {
    manualSeed(0);
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    const x = randn([8, 3, 32, 32]);
    const { plan, eager } = planned(m, x);
    expect(relDiff(plan, eager)).toBeLessThan(1e-4);
    const [info] = m.inferencePlan();
    const kernel = buildInfo().planConvolutions === 'onednn' && cpuHasAvx512BwVl();
    // 13 such convolutions (4 + 3 + 3 + 3 in the blocks; the strided and 1 x 1 ones are not). At
    // batch 8, 4 x 4 tiles: layer1 512, layer2 128, layer3 32, layer4 8 (F(2x2): 32); F(4x4) from
    // 64 tiles up to 256 x 256 channels (from 32 with 256 input channels: layer3 from batch 8),
    // from 16 above (layer4 from batch 16, weights-stationary).
    // What the transformed weights add (F(4x4): 3x the plain; F(2x2): 7/9) must fit the plan's
    // budget, 3 copies of the model's convolution weights (133.8 MB): layer1-3's F(4x4) (28.3 MB)
    // and layer4's F(2x2) (7.3 MB each) do (50.3 MB).
    if (kernel) expect([info.winogradConvolutions, info.winogradF4Convolutions]).toEqual([13, 10]);
    if (buildInfo().planConvolutions !== 'onednn') expect([info.winogradConvolutions, info.winogradF4Convolutions]).toEqual([0, 0]);
    expect(info.winogradConvolutions).toBeLessThanOrEqual(13);
    // Batch 1: layer1's 64 4 x 4 tiles (F(4x4)) and layer2's 64 2 x 2 ones, not layer3's 16 or layer4's 4.
    const one = planned(m, randn([1, 3, 32, 32]));
    expect(relDiff(one.plan, one.eager)).toBeLessThan(1e-4);
    const onePlan = m.inferencePlan().find((p) => p.shape[0] === 1)!;
    if (kernel) expect([onePlan.winogradConvolutions, onePlan.winogradF4Convolutions]).toEqual([7, 4]);
    // Batch 16, a plan made alone (nothing lent): layer1-3's F(4x4) (28.3 MB) and layer4's (84.9
    // MB) fit 3 copies (113.2 MB in all); 1.25 copies held layer4 by F(2x2) only.
    const alone = planInChildProcess({}, 16);
    if (kernel) expect([alone.winograd, alone.winogradF4]).toEqual([13, 13]);
    expect(alone.rel).toBeLessThan(1e-4);
    const out = planInChildProcess({ TORCH_ATTN_WINOGRAD: '0' }, 8);
    expect(out.winograd).toBe(0);
    expect(out.rel).toBeLessThan(1e-4);
  }, 60_000);

  it.runIf(buildInfo().planConvolutions === 'onednn' && buildInfo().nativePrecisions.cpu.includes('bf16'))(
    'bf16 3 x 3 convolutions of stride 1 run by Winograd F(2x2, 3x3) where the input gives 32 tiles or more (batch 2: layer1-3), within 2x the distance to fp32 of the direct bf16 plan (TORCH_ATTN_WINOGRAD=0); odd sizes, 32 input channels',
    () => {
      for (const [batch, size, model, winograd] of [
        [8, 33, 'resnet18-cbam', 13], // every stage (17 x 17, 9 x 9, 5 x 5: odd edges; layer4's 72 tiles)
        [2, 32, 'resnet18-cbam', 10], // layer1-3 (layer3's 32 tiles); layer4's 8 tiles not
        [16, 32, 'cbam-cnn', 2], // conv2 and conv3 (32 -> 64, 64 -> 128 channels); conv1's 3 input channels not
      ] as const) {
        const on = planInChildProcess({}, batch, { size, precision: 'bf16', model });
        const off = planInChildProcess({ TORCH_ATTN_WINOGRAD: '0' }, batch, { size, precision: 'bf16', model });
        expect([on.winograd, off.winograd, on.winogradF4]).toEqual([winograd, 0, 0]); // F(4x4) is float32's only
        // Per convolution, Winograd's mean distance to fp32 is ~2.5x the direct form's (its two
        // extra roundings, README); through a network the other layers' roundings dilute it. The
        // kernel's own arithmetic is held to the last bit by winograd.test.ts.
        expect(on.relFp32).toBeLessThan(2e-2);
        expect(on.meanRelFp32).toBeLessThan(2 * off.meanRelFp32);
      }
    },
    180_000,
  );

  it.runIf(buildInfo().planConvolutions === 'onednn' && !buildInfo().nativePrecisions.cpu.includes('bf16'))('bf16 plans take no Winograd on a CPU without AVX-512 BF16', async () => {
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    await m.predict(randn([8, 3, 32, 32]), { precision: 'bf16' });
    for (const p of m.inferencePlan().filter((q) => q.precision === 'bf16')) expect(p.winogradConvolutions).toBe(0);
  });

  it('inferencePlans = false runs eagerly and drops the plans', () => {
    const m = new CBAMCNN({ numClasses: 10 }).eval();
    m.forward(randn([1, 3, 32, 32]));
    expect(m.inferencePlan().length).toBe(1);
    m.inferencePlans = false;
    expect(m.inferencePlans).toBe(false);
    expect(m.inferencePlan()).toEqual([]);
    m.forward(randn([1, 3, 32, 32]));
    expect(m.inferencePlan()).toEqual([]);
    expect(() => {
      m.inferencePlans = 'yes' as never;
    }).toThrow(/Expected a boolean for inferencePlans/);
  });
});

const shared = path.resolve(__dirname, '../../../shared/data/cifar10-subset-bin');
describe.runIf(hasPlans && fs.existsSync(shared))('inference plans on real CIFAR-10 test images (../shared/data)', () => {
  it('fp32 plans give the eager top-1 on every image; bf16 plans agree with fp32 on at least 99.5%', async () => {
    manualSeed(0);
    const norm = [transforms.toTensor(), transforms.normalize([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616])];
    const test = await datasets.cifar10(shared, { train: false, transform: norm });
    const m = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    const top1 = async (plans: boolean, precision: 'fp32' | 'bf16') => {
      m.inferencePlans = plans;
      const ev = await evaluate(m, test, { batchSize: 64, probabilities: true, precision });
      const p = ev.probabilities!;
      return Array.from({ length: test.length }, (_, i) => {
        let best = 0;
        for (let c = 1; c < 10; c++) if (p[i * 10 + c] > p[i * 10 + best]) best = c;
        return best;
      });
    };
    const eager = await top1(false, 'fp32');
    const plan = await top1(true, 'fp32');
    expect(plan).toEqual(eager);
    const bf16 = await top1(true, 'bf16');
    const agree = bf16.filter((c, i) => c === plan[i]).length / plan.length;
    expect(agree).toBeGreaterThanOrEqual(0.995);
  }, 240_000);
});
