// The model builders: torchvision's names and sizes, attention placement, summary, predict off
// the main thread, and a clear error for every bad option or input.
import { describe, expect, it } from 'vitest';
import { CBAMCNN, Model, ResNetCBAM, ResNetNAM, randn, resnet, tensor, vgg, zeros } from '../../lib';
import { rejection } from '../helpers';

describe('torchvision layouts', () => {
  it.each([
    [18, 11_689_512],
    [34, 21_797_672],
    [50, 25_557_032],
    [101, 44_549_160],
    [152, 60_192_808],
  ] as const)('resnet%d without attention has torchvision\'s parameter count', (depth, count) => {
    const m = resnet({ depth, attention: 'none', stem: 'imagenet', numClasses: 1000 });
    expect(m.parameterCount()).toBe(count);
  });

  it('resnet50 has torchvision\'s state-dict names, 320 entries, no prefix', () => {
    const m = resnet({ depth: 50, attention: 'none', stem: 'imagenet', numClasses: 1000 });
    const names = [...m.namedParameters().map((p) => p.name), ...m.namedBuffers().map((b) => b.name)];
    expect(names).toHaveLength(320);
    for (const n of ['conv1.weight', 'bn1.running_var', 'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.num_batches_tracked', 'layer4.2.conv3.weight', 'fc.bias']) {
      expect(names).toContain(n);
    }
  });

  it.each([
    [11, false, 132_863_336],
    [16, false, 138_357_544],
    [16, true, 138_365_992],
  ] as const)('vgg%d (batchNorm %s) without attention has torchvision\'s parameter count', (depth, batchNorm, count) => {
    expect(vgg({ depth, batchNorm, attention: 'none', stem: 'imagenet', numClasses: 1000 }).parameterCount()).toBe(count);
  });

  it('ResNetCBAM puts torchvision under backbone. and CBAM after each stage', () => {
    const names = new ResNetCBAM({ depth: 18 }).namedParameters().map((p) => p.name);
    expect(names).toContain('backbone.layer1.0.conv1.weight');
    expect(names).toContain('backbone.fc.weight');
    for (let i = 1; i <= 4; i++) {
      expect(names).toContain(`cbam_layer${i}.channel_attn.fc.0.weight`);
      expect(names).toContain(`cbam_layer${i}.channel_attn.fc.2.weight`);
      expect(names).toContain(`cbam_layer${i}.spatial_attn.conv.weight`);
    }
  });

  it('ResNetNAM puts NAM in every block at the top level', () => {
    const m = new ResNetNAM({ depth: 50, numClasses: 100 });
    const buffers = m.namedBuffers().map((b) => b.name);
    expect(buffers).toContain('layer3.5.nam.Channel_Att.bn2.running_mean');
    expect(m.namScalingFactors()).toHaveLength(16);
    expect(m.namScalingFactors()[0]).toBe('layer1.0.nam.Channel_Att.bn2.weight');
  });

  it('stages limits attention to the listed stages; block placement works for every kind', () => {
    const names = resnet({ depth: 18, attention: 'se', placement: 'block', stages: [3, 4] }).namedParameters().map((p) => p.name);
    expect(names.some((n) => n.startsWith('layer2.') && n.includes('.se.'))).toBe(false);
    expect(names).toContain('layer3.0.se.fc.0.weight');
    const eca = resnet({ depth: 18, attention: 'eca', placement: 'stage' }).namedParameters().map((p) => p.name);
    expect(eca).toContain('eca_layer4.conv.weight');
  });
});

