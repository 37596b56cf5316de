// Freezing by group, frozen BatchNorm statistics across train()/eval(), optimizers over named
// groups, and their numerics against PyTorch's optimizers.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CBAMCNN, ResNetCBAM, ResNetNAM, manualSeed, optim, parameterGroups, randn, readStateDict, resolveParameters, tensor, vgg } from '../../lib';
import type { Model, Tensor } from '../../lib';
import { cpuHasAvx512, readFloats, rejection, sameBytes, withEnv } from '../helpers';

const dir = path.resolve(__dirname, '..', 'fixtures', 'parity');
const haveFixtures = fs.existsSync(path.join(dir, 'optim_adam.json'));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-optim-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function labels(values: number[]): Tensor {
  return tensor(BigInt64Array.from(values.map(BigInt)), [values.length]);
}

function snapshot(model: Model): Record<string, ArrayBufferView> {
  return Object.fromEntries(Object.entries(model.stateDict()).map(([n, t]) => [n, t.data()]));
}

describe('parameter groups', () => {
  it('ResNetCBAM: stem, layers, attention, head, backbone, all', () => {
    const groups = parameterGroups(new ResNetCBAM({ depth: 18 }));
    expect(groups.get('stem')).toEqual(['backbone.conv1.weight', 'backbone.bn1.weight', 'backbone.bn1.bias']);
    expect(groups.get('head')).toEqual(['backbone.fc.weight', 'backbone.fc.bias']);
    expect(groups.get('attention')!.every((n) => n.startsWith('cbam_layer'))).toBe(true);
    expect(groups.get('attention')).toHaveLength(12);
    expect(groups.get('layer4')!.every((n) => n.startsWith('backbone.layer4.'))).toBe(true);
    expect(groups.get('backbone')!.length + groups.get('attention')!.length + groups.get('head')!.length).toBe(groups.get('all')!.length);
  });

  it('in-block attention is its own group; VGG and CBAMCNN have their stages', () => {
    const nam = parameterGroups(new ResNetNAM({ depth: 18 }));
    expect(nam.get('attention')!.every((n) => n.includes('.nam.'))).toBe(true);
    expect(nam.get('layer1')!.some((n) => n.includes('.nam.'))).toBe(false);
    const cnn = parameterGroups(new CBAMCNN());
    expect(cnn.get('block2')).toEqual(['conv2.weight', 'conv2.bias', 'bn2.weight', 'bn2.bias']);
    expect(cnn.get('head')).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    expect(cnn.get('attention')!.every((n) => /^cbam[1-3]\./.test(n))).toBe(true);
  });

  it('VGG stages follow torchvision\'s configurations, with and without BatchNorm', () => {
    const bn = parameterGroups(vgg({ depth: 16 }));
    expect(bn.get('stage1')).toEqual(['features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias', 'features.3.weight', 'features.3.bias', 'features.4.weight', 'features.4.bias']);
    expect(bn.get('stage2')![0]).toBe('features.7.weight');
    expect(bn.get('stage5')!.at(-1)).toBe('features.41.bias');
    expect(bn.get('attention')!.every((n) => n.startsWith('cbam_stage'))).toBe(true);
    expect(bn.get('head')!.every((n) => n.startsWith('classifier.'))).toBe(true);
    const plain = parameterGroups(vgg({ depth: 11, batchNorm: false, attention: 'none' }));
    expect(plain.get('stage1')).toEqual(['features.0.weight', 'features.0.bias']);
    expect(plain.get('stage2')).toEqual(['features.3.weight', 'features.3.bias']);
    expect(plain.get('stage3')).toEqual(['features.6.weight', 'features.6.bias', 'features.8.weight', 'features.8.bias']);
    expect(plain.get('attention')).toEqual([]);
  });

  it('glob patterns select by name; unknown groups are a RangeError listing the groups', () => {
    const model = new ResNetCBAM({ depth: 18 });
    expect(resolveParameters(model, 'backbone.layer4.*.conv2.*', 'x')).toEqual(['backbone.layer4.0.conv2.weight', 'backbone.layer4.1.conv2.weight']);
    expect(() => resolveParameters(model, 'layer5', 'freeze()')).toThrow(
      /freeze\(\): 'layer5' is neither a group of ResNet18-cbam \(stage\) \(all, stem, backbone, layer1, layer2, layer3, layer4, head, attention\) nor a pattern/,
    );
    // Called from JavaScript without the label, or on something else than a model.
    expect(() => resolveParameters(model, 'layer5')).toThrow(/^resolveParameters\(selectors\): 'layer5' is neither/);
    expect(() => parameterGroups({} as never)).toThrow(/Expected a model \(a ResNet, VGG or CBAMCNN of torch-attn\) for parameterGroups\(model\) but received/);
  });
});

