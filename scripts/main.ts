// `npm start`: the main job.
//
// With torchvision's ImageNet ResNet18 weights in PyTorch's cache (`npx torch-attn weights pull
// resnet18`, or a file PyTorch already fetched), the seed documents' recipe
// (recipes/resnet18-cbam-cifar10.yaml): CBAM after each stage of the pretrained ResNet18, head +
// attention first on the frozen backbone, then layer3/layer4, then everything, at 1e-3 / 1e-4 /
// 1e-5. On the CIFAR-10 sample shipped in data/cifar10-sample, two epochs per stage; with --data
// DIR, the full 5 + 15 + 30 epochs.
//
// Without the weights it says so, with the command that fetches them, and trains ResNet18-CBAM
// from scratch instead, every layer from the first epoch (a frozen random backbone cannot learn),
// in bf16 where the CPU computes it natively: a run that visibly learns in a few minutes.
// Never downloads anything. Either way a run directory with metrics, checkpoints,
// evaluation.json and report.html.
//   npm start [-- --data DIR] [--epochs 5,15,30] [--out DIR] [...train flags]
import * as path from 'node:path';
import { main } from '../lib/cli';
import { weightsCacheDir, weightsPath } from '../lib/models/weights';
import { buildInfo } from '../lib/runtime';
import * as fs from 'node:fs';

const root = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const has = (flag: string) => argv.includes(flag) || argv.some((a) => a.startsWith(`${flag}=`));
const sample = !has('--data');
const args = ['train'];
if (!has('--data')) args.push('--data', path.join(root, 'data', 'cifar10-sample'));

const weights = weightsPath('resnet18');
if (fs.existsSync(weights)) {
  args.push('--config', path.join(root, 'recipes', 'resnet18-cbam-cifar10.yaml'), '--weights', 'imagenet');
  if (sample && !has('--epochs')) args.push('--epochs', '2,2,2');
  if (!has('--out')) args.push('--out', sample ? 'runs/demo-resnet18-cbam-cifar10' : 'runs/resnet18-cbam-cifar10');
  console.log(`torch-attn: ImageNet ResNet18 weights found (${weights}):`);
  console.log(`the three-stage recipe of the seed documents (recipes/resnet18-cbam-cifar10.yaml)${sample ? ', two epochs per stage on the 1,000-image CIFAR-10 sample' : ''}\n`);
} else {
  const bf16 = buildInfo().nativePrecisions.cpu.includes('bf16');
  args.push('--config', path.join(root, 'scripts', 'from-scratch-demo.yaml'));
  if (!has('--precision') && bf16) args.push('--precision', 'bf16');
  if (!has('--out')) args.push('--out', 'runs/demo-from-scratch');
  console.log(`torch-attn: no ImageNet ResNet18 weights in ${weightsCacheDir()}; \`npx torch-attn weights pull resnet18\` fetches them (47 MB) and \`npm start\` then runs the three-stage recipe.`);
  console.log(`Meanwhile: ResNet18-CBAM from scratch, every layer trainable, ${bf16 ? 'bf16' : 'fp32'}, on ${sample ? 'the 1,000-image CIFAR-10 sample' : 'your data'}\n`);
}
main([...args, ...argv]).then((code) => {
  process.exitCode = code;
});
