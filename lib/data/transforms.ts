// Transforms: torchvision's names and semantics, run natively per sample on the loader threads.
// Each function returns a plain, frozen description ({ op, ...fields }); compose() chains them.
// Random transforms draw from a per-sample generator seeded by the loader, so a (seed, epoch,
// index) triple always gives the same image.
import { native } from '../native';
import { Tensor, expectTensor } from '../tensor/tensor';
import { didYouMean, finiteNumber, integer, oneOf, options, typeError } from '../validate';

export type PaddingMode = 'constant' | 'edge' | 'reflect' | 'symmetric';
export const PADDING_MODES: readonly PaddingMode[] = ['constant', 'edge', 'reflect', 'symmetric'];

/** One transform step, as the native pipeline receives it. */
export interface TransformStep {
  readonly op: string;
  readonly [field: string]: unknown;
}

/** A chain of steps (compose's result); a single step is also accepted wherever this is. */
export interface Compose {
  readonly steps: readonly TransformStep[];
}

export type TransformLike = TransformStep | Compose | readonly (TransformStep | Compose)[];

function step(op: string, fields: Record<string, unknown> = {}): TransformStep {
  const out: Record<string, unknown> = { op };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return Object.freeze(out) as TransformStep;
}

/** The flat list of steps of a transform, a compose() or an Array of them. */
export function toSteps(transform: TransformLike | undefined, name = 'transform'): TransformStep[] {
  if (transform === undefined) return [];
  if (Array.isArray(transform)) return transform.flatMap((t, i) => toSteps(t, `${name}[${i}]`));
  if (typeof transform === 'object' && transform !== null) {
    // A step first: randomApply's step holds `steps` too, and is one step, not a compose().
    if (typeof (transform as TransformStep).op === 'string') return [transform as TransformStep];
    if (Array.isArray((transform as Compose).steps)) return [...(transform as Compose).steps];
  }
  throw typeError(name, 'a transform (from transforms.*), a transforms.compose([...]) or an Array of them', transform);
}

function size(value: unknown, name: string): number[] {
  if (typeof value === 'number') return [integer(value, name, 1)];
  if (Array.isArray(value) && value.length === 2) return value.map((v, i) => integer(v, `${name}[${i}]`, 1));
  throw typeError(name, 'a positive integer or [height, width]', value);
}

function numbers(value: unknown, name: string, lengths: readonly number[]): number[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(list) || !lengths.includes(list.length)) {
    throw typeError(name, `a number or an Array of ${lengths.join(' or ')} numbers`, value);
  }
  return list.map((v, i) => finiteNumber(v, `${name}[${i}]`));
}

function fill(value: unknown, name: string): number[] | undefined {
  const list = numbers(value, name, [1, 3]);
  list?.forEach((v, i) => {
    if (v < 0 || v > 255) throw new RangeError(`${name}[${i}] must be in [0, 255], got ${v}`);
  });
  return list;
}

function padding(value: unknown, name: string): number[] | undefined {
  const list = numbers(value, name, [1, 2, 4]);
  list?.forEach((v, i) => integer(v, `${name}[${i}]`, 0));
  return list;
}

/** torchvision's jitter argument: x -> [max(0, center - x), center + x], or an explicit [lo, hi]. */
function jitterRange(value: unknown, name: string, center: number, bound: [number, number]): [number, number] | undefined {
  if (value === undefined || value === 0) return undefined;
  let range: [number, number];
  if (typeof value === 'number') {
    if (!(value >= 0)) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
    range = [Math.max(bound[0], center - value), center + value];
  } else if (Array.isArray(value) && value.length === 2) {
    range = [finiteNumber(value[0], `${name}[0]`), finiteNumber(value[1], `${name}[1]`)];
  } else {
    throw typeError(name, 'a number or a [min, max] range', value);
  }
  if (range[0] > range[1] || range[0] < bound[0] || range[1] > bound[1]) {
    throw new RangeError(`${name} must give a range inside [${bound[0]}, ${bound[1]}], got [${range[0]}, ${range[1]}]`);
  }
  return range;
}

function probability(value: unknown, name: string): number {
  const p = value === undefined ? 0.5 : finiteNumber(value, name);
  if (p < 0 || p > 1) throw new RangeError(`${name} must be in [0, 1], got ${p}`);
  return p;
}

export interface PadOptions {
  paddingMode?: PaddingMode;
  /** Constant-mode fill: one value or one per channel, 0-255. Default 0. */
  fill?: number | number[];
}

