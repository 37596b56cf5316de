// Transforms against torchvision 0.14 (fixtures from scripts/make-data-fixtures.py, committed):
// the deterministic operations on fixed inputs, then the random ones' seeding and ranges.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasets, tensor, transforms, type Tensor, type TransformStep } from '../../lib/index';
import { transformFromSpec } from '../../lib/data/transforms';
import { thrown } from '../helpers';

interface Case {
  name: string;
  image: string;
  steps: TransformStep[];
  dtype: 'uint8' | 'float32';
  shape: number[];
  expected: string;
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/data/transforms.json'), 'utf8')) as {
  images: Record<string, { shape: number[]; pixels: string }>;
  cases: Case[];
};
const images: Record<string, Tensor> = Object.fromEntries(
  Object.entries(fixture.images).map(([name, { shape, pixels }]) => [name, tensor(new Uint8Array(Buffer.from(pixels, "base64")), shape)]),
);

function expected(c: Case): Uint8Array | Float32Array {
  const bytes = Buffer.from(c.expected, 'base64');
  return c.dtype === 'uint8' ? new Uint8Array(bytes) : new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

// Resizing sums the filter taps in another order than LibTorch's kernel (float rounding can move
// a value across .5); nearest-neighbour rotation can meet a coordinate within an ulp of .5.
// Everything else is exact.
function tolerance(name: string): { maxDiff: number; fraction: number } {
  if (name.startsWith('resize')) return { maxDiff: 1, fraction: 0.05 };
  if (name.startsWith('rotate')) return { maxDiff: 255, fraction: 0.005 };
  return { maxDiff: 0, fraction: 0 };
}

describe('transforms match torchvision on fixed inputs', () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const out = transforms.apply(c.steps, images[c.image], 0);
    expect(out.shape).toEqual(c.shape);
    expect(out.dtype).toBe(c.dtype);
    const got = out.data() as Uint8Array | Float32Array;
    const want = expected(c);
    let worst = 0;
    let differing = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      if (d > (c.dtype === 'float32' ? 1e-6 : 0)) differing++;
      worst = Math.max(worst, d);
    }
    const { maxDiff, fraction } = tolerance(c.name);
    expect(worst).toBeLessThanOrEqual(c.dtype === 'float32' ? 1e-6 : maxDiff);
    expect(differing / want.length).toBeLessThanOrEqual(fraction);
  });
});

