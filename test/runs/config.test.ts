// Run configurations: defaults, and messages that name the field and the allowed values.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, checkConfig, readConfigFile, THREE_STAGE, transformsFor } from '../../lib/runs/config';
import { thrown } from '../helpers';

const minimal = { model: { arch: 'resnet18' }, data: { dataset: 'cifar10', path: 'data' } };

describe('run configuration', () => {
  it('fills defaults: three-stage recipe, Adam, batch 64, CIFAR augmentation, runs/<name>', () => {
    const c = checkConfig(minimal);
    expect(c.name).toBe('resnet18-cbam-cifar10');
    expect(c.stages).toEqual(THREE_STAGE);
    expect(c.optimizer).toEqual({ type: 'adam' });
    expect([c.batchSize, c.workers, c.seed]).toEqual([64, 2, 0]);
    expect(c.data.augment).toBe('cifar');
    expect(c.out).toBe(path.join('runs', 'resnet18-cbam-cifar10'));
    expect(checkConfig({ ...minimal, epochs: [1, 2, 3] }).stages.map((s) => s.epochs)).toEqual([1, 2, 3]);
    expect(checkConfig({ ...minimal, epochs: 2 }).stages.map((s) => s.epochs)).toEqual([2, 2, 2]);
    expect(checkConfig({ ...minimal, data: { dataset: 'imageFolder', path: 'x' } }).data.augment).toBe('imagenet');
    expect([c.precision, c.memoryFormat]).toEqual(['fp32', 'contiguous']);
    const fast = checkConfig({ ...minimal, precision: 'bf16', memoryFormat: 'channels-last' });
    expect([fast.precision, fast.memoryFormat]).toEqual(['bf16', 'channels-last']);
  });

  it.each([
    [{ ...minimal, model: { arch: 'resnet19' } }, /config.model.arch must be one of 'resnet18', 'resnet34', .*'cbamcnn', got 'resnet19'/],
    [{ ...minimal, model: { arch: 'resnet18', attention: 'transformer' } }, /config.model.attention must be one of 'cbam', 'nam', 'se', 'eca', 'none'/],
    [{ ...minimal, data: { dataset: 'mnist', path: 'x' } }, /config.data.dataset must be one of 'cifar10', 'cifar100', 'imageFolder', got 'mnist'/],
    [{ ...minimal, data: { dataset: 'cifar10' } }, /Expected a non-empty string for config.data.path but received undefined/],
    [{ ...minimal, batchSize: 0 }, /config.batchSize must be at least 1, got 0/],
    [{ ...minimal, epochs: [1, 2] }, /an Array of 3 numbers \(one per stage\) for config.epochs/],
    [{ ...minimal, batchsize: 64 }, /Unknown option 'batchsize' in config \(did you mean 'batchSize'\?\); allowed options are name, model, data, stages/],
    [{ data: minimal.data }, /config.model is required/],
    [{ ...minimal, model: { arch: 'cbamcnn', attention: 'nam' } }, /config.model.attention must be 'cbam' for cbamcnn/],
    [{ ...minimal, model: { arch: 'resnet18', attentionStages: [5] } }, /config.model.attentionStages\[0\] must be from 1 to 4, got 5/],
    [[], /Expected an object \(the run configuration\) for config/],
    [{ ...minimal, precision: 'fp8' }, /config.precision must be one of 'fp32', 'bf16', 'fp16', got 'fp8'/],
    [{ ...minimal, memoryFormat: 'nhwc' }, /config.memoryFormat must be one of 'contiguous', 'channels-last', got 'nhwc'/],
  ])('refuses %j', (raw, message) => {
    expect(thrown(() => checkConfig(raw)).message).toMatch(message);
  });

  it('normalisation: each dataset its own statistics (CIFAR-100 for cifar100), or named, or given', () => {
    const stats = (raw: Record<string, unknown>) => transformsFor(checkConfig(raw)).test.at(-1);
    expect(stats(minimal)).toMatchObject({ mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] });
    expect(stats({ ...minimal, data: { dataset: 'cifar100', path: 'x' } })).toMatchObject({ mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] });
    expect(stats({ ...minimal, data: { dataset: 'imageFolder', path: 'x' } })).toMatchObject({ mean: [0.485, 0.456, 0.406] });
    expect(stats({ ...minimal, data: { dataset: 'cifar10', path: 'x', normalize: 'imagenet' } })).toMatchObject({ std: [0.229, 0.224, 0.225] });
    expect(stats({ ...minimal, data: { dataset: 'cifar10', path: 'x', normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } } })).toMatchObject({ mean: [0.5, 0.5, 0.5] });
  });

  it('augment and testTransform as lists of transforms; toTensor and normalize are appended', () => {
    const c = checkConfig({ ...minimal, data: { dataset: 'cifar10', path: 'x', augment: [{ randomCrop: { size: 32, padding: 4 } }, 'randomHorizontalFlip'], testTransform: [{ centerCrop: 28 }] } });
    const t = transformsFor(c);
    expect(t.train.map((s) => s.op)).toEqual(['randomCrop', 'randomHorizontalFlip', 'toTensor', 'normalize']);
    expect(t.test.map((s) => s.op)).toEqual(['centerCrop', 'toTensor', 'normalize']);
    expect(c.data.augment).toEqual([{ randomCrop: { size: 32, padding: 4 } }, 'randomHorizontalFlip']); // kept as written, for config.json
  });

  it('model options the API has: attention options, placement, VGG without BatchNorm, the frozen-BatchNorm policy', () => {
    const c = checkConfig({ ...minimal, model: { arch: 'resnet18', attentionOptions: { ratio: 8, kernelSize: 3, init: 'passthrough' }, placement: 'block' }, batchNorm: 'train' });
    expect(c.model.attentionOptions).toEqual({ ratio: 8, kernelSize: 3, init: 'passthrough' });
    expect(c.batchNorm).toBe('train');
    expect(checkConfig(minimal).batchNorm).toBe('eval');
    const m = buildModel(c, 10);
    expect(m.namedParameters().some((p) => p.name === 'layer1.0.cbam.spatial_attn.conv.weight')).toBe(true);
    expect(m.stateDict()['layer1.0.cbam.spatial_attn.conv.weight'].shape).toEqual([1, 2, 3, 3]);
    const plain = buildModel(checkConfig({ ...minimal, model: { arch: 'vgg16', batchNorm: false } }), 10);
    expect(plain.namedParameters().filter((p) => p.name.startsWith('features.')).length).toBe(26); // 13 convs, no BatchNorm
  });

  it.each([
    [{ ...minimal, model: { arch: 'vgg16', placement: 'block' } }, /config.model.placement applies to resnet models only, not vgg16/],
    [{ ...minimal, model: { arch: 'resnet18', batchNorm: false } }, /config.model.batchNorm applies to vgg models only/],
    [{ ...minimal, model: { arch: 'resnet18', attentionOptions: { ratoi: 8 } } }, /Unknown option 'ratoi' .*did you mean 'ratio'/],
    [{ ...minimal, batchNorm: 'frozen' }, /config.batchNorm must be one of 'eval', 'train', got 'frozen'/],
    [{ ...minimal, data: { dataset: 'cifar10', path: 'x', augment: 'cifr' } }, /config.data.augment must be one of 'cifar', 'imagenet', 'none', got 'cifr' \(did you mean 'cifar'\?\)/],
    [{ ...minimal, data: { dataset: 'cifar10', path: 'x', augment: [{ flip: {} }] } }, /config.data.augment\[0\]: unknown transform 'flip'/],
    [{ ...minimal, data: { dataset: 'cifar10', path: 'x', normalize: { mean: [0.5] } } }, /config.data.normalize/],
    [{ ...minimal, data: { dataset: 'cifar10', path: 'x', normalize: { mean: [0.5], std: [0] } } }, /std must not contain 0/],
  ])('refuses %j', (raw, message) => {
    expect(thrown(() => checkConfig(raw)).message).toMatch(message);
  });

  it('reads JSON and YAML files and says what is wrong with a broken one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-config-'));
    try {
      fs.writeFileSync(path.join(dir, 'run.yaml'), 'model:\n  arch: resnet18\ndata:\n  dataset: cifar10\n  path: data\nepochs: [1, 1, 1]\n');
      expect(checkConfig(readConfigFile(path.join(dir, 'run.yaml'))).stages.map((s) => s.epochs)).toEqual([1, 1, 1]);
      fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(minimal));
      expect(checkConfig(readConfigFile(path.join(dir, 'run.json'))).model.arch).toBe('resnet18');
      fs.writeFileSync(path.join(dir, 'bad.json'), '{ "model": ');
      expect(thrown(() => readConfigFile(path.join(dir, 'bad.json'))).message).toMatch(/bad.json is not valid JSON/);
      fs.writeFileSync(path.join(dir, 'bad.yaml'), 'model: [unclosed');
      expect(thrown(() => readConfigFile(path.join(dir, 'bad.yaml'))).message).toMatch(/bad.yaml is not valid YAML/);
      expect(thrown(() => readConfigFile(path.join(dir, 'run.toml'))).message).toMatch(/cannot read the config/);
      // A FIFO (it blocked for ever) or a device is refused at once.
      execFileSync('mkfifo', [path.join(dir, 'fifo.yaml')]);
      expect(thrown(() => readConfigFile(path.join(dir, 'fifo.yaml'))).message).toMatch(/cannot read the config: .*fifo\.yaml is not a regular file/);
      expect(thrown(() => readConfigFile('/dev/zero')).message).toMatch(/not a regular file/);
      fs.writeFileSync(path.join(dir, 'run.toml'), '');
      expect(thrown(() => readConfigFile(path.join(dir, 'run.toml'))).message).toMatch(/must end in .json, .yaml or .yml/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
