// Experiment 1 (the main one): recipes/resnet18-cbam-cifar10.yaml — ResNet18-CBAM on CIFAR-10,
// the three-stage schedule (head + attention at 1e-3, + layer3/layer4 at 1e-4, everything at
// 1e-5, Adam) from ImageNet weights.
//   npx tsx scripts/experiments/1-resnet18-cbam-cifar10.ts [--data DIR] [--epochs 5,15,30] [--weights resnet18.pth] [--out DIR]
import * as path from 'node:path';
import { SHARED_DATA, experiment, experimentArgs, fromRecipe, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '', out: 'runs/exp1-resnet18-cbam-cifar10' });
  console.log(`Experiment 1: recipes/resnet18-cbam-cifar10.yaml on ${a.data}${a.weights ? '' : ' (no --weights: the backbone starts random)'}\n`);
  await experiment(fromRecipe('resnet18-cbam-cifar10', a));
});