describe('freeze / unfreeze', () => {
  it('frozen weights and BatchNorm statistics stay bit-identical through steps and train()/eval() toggles', async () => {
    manualSeed(0);
    const model = new ResNetNAM({ depth: 18, numClasses: 4 });
    model.freeze('backbone');
    const opt = optim.adam(model, [{ params: ['head', 'attention'], lr: 1e-2 }]);
    const before = snapshot(model);
    const x = randn([8, 3, 32, 32]);
    const y = labels([0, 1, 2, 3, 0, 1, 2, 3]);
    for (let i = 0; i < 3; i++) {
      model.train();
      await model.trainStep(opt, x, y);
      model.eval();
      model.train(); // the classic bug: a later train() re-enables statistics in frozen BNs
    }
    const after = snapshot(model);
    const groups = parameterGroups(model);
    for (const name of groups.get('backbone')!) expect(sameBytes(after[name], before[name]), name).toBe(true);
    expect(sameBytes(after['bn1.running_mean'], before['bn1.running_mean'])).toBe(true);
    expect(sameBytes(after['layer3.1.bn2.running_var'], before['layer3.1.bn2.running_var'])).toBe(true);
    // NAM's BatchNorms follow their (trainable) module: their statistics and gammas moved.
    expect(sameBytes(after['layer3.1.nam.Channel_Att.bn2.running_var'], before['layer3.1.nam.Channel_Att.bn2.running_var'])).toBe(false);
    expect(sameBytes(after['layer3.1.nam.Channel_Att.bn2.weight'], before['layer3.1.nam.Channel_Att.bn2.weight'])).toBe(false);
    expect(sameBytes(after['fc.weight'], before['fc.weight'])).toBe(false);
  });

  it("batchNorm: 'train' lets frozen BatchNorms keep updating their statistics", async () => {
    const model = new CBAMCNN({ numClasses: 4 }).freeze('backbone', { batchNorm: 'train' });
    const opt = optim.sgd(model, [{ params: 'head', lr: 0.1 }], {}, { ungrouped: 'ignore' });
    const before = snapshot(model);
    await model.train().trainStep(opt, randn([4, 3, 32, 32]), labels([0, 1, 2, 3]));
    const after = snapshot(model);
    expect(sameBytes(after['bn1.weight'], before['bn1.weight'])).toBe(true);
    expect(sameBytes(after['bn1.running_mean'], before['bn1.running_mean'])).toBe(false);
  });

  it('parameterCount, summary and trainableGroups reflect freezing', () => {
    const model = new ResNetCBAM({ depth: 18 }).freeze('backbone');
    const total = model.parameterCount();
    const trainable = model.parameterCount({ trainableOnly: true });
    expect(trainable).toBe(5_130 + 610 + 2_146 + 8_290 + 32_866);
    expect(model.summary().find((r) => r.name === 'backbone.layer1')!.trainable).toBe(0);
    expect(model.summaryTable()).toMatch(new RegExp(`total parameters: ${total.toLocaleString('en-US')} \\(trainable ${trainable.toLocaleString('en-US')}\\)`));
    expect(model.trainableGroups()).toMatchObject({ stem: 'frozen', layer4: 'frozen', attention: 'trainable', head: 'trainable', all: 'partial' });
    model.unfreeze(['layer3', 'layer4']);
    expect(model.trainableGroups()).toMatchObject({ layer2: 'frozen', layer3: 'trainable', layer4: 'trainable', backbone: 'partial' });
  });

  it('EXPECTED FAILURE - training a fully frozen model says so', async () => {
    const model = new CBAMCNN({ numClasses: 4 });
    const opt = optim.adam(model);
    model.freeze('all');
    const err = await rejection(model.trainStep(opt, randn([2, 3, 32, 32]), labels([0, 1])));
    expect(err.message).toMatch(/nothing to train: every parameter of CBAMCNN is frozen/);
  });
});