describe('forward, summary, predict', () => {
  it('a single image in inference gives what it gives inside a batch (the oneDNN path for batch 1)', async () => {
    for (const model of [new ResNetCBAM({ depth: 18, numClasses: 10 }), resnet({ depth: 50, numClasses: 5, stem: 'imagenet' })]) {
      model.eval();
      const size = model.spec.stem === 'imagenet' ? 64 : 32;
      const x = randn([3, 3, size, size]);
      const all = model.forward(x).toFloat32Array();
      const per = all.length / 3;
      for (let i = 0; i < 3; i++) {
        const one = tensor((x.data() as Float32Array).slice(i * 3 * size * size, (i + 1) * 3 * size * size), [1, 3, size, size]);
        const got = [model.forward(one).toFloat32Array(), (await model.predict(one)).toFloat32Array()];
        for (const g of got) {
          const worst = Math.max(...g.map((v, k) => Math.abs(v - all[i * per + k])));
          expect(worst).toBeLessThan(1e-4);
        }
      }
    }
  });

  it('every kind and placement runs and gives logits of the right shape', () => {
    const x = randn([2, 3, 32, 32]);
    for (const attention of ['cbam', 'nam', 'se', 'eca', 'none'] as const) {
      for (const placement of ['stage', 'block'] as const) {
        expect(resnet({ depth: 18, attention, placement, numClasses: 7 }).eval().forward(x).shape).toEqual([2, 7]);
      }
    }
    expect(vgg({ depth: 11, numClasses: 5 }).eval().forward(x).shape).toEqual([2, 5]);
    expect(new CBAMCNN({ numClasses: 3 }).eval().forward(x).shape).toEqual([2, 3]);
    expect(resnet({ depth: 18, stem: 'imagenet', attention: 'none' }).eval().forward(randn([1, 3, 64, 64])).shape).toEqual([1, 10]);
  });

  it('passthrough attention leaves a model\'s output exactly as without it', async () => {
    const plain = resnet({ depth: 18, attention: 'none', placement: 'block' }).eval();
    const gated = resnet({ depth: 18, attention: 'cbam', placement: 'block', attentionOptions: { init: 'passthrough' } }).eval();
    const report = await gated.loadStateDict(plain.stateDict(), { strict: false });
    expect(report.missing.every((n) => n.includes('.cbam.'))).toBe(true);
    const x = randn([2, 3, 32, 32]);
    expect(gated.forward(x).data()).toEqual(plain.forward(x).data());
  });

  it('summary() lists each step with output shapes and parameters adding up to the total', () => {
    const m = new ResNetCBAM({ depth: 18 });
    const rows = m.summary([1, 3, 32, 32]);
    expect(rows.map((r) => r.name)).toEqual([
      'backbone.conv1', 'backbone.bn1', 'backbone.layer1', 'cbam_layer1', 'backbone.layer2', 'cbam_layer2',
      'backbone.layer3', 'cbam_layer3', 'backbone.layer4', 'cbam_layer4', 'backbone.fc',
    ]);
    expect(rows[8].outputShape).toEqual([1, 512, 4, 4]);
    expect(rows.reduce((s, r) => s + r.params, 0)).toBe(m.parameterCount());
    expect(m.summaryTable()).toMatch(/total parameters: 11,217,874/);
    expect(m.training).toBe(true); // summary ran in eval mode and restored the mode
  });

  it('forward does not depend on the batch it runs in (eval), and predict matches it', async () => {
    const m = new CBAMCNN().eval();
    const x = randn([5, 3, 32, 32]);
    const whole = m.forward(x).data() as Float32Array;
    const predicted = await m.predict(x, { batchSize: 2 });
    expect(predicted.shape).toEqual([5, 10]);
    const p = predicted.data() as Float32Array;
    for (let i = 0; i < whole.length; i++) expect(Math.abs(p[i] - whole[i])).toBeLessThan(1e-5);
  });

  it('predict runs off the main thread; other inference may overlap it, training and loading may not', async () => {
    const m = resnet({ depth: 18 });
    const x = randn([32, 3, 32, 32]);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const pending = m.predict(x, { batchSize: 8 });
    expect(() => m.train()).toThrow(/busy with 1 running predict\(\) call/);
    expect((await rejection(m.loadStateDict(m.stateDict()))).code).toBe('ERR_TORCH_ATTN_BUSY');
    const second = m.predict(x);
    const out = await pending;
    clearInterval(timer);
    expect((await second).shape).toEqual([32, 10]);
    expect(out.shape).toEqual([32, 10]);
    expect(ticks).toBeGreaterThan(0);
    expect(m.training).toBe(true);
    expect(m.forward(x.to('cpu')).shape).toEqual([32, 10]);
  });
});

