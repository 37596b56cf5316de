// Experiment 4: recipes/cbamcnn-cifar10.yaml — the small CBAM-CNN on CIFAR-10, Adam (1e-3) with
// StepLR (x0.1 every 20 epochs), 50 epochs, batch 64, every layer training from the start.
//   npx tsx scripts/experiments/4-cbamcnn-cifar10.ts [--data DIR] [--epochs 50] [--out DIR]
import * as path from 'node:path';
import { SHARED_DATA, experiment, experimentArgs, fromRecipe, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '', out: 'runs/exp4-cbamcnn-cifar10' });
  console.log(`Experiment 4: recipes/cbamcnn-cifar10.yaml on ${a.data}\n`);
  await experiment(fromRecipe('cbamcnn-cifar10', a));
});
