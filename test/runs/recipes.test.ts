// The recipe files (one per seed-document experiment): each loads, validates and builds its model,
// data transforms and learning-rate schedule without training; the NAM recipe is the paper's model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../lib/cli';
import { StagedFineTuner } from '../../lib/index';
import { buildModel, checkConfig, readConfigFile, transformsFor } from '../../lib/runs/config';

const dir = path.resolve(__dirname, '..', '..', 'recipes');
const recipes = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
const classesOf = { cifar10: 10, cifar100: 100, imageFolder: 6 } as const;

function load(file: string) {
  return checkConfig(readConfigFile(path.join(dir, file)), file);
}

describe('recipes/', () => {
  it('holds one recipe per seed experiment', () => {
    expect(recipes.sort()).toEqual(['cbamcnn-cifar10.yaml', 'resnet18-cbam-cifar10.yaml', 'resnet18-cbam-garbage.yaml', 'resnet50-cifar100.yaml', 'resnet50-nam-cifar100.yaml', 'vgg16-cbam-cifar10.yaml']);
  });

  it.each(recipes)('%s: validates, builds its model, transforms and schedule (dry run)', (file) => {
    const config = load(file);
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    expect(text, 'a recipe says where it comes from').toMatch(/^# Seed document/);
    const model = buildModel(config, classesOf[config.data.dataset]);
    expect(model.parameterCount()).toBeGreaterThan(0);
    const t = transformsFor(config);
    expect(t.train.at(-2)?.op).toBe('toTensor');
    expect(t.test.at(-1)?.op).toBe('normalize');
    const tuner = new StagedFineTuner(model, { optimizer: config.optimizer, stages: config.stages, scheduler: config.scheduler, batchNorm: config.batchNorm });
    const images = config.data.dataset === 'imageFolder' ? 2000 : 50000;
    const batches = Math.ceil(images / config.batchSize); // the last partial batch is kept
    const rates = tuner.learningRates(batches);
    expect(rates.stages.map((s) => s.name)).toEqual(config.stages.map((s) => s.name));
    for (const s of rates.stages) for (const row of s.rates) for (const lr of row) expect(Number.isFinite(lr) && lr >= 0).toBe(true);
  });

  it('the NAM recipe: ResNet50 with NAM inside all 16 bottlenecks, 23,735,460 parameters', async () => {
    const config = load('resnet50-nam-cifar100.yaml');
    const model = buildModel(config, 100);
    expect(model.parameterCount()).toBe(23_735_460);
    const blocks = new Set(model.namedParameters().map((p) => p.name).filter((n) => /\.nam\./.test(n)).map((n) => n.split('.nam.')[0]));
    expect(blocks.size).toBe(16);
    expect([...blocks]).toContain('layer4.2');
    let out = '';
    const code = await main(['summary', '--config', path.join(dir, 'resnet50-nam-cifar100.yaml')], { out: (t) => (out += t), err: (t) => (out += t), isTTY: false });
    expect(code).toBe(0);
    expect(out).toMatch(/total parameters: 23,735,460/);
    expect(out).toMatch(/attention modules \(16\): layer1\.0\.nam, layer1\.1\.nam, .*, layer4\.2\.nam\n/);
    // The same model without a config: NAM goes inside the blocks by default, CBAM after stages.
    expect(buildModel(checkConfig({ model: { arch: 'resnet50', attention: 'nam' }, data: { dataset: 'cifar100', path: '.' } }), 100).parameterCount()).toBe(23_735_460);
    const cbam = buildModel(checkConfig({ model: { arch: 'resnet18', attention: 'cbam' }, data: { dataset: 'cifar10', path: '.' } }), 10);
    expect(cbam.namedParameters().some((p) => p.name.startsWith('cbam_layer4.'))).toBe(true);
  });

  it('the NAM recipe: warm-up from 0 over 2,000 steps, then a per-epoch cosine with T_max 300', () => {
    const config = load('resnet50-nam-cifar100.yaml');
    const tuner = new StagedFineTuner(buildModel(config, 100), { optimizer: config.optimizer, stages: config.stages, scheduler: config.scheduler });
    const B = Math.ceil(50000 / 256); // 196
    const { stages } = tuner.learningRates(B);
    const lr = stages[0].rates.map((r) => Math.max(...r));
    expect(stages[0].unit).toBe('step');
    expect(lr[0]).toBe(0);
    expect(lr[1000]).toBeCloseTo(0.005, 12);
    expect(lr[2000]).toBeCloseTo(0.01, 12); // warm-up done mid-epoch 11: the cosine starts at its t = 0
    expect(lr[11 * B]).toBeCloseTo(0.005 * (1 + Math.cos(Math.PI / 300)), 12); // the next epoch end moves it
    expect(lr[300 * B - 1]).toBeCloseTo(0.005 * (1 + Math.cos((Math.PI * (299 - 10)) / 300)), 12);
  });

  it('the CBAM-CNN recipe keeps the last partial batch: 782 batches of 64 per CIFAR-10 epoch', () => {
    const config = load('cbamcnn-cifar10.yaml');
    expect([config.batchSize, Math.ceil(50000 / config.batchSize)]).toEqual([64, 782]);
    expect(config.scheduler).toEqual({ type: 'step', stepSize: 20, gamma: 0.1 });
  });
});