export interface RandomCropOptions extends PadOptions {
  /** Padding first: one value for all sides, [left/right, top/bottom] or [left, top, right, bottom]. */
  padding?: number | number[];
  /** Pad an image smaller than the crop up to its size (torchvision's pad_if_needed). */
  padIfNeeded?: boolean;
}

export interface ColorJitterOptions {
  brightness?: number | [number, number];
  contrast?: number | [number, number];
  saturation?: number | [number, number];
  /** In [0, 0.5], or a range inside [-0.5, 0.5]. */
  hue?: number | [number, number];
}

const PAD_KEYS = ['paddingMode', 'fill'] as const;

function padFields(o: PadOptions, name: string) {
  return {
    paddingMode: o.paddingMode === undefined ? undefined : oneOf(o.paddingMode, `${name}.paddingMode`, PADDING_MODES),
    fill: fill(o.fill, `${name}.fill`),
  };
}

export const transforms = {
  /** Chains transforms (flattening nested compositions). */
  compose(list: readonly (TransformStep | Compose)[]): Compose {
    if (!Array.isArray(list)) throw typeError('transforms.compose(list)', 'an Array of transforms', list);
    return Object.freeze({ steps: Object.freeze(toSteps(list, 'transforms.compose(list)')) });
  },

  /** uint8 HWC image -> float32 CHW tensor in [0, 1] (x / 255). */
  toTensor: (): TransformStep => step('toTensor'),

  /** (x - mean) / std per channel, on the float tensor (after toTensor). */
  normalize(mean: readonly number[], std: readonly number[]): TransformStep {
    const m = numbers(mean, 'transforms.normalize(mean)', [1, 2, 3, 4])!;
    const s = numbers(std, 'transforms.normalize(std)', [m.length])!;
    if (s.some((v) => v === 0)) throw new RangeError('transforms.normalize(std): std must not contain 0');
    return step('normalize', { mean: m, std: s });
  },

  /** Pads, then crops a random size x size window (torchvision RandomCrop). */
  randomCrop(cropSize: number | [number, number], opts?: RandomCropOptions): TransformStep {
    const name = 'transforms.randomCrop';
    const o = options(opts, `${name} options`, ['padding', 'padIfNeeded', ...PAD_KEYS]);
    return step('randomCrop', {
      size: size(cropSize, `${name}(size)`),
      padding: padding(o.padding, `${name}.padding`),
      padIfNeeded: o.padIfNeeded === undefined ? undefined : Boolean(o.padIfNeeded),
      ...padFields(o, name),
    });
  },

  randomHorizontalFlip: (p?: number): TransformStep =>
    step('randomHorizontalFlip', { p: probability(p, 'transforms.randomHorizontalFlip(p)') }),
  randomVerticalFlip: (p?: number): TransformStep =>
    step('randomVerticalFlip', { p: probability(p, 'transforms.randomVerticalFlip(p)') }),

  /** Random brightness, contrast, saturation and hue, applied in a random order (torchvision ColorJitter). */
  colorJitter(opts: ColorJitterOptions): TransformStep {
    const name = 'transforms.colorJitter';
    const o = options(opts, `${name} options`, ['brightness', 'contrast', 'saturation', 'hue']);
    return step('colorJitter', {
      brightness: jitterRange(o.brightness, `${name}.brightness`, 1, [0, Infinity]),
      contrast: jitterRange(o.contrast, `${name}.contrast`, 1, [0, Infinity]),
      saturation: jitterRange(o.saturation, `${name}.saturation`, 1, [0, Infinity]),
      hue: jitterRange(o.hue, `${name}.hue`, 0, [-0.5, 0.5]),
    });
  },

  /** Rotates by an angle drawn from [-degrees, degrees] (or [min, max]), nearest neighbour, no expand. */
  randomRotation(degrees: number | [number, number], opts?: { fill?: number | number[] }): TransformStep {
    const name = 'transforms.randomRotation';
    const o = options(opts, `${name} options`, ['fill']);
    let range: number[];
    if (typeof degrees === 'number') {
      if (!(degrees >= 0) || !Number.isFinite(degrees)) throw new RangeError(`${name}(degrees) must be a non-negative number, got ${degrees}`);
      range = [-degrees, degrees];
    } else {
      range = numbers(degrees, `${name}(degrees)`, [2])!;
      if (range[0] > range[1]) throw new RangeError(`${name}(degrees) must be [min, max] with min <= max`);
    }
    return step('randomRotation', { degrees: range, fill: fill(o.fill, `${name}.fill`) });
  },

  /** Bilinear, antialiased resize. A number resizes the shorter edge (aspect kept, optionally capped by maxSize). */
  resize(to: number | [number, number], opts?: { maxSize?: number }): TransformStep {
    const o = options(opts, 'transforms.resize options', ['maxSize']);
    const s = size(to, 'transforms.resize(size)');
    if (o.maxSize !== undefined && s.length === 2) throw new RangeError('transforms.resize: maxSize applies only when size is one number');
    return step('resize', { size: s, maxSize: o.maxSize === undefined ? undefined : integer(o.maxSize, 'transforms.resize.maxSize', 1) });
  },

  /** The central window (zero-padded when the image is smaller). */
  centerCrop: (cropSize: number | [number, number]): TransformStep => step('centerCrop', { size: size(cropSize, 'transforms.centerCrop(size)') }),

  /** A random area and aspect crop, resized to size (torchvision RandomResizedCrop). */
  randomResizedCrop(to: number | [number, number], opts?: { scale?: [number, number]; ratio?: [number, number] }): TransformStep {
    const name = 'transforms.randomResizedCrop';
    const o = options(opts, `${name} options`, ['scale', 'ratio']);
    const scale = numbers(o.scale, `${name}.scale`, [2]);
    const ratio = numbers(o.ratio, `${name}.ratio`, [2]);
    if (scale && (scale[0] > scale[1] || scale[0] < 0 || scale[1] <= 0)) throw new RangeError(`${name}.scale must be [min, max] with 0 <= min <= max, max > 0`);
    if (ratio && (ratio[0] > ratio[1] || ratio[0] <= 0)) throw new RangeError(`${name}.ratio must be [min, max] with 0 < min <= max`);
    return step('randomResizedCrop', { size: size(to, `${name}(size)`), scale, ratio });
  },

  /** Applies `transform` (one step or several, in order) with probability p, else nothing: one
   *  draw per sample, as torchvision's RandomApply. Only 8-bit image steps can be wrapped. */
  randomApply(transform: TransformLike, p?: number): TransformStep {
    const steps = toSteps(transform, 'transforms.randomApply(transform)');
    if (steps.length === 0) throw new RangeError('transforms.randomApply(transform) must hold at least one transform');
    return step('randomApply', { p: probability(p, 'transforms.randomApply(p)'), steps: Object.freeze(steps) });
  },

  /** Deterministic operations (torchvision.transforms.functional), usable inside compose() too. */
  functional: {
    pad(pad: number | number[], opts?: PadOptions): TransformStep {
      const o = options(opts, 'transforms.functional.pad options', PAD_KEYS);
      return step('pad', { padding: padding(pad, 'transforms.functional.pad(padding)'), ...padFields(o, 'transforms.functional.pad') });
    },
    crop(top: number, left: number, height: number, width: number): TransformStep {
      const n = 'transforms.functional.crop';
      return step('crop', { top: integer(top, `${n}(top)`), left: integer(left, `${n}(left)`), size: [integer(height, `${n}(height)`, 1), integer(width, `${n}(width)`, 1)] });
    },
    hflip: (): TransformStep => step('hflip'),
    vflip: (): TransformStep => step('vflip'),
    rotate(angle: number, opts?: { fill?: number | number[] }): TransformStep {
      const o = options(opts, 'transforms.functional.rotate options', ['fill']);
      return step('rotate', { angle: finiteNumber(angle, 'transforms.functional.rotate(angle)'), fill: fill(o.fill, 'transforms.functional.rotate.fill') });
    },
    adjustBrightness: (factor: number): TransformStep => step('adjustBrightness', { factor: nonNegative(factor, 'adjustBrightness(factor)') }),
    adjustContrast: (factor: number): TransformStep => step('adjustContrast', { factor: nonNegative(factor, 'adjustContrast(factor)') }),
    adjustSaturation: (factor: number): TransformStep => step('adjustSaturation', { factor: nonNegative(factor, 'adjustSaturation(factor)') }),
    adjustHue(factor: number): TransformStep {
      const f = finiteNumber(factor, 'transforms.functional.adjustHue(factor)');
      if (f < -0.5 || f > 0.5) throw new RangeError(`transforms.functional.adjustHue(factor) must be in [-0.5, 0.5], got ${f}`);
      return step('adjustHue', { factor: f });
    },
  },

  /**
   * Runs a transform on one image on the calling thread: a uint8 [H, W, C] tensor (as datasets
   * give without a transform) or a float32 [C, H, W] one. Random steps use `seed` (default: drawn
   * from the generator manualSeed() sets).
   */
  apply(transform: TransformLike, image: Tensor, seed?: number | bigint): Tensor {
    expectTensor(image, 'transforms.apply(image)');
    return native.applyTransform(toSteps(transform), image as never, seed) as unknown as Tensor;
  },
};

