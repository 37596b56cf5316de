// Experiment 6: ablation of where CBAM sits in ResNet18 — none, after layer4, after layer3-4,
// after every stage — with the same three-stage schedule, seed and data; one table of results.
//   npx tsx scripts/experiments/6-ablation.ts [--data DIR] [--epochs 5,15,30] [--out DIR]
import * as path from 'node:path';
import { table } from '../../lib/cli';
import { SHARED_DATA, experiment, experimentArgs, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '5,15,30', out: 'runs/exp6-ablation' });
  const variants: [string, string, number[] | undefined][] = [
    ['none', 'none', undefined],
    ['layer4', 'cbam', [4]],
    ['layer3-4', 'cbam', [3, 4]],
    ['all stages', 'cbam', [1, 2, 3, 4]],
  ];
  console.log(`Experiment 6: CBAM placement ablation on ResNet18, CIFAR-10 (${a.data}), three stages of ${a.epochs.join(' / ')} epochs each\n`);
  const rows: string[][] = [];
  for (const [label, attention, stages] of variants) {
    const name = `exp6-resnet18-cbam-${label.replace(/\s+/g, '-')}`;
    const r = await experiment({
      name,
      model: { arch: 'resnet18', attention, stem: 'cifar', attentionStages: stages },
      data: { dataset: 'cifar10', path: a.data, augment: 'cifar' },
      epochs: a.epochs.length === 1 ? a.epochs[0] : a.epochs,
      batchSize: a.batchSize, workers: a.workers, seed: a.seed ?? 0, out: `${a.out}/${name}`,
    });
    const last = r.fit.epochs[r.fit.epochs.length - 1];
    rows.push([label, `${(100 * (r.fit.best?.metric ?? 0)).toFixed(2)}%`, `${(100 * (r.evaluation?.top1 ?? 0)).toFixed(2)}%`, `${(100 * (r.evaluation?.top5 ?? 0)).toFixed(2)}%`, (r.evaluation?.macroF1 ?? 0).toFixed(4), last.imagesPerSecond.toFixed(1)]);
  }
  process.stdout.write(table(['CBAM after', 'best top-1', 'final top-1', 'top-5', 'macro-F1', 'img/s (last epoch)'], rows));
});
