// Experiment 5: VGG16-BN + CBAM (after each of its five stages) on CIFAR-10 with the staged
// schedule: head + attention at 1e-3, then stage4/stage5 too at 1e-4, then everything at 1e-5.
//   npx tsx scripts/experiments/5-vgg16bn-cbam.ts [--data DIR] [--epochs 5,15,30] [--weights vgg16_bn.pth] [--out DIR]
import * as path from 'node:path';
import { SHARED_DATA, experiment, experimentArgs, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '5,15,30', out: 'runs/exp5-vgg16bn-cbam-cifar10' });
  const epochs = a.epochs.length === 1 ? [a.epochs[0], a.epochs[0], a.epochs[0]] : a.epochs;
  console.log(`Experiment 5: VGG16-BN + CBAM on CIFAR-10 (${a.data}), three stages of ${epochs.join(' / ')} epochs, Adam\n`);
  await experiment({
    name: 'exp5-vgg16bn-cbam-cifar10',
    model: { arch: 'vgg16', attention: 'cbam', batchNorm: true, stem: 'cifar', weights: a.weights },
    data: { dataset: 'cifar10', path: a.data, augment: 'cifar' },
    stages: [
      { name: 'head', epochs: epochs[0], train: ['head', 'attention'], lr: 1e-3 },
      { name: 'high', epochs: epochs[1], train: ['head', 'attention', 'stage4', 'stage5'], lr: 1e-4 },
      { name: 'full', epochs: epochs[2], train: 'all', lr: 1e-5 },
    ],
    batchSize: a.batchSize, workers: a.workers, seed: a.seed, out: a.out,
  });
});