function nonNegative(value: unknown, name: string): number {
  const v = finiteNumber(value, `transforms.functional.${name}`);
  if (v < 0) throw new RangeError(`transforms.functional.${name} must be non-negative, got ${v}`);
  return v;
}


/** How deep randomApply may nest (the native pipeline's bound too). */
const MAX_NESTING = 8;

/** The transforms a run configuration may name, with the argument each takes first (a bare value
 *  is that argument: `{ resize: 36 }`) and its options. */
const SPEC_TRANSFORMS: Record<string, { first?: string; options: readonly string[]; make: (first: any, o: any, where: string) => TransformStep }> = {
  resize: { first: 'size', options: ['maxSize'], make: (a, o) => transforms.resize(a, o) },
  centerCrop: { first: 'size', options: [], make: (a) => transforms.centerCrop(a) },
  randomCrop: { first: 'size', options: ['padding', 'padIfNeeded', ...PAD_KEYS], make: (a, o) => transforms.randomCrop(a, o) },
  randomResizedCrop: { first: 'size', options: ['scale', 'ratio'], make: (a, o) => transforms.randomResizedCrop(a, o) },
  randomHorizontalFlip: { first: 'p', options: [], make: (a) => transforms.randomHorizontalFlip(a) },
  randomVerticalFlip: { first: 'p', options: [], make: (a) => transforms.randomVerticalFlip(a) },
  colorJitter: { options: ['brightness', 'contrast', 'saturation', 'hue'], make: (_, o) => transforms.colorJitter(o) },
  randomRotation: { first: 'degrees', options: ['fill'], make: (a, o) => transforms.randomRotation(a, o) },
  pad: { first: 'padding', options: PAD_KEYS, make: (a, o) => transforms.functional.pad(a, o) },
  randomApply: {
    first: 'transforms',
    options: ['p'],
    make: (a, o, where) => {
      if (!Array.isArray(a)) throw typeError(`${where}.transforms`, 'an Array of transforms', a);
      if ((where.match(/\.randomApply/g)?.length ?? 0) > MAX_NESTING) throw new RangeError(`${where}: randomApply nests more than ${MAX_NESTING} deep`);
      return transforms.randomApply(a.map((t, i) => transformFromSpec(t, `${where}.transforms[${i}]`)), o.p);
    },
  },
};

