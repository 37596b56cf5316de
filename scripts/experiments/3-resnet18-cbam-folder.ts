// Experiment 3: ResNet18-CBAM on an image folder of photos (default: the TrashNet waste-sorting
// photos), the three-stage schedule, the best-validation checkpoint, then `predict` on a folder.
//   npx tsx scripts/experiments/3-resnet18-cbam-folder.ts [--data train-folder] [--val val-folder] [--epochs 5,15,30]
//     [--image-size 160] [--predict folder] [--weights resnet18.pth] [--out DIR]
import * as path from 'node:path';
import { main } from '../../lib/cli';
import { SHARED_DATA, experiment, experimentArgs, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'trashnet', 'train'), epochs: '5,15,30', out: 'runs/exp3-resnet18-cbam-folder' }, ['val', 'image-size', 'predict']);
  const size = Number(a.extra['image-size'] ?? 160);
  const val = a.extra.val ?? path.join(path.dirname(a.data), 'val');
  console.log(`Experiment 3: ResNet18-CBAM (ImageNet stem) on the image folder ${a.data} (validation: ${val}), ${size}x${size}, three stages of ${a.epochs.join(' / ')} epochs\n`);
  const result = await experiment({
    name: 'exp3-resnet18-cbam-folder',
    model: { arch: 'resnet18', attention: 'cbam', stem: 'imagenet', weights: a.weights },
    data: { dataset: 'imageFolder', path: a.data, testPath: val, imageSize: size, augment: 'imagenet' },
    epochs: a.epochs.length === 1 ? a.epochs[0] : a.epochs,
    batchSize: a.batchSize ?? 32, workers: a.workers, seed: a.seed, out: a.out,
  });
  const target = a.extra.predict ?? val;
  console.log(`predict with the best-validation checkpoint on ${target}:`);
  const code = await main(['predict', '--checkpoint', path.join(result.dir, 'best.pth'), '--top-k', '2', target]);
  if (code !== 0) process.exitCode = code;
});
