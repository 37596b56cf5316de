// Experiment 7: fp32 against bf16 autocast on real data. ResNet18-CBAM from scratch on CIFAR-10
// (the 5,085 / 1,017-image subset by default), one stage training everything at 1e-3 (Adam), the
// CIFAR augmentation chain, the same seed, once in fp32 and once in bf16 (channels-last too with
// --channels-last); prints both curves and the final test top-1 of each.
//   npx tsx scripts/experiments/7-precision.ts [--data DIR] [--epochs 5] [--out DIR] [--channels-last yes]
import * as path from 'node:path';
import { SHARED_DATA, experiment, experimentArgs, run } from './common';

run(async () => {
  const a = experimentArgs({ data: path.join(SHARED_DATA, 'cifar10-subset-bin'), epochs: '5', out: 'runs/exp7-precision' }, ['channels-last']);
  const epochs = a.epochs[0];
  const memoryFormat = a.extra['channels-last'] === 'yes' ? 'channels-last' : 'contiguous';
  console.log(`Experiment 7: ResNet18-CBAM from scratch, CIFAR-10 (${a.data}), ${epochs} epochs, fp32 then bf16 (${memoryFormat}), seed ${a.seed ?? 0}\n`);
  const curves: Record<string, { epoch: number; trainLoss: number; testTop1: number; imagesPerSecond: number }[]> = {};
  for (const precision of ['fp32', 'bf16'] as const) {
    const result = await experiment({
      name: `exp7-${precision}`,
      model: { arch: 'resnet18', attention: 'cbam', stem: 'cifar' },
      data: { dataset: 'cifar10', path: a.data, augment: 'cifar' },
      stages: [{ name: 'all', epochs, train: 'all', lr: 1e-3 }],
      precision,
      memoryFormat,
      batchSize: a.batchSize, workers: a.workers, seed: a.seed, out: path.join(a.out, precision),
    });
    curves[precision] = result.fit.epochs.map((r) => ({ epoch: r.epoch, trainLoss: +r.trainLoss.toFixed(4), testTop1: +(r.testTop1 ?? 0).toFixed(4), imagesPerSecond: +r.imagesPerSecond.toFixed(1) }));
  }
  const final = (p: string) => curves[p][curves[p].length - 1].testTop1;
  console.log(JSON.stringify({ curves, finalTop1: { fp32: final('fp32'), bf16: final('bf16') }, bf16MinusFp32Points: +(100 * (final('bf16') - final('fp32'))).toFixed(2) }));
});