describe('EXPECTED FAILURE - bad options and inputs', () => {
  it.each([
    ['unknown depth', () => resnet({ depth: 20 as never }), RangeError, /depth must be one of 18, 34, 50, 101, 152, got 20/],
    ['numClasses < 1', () => new ResNetCBAM({ numClasses: 0 }), RangeError, /numClasses must be at least 1, got 0/],
    ['fractional numClasses', () => vgg({ numClasses: 2.5 }), RangeError, /numClasses/],
    ['even kernel size', () => new ResNetCBAM({ attentionOptions: { kernelSize: 4 } }), RangeError, /kernelSize must be odd/],
    ['ratio larger than channels', () => new CBAMCNN({ attentionOptions: { ratio: 64 } }), RangeError, /cbam ratio must be from 1 to the channel count \(32\), got 64/],
    ['unknown attention', () => resnet({ attention: 'transformer' as never }), RangeError, /attention must be one of 'cbam', 'nam', 'se', 'eca', 'none'/],
    ['option of another kind', () => resnet({ attention: 'nam', attentionOptions: { ratio: 8 } }), TypeError, /Unknown option 'ratio' .* allowed options are detachWeights/],
    ['unknown stem', () => resnet({ stem: 'tiny' as never }), RangeError, /stem must be one of 'cifar', 'imagenet'/],
    ['bad stage', () => resnet({ stages: [0] }), RangeError, /stages\[0\] must be from 1 to 4/],
    ['repeated stage', () => resnet({ stages: [2, 2] }), RangeError, /lists a stage twice/],
    ['options not an object', () => resnet(18 as never), TypeError, /Expected an options object/],
    ['unknown option', () => vgg({ layers: 16 } as never), TypeError, /Unknown option 'layers'/],
  ])('%s', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });

  const model = new CBAMCNN();
  it.each([
    ['a 3-D input', () => model.forward(zeros([3, 32, 32])), RangeError, /expects a 4-D input .* got 3-D \[3, 32, 32\]/],
    ['a wrong channel count', () => resnet().forward(zeros([1, 4, 32, 32])), RangeError, /expects 3 input channels, got 4/],
    ['an empty image', () => resnet().forward(zeros([1, 3, 0, 0])), RangeError, /got an empty image \[1, 3, 0, 0\]: height and width must be at least 1/],
    ['a wrong image size for CBAMCNN', () => model.forward(zeros([1, 3, 28, 28])), RangeError, /expects 32x32 inputs/],
    ['an integer input', () => model.forward(zeros([1, 3, 32, 32], { dtype: 'uint8' })), TypeError, /floating-point tensor/],
    ['not a tensor', () => model.forward([1, 2, 3] as never), TypeError, /Expected a Tensor for forward\(x\) but received an Array/],
    ['a model where a tensor goes', () => model.forward(model as never), TypeError, /Expected a Tensor/],
    ['a disposed tensor', () => { const t = randn([1, 3, 32, 32]); t.dispose(); return model.forward(t); }, Error, /this Tensor was disposed/],
  ])('forward with %s', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });

  it('predict rejects (never throws) for bad input', async () => {
    expect((await rejection(model.predict(zeros([1, 3])))).message).toMatch(/4-D input/);
    expect((await rejection(model.predict(randn([1, 3, 32, 32]), { batchSize: 0 }))).name).toBe('RangeError');
    expect((await rejection(model.predict('x' as never))).name).toBe('TypeError');
  });

  it('Model cannot be constructed directly, and a tensor is not a model', () => {
    expect(() => new (Model as unknown as new () => unknown)()).toThrow();
    expect(() => (Model.prototype.forward as (x: unknown) => unknown).call(tensor([1]), zeros([1, 3, 32, 32]))).toThrow(TypeError);
  });
});
