// DataLoader: order, reshuffling, determinism across thread counts, prefetch, early exit and
// errors. Each test image's pixels hold its index, so a batch says which samples it carries.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataLoader, datasets, ErrorCode, transforms, type Batch, type TransformLike } from '../../lib/index';
import { rejection, thrown } from '../helpers';

const N = 100;
function indexed(n = N, transform: TransformLike = transforms.toTensor()) {
  const images = new Uint8Array(n * 3 * 4 * 4);
  for (let i = 0; i < n; i++) images.fill(i, i * 48, (i + 1) * 48);
  return datasets.fromArrays({ images, shape: [n, 3, 4, 4], labels: Array.from({ length: n }, (_, i) => i % 10), classes: [...'abcdefghij'], transform });
}

/** The sample indices of each batch of an epoch. */
async function epoch(loader: DataLoader, index?: number): Promise<number[][]> {
  const out: number[][] = [];
  const it = index === undefined ? loader : loader.epoch(index);
  for await (const batch of it as AsyncIterable<Batch>) {
    const [b, c, h, w] = batch.images.shape;
    expect([c, h, w]).toEqual([3, 4, 4]);
    const px = batch.images.data() as Float32Array;
    const ids = Array.from({ length: b }, (_, i) => Math.round(px[i * 48] * 255));
    expect([...(batch.labels.data() as BigInt64Array)].map(Number)).toEqual(ids.map((i) => i % 10));
    out.push(ids);
  }
  return out;
}