describe('random transforms', () => {
  const image = images.smooth;
  const pixels = (t: Tensor) => Buffer.from(t.data() as Uint8Array);

  it('are deterministic for a seed and differ across seeds', () => {
    const chain = transforms.compose([
      transforms.randomCrop(32, { padding: 4 }),
      transforms.randomHorizontalFlip(),
      transforms.colorJitter({ brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.1 }),
      transforms.randomRotation(15),
    ]);
    const a = pixels(transforms.apply(chain, image, 42));
    expect(pixels(transforms.apply(chain, image, 42)).equals(a)).toBe(true);
    const others = [1, 2, 3, 4, 5].map((s) => pixels(transforms.apply(chain, image, s)));
    expect(others.filter((o) => o.equals(a))).toHaveLength(0);
  });

  it('randomCrop draws every offset the padding allows, each one a plain crop of the padded image', () => {
    const crop = transforms.randomCrop([8, 8], { padding: 2 });
    const small = images.noise; // 13 x 17 -> padded 17 x 21: offsets 0..9 x 0..13
    const seen = new Set<string>();
    const candidates = new Map<string, string>();
    for (let top = 0; top <= 9; top++) {
      for (let left = 0; left <= 13; left++) {
        const t = transforms.apply([transforms.functional.pad(2), transforms.functional.crop(top, left, 8, 8)], small);
        candidates.set(pixels(t).toString('hex'), `${top},${left}`);
      }
    }
    for (let seed = 0; seed < 2000; seed++) {
      const key = candidates.get(pixels(transforms.apply(crop, small, seed)).toString('hex'));
      expect(key).toBeDefined();
      seen.add(key!);
    }
    expect(seen.size).toBe(candidates.size);
  });

  it('randomHorizontalFlip flips with probability p', () => {
    const flipped = pixels(transforms.apply(transforms.functional.hflip(), image));
    const count = (p: number) => {
      let n = 0;
      for (let seed = 0; seed < 1000; seed++) n += pixels(transforms.apply(transforms.randomHorizontalFlip(p), image, seed)).equals(flipped) ? 1 : 0;
      return n;
    };
    expect(count(0)).toBe(0);
    expect(count(1)).toBe(1000);
    const half = count(0.5);
    expect(half).toBeGreaterThan(430);
    expect(half).toBeLessThan(570);
  });

  it('randomRotation draws angles inside the range (a fixed range gives that rotation)', () => {
    const fixed = pixels(transforms.apply(transforms.functional.rotate(10), image));
    expect(pixels(transforms.apply(transforms.randomRotation([10, 10]), image, 3)).equals(fixed)).toBe(true);
    expect(pixels(transforms.apply(transforms.randomRotation(0), image, 3)).equals(pixels(image))).toBe(true);
  });

  it('colorJitter with a one-point range is that adjustment', () => {
    const want = pixels(transforms.apply(transforms.functional.adjustBrightness(1.3), image));
    expect(pixels(transforms.apply(transforms.colorJitter({ brightness: [1.3, 1.3] }), image, 9)).equals(want)).toBe(true);
  });

  it('randomApply: one draw per sample, then the wrapped steps in order (torchvision RandomApply)', () => {
    const flipped = pixels(transforms.apply(transforms.functional.hflip(), image));
    const bright = transforms.functional.adjustBrightness(1.3);
    // p = 1 and p = 0 are the wrapped steps and nothing, for every draw.
    const both = pixels(transforms.apply([transforms.functional.hflip(), bright], image));
    for (let seed = 0; seed < 50; seed++) {
      expect(pixels(transforms.apply(transforms.randomApply([transforms.functional.hflip(), bright], 1), image, seed)).equals(both)).toBe(true);
      expect(pixels(transforms.apply(transforms.randomApply(transforms.functional.hflip(), 0), image, seed)).equals(pixels(image))).toBe(true);
    }
    // p = 0.5: applied to about half the samples, and all of its steps or none.
    let applied = 0;
    for (let seed = 0; seed < 1000; seed++) {
      const out = pixels(transforms.apply(transforms.randomApply([transforms.functional.hflip(), bright], 0.5), image, seed));
      if (out.equals(both)) applied++;
      else expect(out.equals(pixels(image))).toBe(true);
    }
    expect(applied).toBeGreaterThan(430);
    expect(applied).toBeLessThan(570);
    // Nested random steps draw from the same per-sample stream: deterministic per seed.
    const jitter = transforms.randomApply(transforms.colorJitter({ brightness: 0.5 }), 0.7);
    expect(pixels(transforms.apply(jitter, image, 11)).equals(pixels(transforms.apply(jitter, image, 11)))).toBe(true);
    expect(flipped.equals(pixels(image))).toBe(false);
  });

  it('randomResizedCrop gives the requested size; resize and centerCrop compose', () => {
    const out = transforms.apply(transforms.randomResizedCrop([12, 10]), images.photo, 5);
    expect(out.shape).toEqual([12, 10, 3]);
    const t = transforms.apply([transforms.resize(16), transforms.centerCrop(16), transforms.toTensor()], images.photo);
    expect(t.shape).toEqual([3, 16, 16]);
  });
});

