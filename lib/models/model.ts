// Model: the public face of a native model (any architecture, or one attention module).
import { expectGroup, syncBatchNormOption, type ProcessGroup } from '../distributed';
import type { InferencePlanInfo, NativeModel, NativeModelSpec } from '../native';
import { native } from '../native';
import { expectTensor } from '../tensor/tensor';
import type { Tensor } from '../tensor/tensor';
import type { Device } from '../tensor/tensor';
import * as validate from '../validate';
import { MEMORY_FORMATS, precisionOption, type MemoryFormat, type Precision } from '../precision';
import { loadBackbone } from './backbone';
import { parameterGroups, resolveParameters } from '../training/groups';
import { Optimizer } from '../training/optim';
import { checkpointFormat, isSafetensors, readStateDict, saveStateDict } from './checkpoint';
import { CHECKPOINT_LAYOUTS, convertLayout } from './layouts';
import type { CheckpointLayout } from './layouts';
import { Predictor, type PredictorOptions } from '../serving/predictor';

export interface NamedParameter {
  name: string;
  shape: number[];
  requiresGrad: boolean;
}

export interface NamedBuffer {
  name: string;
  shape: number[];
  dtype: string;
}

/** One row of summary(): a top-level step of the forward pass. */
export interface SummaryRow {
  name: string;
  type: string;
  outputShape: number[];
  params: number;
  trainable: number;
  /** Multiply-accumulates of the step's convolutions and linear layers for the traced input
   *  (element-wise work, pooling and normalisation not counted, as torchinfo counts). */
  macs: number;
}

/** What loadStateDict() matched: names the model has but the file lacks, names the file has
 *  but the model lacks, and names whose shapes differ (never loaded). */
export interface LoadResult {
  missing: string[];
  unexpected: string[];
  mismatched: { name: string; expected: number[]; got: number[] }[];
}

/** What loadBackbone() did: the model's names it loaded, the file's entries it skipped (with
 *  why), and the backbone names the file did not provide. */
export interface BackboneReport {
  loaded: string[];
  skipped: { name: string; reason: string }[];
  missing: string[];
}

export interface LoadOptions {
  /** Refuse (and load nothing) unless every name and shape matches; default true. */
  strict?: boolean;
  /** The checkpoint's naming, converted on load: 'torch-attn' (default; PyTorch module trees as
   *  in the models), 'cbam-original' or 'timm-cbam' (into in-block CBAM: build the model with
   *  `placement: 'block'` and CBAM_LAYOUTS.original / .timm). */
  layout?: CheckpointLayout;
}

export interface PredictOptions {
  /** Images per forward pass; default 256. */
  batchSize?: number;
  /** 'fp32' (default), 'bf16' (autocast; CPU and CUDA) or 'fp16' (CUDA). Logits come back float32. */
  precision?: Precision;
}

/**
 * A network on LibTorch. Parameter and buffer names follow PyTorch's module trees, so state
 * dicts move between torch-attn and PyTorch without renaming.
 *
 * ```ts
 * const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
 * model.eval();
 * const logits = model.forward(randn([8, 3, 32, 32]));
 * ```
 */
export class Model {
  /** @internal */
  readonly native: NativeModel;
  /** @internal What the model was built from (architecture, stem, attention, placement). */
  readonly spec: Readonly<NativeModelSpec>;
  #batchNorm: 'eval' | 'train' = 'eval';
  #plans = true;
  #planTuning = true;
  #learned = false;

  protected constructor(spec: NativeModelSpec) {
    this.native = native.createModel(spec);
    this.spec = spec;
  }

  /** What the model is, e.g. 'ResNet18-cbam (stage)'. */
  get description(): string {
    return this.native.description;
  }

  /** Logits for a float32 batch (B x C x H x W), without gradients, in the current mode.
   *  The input is moved to the model's device. */
  forward(x: Tensor): Tensor {
    return this.native.forward(expectTensor(x, 'forward(x)') as never) as unknown as Tensor;
  }

