// Optimizers over named parameter groups with their own learning rates: the "experts learn
// slowly, newcomers fast" recipe of fine-tuning. LibTorch's SGD / Adam / AdamW do the updates
// (Adam / AdamW fused into one pass per parameter where the CPU allows; see Optimizer.fused).
import type { Model } from '../models/model';
import type { NativeOptimizer } from '../native';
import { native } from '../native';
import * as validate from '../validate';
import { resolveParameters } from './groups';

export type OptimizerType = 'sgd' | 'adam' | 'adamw';

export interface SGDGroupOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export interface AdamGroupOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

/** A parameter group: group names ('head', 'attention', 'layer4', ...) or glob patterns over
 *  parameter names, with options that override the optimizer's defaults. */
export type ParamGroup<O> = O & { params: string | string[] };

export interface OptimizerSettings {
  /** Keep biases and other 1-D parameters (norm weights, NAM's gammas) out of weight decay. */
  noDecayOnBiasAndNorm?: boolean;
  /** What to do about trainable parameters in no group: 'warn' (default, once), 'ignore', 'error'. */
  ungrouped?: 'warn' | 'ignore' | 'error';
}

const ALLOWED: Record<OptimizerType, readonly string[]> = {
  sgd: ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay'],
  adam: ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad'],
  adamw: ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad'],
};
const DEFAULTS: Record<OptimizerType, Record<string, unknown>> = {
  sgd: { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
  adam: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false },
  adamw: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false },
};

interface NativeGroup {
  params: string[];
  [option: string]: unknown;
}

/** @internal Checks group options and renames them for the addon (betas -> beta1/beta2). */
export function nativeOptions(type: OptimizerType, options: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (key === 'betas') {
      if (!Array.isArray(value) || value.length !== 2) throw validate.typeError(`${where}.betas`, 'a pair [beta1, beta2]', value);
      out.beta1 = validate.finiteNumber(value[0], `${where}.betas[0]`);
      out.beta2 = validate.finiteNumber(value[1], `${where}.betas[1]`);
    } else if (key === 'nesterov' || key === 'amsgrad') {
      if (typeof value !== 'boolean') throw validate.typeError(`${where}.${key}`, 'a boolean', value);
      out[key] = value;
    } else {
      const n = validate.finiteNumber(value, `${where}.${key}`);
      if (n < 0) throw new RangeError(`${where}.${key} must be at least 0, got ${n}`);
      out[key] = n;
    }
  }
  if (type === 'sgd' && out.lr === undefined) throw new TypeError(`${where}: SGD needs an lr (in the group or the optimizer's defaults)`);
  return out;
}

/** An optimizer bound to one model. Group indices are those of the groups you gave. */
export class Optimizer {
  /** @internal */
  readonly native: NativeOptimizer;
  /** user group index -> the addon's group indices (two when biases and norms are split off) */
  readonly #map: number[][] = [];
  readonly #settings: OptimizerSettings;
  /** The optimizer's defaults (its type's, overridden by the caller's): groups fill from them. */
  readonly #defaults: Record<string, unknown>;