describe('optimizers', () => {
  it('per-group learning rates can be read, changed and added while live; state saves and resumes', async () => {
    const model = new CBAMCNN({ numClasses: 4 }).freeze('backbone');
    const opt = optim.adam(model, [{ params: 'head', lr: 1e-3 }, { params: 'attention', lr: 1e-2 }], {}, { ungrouped: 'ignore' });
    expect(opt.groupCount).toBe(2);
    expect(opt.getLr(1)).toBe(1e-2);
    opt.setLr(1, 5e-3);
    expect(opt.getLr(1)).toBe(5e-3);
    model.unfreeze('block3');
    expect(opt.addGroup({ params: 'block3', lr: 1e-4 })).toBe(2);
    expect(opt.getLr(2)).toBe(1e-4);
    const x = randn([4, 3, 32, 32]);
    const y = labels([0, 1, 2, 3]);
    model.eval();
    await model.trainStep(opt, x, y);
    const file = path.join(scratch, 'opt.pt');
    opt.save(file);
    const weights = model.stateDict();
    await model.trainStep(opt, x, y);
    const continued = snapshot(model);
    // Resume: same weights and optimizer state in fresh objects -> the same next step.
    const again = new CBAMCNN({ numClasses: 4 }).freeze('backbone').unfreeze('block3');
    await again.loadStateDict(weights);
    const opt2 = optim.adam(again, [{ params: 'head', lr: 1e-3 }, { params: 'attention', lr: 5e-3 }], {}, { ungrouped: 'ignore' });
    opt2.addGroup({ params: 'block3', lr: 1e-4 });
    opt2.load(file);
    again.eval();
    await again.trainStep(opt2, x, y);
    const resumed = snapshot(again);
    for (const name of Object.keys(continued)) expect(sameBytes(resumed[name], continued[name]), name).toBe(true);
  });

  it("addGroup fills unset options from the optimizer's own defaults, as add_param_group does", () => {
    const model = new CBAMCNN();
    const opt = optim.sgd(model, [{ params: 'head' }], { lr: 0.1, momentum: 0.9 }, { ungrouped: 'ignore' });
    expect(opt.addGroup({ params: 'attention' })).toBe(1);
    expect(opt.getLr(1)).toBe(0.1);
  });

  it('noDecayOnBiasAndNorm splits each decaying group in two', () => {
    const model = new CBAMCNN();
    const opt = optim.adamw(model, [{ params: 'all' }], { weightDecay: 0.05 }, { noDecayOnBiasAndNorm: true });
    expect(opt.groupCount).toBe(1);
    expect(opt.native.groupCount).toBe(2);
  });

  it.each([
    ['a parameter in two groups', (m: Model) => optim.adam(m, [{ params: 'head' }, { params: 'fc1.*' }]), RangeError, /parameter 'fc1.weight' is in two optimizer groups/],
    ['a bad group name', (m: Model) => optim.adam(m, [{ params: 'heads' }]), RangeError, /'heads' is neither a group of CBAMCNN/],
    ['a negative lr', (m: Model) => optim.sgd(m, [{ params: 'all', lr: -0.1 }]), RangeError, /lr must be at least 0, got -0.1/],
    ['a NaN lr', (m: Model) => optim.adam(m, [{ params: 'all', lr: NaN }]), RangeError, /lr must be a finite number, got NaN/],
    ['an unknown option', (m: Model) => optim.adam(m, [{ params: 'all', momentum: 0.9 } as never]), TypeError, /Unknown option 'momentum' .* allowed options are params, lr, betas, eps, weightDecay, amsgrad/],
    ['SGD without lr', (m: Model) => optim.sgd(m), TypeError, /SGD needs an lr/],
    ['betas out of range', (m: Model) => optim.adam(m, undefined, { betas: [0.9, 1] }), RangeError, /betas\[1\] must be in \[0, 1\), got 1/],
    ['nesterov without momentum', (m: Model) => optim.sgd(m, undefined, { lr: 0.1, nesterov: true }), RangeError, /nesterov needs momentum > 0/],
    ['ungrouped parameters with ungrouped: error', (m: Model) => optim.sgd(m, [{ params: 'head', lr: 1 }], {}, { ungrouped: 'error' }), RangeError, /in no optimizer group and will not be updated/],
  ])('EXPECTED FAILURE - %s', (_name, make, type, message) => {
    const model = new CBAMCNN();
    expect(() => make(model)).toThrow(type);
    expect(() => make(model)).toThrow(message);
  });

  it('EXPECTED FAILURE - bad labels, and an optimizer of another model', async () => {
    const model = new CBAMCNN({ numClasses: 4 });
    const opt = optim.adam(model);
    const x = randn([2, 3, 32, 32]);
    expect((await rejection(model.trainStep(opt, x, labels([0, 4])))).message).toMatch(/class indices from 0 to 3 \(the model has 4 outputs\), got values from 0 to 4: does the data have more classes than the model was built for \(numClasses\)\?/);
    expect((await rejection(model.trainStep(opt, x, tensor([0, 1])))).message).toMatch(/trainStep\(\) labels must be a 1-D int64 tensor of class indices, got float32 \[2\]/);
    expect((await rejection(model.trainStep(opt, x, labels([0])))).message).toMatch(/one class index per image \(2\)/);
    expect((await rejection(new CBAMCNN().trainStep(opt, x, labels([0, 1])))).message).toMatch(/made for another model/);
  });
});

