// CUDA, where a GPU and a CUDA build of the addon are present (scripts/gpu-check.sh builds one
// against the machine's PyTorch and runs this file); skipped everywhere else. Tensors to and
// from the device, every architecture's forward on CUDA against the CPU, a training step, and a
// short staged fit whose loader feeds the GPU, and a run served from the GPU.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CBAMCNN, ECA, ResNetCBAM, ResNetNAM, StagedFineTuner, cuda, manualSeed, optim, predictorFromRun, randn, resnet, tensor, vgg, type Model } from '../lib/index';
import { colourData } from './helpers';
import { makeRun } from './serving/helpers';

const available = cuda.isAvailable();

/** max |a - b| / max |b| */
function relative(a: Float32Array, b: Float32Array): number {
  let worst = 0, scale = 1e-12;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / scale;
}

describe.runIf(available)('CUDA', () => {
  it('tensors go to the device and back unchanged', () => {
    const x = randn([4, 3, 8, 8]);
    const y = x.to('cuda');
    expect(y.device).toBe('cuda:0');
    expect(Array.from(y.to('cpu').toFloat32Array())).toEqual(Array.from(x.toFloat32Array()));
  });

  const models: [string, () => Model][] = [
    ['CBAMCNN', () => new CBAMCNN({ numClasses: 10 })],
    ['ResNet18-CBAM', () => new ResNetCBAM({ depth: 18, numClasses: 10 })],
    ['ResNet50-NAM', () => new ResNetNAM({ depth: 50, numClasses: 100 })],
    ['ResNet18-SE (block)', () => resnet({ depth: 18, attention: 'se', placement: 'block' })],
    ['VGG16-BN-CBAM', () => vgg({ depth: 16 })],
    ['ECA', () => new ECA({ channels: 64 })],
  ];
  it.each(models)('%s: forward on CUDA matches the CPU (TF32 convolutions: 1e-2 relative)', (_, make) => {
    manualSeed(0);
    const model = make().eval();
    const x = randn(model.description === 'ECA' ? [2, 64, 16, 16] : [2, 3, 32, 32]);
    const cpu = model.forward(x).toFloat32Array();
    model.to('cuda');
    const gpu = model.forward(x.to('cuda'));
    expect(gpu.device).toBe('cuda:0');
    expect(relative(gpu.to('cpu').toFloat32Array(), cpu)).toBeLessThanOrEqual(1e-2);
  });

  it('a training step on CUDA lowers the loss of a fixed batch', async () => {
    manualSeed(1);
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).to('cuda');
    const opt = optim.adam(model, [{ params: 'all', lr: 1e-3 }]);
    const x = randn([16, 3, 32, 32]).to('cuda');
    const y = tensor(BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i % 10)), [16]);
    const first = await model.trainStep(opt, x, y);
    let last = first;
    for (let i = 0; i < 5; i++) last = await model.trainStep(opt, x, y);
    expect(last.loss).toBeLessThan(first.loss);
  }, 120_000);

  it('a staged fit with the loader feeding the GPU learns the colour task', async () => {
    manualSeed(2);
    const model = new CBAMCNN({ numClasses: 3 }).to('cuda');
    const tuner = new StagedFineTuner(model, {
      stages: [
        { name: 'head', epochs: 1, train: ['head', 'attention'], lr: 1e-3 },
        { name: 'all', epochs: 3, train: 'all', lr: 1e-3 },
      ],
      logEvery: 0,
    });
    const { epochs } = await tuner.fit(colourData(96), colourData(48, 32, 9), { batchSize: 16, seed: 1 });
    expect(model.device).toBe('cuda:0');
    expect(epochs.at(-1)!.testTop1!).toBeGreaterThan(0.6);
  }, 120_000);

  it('fp16 with loss scaling and bf16 autocast train on CUDA; an overflow is skipped and backs the scale off', async () => {
    manualSeed(3);
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).to({ device: 'cuda', memoryFormat: 'channels-last' });
    const opt = optim.sgd(model, undefined, { lr: 0.01, momentum: 0.9 });
    const x = randn([16, 3, 32, 32]).to('cuda');
    const y = tensor(BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i % 10)), [16]);
    for (const precision of ['fp16', 'bf16'] as const) {
      const first = await model.trainStep(opt, x, y, { precision });
      let last = first;
      for (let i = 0; i < 5; i++) last = await model.trainStep(opt, x, y, { precision });
      expect(Number.isFinite(last.loss)).toBe(true);
      expect(last.loss).toBeLessThan(first.loss);
    }
    expect(opt.lossScale.scale).toBeGreaterThan(0);
    // An input of 1e30 overflows fp16 activations: the step is skipped and the scale halves.
    const before = opt.lossScale.scale;
    const r = await model.trainStep(opt, randn([16, 3, 32, 32]).to('cuda'), y, { precision: 'fp16' });
    const huge = await model.trainStep(opt, tensor(new Float32Array(16 * 3 * 32 * 32).fill(1e30), [16, 3, 32, 32]).to('cuda'), y, { precision: 'fp16' });
    expect(r.skipped).toBe(false);
    expect(huge.skipped).toBe(true);
    expect(opt.lossScale.scale).toBe(before / 2);
  }, 120_000);

  it('fp16 and bf16 inference on CUDA are close to fp32', async () => {
    manualSeed(4);
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval().to('cuda');
    const x = randn([8, 3, 32, 32]);
    const fp32 = (await model.predict(x)).toFloat32Array();
    for (const precision of ['fp16', 'bf16'] as const) {
      const low = await model.predict(x, { precision });
      expect(low.dtype).toBe('float32');
      expect(relative(low.toFloat32Array(), fp32)).toBeLessThan(5e-2);
    }
  });

  it('a staged fp16 fit with pinned, non-blocking batches records its loss scale', async () => {
    manualSeed(5);
    cuda.cudnnBenchmark(true);
    const model = new CBAMCNN({ numClasses: 3 }).to('cuda');
    const tuner = new StagedFineTuner(model, { stages: [{ name: 'all', epochs: 2, train: 'all', lr: 1e-3 }], precision: 'fp16', logEvery: 0 });
    const { epochs } = await tuner.fit(colourData(96), colourData(48, 32, 9), { batchSize: 16, seed: 1, pinMemory: true });
    expect(cuda.cudnnBenchmark()).toBe(true);
    cuda.cudnnBenchmark(false);
    expect(epochs.at(-1)!.testTop1!).toBeGreaterThan(0.5);
    expect(epochs.at(-1)!.lossScale).toBeGreaterThan(0);
    expect(epochs.at(-1)!.skippedSteps).toBeGreaterThanOrEqual(0);
  }, 120_000);

  it('a run served on CUDA: concurrent requests, batched on the device, give the CPU predictor\'s outputs (TF32: 1e-2 relative)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-cuda-serve-'));
    try {
      const checkpoint = await makeRun(dir);
      const gpu = await predictorFromRun(checkpoint, { device: 'cuda', maxBatch: 8, maxDelayMs: 20 });
      const cpu = await predictorFromRun(checkpoint, { maxBatch: 8 });
      expect(gpu.model.device).toBe('cuda:0');
      manualSeed(5);
      const inputs = Array.from({ length: 16 }, () => randn([3, 32, 32]));
      const onGpu = await Promise.all(inputs.map((x) => gpu.predictor.predict(x)));
      for (const [i, x] of inputs.entries()) {
        const y = onGpu[i];
        expect(y.device).toBe('cpu');
        expect(relative(y.toFloat32Array(), (await cpu.predictor.predict(x)).toFloat32Array())).toBeLessThanOrEqual(1e-2);
      }
      expect(gpu.predictor.stats().maxBatchSize).toBeGreaterThan(1);
      await Promise.all([gpu.predictor.close(), cpu.predictor.close()]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
