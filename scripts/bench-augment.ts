// Augmentation throughput per loader thread: the CIFAR training chain of the peer benchmark
// (pad-4 random crop, flip, colour jitter 0.2/0.2/0.2/0.1, rotation 15, toTensor, normalize) on
// random 32x32 images, made by one native loader thread. Prints one JSON object.
// usage: npx tsx scripts/bench-augment.ts [--images 2048] [--peer] (--peer also runs ../shared/peer/bench.py)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { DataLoader, datasets, transforms } from '../lib/index';

export const CIFAR_TRAIN_AUGMENT = transforms.compose([
  transforms.randomCrop(32, { padding: 4 }),
  transforms.randomHorizontalFlip(),
  transforms.colorJitter({ brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.1 }),
  transforms.randomRotation(15),
  transforms.toTensor(),
  transforms.normalize([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.201]),
]);

/** Images per second one loader thread augments: `images` random images (few, so the benchmark
 *  holds little memory), `epochsPerRun` epochs timed together, the median of `repeats` runs. */
export async function augmentImagesPerSecond(images = 2048, repeats = 5, epochsPerRun = 10): Promise<number> {
  const pixels = new Uint8Array(images * 3072);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  const data = datasets.fromArrays({
    images: pixels,
    shape: [images, 3, 32, 32],
    labels: new Int32Array(images),
    classes: ['x'],
    transform: CIFAR_TRAIN_AUGMENT,
  });
  const loader = new DataLoader(data, { batchSize: 256, workers: 1, prefetch: 4, seed: 0 });
  const rates: number[] = [];
  for (let r = 0; r < repeats + 1; r++) {
    const start = process.hrtime.bigint();
    for (let e = 0; e < epochsPerRun; e++) {
      for await (const batch of loader) {
        batch.images.dispose();
        batch.labels.dispose();
      }
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (r > 0) rates.push((images * epochsPerRun) / seconds); // the first run is warm-up
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

function peerAugment(): number | null {
  const bench = path.resolve(__dirname, '../../shared/peer/bench.py');
  if (!existsSync(bench)) return null;
  const out = execFileSync('/usr/bin/python3', [bench, '--threads', '1', '--steps', '1'], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!).augment_img_per_s_1core;
}

if (require.main === module) {
  (async () => {
    const argv = process.argv.slice(2);
    const imagesAt = argv.indexOf('--images');
    const images = imagesAt >= 0 ? Number(argv[imagesAt + 1]) : 2048;
    const ours = await augmentImagesPerSecond(images);
    const peer = argv.includes('--peer') ? peerAugment() : null;
    console.log(
      JSON.stringify({
        augment_img_per_s_1core: Math.round(ours),
        peer_augment_img_per_s_1core: peer,
        ratio: peer ? Math.round((ours / peer) * 100) / 100 : null,
      }),
    );
  })();
}
