// Experiment 1 (the main one): ResNet18-CBAM on CIFAR-10, the three-stage schedule — epochs 1-5
// head + attention at 1e-3, 6-20 plus layer3/layer4 at 1e-4, 21-50 everything at 1e-5, Adam —
// with the CIFAR augmentation chain.
//   npx tsx scripts/experiments/1-resnet18-cbam-cifar10.ts [--data DIR] [--epochs 5,15,30] [--weights resnet18.pth] [--out DIR]
import * as path from 'node:path';
import { SHARED_DATA, experiment, experimentArgs, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '5,15,30', out: 'runs/exp1-resnet18-cbam-cifar10' });
  console.log(`Experiment 1: ResNet18-CBAM, CIFAR-10 (${a.data}), three stages of ${a.epochs.join(' / ')} epochs, Adam\n`);
  await experiment({
    name: 'exp1-resnet18-cbam-cifar10',
    model: { arch: 'resnet18', attention: 'cbam', stem: 'cifar', weights: a.weights },
    data: { dataset: 'cifar10', path: a.data, augment: 'cifar' },
    epochs: a.epochs.length === 1 ? a.epochs[0] : a.epochs,
    batchSize: a.batchSize, workers: a.workers, seed: a.seed, out: a.out,
  });
});
