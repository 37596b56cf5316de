// Attention modules (CBAM, NAM, SE, ECA): their options, shared by the model builders, and each
// module usable on its own.
import type { NativeModelSpec } from '../native';
import { Model } from '../models/model';
import type { Tensor } from '../tensor/tensor';
import * as validate from '../validate';

export type AttentionKind = 'cbam' | 'nam' | 'se' | 'eca' | 'none';
export const ATTENTION_KINDS: readonly AttentionKind[] = ['cbam', 'nam', 'se', 'eca', 'none'];

/** How a module starts: 'default' initialisation, or 'passthrough', exactly the identity until
 *  training moves it (y = x + g * (attention(x) - x), with a learnable scalar g starting at 0,
 *  stored as `gate` in the state dict). */
export type AttentionInit = 'default' | 'passthrough';

export type CBAMPoolType = 'avg' | 'max' | 'lp' | 'lse';

export interface CBAMOptions {
  /** Hidden width of the channel MLP is channels / ratio (at least 1); default 16. */
  ratio?: number;
  /** Spatial convolution size, odd, 1 to 31; default 7. */
  kernelSize?: number;
  init?: AttentionInit;
  /** Biases in the channel MLP (the original CBAM code has them); default false. */
  mlpBias?: boolean;
  /** Channel descriptors, each through the shared MLP and summed: 'avg', 'max', 'lp' (L2 norm
   *  over the map), 'lse' (log-sum-exp); default ['avg', 'max']. */
  poolTypes?: CBAMPoolType[];
  /** Order of the spatial attention's two input maps; the original code stacks [max, mean].
   *  Default 'mean-max'. */
  spatialPoolOrder?: 'mean-max' | 'max-mean';
  /** 'bn': BatchNorm2d(1) after the spatial conv (momentum 0.01, weight initialised to 0, as the
   *  original code; timm has it too). Default 'none'. */
  spatialNorm?: 'none' | 'bn';
  /** false: channel attention only. Default true. */
  spatial?: boolean;
}

/** CBAM's three layouts in the wild, as options: torch-attn's default (DESIGN.md), the
 *  original authors' code, and timm's. Pair them with loadStateDict's `layout` to import. */
export const CBAM_LAYOUTS = {
  default: {},
  original: { mlpBias: true, spatialPoolOrder: 'max-mean', spatialNorm: 'bn' },
  timm: { mlpBias: false, spatialPoolOrder: 'mean-max', spatialNorm: 'bn' },
} as const satisfies Record<string, CBAMOptions>;

export interface NAMOptions {
  /** true reproduces the original NAM code (weights from gamma.data, no gradient through them);
   *  default false. */
  detachWeights?: boolean;
}

export interface SEOptions {
  /** default 16 */
  ratio?: number;
  init?: AttentionInit;
}

export interface ECAOptions {
  /** Kernel size k = odd(|(log2(C) + b) / gamma|); defaults gamma 2, b 1. */
  gamma?: number;
  b?: number;
}

/** Options of any kind; each kind reads its own fields. */
export type AttentionOptions = CBAMOptions & NAMOptions & SEOptions & ECAOptions;

const ALLOWED: Record<Exclude<AttentionKind, 'none'>, readonly string[]> = {
  cbam: ['ratio', 'kernelSize', 'init', 'mlpBias', 'poolTypes', 'spatialPoolOrder', 'spatialNorm', 'spatial'],
  nam: ['detachWeights'],
  se: ['ratio', 'init'],
  eca: ['gamma', 'b'],
};

