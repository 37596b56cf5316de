// The model builders: ResNet (18-152) and VGG with any attention kind, the ResNetCBAM and
// ResNetNAM presets, and the small CBAMCNN.
import type { NativeModelSpec } from '../native';
import { attentionSpec } from '../modules/attention';
import type { AttentionKind, AttentionMaps, AttentionOptions, CBAMOptions } from '../modules/attention';
import { expectTensor, type Tensor } from '../tensor/tensor';
import * as validate from '../validate';
import { Model } from './model';

export type ResNetDepth = 18 | 34 | 50 | 101 | 152;
export type VGGDepth = 11 | 13 | 16 | 19;
/** 'cifar': 3x3 stride-1 first conv, no max-pool (32 x 32 inputs); 'imagenet': torchvision's 7x7/2 conv + max-pool. */
export type Stem = 'cifar' | 'imagenet';
/** 'stage': one module after each stage (torchvision tree under `backbone.`, modules
 *  `<kind>_layer1..4`); 'block': one inside every residual block, after the last BatchNorm and
 *  before the residual add (`layerX.Y.<kind>`), torchvision's names at the top level. */
export type Placement = 'stage' | 'block';

export interface ResNetOptions {
  /** default 18 */
  depth?: ResNetDepth;
  /** default 10 */
  numClasses?: number;
  /** default 'cifar' */
  stem?: Stem;
  /** default 'cbam' */
  attention?: AttentionKind;
  attentionOptions?: AttentionOptions;
  /** default: where each kind's paper or seed document puts it (defaultPlacement) */
  placement?: Placement;
  /** Which of layer1..layer4 get attention; default all. */
  stages?: number[];
}

export interface VGGOptions {
  /** default 16 */
  depth?: VGGDepth;
  /** default true */
  batchNorm?: boolean;
  /** default 10 */
  numClasses?: number;
  /** 'cifar' (default): 1x1 pool, 512-wide classifier; 'imagenet': torchvision's 7x7 pool and 4096-wide classifier. */
  stem?: Stem;
  /** Attention after each conv stage's max-pool (`<kind>_stage1..5`); default 'cbam'. */
  attention?: AttentionKind;
  attentionOptions?: AttentionOptions;
}

/** Where an attention kind goes in a ResNet unless told: CBAM after each stage (the seed
 *  documents' ResNet18_CBAM), NAM, SE and ECA inside every residual block (their papers). */
export function defaultPlacement(kind: AttentionKind): Placement {
  return kind === 'cbam' || kind === 'none' ? 'stage' : 'block';
}

const RESNET_KEYS = ['depth', 'numClasses', 'stem', 'attention', 'attentionOptions', 'placement', 'stages'] as const;

function depthOf(value: unknown, name: string, allowed: number[]): number {
  if (typeof value !== 'number') throw validate.typeError(name, `one of ${allowed.join(', ')}`, value);
  if (!allowed.includes(value)) throw new RangeError(`${name} must be one of ${allowed.join(', ')}, got ${value}`);
  return value;
}

function numClasses(value: unknown, where: string): number {
  return value === undefined ? 10 : validate.integer(value, `${where} numClasses`, 1);
}

function resnetSpec(options: ResNetOptions | undefined, where: string, defaults: Partial<ResNetOptions>): NativeModelSpec {
  const o = { ...defaults, ...validate.options(options, `${where} options`, RESNET_KEYS) };
  const attention = attentionSpec(o.attention ?? 'cbam', o.attentionOptions, where);
  const spec: NativeModelSpec = {
    arch: 'resnet',
    depth: o.depth === undefined ? 18 : depthOf(o.depth, `${where} depth`, [18, 34, 50, 101, 152]),
    numClasses: numClasses(o.numClasses, where),
    stem: validate.oneOf(o.stem ?? 'cifar', `${where} stem`, ['cifar', 'imagenet']),
    placement: validate.oneOf(o.placement ?? defaultPlacement(attention.kind as AttentionKind), `${where} placement`, ['stage', 'block']),
    attention,
  };
  if (o.stages !== undefined) {
    if (!Array.isArray(o.stages)) throw validate.typeError(`${where} stages`, 'an Array of stage numbers (1-4)', o.stages);
    spec.stages = o.stages.map((s, i) => validate.integer(s, `${where} stages[${i}]`, 1, 4));
    if (new Set(spec.stages).size !== spec.stages.length) throw new RangeError(`${where} stages lists a stage twice: [${spec.stages.join(', ')}]`);
  }
  return spec;
}