  /** Logits in eval mode, computed off the main thread in batches; resolves to a CPU tensor.
   *  Inference calls may overlap (they run one after another); while one runs, training and
   *  loading on the model throw ERR_TORCH_ATTN_BUSY, and while those run, so does predict(). */
  predict(x: Tensor, options?: PredictOptions): Promise<Tensor> {
    try {
      const opts = validate.options(options, 'predict() options', ['batchSize', 'precision']);
      const batch = opts.batchSize === undefined ? undefined : validate.integer(opts.batchSize, 'predict() options.batchSize', 1);
      const precision = precisionOption(opts.precision, 'predict() options.precision', this.device);
      return this.native.predict(expectTensor(x, 'predict(x)') as never, batch, precision) as unknown as Promise<Tensor>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Prepares inference plans ahead of the first call (a service at start-up): for each input
   * shape (default one image of the model's usual size), the convolutions folded with their
   * BatchNorms, their weights reordered once for oneDNN, ReLUs fused, activations kept
   * channels-last. Eval-mode calls without gradients (predict, evaluate, forward after eval())
   * use plans anyway, made on first use and rebuilt whenever the weights change; preparing only
   * moves that cost. Resolves to the plans the model holds.
   */
  prepareInference(options?: { shapes?: number[][]; precision?: Precision }): Promise<InferencePlanInfo[]> {
    try {
      const o = validate.options(options, 'prepareInference() options', ['shapes', 'precision']);
      const size = this.spec.stem === 'imagenet' ? 224 : 32;
      const shapes =
        o.shapes === undefined
          ? [[1, 3, size, size]]
          : Array.isArray(o.shapes)
            ? o.shapes.map((s, i) => validate.shape(s, `prepareInference() options.shapes[${i}]`))
            : (() => {
                throw validate.typeError('prepareInference() options.shapes', 'an Array of shapes [B, C, H, W]', o.shapes);
              })();
      const precision = precisionOption(o.precision, 'prepareInference() options.precision', this.device);
      return this.native.prepareInference(shapes, precision);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The inference plans the model holds, most recently used first. */
  inferencePlan(): InferencePlanInfo[] {
    return this.native.inferencePlan();
  }

  /** Whether eval-mode calls use inference plans (default true). Off: every call runs the
   *  modules eagerly, exactly as in training mode, and the plans are dropped. */
  get inferencePlans(): boolean {
    return this.#plans;
  }

  set inferencePlans(enabled: boolean) {
    if (typeof enabled !== 'boolean') throw validate.typeError('inferencePlans', 'a boolean', enabled);
    this.native.setInferencePlans(enabled, this.#planTuning);
    this.#plans = enabled;
  }

  /** Whether a plan, when it is made, times the two forms a large convolution can take (oneDNN's
   *  direct kernel, or im2col + one matrix product; see `InferencePlanInfo.gemmConvolutions`) on
   *  the call's own input and keeps the faster (default true; PyTorch's `cudnn.benchmark` idea).
   *  The faster form depends on the machine and the precision. Off: always the matrix product,
   *  the same plans, to the bit, on every machine and in every run. Changing it drops the plans. */
  get planTuning(): boolean {
    return this.#planTuning;
  }

  set planTuning(enabled: boolean) {
    if (typeof enabled !== 'boolean') throw validate.typeError('planTuning', 'a boolean', enabled);
    this.native.setInferencePlans(this.#plans, enabled);
    this.#planTuning = enabled;
  }

  /** A dynamic batcher on this model for services: concurrent predict()/classify() calls are
   *  coalesced into batches of up to `maxBatch` images, waiting at most `maxDelayMs`. */
  predictor(options?: PredictorOptions): Predictor {
    return new Predictor(this, options);
  }

  /** Training mode (BatchNorm uses batch statistics, dropout is on). */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw validate.typeError('train(mode)', 'a boolean', mode);
    this.native.train(mode);
    return this;
  }

  /** Inference mode. */
  eval(): this {
    this.native.train(false);
    return this;
  }

  get training(): boolean {
    return this.native.training;
  }

  get device(): string {
    return this.native.device;
  }

  /** Moves parameters and buffers to `device`, and/or keeps the 4-D weights in `memoryFormat`
   *  ('channels-last' or 'contiguous'); inputs are then converted at the model's entry. */
  to(target: Device | { device?: Device; memoryFormat?: MemoryFormat }): this {
    if (typeof target === 'string') {
      this.native.to(target);
      return this;
    }
    const o = validate.options(target, 'to() options', ['device', 'memoryFormat']);
    if (o.device === undefined && o.memoryFormat === undefined) throw new TypeError('to(): give a device, or { device?, memoryFormat? }');
    const format = o.memoryFormat === undefined ? undefined : validate.oneOf(o.memoryFormat, 'to() memoryFormat', MEMORY_FORMATS);
    this.native.to(o.device, format);
    return this;
  }

  /** 'channels-last' after to({ memoryFormat: 'channels-last' }), else 'contiguous'. */
  get memoryFormat(): MemoryFormat {
    return this.native.memoryFormat;
  }

  namedParameters(): NamedParameter[] {
    return this.native.namedParameters();
  }

  namedBuffers(): NamedBuffer[] {
    return this.native.namedBuffers();
  }

  parameterCount(options?: { trainableOnly?: boolean }): number {
    const opts = validate.options(options, 'parameterCount() options', ['trainableOnly']);
    return this.native.parameterCount(opts.trainableOnly ?? false);
  }

  /** One row per top-level step (stem, stages or blocks, attention modules, head), with the
   *  output shape for an input of `inputShape` (default one 32 x 32 RGB image). */
  summary(inputShape: readonly number[] = [1, 3, 32, 32]): SummaryRow[] {
    return this.native.summary(validate.shape(inputShape, 'summary() inputShape'));
  }

  /** summary() as a printable table, with totals. */
  summaryTable(inputShape: readonly number[] = [1, 3, 32, 32]): string {
    const rows = this.summary(inputShape);
    const cells = rows.map((r) => [r.name, r.type, `[${r.outputShape.join(', ')}]`, r.params.toLocaleString('en-US'), r.trainable.toLocaleString('en-US'), humanCount(r.macs)]);
    const header = ['layer', 'type', 'output shape', 'params', 'trainable', 'MACs'];
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c: string[]) => c.map((v, i) => (i >= 3 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ');
    const total = this.parameterCount();
    const trainable = this.parameterCount({ trainableOnly: true });
    const macs = rows.reduce((n, r) => n + r.macs, 0);
    // torchinfo's "forward pass size": every row's float32 output, held for the backward pass.
    const activations = rows.reduce((n, r) => n + r.outputShape.reduce((a, b) => a * b, 1), 0) * 4;
    return [
      this.description,
      line(header),
      widths.map((w) => '-'.repeat(w)).join('  '),
      ...cells.map(line),
      `total parameters: ${total.toLocaleString('en-US')} (trainable ${trainable.toLocaleString('en-US')}), ${(total * 4 / 2 ** 20).toFixed(1)} MiB in float32`,
      `MACs for input [${inputShape.join(', ')}]: ${humanCount(macs)} (${(2 * macs / 1e9).toFixed(2)} GFLOPs); activations of the rows: ${(activations / 2 ** 20).toFixed(1)} MiB (float32, one forward pass)`,
    ].join('\n');
  }

  /** Parameters and buffers by PyTorch name, as independent copies. */
  stateDict(): Record<string, Tensor> {
    return this.native.stateDict() as unknown as Record<string, Tensor>;
  }

  /**
   * Loads a state dict: a `.pth` file written by `torch.save(model.state_dict(), path)` (read
   * off the main thread, never executing code) or an object of name -> Tensor.
   */
  async loadStateDict(source: string | Record<string, Tensor>, options?: LoadOptions): Promise<LoadResult> {
    const opts = validate.options(options, 'loadStateDict() options', ['strict', 'layout']);
    if (opts.strict !== undefined && typeof opts.strict !== 'boolean') {
      throw validate.typeError('loadStateDict() options.strict', 'a boolean', opts.strict);
    }
    const layout = validate.oneOf(opts.layout ?? 'torch-attn', 'loadStateDict() options.layout', CHECKPOINT_LAYOUTS);
    if (typeof source !== 'string' && !validate.isPlainObject(source)) {
      throw validate.typeError('loadStateDict() source', 'a file path or an object of name -> Tensor', source);
    }
    const strict = opts.strict ?? true;
    const result = await this.#loadStateDict(source, strict, layout);
    this.#learned = true;
    return result;
  }

  async #loadStateDict(source: string | Record<string, Tensor>, strict: boolean, layout: (typeof CHECKPOINT_LAYOUTS)[number]): Promise<LoadResult> {
    if (typeof source === 'string' && !isSafetensors(source) && layout === 'torch-attn') {
      return this.native.loadStateDict(source, strict); // read and loaded off the main thread
    }
    const read = typeof source === 'string' ? await readStateDict(source) : undefined;
    const tensors = read ?? (source as Record<string, Tensor>);
    let converted: Record<string, Tensor> = tensors;
    try {
      if (layout !== 'torch-attn') converted = convertLayout(tensors, layout, typeof source === 'string' ? source : 'the state dict');
      return await this.native.loadStateDict(converted as never, strict);
    } finally {
      // Dispose what this call made: the file's tensors and any reshaped copies.
      const given = new Set(Object.values(tensors));
      for (const t of Object.values(converted)) if (!given.has(t)) t.dispose();
      for (const t of Object.values(read ?? {})) t.dispose();
    }
  }

  /**
   * Loads a torchvision ImageNet ResNet or VGG state dict (`torchvision.models.resnet50().state_dict()`
   * saved with torch.save, or .safetensors; 'imagenet' / 'imagenet-v2': torchvision's own file for
   * this architecture from PyTorch's cache, see `pretrained`) into this model's backbone: the `backbone.` prefix is
   * added where the layout has one, a DataParallel `module.` prefix is removed, the 7x7 `conv1`
   * is skipped under the CIFAR stem and the head when the class count differs. Attention modules
   * keep their own initialisation. Everything not loaded is reported with the reason.
   */
  async loadBackbone(path: string): Promise<BackboneReport> {
    if (typeof path !== 'string') throw validate.typeError('loadBackbone(path)', "a file path, 'imagenet' or 'imagenet-v2'", path);
    const report = await loadBackbone(this, path);
    if (report.loaded.length > 0) this.#learned = true;
    return report;
  }

  /** @internal The fine-tuner trained this model. */
  markLearned(): void {
    this.#learned = true;
  }

  /** Whether the weights came from somewhere (a loaded state dict or backbone, a training step)
   *  rather than only from initialisation. */
  get hasLearnedWeights(): boolean {
    return this.#learned;
  }

  /**
   * Freezes parameters: groups ('stem', 'layer1'..'layer4', 'attention', 'head', 'backbone',
   * 'all'; VGG 'stage1'..'stage5', CBAMCNN 'block1'..'block3') or glob patterns over names
   * ('layer4.*.conv2.*'). Frozen parameters get no gradient and are not updated. BatchNorms whose
   * parameters are all frozen stay in inference mode while the model trains (statistics frozen
   * too), re-applied after every train(), unless `batchNorm: 'train'`. BatchNorms of attention
   * modules follow their module.
   *
   * ```ts
   * model.freeze('backbone');             // train head + attention
   * model.unfreeze(['layer3', 'layer4']); // then the high stages
   * ```
   */
  freeze(selectors: string | readonly string[], options?: { batchNorm?: 'eval' | 'train' }): this {
    const opts = validate.options(options, 'freeze() options', ['batchNorm']);
    if (opts.batchNorm !== undefined) this.#batchNorm = validate.oneOf(opts.batchNorm, 'freeze() options.batchNorm', ['eval', 'train'] as const);
    this.native.setRequiresGrad(resolveParameters(this, selectors, 'freeze()'), false);
    this.#applyBatchNormPolicy();
    return this;
  }

  /** Makes parameters trainable again (the opposite of freeze()). */
  unfreeze(selectors: string | readonly string[]): this {
    this.native.setRequiresGrad(resolveParameters(this, selectors, 'unfreeze()'), true);
    this.#applyBatchNormPolicy();
    return this;
  }

  /** Each group and whether it trains: 'trainable', 'frozen' or 'partial'. */
  trainableGroups(): Record<string, 'trainable' | 'frozen' | 'partial'> {
    const trainable = new Map(this.namedParameters().map((p) => [p.name, p.requiresGrad]));
    const out: Record<string, 'trainable' | 'frozen' | 'partial'> = {};
    for (const [group, names] of parameterGroups(this)) {
      if (names.length === 0) continue;
      const on = names.filter((n) => trainable.get(n)).length;
      out[group] = on === names.length ? 'trainable' : on === 0 ? 'frozen' : 'partial';
    }
    return out;
  }

  #applyBatchNormPolicy(): void {
    this.native.applyBatchNormPolicy(this.#batchNorm === 'eval');
  }

  /**
   * One optimisation step off the main thread: forward, cross-entropy against `labels` (int64
   * class indices), backward, the NAM sparsity subgradient when `namSparsity` > 0, gradient
   * clipping when `gradClip` > 0, then `optimizer`'s update. Resolves to the batch's loss and
   * top-1 hits. `precision` 'bf16' / 'fp16' runs the forward and backward passes under autocast;
   * fp16 (CUDA) scales the loss with the optimizer's loss scaler and skips the update when a
   * gradient overflows (`skipped`). `winograd: true` computes the 3 x 3, stride-1 convolutions'
   * forward pass and input gradient by Winograd (float32 ~1.2x the step's speed on AVX-512 CPUs;
   * results differ from PyTorch's in the last bits, as cuDNN's Winograd does; default false: exact).
   * The model is busy until it settles.
   */
  async trainStep(
    optimizer: Optimizer,
    x: Tensor,
    labels: Tensor,
    options?: { labelSmoothing?: number; namSparsity?: number; gradClip?: number; precision?: Precision; distributed?: ProcessGroup; syncBatchNorm?: boolean; winograd?: boolean },
  ): Promise<{ loss: number; correct: number; count: number; skipped: boolean }> {
    const { precision, distributed, syncBatchNorm, winograd, ...opts } = validate.options(options, 'trainStep() options', [
      'labelSmoothing', 'namSparsity', 'gradClip', 'precision', 'distributed', 'syncBatchNorm', 'winograd',
    ]);
    const byWinograd = winograd === undefined ? false : validate.flag(winograd, 'trainStep() options.winograd');
    const group = distributed === undefined ? undefined : expectGroup(distributed, 'trainStep() options.distributed').native;
    const sync = syncBatchNormOption(syncBatchNorm, group !== undefined, 'trainStep() options');
    const p = precisionOption(precision, 'trainStep() options.precision', this.device);
    for (const [key, value] of Object.entries(opts)) {
      if (validate.finiteNumber(value, `trainStep() options.${key}`) < 0) throw new RangeError(`trainStep() options.${key} must be at least 0, got ${value}`);
    }
    if (opts.labelSmoothing !== undefined && opts.labelSmoothing >= 1) throw new RangeError(`trainStep() options.labelSmoothing must be below 1, got ${opts.labelSmoothing}`);
    if (!(optimizer instanceof Optimizer)) throw validate.typeError('trainStep() optimizer', 'an Optimizer (optim.sgd / adam / adamw)', optimizer);
    if (optimizer.model !== this) throw new TypeError('trainStep(): the optimizer was made for another model');
    expectTensor(labels, 'trainStep() labels');
    if (labels.dtype !== 'int64' || labels.shape.length !== 1) {
      // Named here in torch-attn's dtypes (the addon's check says LibTorch's: 'Float', 'Long').
      throw new RangeError(`trainStep() labels must be a 1-D int64 tensor of class indices, got ${labels.dtype} [${labels.shape.join(', ')}] (tensor(labels, [n], { dtype: 'int64' }))`);
    }
    const result = await this.native.trainStep(optimizer.native, expectTensor(x, 'trainStep() x') as never, labels as never, { ...opts, precision: p, distributed: group, syncBatchNorm: sync, winograd: byWinograd });
    this.#learned = true;
    return result;
  }

  /** Writes the state dict to `path`, as .pth (torch.load reads it; load_state_dict(strict=True)
   *  takes it) or .safetensors, by extension. Atomic: a crash never leaves a half file. */
  async save(path: string): Promise<void> {
    checkpointFormat(path, 'save() path');
    const tensors = this.stateDict();
    try {
      await saveStateDict(tensors, path);
    } finally {
      for (const t of Object.values(tensors)) t.dispose();
    }
  }

  /** Names of the NAM scaling factors (the gamma of each NAM BatchNorm), the parameters the NAM
   *  sparsity penalty acts on; empty for models without NAM. */
  namScalingFactors(): string[] {
    return this.native.namScalingFactors();
  }

  /** The NAM sparsity penalty lambda * sum|gamma| over namScalingFactors() (default lambda
   *  1e-4, as in the NAM code); 0 for models without NAM. The fine-tuner applies its
   *  subgradient (lambda * sign(gamma)) to those gammas after each backward pass. */
  namSparsityPenalty(lambda = 1e-4): number {
    return this.native.namSparsityPenalty(validate.finiteNumber(lambda, 'namSparsityPenalty(lambda)'));
  }

  toString(): string {
    return `${this.description} (${this.parameterCount().toLocaleString('en-US')} parameters, ${this.device})`;
  }
}

/** 1234567 -> '1.23M'. */
function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
