// Experiment 4: the small CBAM-CNN on CIFAR-10, Adam (1e-3) with StepLR (x0.1 every 20 epochs),
// 50 epochs, every layer training from the start.
//   npx tsx scripts/experiments/4-cbamcnn-cifar10.ts [--data DIR] [--epochs 50] [--out DIR]
import * as path from 'node:path';
import { SHARED_DATA, experiment, experimentArgs, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '50', out: 'runs/exp4-cbamcnn-cifar10' });
  console.log(`Experiment 4: CBAM-CNN on CIFAR-10 (${a.data}), ${a.epochs[0]} epochs, Adam + StepLR(20, 0.1)\n`);
  await experiment({
    name: 'exp4-cbamcnn-cifar10',
    model: { arch: 'cbamcnn', attention: 'cbam' },
    data: { dataset: 'cifar10', path: a.data, augment: 'cifar' },
    stages: [{ name: 'all', epochs: a.epochs[0], train: 'all', lr: 1e-3 }],
    optimizer: { type: 'adam' },
    scheduler: { type: 'step', stepSize: 20, gamma: 0.1 },
    batchSize: a.batchSize, workers: a.workers, seed: a.seed, out: a.out,
  });
});