/** A whole network (ResNet, VGG, the CBAM-CNN): a Model whose attention modules can be looked into. */
export class Network extends Model {
  /**
   * What every attention module computes for x (B x C x H x W, or one image C x H x W: a batch of
   * one), by the module's name in the
   * model (`cbam_layer1`, `layer2.0.nam`, `cbam1`, ...) in forward order: CBAM's `channel`
   * (B x C) and `spatial` (B x 1 x h x w, at the module's resolution), NAM's `channel` gate, SE's and
   * ECA's `channel`. One eval-mode forward pass, off the main thread; CPU float32 tensors.
   *
   * ```ts
   * const maps = await model.attentionMaps(images);
   * maps.cbam_layer1.spatial.shape; // [8, 1, 32, 32]
   * ```
   */
  async attentionMaps(x: Tensor): Promise<Record<string, AttentionMaps>> {
    return (await this.native.modelAttentionMaps(expectTensor(x, 'attentionMaps(x)') as never)) as unknown as Record<string, AttentionMaps>;
  }
}

class BuiltModel extends Network {
  constructor(spec: NativeModelSpec) {
    super(spec);
  }
}

/**
 * A ResNet (torchvision names) with any attention kind and placement.
 *
 * ```ts
 * const plain = resnet({ depth: 50, attention: 'none', stem: 'imagenet', numClasses: 1000 });
 * const se = resnet({ depth: 18, attention: 'se', placement: 'block' });
 * ```
 */
export function resnet(options?: ResNetOptions): Network {
  return new BuiltModel(resnetSpec(options, 'resnet()', {}));
}

/** ResNet with CBAM after each stage (the common "ResNet18_CBAM" layout). */
export class ResNetCBAM extends Network {
  constructor(options?: Omit<ResNetOptions, 'attention' | 'attentionOptions'> & { attentionOptions?: CBAMOptions }) {
    super(resnetSpec(options, 'ResNetCBAM', { attention: 'cbam', placement: 'stage' }));
  }
}

/** ResNet with NAM inside every residual block (layerX.Y.nam.Channel_Att.bn2). */
export class ResNetNAM extends Network {
  constructor(options?: Omit<ResNetOptions, 'attention' | 'attentionOptions'> & { attentionOptions?: { detachWeights?: boolean } }) {
    super(resnetSpec(options, 'ResNetNAM', { attention: 'nam', placement: 'block' }));
  }
}

/** VGG 11/13/16/19 in torchvision's layout with attention after each conv stage. */
export function vgg(options?: VGGOptions): Network {
  const o = validate.options(options, 'vgg() options', ['depth', 'batchNorm', 'numClasses', 'stem', 'attention', 'attentionOptions']);
  if (o.batchNorm !== undefined && typeof o.batchNorm !== 'boolean') throw validate.typeError('vgg() batchNorm', 'a boolean', o.batchNorm);
  return new BuiltModel({
    arch: 'vgg',
    depth: o.depth === undefined ? 16 : depthOf(o.depth, 'vgg() depth', [11, 13, 16, 19]),
    batchNorm: o.batchNorm ?? true,
    numClasses: numClasses(o.numClasses, 'vgg()'),
    stem: validate.oneOf(o.stem ?? 'cifar', 'vgg() stem', ['cifar', 'imagenet']),
    attention: attentionSpec(o.attention ?? 'cbam', o.attentionOptions, 'vgg()'),
  });
}

/** The small CNN: three blocks of conv3x3 -> BN -> ReLU -> 2x2 max-pool -> CBAM (32, 64, 128
 *  channels), then Linear(2048 -> 512) -> ReLU -> Dropout(0.5) -> Linear(512 -> classes).
 *  Takes 32 x 32 inputs. */
export class CBAMCNN extends Network {
  constructor(options?: { numClasses?: number; attentionOptions?: CBAMOptions }) {
    const o = validate.options(options, 'CBAMCNN options', ['numClasses', 'attentionOptions']);
    super({ arch: 'cbamcnn', numClasses: numClasses(o.numClasses, 'CBAMCNN'), attention: attentionSpec('cbam', o.attentionOptions, 'CBAMCNN') });
  }
}