describe('transform errors', () => {
  it('randomApply wraps image steps only, at least one, nested at most 8 deep', () => {
    expect(thrown(() => transforms.randomApply([], 0.5)).message).toMatch(/must hold at least one transform/);
    expect(thrown(() => transforms.randomApply(transforms.functional.hflip(), 1.5)).message).toMatch(/randomApply\(p\) must be in \[0, 1\], got 1.5/);
    expect(thrown(() => transforms.apply(transforms.randomApply(transforms.toTensor(), 1), images.smooth)).message).toMatch(/randomApply wraps image transforms only/);
    let deep = transforms.functional.hflip();
    for (let i = 0; i < 9; i++) deep = transforms.randomApply(deep, 1);
    expect(thrown(() => transforms.apply(deep, images.smooth)).message).toMatch(/at most 8 levels are allowed/);
  });

  it('transforms written as data (run configs) name the entry and suggest a near name', () => {
    expect(transformFromSpec('randomHorizontalFlip')).toEqual(transforms.randomHorizontalFlip());
    expect(transformFromSpec({ resize: 36 })).toEqual(transforms.resize(36));
    expect(transformFromSpec({ randomCrop: { size: 32, padding: 4 } })).toEqual(transforms.randomCrop(32, { padding: 4 }));
    expect(transformFromSpec({ randomApply: { p: 0.5, transforms: [{ colorJitter: { contrast: 0.1 } }] } })).toEqual(transforms.randomApply([transforms.colorJitter({ contrast: 0.1 })], 0.5));
    expect(thrown(() => transformFromSpec({ randomCorp: { size: 32 } }, 'augment[0]')).message).toMatch(/augment\[0\]: unknown transform 'randomCorp' \(did you mean 'randomCrop'\?\)/);
    expect(thrown(() => transformFromSpec({ randomCrop: { size: 32, pading: 4 } }, 'augment[0]')).message).toMatch(/Unknown option 'pading' in augment\[0\]\.randomCrop \(did you mean 'padding'\?\)/);
    expect(thrown(() => transformFromSpec({ resize: 32, centerCrop: 32 })).message).toMatch(/a transform name or \{ name: options \}/);
    let deep: unknown = 'randomHorizontalFlip';
    for (let i = 0; i < 50; i++) deep = { randomApply: { transforms: [deep] } };
    expect(thrown(() => transformFromSpec(deep, 'augment[0]')).message).toMatch(/randomApply nests more than 8 deep/);
  });

  it('name the transform, the field and what is allowed', () => {
    expect(thrown(() => transforms.randomCrop(0)).message).toMatch(/randomCrop\(size\) must be at least 1/);
    expect(thrown(() => transforms.randomCrop(32, { padding: [1, 2, 3] })).message).toMatch(/padding/);
    expect(thrown(() => transforms.randomCrop(32, { paddingMode: 'wrap' as never })).message).toMatch(/'constant', 'edge', 'reflect', 'symmetric'/);
    expect(thrown(() => transforms.colorJitter({ hue: 0.7 })).message).toMatch(/hue must give a range inside \[-0.5, 0.5\]/);
    expect(thrown(() => transforms.colorJitter({ sharpness: 1 } as never)).message).toMatch(/Unknown option 'sharpness'/);
    expect(thrown(() => transforms.normalize([0.5, 0.5], [0.5])).message).toMatch(/normalize\(std\)/);
    expect(thrown(() => transforms.normalize([0.5], [0])).message).toMatch(/must not contain 0/);
    expect(thrown(() => transforms.randomHorizontalFlip(2)).message).toMatch(/in \[0, 1\]/);
  });

  it('refuse steps in the wrong order and unknown ops (checked natively too)', () => {
    expect(thrown(() => transforms.apply([transforms.normalize([0.5], [0.5])], images.noise)).message).toMatch(/put toTensor\(\) before it/);
    expect(thrown(() => transforms.apply([transforms.toTensor(), transforms.functional.hflip()], images.noise)).message).toMatch(/put it before toTensor\(\)/);
    expect(thrown(() => transforms.apply([{ op: 'sharpen' }], images.noise)).message).toMatch(/unknown transform 'sharpen'/);
    expect(thrown(() => transforms.apply([{ op: 'crop', top: 0, left: 0 }], images.noise)).message).toMatch(/crop: size is required/);
    expect(thrown(() => transforms.apply([{ op: 'rotate', angle: 'x' }], images.noise)).name).toBe('TypeError');
  });

  it('refuse a crop larger than the image, images of the wrong type, and reflect padding past the edge', () => {
    expect(thrown(() => transforms.apply(transforms.randomCrop(40), images.noise)).message).toMatch(/larger than the \(padded\) image 13x17.*padIfNeeded/);
    expect(transforms.apply(transforms.randomCrop(40, { padIfNeeded: true }), images.noise, 1).shape).toEqual([40, 40, 3]);
    expect(thrown(() => transforms.apply(transforms.toTensor(), tensor(new Float64Array(12), [2, 2, 3]))).message).toMatch(/uint8 tensor \[height, width, channels\]/);
    expect(thrown(() => transforms.apply(transforms.functional.pad(20, { paddingMode: 'reflect' }), images.noise)).message).toMatch(/reflect padding must be smaller/);
    expect(thrown(() => transforms.apply(transforms.toTensor(), 'image' as never)).name).toBe('TypeError');
  });
});