describe('DataLoader', () => {
  it('gives every sample once, in order without shuffle, in batches of batchSize (last one smaller)', async () => {
    const loader = new DataLoader(indexed(), { batchSize: 32, workers: 2 });
    expect(loader.length).toBe(4);
    const batches = await epoch(loader);
    expect(batches.map((b) => b.length)).toEqual([32, 32, 32, 4]);
    expect(batches.flat()).toEqual(Array.from({ length: N }, (_, i) => i));
    const dropping = new DataLoader(indexed(), { batchSize: 32, dropLast: true });
    expect(dropping.length).toBe(3);
    expect((await epoch(dropping)).flat()).toHaveLength(96);
  });

  it('reshuffles each epoch; the same seed gives the same epochs whatever the thread count', async () => {
    const make = (workers: number) => new DataLoader(indexed(N, transforms.compose([transforms.randomHorizontalFlip(), transforms.toTensor()])), { batchSize: 16, shuffle: true, seed: 7, workers });
    const a = make(2);
    const e0 = await epoch(a);
    const e1 = await epoch(a);
    expect([...e0.flat()].sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(e1.flat()).not.toEqual(e0.flat());
    for (const workers of [0, 1, 3]) {
      const b = make(workers);
      expect(await epoch(b)).toEqual(e0);
      expect(await epoch(b, 1)).toEqual(e1);
    }
    expect(await epoch(new DataLoader(indexed(), { batchSize: 16, shuffle: true, seed: 8 }))).not.toEqual(e0);
  });

  it('augmentation is seeded per (seed, epoch, sample): batches are identical across runs and thread counts', async () => {
    const aug = transforms.compose([transforms.randomCrop(32, { padding: 4 }), transforms.colorJitter({ brightness: 0.4, hue: 0.2 }), transforms.toTensor()]);
    const source = await datasets.cifar10(path.join(__dirname, '../fixtures/data'));
    const run = async (workers: number) => {
      const loader = new DataLoader(source.withTransform(aug), { batchSize: 2, shuffle: true, seed: 3, workers });
      const out: Buffer[] = [];
      for await (const batch of loader) out.push(Buffer.from((batch.images.data() as Float32Array).buffer));
      return Buffer.concat(out);
    };
    const one = await run(1);
    expect((await run(3)).equals(one)).toBe(true);
    expect((await run(0)).equals(one)).toBe(true);
  });

  it('stops cleanly when the consumer leaves early', async () => {
    const loader = new DataLoader(indexed(), { batchSize: 4, workers: 3, prefetch: 2 });
    let seen = 0;
    for await (const batch of loader) {
      seen += batch.labels.numel;
      if (seen >= 8) break;
    }
    expect(seen).toBe(8);
    expect((await epoch(loader)).flat()).toHaveLength(N); // the next epoch starts afresh
  });

  it('refuses a second next() while one is pending', async () => {
    const loader = new DataLoader(indexed(), { batchSize: 4 });
    const stream = loader.handle.epoch(0);
    const first = stream.next();
    expect(thrown(() => stream.next()).code).toBe(ErrorCode.BUSY);
    await first;
    stream.close();
  });

  it('checks its options and the dataset', () => {
    expect(thrown(() => new DataLoader(indexed(), { batchSize: 0 })).message).toMatch(/batchSize must be at least 1, got 0/);
    expect(thrown(() => new DataLoader(indexed(), { workers: -1 })).message).toMatch(/workers must be from 0 to 256/);
    expect(thrown(() => new DataLoader(indexed(), { batchsize: 4 } as never)).message).toMatch(/Unknown option 'batchsize'/);
    expect(thrown(() => new DataLoader({} as never)).name).toBe('TypeError');
    expect(thrown(() => new DataLoader(indexed(N, [] as never), { batchSize: 2 })).message).toMatch(/end the dataset's transform with toTensor\(\)/);
  });

  it('reports a sample that fails (a corrupt file, mixed image sizes) with what went wrong', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-loader-'));
    try {
      fs.cpSync(path.join(__dirname, '../fixtures/data/folder'), dir, { recursive: true });
      const mixed = await datasets.imageFolder(dir, { transform: transforms.toTensor() });
      const drain = async (loader: DataLoader) => {
        for await (const batch of loader) batch.images.dispose();
      };
      const err = await rejection(drain(new DataLoader(mixed, { batchSize: 6, workers: 2 })));
      expect(err.message).toMatch(/DataLoader: sample \d is 3x\d+x\d+ but sample 0 in the same batch is 3x13x17; give the transform a fixed output size/);
      fs.writeFileSync(path.join(dir, 'dog', 'e.png'), 'broken');
      const sized = await datasets.imageFolder(dir, { transform: [transforms.resize([8, 8]), transforms.toTensor()] });
      const bad = await rejection(drain(new DataLoader(sized, { batchSize: 2, workers: 2 })));
      expect(bad.code).toBe(ErrorCode.DATA);
      expect(bad.message).toContain(`${path.join(dir, 'dog', 'e.png')}: not a JPEG or PNG file`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('closing a stream early (hardening classes 9 and 19)', () => {
  // Large PNGs (small files: smooth content compresses), each a while to decode and resize, so a
  // close lands while the workers are busy.
  function png(width: number, height: number, seed: number): Buffer {
    const zlib = require('node:zlib') as typeof import('node:zlib');
    const raw = Buffer.alloc((width * 3 + 1) * height);
    let s = seed;
    for (let i = 0; i < raw.length; i++) raw[i] = i % (width * 3 + 1) === 0 ? 0 : (s + (i >> 12)) & 0xff;
    const chunk = (type: string, data: Buffer) => {
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      body.copy(out, 4);
      out.writeUInt32BE(zlib.crc32(body) >>> 0, 8 + data.length);
      return out;
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // RGB
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 1 })), chunk('IEND', Buffer.alloc(0))]);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-slow-'));
  const files = Array.from({ length: 12 }, (_, i) => {
    const file = path.join(dir, `${i}.png`);
    fs.writeFileSync(file, png(4000, 3000, i + 1));
    return file;
  });
  const resized = () => datasets.fromFiles(files, ['x'], transforms.compose([transforms.resize([32, 32]), transforms.toTensor()]));

  it('return() stops the workers and joins them off the JS thread', async () => {
    const loader = new DataLoader(resized(), { batchSize: 3, workers: 2 });
    const it = loader.epoch(0);
    await it.next();
    const started = performance.now();
    const closing = it.return!();
    const synchronous = performance.now() - started;
    await closing;
    expect(synchronous).toBeLessThan(20); // joining workers mid-decode took the JS thread for the whole decode
  }, 60_000);

  it('with workers: 0, a return() that races a pending next() never yields a half-made batch', async () => {
    const want = await new DataLoader(resized(), { batchSize: 6, workers: 0 }).epoch(0).next();
    for (const delay of [0, 5, 20, 60]) {
      const it = new DataLoader(resized(), { batchSize: 6, workers: 0 }).epoch(0);
      const pending = it.next();
      await new Promise((r) => setTimeout(r, delay));
      await it.return!();
      const got = await pending;
      if (!got.done) expect(Buffer.from(got.value.images.data() as Float32Array).equals(Buffer.from(want.value!.images.data() as Float32Array))).toBe(true);
    }
  }, 60_000);
});
