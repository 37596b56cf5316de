// Concurrent inference on one model: predict() calls overlap, the dynamic batcher coalesces them
// (results equal to one-at-a-time predictions), back-pressure, cancellation, the exclusivity of
// training and inference, and images decoded from memory like the image datasets decode files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CBAMCNN, ErrorCode, ResNetCBAM, datasets, decodeImage, manualSeed, optim, randn, tensor, transforms, type BatchInfo, type Tensor } from '../../lib/index';
import { rejection, sanitized, thrown } from '../helpers';

const FOLDER = path.resolve(__dirname, '..', 'fixtures', 'data', 'folder');
const EVAL = [transforms.resize(32), transforms.centerCrop(32), transforms.toTensor(), transforms.normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])];

function maxRelDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  expect(x.length).toBe(y.length);
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]) / Math.max(1e-3, Math.abs(y[i])));
  return d;
}

function model() {
  manualSeed(0);
  return new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
}

describe('concurrent inference', () => {
  it('64 concurrent predictor calls resolve with one-at-a-time results, in batches larger than one', async () => {
    const m = model();
    const xs = Array.from({ length: 64 }, () => randn([3, 32, 32]));
    const p = m.predictor({ maxBatch: 16, maxDelayMs: 20 });
    const started = performance.now();
    const ys = await Promise.all(xs.map((x) => p.predict(x)));
    const wall = performance.now() - started;
    const stats = p.stats();
    expect(stats.requests).toBe(64);
    // Their running times never overlap (a full batch handed over behind another counts from
    // when that one ended): together no more than the wall time.
    expect(stats.computeMs).toBeGreaterThan(0);
    expect(stats.computeMs).toBeLessThanOrEqual(wall);
    expect(stats.images).toBe(64);
    expect(stats.batches).toBeLessThan(64);
    expect(stats.maxBatchSize).toBeGreaterThan(1);
    expect(stats.maxBatchSize).toBeLessThanOrEqual(16);
    expect(stats.meanBatchSize).toBeGreaterThan(1);
    for (let i = 0; i < 64; i++) {
      expect(ys[i].shape).toEqual([10]);
      const alone = await m.predict(tensor(xs[i].toFloat32Array(), [1, 3, 32, 32]));
      expect(maxRelDiff(ys[i], tensor(alone.toFloat32Array(), [10]))).toBeLessThan(1e-4);
    }
    // Batches of several images (B x C x H x W) go through the batcher too.
    const b = await p.predict(randn([5, 3, 32, 32]));
    expect(b.shape).toEqual([5, 10]);
    await p.close();
  });

  it('a full batch is handed to the model while one runs (two at most); one that is not full waits', async () => {
    const m = model();
    // The batcher's calls into the model, counted while they are unanswered.
    const calls = m.native.predictParts.bind(m.native);
    let open = 0;
    let most = 0;
    const sizes: number[] = [];
    const counting: typeof calls = (xs, precision) => {
      most = Math.max(most, ++open);
      sizes.push(xs.length);
      return calls(xs, precision).finally(() => open--);
    };
    Object.defineProperty(m.native, 'predictParts', { value: counting });  // the class's own is read-only
    const full = m.predictor({ maxBatch: 1, maxDelayMs: 0 });
    await Promise.all(Array.from({ length: 8 }, () => full.predict(randn([3, 32, 32]))));
    expect(most).toBe(2);
    expect(full.stats().batches).toBe(8);
    // The running times counted never overlap (a batch waiting behind another counts from when
    // that one ended): together no more than the wall time.
    const before = full.stats().computeMs;
    const started = performance.now();
    await Promise.all(Array.from({ length: 8 }, () => full.predict(randn([3, 32, 32]))));
    const wall = performance.now() - started;
    const counted = full.stats().computeMs - before;
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeLessThanOrEqual(wall);
    most = 0;
    sizes.length = 0;
    const partial = m.predictor({ maxBatch: 4, maxDelayMs: 0 });
    const first = partial.predict(randn([3, 32, 32]));
    const rest = Array.from({ length: 3 }, () => partial.predict(randn([3, 32, 32])));
    await Promise.all([first, ...rest]);
    // The first ran alone; the three behind it, not a full batch, waited for it and ran together.
    expect(most).toBe(1);
    expect(sizes).toEqual([1, 3]);
  });

  it('a batch waits maxDelayMs from when the model became free for more requests, where its oldest arrived during a batch', async () => {
    const m = model();
    // The first call into the model is held until released: the batch runs as long as the test says.
    const calls = m.native.predictParts.bind(m.native);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const requests: number[] = [];  // per call into the model (one part a request)
    const holding: typeof calls = (xs, precision) => {
      requests.push(xs.length);
      const out = calls(xs, precision);
      return requests.length === 1 ? out.then(async (ys) => (await held, ys)) : out;
    };
    Object.defineProperty(m.native, 'predictParts', { value: holding });
    const p = m.predictor({ maxBatch: 8, maxDelayMs: 200 });
    const first = p.predict(randn([8, 3, 32, 32]));  // full: runs at once
    const during = p.predict(randn([3, 32, 32]));     // arrives while the first runs
    await new Promise((resolve) => setTimeout(resolve, 300));  // longer than maxDelayMs since it arrived
    release();
    await first;
    // Shortly after the model became free (the first's answer taken): within the window it opened.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const after = p.predict(randn([3, 32, 32]));
    await Promise.all([during, after]);
    // Counted from its arrival, `during` would have run alone at once: [1, 1, 1].
    expect(requests).toEqual([1, 2]);
    await p.close();
  });

  it('plain predict() calls on one model overlap instead of failing busy', async () => {
    const m = model();
    const xs = Array.from({ length: 8 }, () => randn([2, 3, 32, 32]));
    const ys = await Promise.all(xs.map((x) => m.predict(x)));
    for (let i = 0; i < 8; i++) expect(maxRelDiff(ys[i], await m.predict(xs[i]))).toBe(0);
    // forward() runs beside them too (queued on the compute thread).
    const pending = m.predict(randn([4, 3, 32, 32]));
    expect(m.forward(randn([1, 3, 32, 32])).shape).toEqual([1, 10]);
    await pending;
  });

  it('imageSize: predictions of any other H x W are refused before the model, naming both sizes', async () => {
    const m = new CBAMCNN({ numClasses: 3 }).eval();
    const p = m.predictor({ imageSize: 32, transform: [transforms.toTensor()] });
    expect(p.imageSize).toEqual([32, 32]);
    expect((await p.predict(randn([3, 32, 32]))).shape).toEqual([3]);
    const wrong = await rejection(p.predict(randn([2, 3, 64, 48])));
    expect([wrong.name, wrong.message]).toEqual(['RangeError', 'predictor.predict(x): this predictor takes 32 x 32 images, got 64 x 48']);
    const image = await rejection(p.classify(fs.readFileSync(path.join(FOLDER, 'cat', 'b.jpg')), { name: 'b.jpg' }));
    expect([(image as Error & { code?: string }).code, image.message]).toEqual([ErrorCode.DATA, 'b.jpg: this predictor takes 32 x 32 images, got 24 x 36 after the transform (resize and centerCrop in the transform bring any image to its size)']);
    expect(p.stats().requests).toBe(1);
    expect(m.predictor({ imageSize: [24, 36] }).imageSize).toEqual([24, 36]);
    for (const bad of [0, 2.5, [32], [32, 0], '32']) expect(thrown(() => m.predictor({ imageSize: bad as never })).message).toMatch(/predictor\(\) options.imageSize/);
    await p.close();
  });

  it('onBatch reports each batch: its images, requests, running time and every request\'s wait, in arrival order', async () => {
    const m = new CBAMCNN({ numClasses: 3 }).eval();
    const infos: BatchInfo[] = [];
    const p = m.predictor({ maxBatch: 4, maxDelayMs: 0, onBatch: (b) => infos.push(b) });
    const first = p.predict(randn([3, 32, 32]));
    await Promise.all([first, ...Array.from({ length: 3 }, () => p.predict(randn([3, 32, 32])))]);
    expect(infos.map((b) => [b.images, b.requests, b.waitsMs.length])).toEqual([[1, 1, 1], [3, 3, 3]]);
    const [, behind] = infos;
    // The three behind the first waited for it; the earlier one arrived, the longer it waited.
    for (const w of behind.waitsMs) expect(w).toBeGreaterThan(0);
    expect([...behind.waitsMs].sort((a, b) => b - a)).toEqual(behind.waitsMs);
    const waits = infos.flatMap((b) => b.waitsMs);
    expect(p.stats().meanQueueWaitMs).toBeCloseTo(waits.reduce((a, b) => a + b, 0) / waits.length, 9);
    await p.close();
  });

  it('an onBatch listener that throws becomes a process warning; the requests resolve and the batcher goes on', async () => {
    const m = new CBAMCNN({ numClasses: 3 }).eval();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const p = m.predictor({ maxDelayMs: 5, onBatch: () => { throw new Error('metrics are down'); } });
      const first = await Promise.all([p.predict(randn([3, 32, 32])), p.predict(randn([3, 32, 32]))]);
      expect(first.map((y) => y.shape)).toEqual([[3], [3]]);
      expect((await p.predict(randn([3, 32, 32]))).shape).toEqual([3]);
      await new Promise((r) => setImmediate(r));
      expect(warnings.length).toBe(p.stats().batches);
      expect(warnings[0].message).toMatch(/predictor onBatch listener threw: metrics are down/);
      expect((warnings[0] as Error & { code?: string }).code).toBe('TORCH_ATTN_LISTENER_ERROR');
      await p.close();
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a full queue refuses with ERR_TORCH_ATTN_OVERLOADED; the accepted requests complete', async () => {
    const m = model();
    const p = m.predictor({ maxBatch: 16, maxDelayMs: 300, maxQueue: 6 });
    const accepted = Array.from({ length: 6 }, () => p.predict(randn([3, 32, 32])));
    const err = await rejection(p.predict(randn([3, 32, 32])));
    expect(err.code).toBe(ErrorCode.OVERLOADED);
    expect(err.message).toMatch(/overloaded: 6 images wait \(maxQueue 6\)/);
    expect(p.stats().rejected).toBe(1);
    expect((await Promise.all(accepted)).length).toBe(6);
  });

  it('aborting a queued request removes it; the others complete', async () => {
    const m = model();
    const p = m.predictor({ maxBatch: 8, maxDelayMs: 200 });
    const ac = new AbortController();
    const a = p.predict(randn([3, 32, 32]));
    const b = p.predict(randn([3, 32, 32]), { signal: ac.signal });
    const c = p.predict(randn([3, 32, 32]));
    ac.abort();
    const err = await rejection(b);
    expect(err.name).toBe('AbortError');
    await Promise.all([a, c]);
    expect(p.stats()).toMatchObject({ aborted: 1, images: 2, batches: 1 });
    // An already aborted signal rejects at once.
    expect((await rejection(p.predict(randn([3, 32, 32]), { signal: AbortSignal.abort() }))).name).toBe('AbortError');
  });

  it('training and inference on one model exclude each other, with a clear error', async () => {
    const m = model();
    const opt = optim.sgd(m, [{ params: 'all' }], { lr: 0.01 });
    const x = randn([2, 3, 32, 32]);
    const y = tensor(BigInt64Array.from([1n, 2n]), [2]);
    const p = m.predictor({ maxBatch: 8, maxDelayMs: 0 });
    const running = p.predict(randn([8, 3, 32, 32]));
    await new Promise((r) => setImmediate(r));
    const busy = await rejection(m.trainStep(opt, x, y));
    expect(busy.code).toBe(ErrorCode.BUSY);
    expect(busy.message).toMatch(/busy with 1 running predict\(\) call\(s\).*not training or loading/);
    await running;
    const step = m.trainStep(opt, x, y);
    const refused = await rejection(p.predict(randn([3, 32, 32])));
    expect(refused.code).toBe(ErrorCode.BUSY);
    expect(refused.message).toMatch(/busy with trainStep\(\)/);
    await step;
    expect(p.stats().failed).toBe(1);
    // A bad input fails only its own request when batched with good ones.
    const [good, bad] = await Promise.allSettled([p.predict(randn([3, 32, 32])), p.predict(randn([4, 32, 32]))]);
    expect(good.status).toBe('fulfilled');
    expect(bad.status === 'rejected' && String(bad.reason.message)).toMatch(/expects 3 input channels, got 4/);
  });

  it('checks its options and inputs', async () => {
    const m = model();
    expect(thrown(() => m.predictor({ maxBatch: 0 })).message).toMatch(/maxBatch must be from 1 to 65536, got 0/);
    expect(thrown(() => m.predictor({ maxDelayMs: -1 })).message).toMatch(/maxDelayMs must be from 0 to 2147483647/);
    // An integer past 2^53 - 1 (not one a number holds exactly) is said to be that, not 'not an integer'.
    expect(thrown(() => m.predictor({ maxQueue: 2 ** 60 })).message).toBe('predictor() options.maxQueue must be at most 2^53 - 1 (beyond, a number is not exact), got 1152921504606847000');
    expect(thrown(() => m.predictor({ precision: 'fp8' as never })).message).toMatch(/precision must be one of 'fp32', 'bf16', 'fp16'/);
    expect(thrown(() => m.predictor({ batch: 3 } as never)).message).toMatch(/Unknown option 'batch'/);
    expect(thrown(() => m.predictor({ classes: [1, 2] as never })).message).toMatch(/classes/);
    const p = m.predictor();
    expect((await rejection(p.predict(randn([32, 32])))).message).toMatch(/one image C x H x W or a batch B x C x H x W, got shape \[32, 32\]/);
    expect((await rejection(p.predict(tensor(new Uint8Array(3 * 4 * 4), [3, 4, 4])))).message).toMatch(/float32 tensor \(after toTensor\), got uint8/);
    expect((await rejection(p.predict('x' as never))).message).toMatch(/predictor.predict\(x\)/);
    expect((await rejection(p.classify(Buffer.from('x')))).message).toMatch(/classify\(\) needs the model's eval transform/);
    await p.close();
    expect((await rejection(p.predict(randn([3, 32, 32])))).message).toMatch(/the predictor is closed/);
  });
});

describe('images from memory', () => {
  it('decodeImage gives the pixels the image datasets give for the same file, with or without a transform', async () => {
    for (const file of [path.join(FOLDER, 'cat', 'a.png'), path.join(FOLDER, 'cat', 'b.jpg')]) {
      const fromMemory = await decodeImage(fs.readFileSync(file));
      const ds = datasets.fromFiles([file], ['x']);
      const fromFile = (await ds.get(0)).image;
      expect(fromMemory.shape).toEqual(fromFile.shape);
      expect(fromMemory.dtype).toBe('uint8');
      expect(Buffer.from(fromMemory.data() as Uint8Array).equals(Buffer.from(fromFile.data() as Uint8Array))).toBe(true);
      const transformed = await decodeImage(fs.readFileSync(file), { transform: EVAL });
      const viaDataset = (await datasets.fromFiles([file], ['x'], EVAL).get(0)).image;
      expect(transformed.shape).toEqual([3, 32, 32]);
      expect(maxRelDiff(transformed, viaDataset)).toBe(0);
    }
  });

  it('a small image decodes at once on the JS thread, a larger one or a heavier transform in the pool: the same pixels, errors as rejections', async () => {
    const settledBeforeImmediate = async (p: Promise<unknown>) => {
      let first = '';
      const immediate = new Promise<void>((r) => setImmediate(() => r(void (first ||= 'immediate'))));
      await Promise.all([p.then(() => void (first ||= 'decode'), () => void (first ||= 'decode')), immediate]);
      return first === 'decode';
    };
    const jpeg = fs.readFileSync(path.join(FOLDER, 'cat', 'b.jpg')); // 36 x 24, 1 KB
    const twice = [transforms.functional.hflip(), transforms.functional.hflip()]; // no change, but not a step taken inline
    for (const [bytes, transform] of [[jpeg, EVAL], [fs.readFileSync(path.join(FOLDER, 'cat', 'a.png')), EVAL], [jpeg, undefined]] as const) {
      const here = decodeImage(bytes, { transform });
      expect(await settledBeforeImmediate(here)).toBe(true);
      const pooled = await decodeImage(bytes, { transform: [...twice, ...(transform ?? [])] });
      expect(maxRelDiff(await here, pooled)).toBe(0);
    }
    // Not taken inline (a size over 64 in the transform): the pool's path, the same result's shape.
    const big = await decodeImage(jpeg, { transform: [transforms.resize(65), transforms.centerCrop(32), transforms.toTensor()] });
    expect(big.shape).toEqual([3, 32, 32]);
    // A bad small image rejects (it does not throw), with the same error as from the pool.
    const cut = jpeg.subarray(0, jpeg.length - 200);
    const inline = decodeImage(cut, { name: 'cut.jpg' });
    expect(inline).toBeInstanceOf(Promise);
    const e1 = await rejection(inline);
    const e2 = await rejection(decodeImage(cut, { name: 'cut.jpg', transform: twice }));
    expect([e1.code, e1.message]).toEqual([e2.code, e2.message]);
    expect(e1.code).toBe(ErrorCode.DATA);
  });

  it.skipIf(sanitized)('decoding images in a loop does not grow the heap by an image a call (each image\'s buffer becomes its tensor, no second copy)', async () => {
    // Each image was decoded into a buffer, then copied into a tensor from LibTorch's allocator:
    // two buffers of its size from two allocation paths a call, and glibc's heap grew by about one
    // image a call for as long as the loop ran (+47 MB every 4,000 CIFAR JPEGs, 85-99 us a call),
    // freed memory never reused. Now the buffer is the tensor's: ~4 MB over the 24,000 measured.
    const jpeg = fs.readFileSync(path.join(FOLDER, 'cat', 'b.jpg'));
    const rounds = async (n: number) => {
      for (let i = 0; i < n; i++) (await decodeImage(jpeg, { transform: EVAL })).dispose();
    };
    await rounds(24_000);
    const before = process.memoryUsage().rss;
    await rounds(24_000);
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(24);
  });

  it('a corrupt, empty or oversized image rejects with ERR_TORCH_ATTN_DATA naming it; bad arguments are TypeErrors', async () => {
    const jpeg = fs.readFileSync(path.join(FOLDER, 'cat', 'b.jpg'));
    let err = await rejection(decodeImage(jpeg.subarray(0, 40), { name: 'upload.jpg' }));
    expect(err.code).toBe(ErrorCode.DATA);
    expect(err.message).toMatch(/upload.jpg/);
    err = await rejection(decodeImage(Buffer.from('GIF89a not supported')));
    expect(err.code).toBe(ErrorCode.DATA);
    err = await rejection(decodeImage(new Uint8Array(0)));
    expect(err.code).toBe(ErrorCode.DATA);
    const limits = datasets.imageLimits();
    try {
      datasets.imageLimits({ maxFileBytes: 100 });
      err = await rejection(decodeImage(jpeg));
      expect(err.code).toBe(ErrorCode.DATA);
      expect(err.message).toMatch(/over the image size limit of 100 bytes/);
    } finally {
      datasets.imageLimits(limits);
    }
    expect((await rejection(decodeImage('x' as never))).message).toMatch(/Expected a Buffer or Uint8Array for decodeImage\(data\)/);
    expect((await rejection(decodeImage(jpeg, { transform: 3 as never }))).name).toBe('TypeError');
  });

  it('a signal that is not an AbortSignal, or a delay longer than a timer takes, is refused naming the option', async () => {
    const p = new CBAMCNN({ numClasses: 3 }).eval().predictor({ transform: EVAL });
    const png = fs.readFileSync(path.join(FOLDER, 'cat', 'a.png'));
    for (const signal of [5, {}, { aborted: true }]) {
      expect((await rejection(p.predict(randn([3, 32, 32]), { signal: signal as never }))).message).toMatch(/Expected an AbortSignal .* for predictor.predict\(\) options.signal/);
      expect((await rejection(p.classify(png, { signal: signal as never }))).message).toMatch(/Expected an AbortSignal .* for classify\(\) options.signal/);
    }
    expect(p.stats().requests).toBe(0);
    await p.close();
    const m = new CBAMCNN({ numClasses: 3 });
    // Node made a longer timer fire after 1 ms.
    expect(thrown(() => m.predictor({ maxDelayMs: 1e12 })).message).toBe("predictor() options.maxDelayMs must be from 0 to 2147483647 (a timer's longest), got 1000000000000");
    expect(m.predictor({ maxDelayMs: 2 ** 31 - 1 }).maxDelayMs).toBe(2 ** 31 - 1);
  });

  it('maxPixels refuses an image from its header, before decoding it; within it the same pixels', async () => {
    const jpeg = fs.readFileSync(path.join(FOLDER, 'cat', 'b.jpg')); // 36 x 24: 864 pixels
    const png = fs.readFileSync(path.join(FOLDER, 'cat', 'a.png')); // 17 x 13: 221 pixels
    // The same JPEG with a 16-KB comment segment: decoded in the pool, not inline.
    const big = Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xfe, 0x40, 0x02]), Buffer.alloc(0x4000), jpeg.subarray(2)]);
    for (const [bytes, pixels, size] of [[jpeg, 864, '36 x 24'], [big, 864, '36 x 24'], [png, 221, '17 x 13']] as const) {
      const err = await rejection(decodeImage(bytes, { maxPixels: pixels - 1, name: 'upload' }));
      expect(err.code).toBe(ErrorCode.DATA);
      expect(err.message).toBe(`upload: ${size} is ${pixels} pixels, more than the ${pixels - 1} this decoder takes (maxPixels)`);
      expect(maxRelDiff(await decodeImage(bytes, { maxPixels: pixels }), await decodeImage(bytes))).toBe(0);
    }
    // From the header: a file cut short says it is too large, not that it is truncated.
    const err = await rejection(decodeImage(jpeg.subarray(0, jpeg.length - 200), { maxPixels: 100 }));
    expect(err.message).toMatch(/more than the 100 this decoder takes/);
    for (const bad of [0, 1.5, -3]) expect((await rejection(decodeImage(jpeg, { maxPixels: bad }))).message).toMatch(/decodeImage\(\) options\.maxPixels/);
    // A predictor's classify() takes it as an option.
    manualSeed(0);
    const p = new CBAMCNN({ numClasses: 3 }).eval().predictor({ transform: EVAL, maxPixels: 500 });
    expect(p.maxPixels).toBe(500);
    const e = await rejection(p.classify(jpeg));
    expect([e.code, e.message]).toEqual([ErrorCode.DATA, 'image: 36 x 24 is 864 pixels, more than the 500 this decoder takes (maxPixels)']);
    expect((await p.classify(png)).length).toBe(3);
    expect(p.stats().requests).toBe(1);
    await p.close();
  });

  it('classify: top-k labels and probabilities through the batcher, one list per image', async () => {
    manualSeed(0);
    const m = new CBAMCNN({ numClasses: 3 }).eval();
    const p = m.predictor({ transform: EVAL, classes: ['red', 'green', 'blue'], maxDelayMs: 10 });
    const bytes = [path.join(FOLDER, 'cat', 'a.png'), path.join(FOLDER, 'cat', 'b.jpg')].map((f) => fs.readFileSync(f));
    const [one, two] = await p.classify(bytes, { topK: 2 });
    expect(one.length).toBe(2);
    expect(one[0].probability).toBeGreaterThanOrEqual(one[1].probability);
    expect(['red', 'green', 'blue']).toContain(one[0].label);
    expect(one[0].label).toBe(['red', 'green', 'blue'][one[0].index]);
    const logits = (await m.predict(await decodeImage(bytes[1], { transform: EVAL }).then((t) => tensor(t.toFloat32Array(), [1, 3, 32, 32])))).toFloat32Array();
    const exp = Array.from(logits, (v) => Math.exp(v - Math.max(...logits)));
    const sum = exp.reduce((a, b) => a + b);
    const best = exp.indexOf(Math.max(...exp));
    expect(two[0].index).toBe(best);
    expect(two[0].probability).toBeCloseTo(exp[best] / sum, 6);
    const all = await p.classify(bytes[0], { topK: 10 });
    expect(all.length).toBe(3);
    expect(all.reduce((a, c) => a + c.probability, 0)).toBeCloseTo(1, 6);
  });

  it('classify([...]) with a bad element refuses the call before decoding any image (no image left failing unheard)', async () => {
    const m = new CBAMCNN({ numClasses: 3 }).eval();
    const p = m.predictor({ transform: EVAL });
    // A corrupt image before the bad element: decoded first, its rejection would go unhandled
    // (vitest fails a run on one; Node ends the process).
    const err = await rejection(p.classify([Buffer.from('not an image'), 'x' as never]));
    expect(err.name).toBe('TypeError');
    expect(err.message).toMatch(/classify\(images\[1\]\)/);
    await new Promise((r) => setTimeout(r, 300));
    expect(p.stats().requests).toBe(0);
    // A corrupt element among good ones fails the call with its name; the rest run.
    const jpeg = fs.readFileSync(path.join(FOLDER, 'cat', 'b.jpg'));
    const bad = await rejection(p.classify([jpeg, jpeg.subarray(0, 50)], { name: 'upload' }));
    expect(bad.code).toBe(ErrorCode.DATA);
    expect(bad.message).toMatch(/^upload 1: /);
  });
});
