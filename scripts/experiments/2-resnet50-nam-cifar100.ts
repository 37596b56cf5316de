// Experiment 2: ResNet50-NAM on CIFAR-100 — SGD (momentum 0.9, weight decay 5e-4, lr 0.01),
// cosine annealing after 2,000 linear warm-up steps, batch 256 — and a plain ResNet50 with the
// same recipe for comparison.
//   npx tsx scripts/experiments/2-resnet50-nam-cifar100.ts --data <cifar-100-binary or cifar-100-python folder> [--epochs 200] [--out DIR]
import { table } from '../../lib/cli';
import { experiment, experimentArgs, run } from './common';

run(async () => {
  const a = experimentArgs({ data: 'data/cifar-100-python', epochs: '200', out: 'runs/exp2-cifar100' });
  const epochs = a.epochs[0];
  console.log(`Experiment 2: ResNet50-NAM against a plain ResNet50 on CIFAR-100 (${a.data}), ${epochs} epochs each, SGD + warm-up/cosine, batch 256\n`);
  const results: string[][] = [];
  for (const attention of ['nam', 'none'] as const) {
    const name = `exp2-resnet50-${attention === 'none' ? 'plain' : 'nam'}-cifar100`;
    const r = await experiment({
      name,
      model: { arch: 'resnet50', attention, stem: 'cifar' },
      data: { dataset: 'cifar100', path: a.data, augment: 'cifar' },
      stages: [{ name: 'all', epochs, train: 'all', lr: 0.01 }],
      optimizer: { type: 'sgd', momentum: 0.9, weightDecay: 5e-4 },
      scheduler: { type: 'warmup', steps: 2000, startFactor: 0.01, then: { type: 'cosine' }, unit: 'step' },
      batchSize: a.batchSize ?? 256, workers: a.workers, seed: a.seed, out: `${a.out}/${name}`,
    });
    results.push([name, `${(100 * (r.fit.best?.metric ?? 0)).toFixed(2)}%`, `${(100 * (r.evaluation?.top1 ?? 0)).toFixed(2)}%`]);
  }
  process.stdout.write(table(['model', 'best top-1', 'final top-1'], results));
});
