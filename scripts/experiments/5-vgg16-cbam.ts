// Experiment 5: recipes/vgg16-cbam-cifar10.yaml — the lesson's homework, VGG16 (without BatchNorm,
// as torchvision's vgg16; --bn yes for vgg16_bn) + CBAM after each of its five stages on CIFAR-10,
// the staged schedule: head + attention at 1e-3, then stage4/stage5 too at 1e-4, everything at 1e-5.
//   npx tsx scripts/experiments/5-vgg16-cbam.ts [--data DIR] [--epochs 5,15,30] [--weights vgg16.pth] [--bn yes] [--out DIR]
import * as path from 'node:path';
import { SHARED_DATA, experiment, experimentArgs, fromRecipe, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '', out: 'runs/exp5-vgg16-cbam-cifar10' }, ['bn']);
  const bn = a.extra.bn === 'yes';
  console.log(`Experiment 5: recipes/vgg16-cbam-cifar10.yaml${bn ? ' with BatchNorm (vgg16_bn)' : ''} on ${a.data}\n`);
  const recipe = fromRecipe('vgg16-cbam-cifar10', a);
  await experiment({ ...recipe, model: { ...(recipe.model as object), batchNorm: bn } });
});