describe('per-channel parameters against the image\'s channels (hardening class 4)', () => {
  // An image with more channels than a fill / mean / std has values: refused before any pixel is
  // read (it used to read past the parameter's values: heap bytes in pixels, or a crash).
  const wide = (channels: number) =>
    datasets.fromArrays({ images: new Uint8Array(2 * channels * 8 * 8).fill(7), shape: [2, channels, 8, 8], labels: [0, 1], classes: ['a', 'b'] });
  const cases: [string, TransformStep[], RegExp][] = [
    ['pad fill', [transforms.functional.pad(2, { fill: [1, 2, 3] }), transforms.toTensor()], /pad: fill has 3 values for a 200-channel image/],
    ['rotate fill', [transforms.functional.rotate(30, { fill: [1, 2, 3] }), transforms.toTensor()], /rotate: fill has 3 values for a 200-channel image/],
    ['normalize mean', [transforms.toTensor(), transforms.normalize([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])], /normalize: mean has 3 values for a 200-channel image/],
  ];
  it.each(cases)('%s', (_, steps, message) => {
    const data = wide(200).withTransform(transforms.compose(steps));
    expect(() => data.get(0)).toThrow(message);
  });
  it('one value for all channels, or one per channel, is fine', () => {
    const data = wide(3).withTransform(transforms.compose([transforms.functional.pad(1, { fill: [9, 8, 7] }), transforms.toTensor(), transforms.normalize([0.5], [0.5])]));
    expect(data.get(0).image.shape).toEqual([3, 10, 10]);
  });
});

describe('transform output sizes against the image limit (hardening class 23)', () => {
  // A size in a transform is held to what the decoders allow an image (twice maxPixels) before
  // anything is allocated: resize(8000) of a small image took 2.5 GB and 5 s, resize(20000) would
  // have taken 15 GB.
  const small = tensor(new Uint8Array(3 * 8 * 12).fill(50), [8, 12, 3]);
  const refused: [string, TransformStep, RegExp][] = [
    ['resize', transforms.resize(20000), /^resize: the output would be 20000 x 30000 \(600000000 pixels\), more than the 178956970 an image may have/],
    ['resize [h, w]', transforms.resize([20000, 9000]), /^resize: the output would be 20000 x 9000 /],
    ['centerCrop', transforms.centerCrop(20000), /^centerCrop: the output would be 20000 x 20000 /],
    ['randomCrop', transforms.randomCrop(20000, { padIfNeeded: true }), /^randomCrop: the output would be 20000 x 20000 /],
    ['randomCrop padding', transforms.randomCrop(8, { padding: 20000 }), /^pad: the output would be 40008 x 40012 /],
    ['randomResizedCrop', transforms.randomResizedCrop(20000), /^randomResizedCrop: the output would be 20000 x 20000 /],
    ['pad', transforms.functional.pad(1e6), /^pad: the output would be 2000008 x 2000012 /],
    ['crop', transforms.functional.crop(0, 0, 1e6, 1e6), /^crop: the output would be 1000000 x 1000000 /],
  ];
  it.each(refused)('%s', (_, step, message) => {
    const started = Date.now();
    const err = thrown(() => transforms.apply(step, small));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/datasets\.imageLimits\(\{ maxPixels \}\) sets it/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('follows datasets.imageLimits, output and the resize between its two passes alike', () => {
    const before = datasets.imageLimits();
    try {
      datasets.imageLimits({ maxPixels: 500 }); // 1000 pixels at most
      expect(transforms.apply(transforms.resize([25, 40]), small).shape).toEqual([25, 40, 3]);
      expect(thrown(() => transforms.apply(transforms.resize([25, 41]), small)).message).toMatch(/^resize: the output would be 25 x 41 \(1025 pixels\), more than the 1000/);
      // 1 x 900 to 900 x 1: both within the limit, but the rows' pass makes 900 x 900.
      const wide = transforms.apply(transforms.resize([1, 900]), small);
      expect(thrown(() => transforms.apply(transforms.resize([900, 1]), wide)).message).toMatch(/^resize: resizing 1 x 900 to 900 x 1 passes through 900 x 900 pixels, more than the 1000/);
    } finally {
      datasets.imageLimits(before);
    }
    expect(transforms.apply(transforms.resize([25, 41]), small).shape).toEqual([25, 41, 3]);
  });
});
