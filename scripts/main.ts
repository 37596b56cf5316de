// `npm start`: the main job. With --data DIR, the ResNet18-CBAM three-stage fine-tune on CIFAR-10
// (5 + 15 + 30 epochs; --weights FILE loads a torchvision ImageNet checkpoint into the backbone).
// Without it, a short three-stage demo (two epochs per stage) on the small real CIFAR-10 sample
// shipped in data/cifar10-sample, a few minutes on a 2-core CPU. Either way a run directory with
// metrics, checkpoints, evaluation.json and report.html.
//   npm start [-- --data DIR] [--weights FILE] [--epochs 5,15,30] [--out DIR] [...train flags]
import * as path from 'node:path';
import { main } from '../lib/cli';

const argv = process.argv.slice(2);
const has = (flag: string) => argv.includes(flag) || argv.some((a) => a.startsWith(`${flag}=`));
const demo = !has('--data') && !has('--config');
const args = ['train', '--model', 'resnet18', '--attention', 'cbam', '--dataset', 'cifar10'];
if (demo) {
  args.push('--data', path.join(__dirname, '..', 'data', 'cifar10-sample'));
  if (!has('--epochs')) args.push('--epochs', '2,2,2');
  if (!has('--out')) args.push('--out', 'runs/demo-resnet18-cbam-cifar10');
  console.log('torch-attn demo: ResNet18-CBAM, three-stage fine-tune (2 epochs per stage) on 1,000 real CIFAR-10 images');
  console.log('(npm start -- --data <cifar-10-batches-bin folder> runs the full 5 + 15 + 30 epoch schedule)\n');
} else if (!has('--out')) {
  args.push('--out', 'runs/resnet18-cbam-cifar10');
}
main([...args, ...argv]).then((code) => {
  process.exitCode = code;
});