/** Names of the transforms a run configuration may list. */
export const SPEC_TRANSFORM_NAMES = Object.keys(SPEC_TRANSFORMS);

/**
 * A transform written as data (a run configuration's `augment` / `testTransform` entries):
 * `'randomHorizontalFlip'`, `{ randomCrop: { size: 32, padding: 4 } }`, `{ resize: 36 }` or
 * `{ randomApply: { p: 0.5, transforms: [{ colorJitter: { brightness: 0.1 } }] } }`.
 */
export function transformFromSpec(spec: unknown, where = 'transform'): TransformStep {
  const entry = typeof spec === 'string' ? [spec, {}] : spec !== null && typeof spec === 'object' && !Array.isArray(spec) && Object.keys(spec).length === 1 ? Object.entries(spec)[0] : undefined;
  if (!entry) throw typeError(where, `a transform name or { name: options } with one of ${SPEC_TRANSFORM_NAMES.join(', ')}`, spec);
  const [name, value] = entry as [string, unknown];
  const t = SPEC_TRANSFORMS[name];
  if (!t) throw new RangeError(`${where}: unknown transform '${name}'${didYouMean(name, SPEC_TRANSFORM_NAMES)}; known: ${SPEC_TRANSFORM_NAMES.join(', ')}`);
  const at = `${where}.${name}`;
  const isOptions = value !== null && typeof value === 'object' && !Array.isArray(value);
  if (!isOptions && value !== undefined && value !== null && !t.first) throw typeError(at, 'an object of options', value);
  const o = isOptions ? options(value as Record<string, unknown>, at, [...(t.first ? [t.first] : []), ...t.options]) : {};
  const first = isOptions ? (o as Record<string, unknown>)[t.first ?? ''] : value ?? undefined;
  const rest = Object.fromEntries(Object.entries(o).filter(([k]) => k !== t.first));
  return t.make(first, rest, at);
}
