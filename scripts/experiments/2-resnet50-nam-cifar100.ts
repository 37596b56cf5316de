// Experiment 2: recipes/resnet50-nam-cifar100.yaml and its baseline recipes/resnet50-cifar100.yaml
// — ResNet50 with NAM inside every bottleneck against the plain ResNet50 on CIFAR-100, SGD with a
// warm-up from 0 over 2,000 steps and a per-epoch cosine (T_max 300), batch 256; one table.
//   npx tsx scripts/experiments/2-resnet50-nam-cifar100.ts --data <cifar-100-python or cifar-100-binary folder> [--epochs 90] [--out DIR]
import { table } from '../../lib/cli';
import { experiment, experimentArgs, fromRecipe, run } from './common';

run(async () => {
  const a = experimentArgs({ data: 'data/cifar-100-python', epochs: '', out: 'runs/exp2-cifar100' });
  console.log(`Experiment 2: ResNet50-NAM against a plain ResNet50 on CIFAR-100 (${a.data}), the NAM document's recipe\n`);
  const results: string[][] = [];
  for (const name of ['resnet50-nam-cifar100', 'resnet50-cifar100']) {
    const r = await experiment(fromRecipe(name, { ...a, out: `${a.out}/${name}` }));
    results.push([name, `${(100 * (r.fit.best?.metric ?? 0)).toFixed(2)}%`, `${(100 * (r.evaluation?.top1 ?? 0)).toFixed(2)}%`, `${(100 * (r.evaluation?.top5 ?? 0)).toFixed(2)}%`]);
  }
  process.stdout.write(table(['recipe', 'best top-1', 'final top-1 (best.pth)', 'top-5'], results));
});