/** An optimizer made with TORCH_ATTN_FUSED_OPTIMIZER as given (undefined: unset). */
const withFusedSetting = <T>(value: string | undefined, make: () => T): T => withEnv('TORCH_ATTN_FUSED_OPTIMIZER', value, make);

describe('fused Adam / AdamW', () => {
  it('steps fuse on CPUs with AVX-512, not where TORCH_ATTN_FUSED_OPTIMIZER=0, never for SGD', () => {
    const model = new CBAMCNN({ numClasses: 4 });
    const avx512 = cpuHasAvx512();
    for (const type of ['adam', 'adamw'] as const) {
      const fused = withFusedSetting(undefined, () => optim[type](model)).fused;
      if (avx512 !== undefined) expect(fused).toBe(avx512);
      expect(withFusedSetting('0', () => optim[type](model)).fused).toBe(false);
    }
    expect(optim.sgd(model, undefined, { lr: 0.1 }).fused).toBe(false);
  });

  // The fused pass is LibTorch's arithmetic operation for operation, so it must give the same
  // bits as LibTorch's step: over several steps (moments built up), two groups with their own
  // learning rates, weight decay both ways, AMSGrad, a channels-last model (strided parameters),
  // and parameter sizes that leave a partial vector at the end.
  it.each([
    ['adam', { weightDecay: 1e-4 }, 'contiguous'],
    ['adam', { amsgrad: true }, 'channels-last'],
    ['adamw', { amsgrad: true }, 'contiguous'],
    ['adamw', { betas: [0.8, 0.99], eps: 1e-6 }, 'channels-last'],
  ] as const)('%s %o (%s): the same bits as LibTorch\'s step', async (type, options, memoryFormat) => {
    const arms = ['0', undefined].map((setting) => {
      manualSeed(3);
      const model = new CBAMCNN({ numClasses: 10 }).eval(); // no dropout: both arms see the same gradients
      if (memoryFormat === 'channels-last') model.to({ memoryFormat });
      const groups = [{ params: 'head', lr: 1e-2 }, { params: ['block1', 'block2', 'block3', 'attention'], lr: 1e-3 }];
      const opt = withFusedSetting(setting, () => optim[type](model, groups, options as never));
      return { model, opt };
    });
    const avx512 = cpuHasAvx512();
    if (avx512 === false) return expect(arms[1].opt.fused).toBe(false);
    expect(arms.map((a) => a.opt.fused)).toEqual([false, true]);
    manualSeed(5);
    const x = randn([6, 3, 32, 32]);
    const y = labels([0, 1, 2, 3, 4, 5]);
    for (let step = 0; step < 4; step++) {
      const losses = [];
      for (const { model, opt } of arms) losses.push((await model.trainStep(opt, x, y)).loss);
      expect(losses[1]).toBe(losses[0]);
    }
    // Parameters equal after four steps: the moments they were updated with were equal too.
    const [want, have] = arms.map((a) => snapshot(a.model));
    for (const name of Object.keys(want)) expect(sameBytes(have[name], want[name]), name).toBe(true);
  });
});

