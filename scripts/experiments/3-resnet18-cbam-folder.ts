// Experiment 3: recipes/resnet18-cbam-garbage.yaml — ResNet18-CBAM on a folder of waste photos
// (default: the TrashNet photos), the three-stage schedule, the best-validation checkpoint, then
// `predict` with it on a folder.
//   npx tsx scripts/experiments/3-resnet18-cbam-folder.ts [--data train-folder] [--val val-folder] [--epochs 5,15,30]
//     [--image-size 224] [--predict folder] [--weights resnet18.pth] [--out DIR]
import * as path from 'node:path';
import { main } from '../../lib/cli';
import { SHARED_DATA, experiment, experimentArgs, fromRecipe, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'trashnet', 'train'), epochs: '', out: 'runs/exp3-resnet18-cbam-folder' }, ['val', 'image-size', 'predict']);
  const val = a.extra.val ?? path.join(path.dirname(a.data), 'val');
  const size = a.extra['image-size'] === undefined ? undefined : Number(a.extra['image-size']);
  console.log(`Experiment 3: recipes/resnet18-cbam-garbage.yaml on ${a.data} (validation: ${val})\n`);
  const recipe = fromRecipe('resnet18-cbam-garbage', a);
  const result = await experiment({ ...recipe, data: { ...(recipe.data as object), testPath: val, ...(size ? { imageSize: size } : {}) } });
  const target = a.extra.predict ?? val;
  console.log(`predict with the best-validation checkpoint on ${target}:`);
  const code = await main(['predict', '--checkpoint', path.join(result.dir, 'best.pth'), '--top-k', '2', target]);
  if (code !== 0) process.exitCode = code;
});