/** Validated attention options in the addon's form. `extra` names fields a caller adds itself. */
export function attentionSpec(kind: unknown, options: unknown, where: string): NonNullable<NativeModelSpec['attention']> {
  const k = validate.oneOf(kind, `${where} attention`, ATTENTION_KINDS);
  if (k === 'none') {
    validate.options(options as object | undefined, `${where} attentionOptions`, []);
    return { kind: 'none' };
  }
  const o = validate.options(options as AttentionOptions | undefined, `${where} attentionOptions`, ALLOWED[k]);
  const spec: NonNullable<NativeModelSpec['attention']> = { kind: k };
  if (o.ratio !== undefined) spec.ratio = validate.integer(o.ratio, `${where} ratio`, 1);
  if (o.kernelSize !== undefined) {
    spec.kernelSize = validate.integer(o.kernelSize, `${where} kernelSize`, 1, 31);
    if (spec.kernelSize % 2 === 0) throw new RangeError(`${where} kernelSize must be odd (the map keeps its size), got ${spec.kernelSize}`);
  }
  if (o.init !== undefined) spec.passthrough = validate.oneOf(o.init, `${where} init`, ['default', 'passthrough'] as const) === 'passthrough';
  if (o.detachWeights !== undefined) {
    if (typeof o.detachWeights !== 'boolean') throw validate.typeError(`${where} detachWeights`, 'a boolean', o.detachWeights);
    spec.detachWeights = o.detachWeights;
  }
  for (const key of ['mlpBias', 'spatial'] as const) {
    if (o[key] !== undefined) {
      if (typeof o[key] !== 'boolean') throw validate.typeError(`${where} ${key}`, 'a boolean', o[key]);
      spec[key] = o[key];
    }
  }
  if (o.poolTypes !== undefined) {
    if (!Array.isArray(o.poolTypes)) throw validate.typeError(`${where} poolTypes`, "an Array of 'avg', 'max', 'lp', 'lse'", o.poolTypes);
    spec.poolTypes = o.poolTypes.map((t, i) => validate.oneOf(t, `${where} poolTypes[${i}]`, ['avg', 'max', 'lp', 'lse'] as const));
    if (spec.poolTypes.length === 0) throw new RangeError(`${where} poolTypes must list at least one pool type`);
    if (new Set(spec.poolTypes).size !== spec.poolTypes.length) throw new RangeError(`${where} poolTypes lists a pool type twice`);
  }
  if (o.spatialPoolOrder !== undefined) spec.spatialPoolOrder = validate.oneOf(o.spatialPoolOrder, `${where} spatialPoolOrder`, ['mean-max', 'max-mean'] as const);
  if (o.spatialNorm !== undefined) spec.spatialNorm = validate.oneOf(o.spatialNorm, `${where} spatialNorm`, ['none', 'bn'] as const);
  if (o.gamma !== undefined) spec.ecaGamma = validate.integer(o.gamma, `${where} gamma`, 1, 64);
  if (o.b !== undefined) spec.ecaB = validate.integer(o.b, `${where} b`, 0, 64);
  return spec;
}

/** The maps an attention module computes, by name: 'channel' (B x C weights, or the B x C x H x W
 *  gate for NAM), 'spatial' (B x 1 x H x W, CBAM), 'channelScale' / 'pixelScale' (NAM's
 *  |gamma| / sum|gamma|). */
export type AttentionMaps = Record<string, Tensor>;

/** One attention module on its own: forward(x) keeps x's shape. */
export class AttentionModule extends Model {
  protected constructor(kind: Exclude<AttentionKind, 'none'>, options: { channels?: unknown; pixelSize?: unknown } & AttentionOptions) {
    const name = kind.toUpperCase();
    const extra = kind === 'nam' ? ['pixelSize'] : [];
    const opts = validate.options(options, `${name} options`, ['channels', ...ALLOWED[kind], ...extra]);
    const channels = validate.integer(opts.channels, `${name} options.channels`, 1);
    const { channels: _channels, pixelSize, ...rest } = opts;
    const attention = attentionSpec(kind, rest, name);
    if (pixelSize !== undefined) attention.pixelSize = validate.integer(pixelSize, `${name} options.pixelSize`, 1);
    super({ arch: 'attention', channels, attention });
  }

  /** What the module computes to reweight x, for inspection. */
  attentionMaps(x: Tensor): AttentionMaps {
    return this.native.attentionMaps(x as never) as unknown as AttentionMaps;
  }
}

/** CBAM (Woo et al., 2018). `new CBAM({ channels: 64, ratio: 16, kernelSize: 7 })` */
export class CBAM extends AttentionModule {
  constructor(options: { channels: number } & CBAMOptions) {
    super('cbam', options);
  }
}

/** NAM (Liu et al., 2021). With `pixelSize` (the input's H*W) it adds the pixel variant
 *  (`Pixel_Att.bn2`, a BatchNorm1d over the positions) after the channel one. */
export class NAM extends AttentionModule {
  constructor(options: { channels: number; pixelSize?: number } & NAMOptions) {
    super('nam', options);
  }
}

/** Squeeze-and-excitation (Hu et al., 2018). */
export class SE extends AttentionModule {
  constructor(options: { channels: number } & SEOptions) {
    super('se', options);
  }
}

/** ECA (Wang et al., 2020). */
export class ECA extends AttentionModule {
  constructor(options: { channels: number } & ECAOptions) {
    super('eca', options);
  }
}