/** How close LibTorch's C++ optimizers stay to the PyTorch that wrote the fixtures. PyTorch 2.x's
 *  Python Adam/AdamW update exp_avg with lerp_ where LibTorch's C++ Adam (and PyTorch 1.x) use
 *  mul_/add_: a few 1e-6 apart after three steps (measured 4e-6 on 2.6); SGD is the same code. */
function optimizerTolerance(name: string): number {
  const torch = String(JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')).torch ?? '');
  return name !== 'sgd' && !torch.startsWith('1.') ? 1e-5 : 1e-6;
}

describe.runIf(haveFixtures)('optimizer numerics against PyTorch', () => {
  it.each(['sgd', 'adam', 'adamw'])('%s: three steps over two groups match torch.optim (1e-6 relative on PyTorch 1.x, 1e-5 for Adam on 2.x)', async (name) => {
    const config = JSON.parse(fs.readFileSync(path.join(dir, `optim_${name}.json`), 'utf8'));
    const tolerance = optimizerTolerance(name);
    const model = new CBAMCNN({ numClasses: 10 });
    await model.loadStateDict(path.join(dir, 'cbamcnn.pth'));
    model.eval();
    const { weightDecay, momentum, nesterov, amsgrad } = config.options;
    const groups = [{ params: 'head', lr: 1e-2 }, { params: ['block1', 'block2', 'block3', 'attention'], lr: 1e-3 }];
    const opt =
      config.type === 'sgd'
        ? optim.sgd(model, groups, { weightDecay, momentum, nesterov })
        : optim[config.type as 'adam' | 'adamw'](model, groups, { weightDecay, amsgrad: amsgrad ?? false });
    const x = tensor(readFloats(path.join(dir, 'cbamcnn.input.f32')), [4, 3, 32, 32]);
    const y = labels([0, 1, 2, 3]);
    for (let step = 0; step < config.steps; step++) {
      const { loss } = await model.trainStep(opt, x, y);
      expect(Math.abs(loss - config.losses[step]) / Math.abs(config.losses[step])).toBeLessThanOrEqual(tolerance);
    }
    const want = await readStateDict(path.join(dir, `optim_${name}.pth`));
    const have = model.stateDict();
    for (const [key, t] of Object.entries(want)) {
      if (t.dtype !== 'float32') continue;
      const a = have[key].data() as Float32Array;
      const b = t.data() as Float32Array;
      let scale = 1e-12;
      for (const v of b) scale = Math.max(scale, Math.abs(v));
      let worst = 0;
      for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
      expect(worst, key).toBeLessThanOrEqual(tolerance);
    }
  });
});