  /** @internal Use optim.sgd / optim.adam / optim.adamw. */
  constructor(
    readonly type: OptimizerType,
    readonly model: Model,
    groups: ParamGroup<SGDGroupOptions & AdamGroupOptions>[] | undefined,
    defaults: SGDGroupOptions & AdamGroupOptions = {},
    settings: OptimizerSettings = {},
  ) {
    this.#settings = validate.options(settings, `optim.${type}() settings`, ['noDecayOnBiasAndNorm', 'ungrouped']);
    this.#defaults = { ...DEFAULTS[type], ...validate.options(defaults as Record<string, unknown>, `optim.${type}() defaults`, ALLOWED[type]) };
    const list = groups ?? [{ params: 'all' }];
    if (!Array.isArray(list) || list.length === 0) throw validate.typeError(`optim.${type}() groups`, 'a non-empty Array of groups', groups);
    const nativeGroups: NativeGroup[] = [];
    list.forEach((group, i) => {
      for (const g of this.#split(group, `optim.${type}() groups[${i}]`)) {
        this.#map[i] ??= [];
        this.#map[i].push(nativeGroups.length);
        nativeGroups.push(g);
      }
    });
    const grouped = new Set(nativeGroups.flatMap((g) => g.params));
    const ungrouped = model.namedParameters().filter((p) => p.requiresGrad && !grouped.has(p.name)).map((p) => p.name);
    if (ungrouped.length > 0 && (this.#settings.ungrouped ?? 'warn') !== 'ignore') {
      const message = `${ungrouped.length} trainable parameters of ${model.description} are in no optimizer group and will not be updated (first: ${ungrouped[0]})`;
      if (this.#settings.ungrouped === 'error') throw new RangeError(message);
      process.emitWarning(message, { code: 'TORCH_ATTN_UNGROUPED' });
    }
    this.native = native.createOptimizer(model.native, type, nativeGroups as never);
  }

  #split(group: ParamGroup<SGDGroupOptions & AdamGroupOptions>, where: string): NativeGroup[] {
    if (!validate.isPlainObject(group)) throw validate.typeError(where, 'a group object { params, ...options }', group);
    const { params, ...own } = validate.options(group as Record<string, unknown>, where, ['params', ...ALLOWED[this.type]]) as Record<string, unknown>;
    if (params === undefined) throw new TypeError(`${where}.params is required: group names or patterns`);
    const names = resolveParameters(this.model, params as string | string[], `${where}.params`);
    const options = nativeOptions(this.type, { ...this.#defaults, ...own }, where);
    if (!this.#settings.noDecayOnBiasAndNorm || !options.weightDecay) return [{ params: names, ...options }];
    const oneDim = new Set(this.model.namedParameters().filter((p) => p.shape.length <= 1).map((p) => p.name));
    const decay = names.filter((n) => !oneDim.has(n));
    const noDecay = names.filter((n) => oneDim.has(n));
    return [{ params: decay, ...options }, { params: noDecay, ...options, weightDecay: 0 }];
  }

  /** The fp16 loss scale of trainStep(..., { precision: 'fp16' }) and its count of good steps
   *  since the last change (PyTorch's GradScaler.get_scale() and _growth_tracker). */
  get lossScale(): { scale: number; growthTracker: number } {
    return this.native.lossScale;
  }

  /** Whether Adam / AdamW steps run as one pass over each parameter (LibTorch's arithmetic, the
   *  same bits, without its eight tensor operations and their temporaries): on CPUs with AVX-512,
   *  for dense float32 CPU parameters, unless TORCH_ATTN_FUSED_OPTIMIZER=0 was set when the
   *  optimizer was made. Other steps, and SGD, are LibTorch's own. */
  get fused(): boolean {
    return this.native.fused;
  }

  /** How many groups you gave (and added). */
  get groupCount(): number {
    return this.#map.length;
  }

  #group(index: number, what: string): number[] {
    return this.#map[validate.integer(index, what, 0, this.#map.length - 1)];
  }

  /** A group's current learning rate. */
  getLr(group: number): number {
    return this.native.getLr(this.#group(group, 'getLr(group)')[0]);
  }

  /** Sets a group's learning rate (schedulers and stages use this). */
  setLr(group: number, lr: number): void {
    const value = validate.finiteNumber(lr, 'setLr(lr)');
    if (value < 0) throw new RangeError(`setLr(lr) must be at least 0, got ${value}`);
    for (const g of this.#group(group, 'setLr(group)')) this.native.setLr(g, value);
  }

  /** Adds a group to the live optimizer (a new stage unfreezing more layers); returns its index.
   *  Options it does not set come from the optimizer's defaults, as in PyTorch's add_param_group. */
  addGroup(group: ParamGroup<SGDGroupOptions & AdamGroupOptions>): number {
    const index = this.#map.length;
    this.#map[index] = [];
    try {
      for (const g of this.#split(group, `addGroup(group)`)) {
        this.native.addGroup(g as never);
        this.#map[index].push(this.native.groupCount - 1);
      }
    } catch (err) {
      if (this.#map[index].length === 0) this.#map.pop();
      throw err;
    }
    return index;
  }

  /** Saves the optimizer's state (moments, step counts) for resuming; atomic. */
  save(path: string): void {
    this.native.save(path);
  }

  /** Restores state saved by save() for the same groups. */
  load(path: string): void {
    this.native.load(path);
  }
}

/** Optimizer constructors. `groups` omitted: one group of every parameter.
 *
 * ```ts
 * const opt = optim.adam(model, [
 *   { params: ['head', 'attention'], lr: 1e-3 },
 *   { params: ['layer3', 'layer4'], lr: 1e-4, weightDecay: 5e-4 },
 * ]);
 * ```
 */
export const optim = {
  sgd(model: Model, groups?: ParamGroup<SGDGroupOptions>[], defaults?: SGDGroupOptions, settings?: OptimizerSettings): Optimizer {
    return new Optimizer('sgd', model, groups, defaults, settings);
  },
  adam(model: Model, groups?: ParamGroup<AdamGroupOptions>[], defaults?: AdamGroupOptions, settings?: OptimizerSettings): Optimizer {
    return new Optimizer('adam', model, groups, defaults, settings);
  },
  adamw(model: Model, groups?: ParamGroup<AdamGroupOptions>[], defaults?: AdamGroupOptions, settings?: OptimizerSettings): Optimizer {
    return new Optimizer('adamw', model, groups, defaults, settings);
  },
};
