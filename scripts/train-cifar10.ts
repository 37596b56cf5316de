// Experiment: ResNet18-CBAM on CIFAR-10 with the three-stage schedule (head + attention at 1e-3,
// then + layer3/layer4 at 1e-4, then everything at 1e-5; Adam), the CIFAR augmentation chain,
// per-epoch metrics printed and written to a run directory (config.json, metrics.jsonl,
// last.pth/best.pth, evaluation.json).
//   npx tsx scripts/train-cifar10.ts --data ../shared/data/cifar10-subset-bin [--epochs 5,15,30]
//     [--out runs/cifar10-resnet18-cbam] [--weights resnet18.pth] [--batch-size 64] [--workers 2] [--seed 0]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ResNetCBAM, StagedFineTuner, datasets, evaluate, manualSeed, transforms } from '../lib';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: path.resolve(__dirname, '..', '..', 'shared', 'data', 'cifar10-subset-bin') },
    epochs: { type: 'string', default: '5,15,30' },
    out: { type: 'string', default: 'runs/cifar10-resnet18-cbam' },
    weights: { type: 'string' },
    'batch-size': { type: 'string', default: '64' },
    workers: { type: 'string', default: '2' },
    seed: { type: 'string', default: '0' },
  },
});

const MEAN = [0.4914, 0.4822, 0.4465];
const STD = [0.2023, 0.1994, 0.201];

async function main() {
  const epochs = values.epochs!.split(',').map(Number) as [number, number, number];
  if (epochs.length !== 3 || epochs.some((e) => !Number.isInteger(e) || e < 1)) throw new RangeError('--epochs takes three positive integers, e.g. 5,15,30');
  const seed = Number(values.seed);
  manualSeed(seed);
  const augment = transforms.compose([
    transforms.randomCrop(32, { padding: 4 }),
    transforms.randomHorizontalFlip(),
    transforms.colorJitter({ brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.1 }),
    transforms.randomRotation(15),
    transforms.toTensor(),
    transforms.normalize(MEAN, STD),
  ]);
  const plain = transforms.compose([transforms.toTensor(), transforms.normalize(MEAN, STD)]);
  const train = await datasets.cifar10(values.data!, { transform: augment });
  const test = await datasets.cifar10(values.data!, { train: false, transform: plain });
  console.log(`CIFAR-10 from ${values.data}: ${train.length} training and ${test.length} test images, ${train.classes.length} classes`);

  const model = new ResNetCBAM({ depth: 18, numClasses: 10, stem: 'cifar' });
  if (values.weights) {
    const report = await model.loadBackbone(values.weights);
    console.log(`backbone from ${values.weights}: ${report.loaded.length} tensors loaded, ${report.skipped.length} skipped, ${report.missing.length} missing`);
  }
  const out = path.resolve(values.out!);
  fs.mkdirSync(out, { recursive: true });
  const tuner = StagedFineTuner.threeStage(model, { epochs, checkpointDir: out, logEvery: 20 });
  const config = { experiment: 'resnet18-cbam-cifar10-three-stage', data: values.data, model: model.description, seed, batchSize: Number(values['batch-size']), workers: Number(values.workers), weights: values.weights ?? null, tuner: tuner.options };
  fs.writeFileSync(path.join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const metrics = fs.createWriteStream(path.join(out, 'metrics.jsonl'));
  console.log(`${model.description}; three stages of ${epochs.join(' / ')} epochs; run directory ${out}`);

  const controller = new AbortController();
  process.once('SIGINT', () => {
    console.log('\nstopping at the next batch (a resumable checkpoint is written) ...');
    controller.abort();
  });
  const result = await tuner.fit(train, test, {
    batchSize: config.batchSize,
    workers: config.workers,
    seed,
    signal: controller.signal,
    onStage: (s) => console.log(`stage ${s.index + 1} '${s.name}': trains ${Object.entries(s.groups).filter(([, v]) => v === 'trainable').map(([k]) => k).join(', ')}`),
    onBatch: (b) => metrics.write(`${JSON.stringify({ type: 'batch', ...b })}\n`),
    onEpoch: (r) => {
      metrics.write(`${JSON.stringify({ type: 'epoch', ...r })}\n`);
      console.log(
        `epoch ${String(r.epoch).padStart(2)} [${r.stage}] train loss ${r.trainLoss.toFixed(4)} acc ${(100 * r.trainAcc).toFixed(2)}% | ` +
          `test loss ${r.testLoss!.toFixed(4)} top-1 ${(100 * r.testTop1!).toFixed(2)}% top-5 ${(100 * r.testTop5!).toFixed(2)}% | ` +
          `${r.imagesPerSecond.toFixed(1)} img/s, ${r.seconds.toFixed(1)} s`,
      );
    },
  });
  metrics.end();
  const evaluation = await evaluate(model, test);
  const { probabilities: _p, labels: _l, ...summary } = evaluation;
  fs.writeFileSync(path.join(out, 'evaluation.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`best epoch ${result.best?.epoch} (test top-1 ${(100 * (result.best?.metric ?? 0)).toFixed(2)}%); final macro-F1 ${evaluation.macroF1.toFixed(4)}`);
}

main().catch((err) => {
  console.error(err.name === 'AbortError' ? err.message : err);
  process.exit(1);
});
