// The one file that touches the addon: loads it (prebuilds/ or the local build, via
// node-gyp-build) and types what it exports. Everything else imports `native` from here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { packageRoot } from './package';
import type { DataLoaderOptions } from './data/loader';
import type { SummaryRow } from './models/model';
import type { BuildInfo } from './runtime';
import type { EpochRecord } from './training/finetune';

/** Raw addon Tensor; lib/tensor/tensor.ts gives it its public, typed face. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  readonly numel: number;
  readonly disposed: boolean;
  data(): ArrayBufferView;
  toFloat32Array(): Float32Array;
  item(): number | bigint | boolean;
  to(device: string): NativeTensor;
  dispose(): void;
}

/** buildInfo() less torch-attn's own version, which the package states. */
export type NativeBuildInfo = Omit<BuildInfo, 'version'>;

/** fp16 loss scaling, PyTorch's GradScaler arguments (defaults 65536, 2, 0.5, 2000). */
export interface LossScaling {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

export interface NativeLoadResult {
  missing: string[];
  unexpected: string[];
  mismatched: { name: string; expected: number[]; got: number[] }[];
}


/** Raw addon Model; lib/models gives it its public classes. */
/** One inference plan of a model (model.inferencePlan()). */
export interface InferencePlanInfo {
  /** The input shape it was made for. */
  shape: number[];
  precision: 'fp32' | 'bf16' | 'fp16';
  /** Prepared convolutions (weights reordered once into oneDNN's layout). */
  convolutions: number;
  /** BatchNorms folded into the convolution before them. */
  foldedBatchNorms: number;
  /** ReLUs fused into the convolution before them. */
  fusedRelus: number;
  /** Residual blocks whose last convolution also adds the identity (before its fused ReLU), in the
   *  identity's own buffer: ResNet blocks without attention inside, where the plan's convolutions
   *  run on oneDNN's API (`buildInfo().planConvolutions`) and that convolution is not a
   *  matrix-product candidate. */
  fusedResidualAdds: number;
  /**
   * Convolutions run as one matrix product over every output position of the batch (im2col, then
   * a prepared 1 x 1 convolution). Candidates: weights of 4 MiB or more over at least 64 output
   * positions, and 1 x 1 convolutions with a stride; each takes the form that measured faster when
   * the plan was made (the product only when it took at most 0.9 of the direct form's time: it
   * holds a copy of the weights of its own; `model.planTuning`), or the product when tuning is off.
   */
  gemmConvolutions: number;
  /**
   * 3 x 3 convolutions of stride 1 computed by Winograd, where the plan's convolutions run on
   * oneDNN's API (`buildInfo().planConvolutions`): torch-attn's own kernel on CPUs with AVX-512
   * (bf16: AVX-512 BF16), input channels in multiples of 16 and output channels in multiples of
   * 64, where the input gives 32 or more 2 x 2 output tiles (N x ceil(H / 2) x ceil(W / 2)):
   * F(2x2, 3x3), or in fp32 F(4x4, 3x3) where it pays more (`winogradF4Convolutions`). Other fp32
   * ones with channels in multiples of 16 by oneDNN's F(4x4, 3x3) where it has enough work. The
   * transformed weights are larger than the plain ones (16/9 for F(2x2), 4x for F(4x4)), so a
   * plan takes Winograd only while the weights it adds stay within 3 copies of the model's
   * convolution weights (plans for other batch sizes lend theirs); the convolutions after that run
   * directly.
   * `TORCH_ATTN_WINOGRAD=0` (read once per process) turns it off.
   */
  winogradConvolutions: number;
  /**
   * Of `winogradConvolutions`, those by torch-attn's fp32 F(4x4, 3x3) (4x fewer multiplications
   * than the direct form, against F(2x2)'s 2.25x): where the input gives 64 or more 4 x 4 output
   * tiles (32 with 256 input channels or more) and the transformed weights stay within 9.4 MB
   * (256 x 256 channels), or 16 or more tiles where they are larger (then read once for all the
   * tiles: weights-stationary), F(2x2) elsewhere.
   */
  winogradF4Convolutions: number;
  /**
   * Bytes of weights the plan's convolutions read, in the forms it runs them: reordered for
   * oneDNN, or transformed for Winograd (bf16: 16/9 of the plain weights; fp32: up to 4x).
   * Plans of the same weights and precision share them (a prepared convolution serves every batch
   * size), so plans for more shapes add no copies except Winograd weights of a layout no other
   * plan has (above); this counts shared weights in every plan that reads them.
   */
  weightBytes: number;
  /** Forward passes it served. */
  uses: number;
}

export interface NativeModel {
  readonly training: boolean;
  readonly description: string;
  readonly device: string;
  readonly memoryFormat: 'contiguous' | 'channels-last';
  forward(x: NativeTensor): NativeTensor;
  predict(x: NativeTensor, batchSize?: number, precision?: string): Promise<NativeTensor>;
  predictParts(xs: NativeTensor[], precision?: string): Promise<NativeTensor[]>;
  prepareInference(shapes: number[][], precision?: string): Promise<InferencePlanInfo[]>;
  inferencePlan(): InferencePlanInfo[];
  setInferencePlans(enabled: boolean, tuning: boolean): void;
  /** Plans kept for this many more shapes than the default 8 (at most 72 in all; never fewer than asked before). */
  reservePlans(shapes: number): void;
  attentionMaps(x: NativeTensor): Record<string, NativeTensor>;
  modelAttentionMaps(x: NativeTensor): Promise<Record<string, Record<string, NativeTensor>>>;
  train(mode?: boolean): void;
  to(device?: string, memoryFormat?: string): NativeModel;
  namedParameters(): { name: string; shape: number[]; requiresGrad: boolean }[];
  namedBuffers(): { name: string; shape: number[]; dtype: string }[];
  parameterCount(trainableOnly?: boolean): number;
  summary(inputShape: number[]): SummaryRow[];
  stateDict(): Record<string, NativeTensor>;
  loadStateDict(source: string | Record<string, NativeTensor>, strict?: boolean): Promise<NativeLoadResult>;
  namScalingFactors(): string[];
  namSparsityPenalty(lambda: number): number;
  setRequiresGrad(names: string[], flag: boolean): void;
  /** BatchNorms whose parameters are all frozen keep their statistics (true) or every one trains (false). */
  applyBatchNormPolicy(freeze: boolean): void;
  /** [state-dict name, group] for every parameter and buffer ('' for none). */
  groupTable(): [string, string][];
  trainStep(
    optimizer: NativeOptimizer,
    x: NativeTensor,
    labels: NativeTensor,
    options: { labelSmoothing?: number; namSparsity?: number; gradClip?: number; precision?: string; distributed?: NativeProcessGroup; syncBatchNorm?: boolean; winograd?: boolean },
  ): Promise<NativeStepResult>;
}

/** What createModel() takes: the TypeScript builders' validated options, flattened. */
export interface NativeModelSpec {
  arch: 'resnet' | 'vgg' | 'cbamcnn' | 'attention';
  depth?: number;
  numClasses?: number;
  stem?: string;
  placement?: string;
  stages?: number[];
  batchNorm?: boolean;
  channels?: number;
  attention?: {
    kind: string;
    ratio?: number;
    kernelSize?: number;
    passthrough?: boolean;
    detachWeights?: boolean;
    pixelSize?: number;
    ecaGamma?: number;
    ecaB?: number;
    mlpBias?: boolean;
    poolTypes?: string[];
    spatialPoolOrder?: string;
    spatialNorm?: string;
    spatial?: boolean;
  };
}

export interface NativeOptimizer {
  readonly groupCount: number;
  readonly lossScale: { scale: number; growthTracker: number };
  readonly fused: boolean;
  getLr(group: number): number;
  setLr(group: number, lr: number): void;
  addGroup(group: { params: string[]; [option: string]: unknown }): void;
  zeroGrad(): void;
  save(path: string): void;
  load(path: string): void;
}

export interface NativeStepResult {
  loss: number;
  correct: number;
  count: number;
  skipped: boolean;
}

/** Raw addon Dataset: a data source with its transform (lib/data gives it its public face). */
export interface NativeDataset {
  readonly length: number;
  describe(): string;
  withTransform(steps: readonly object[]): NativeDataset;
  get(index: number, seed?: number | bigint): { image: NativeTensor; label: number };
  verify(): Promise<{ index: number; message: string }[]>;
}

/** DataLoader's options with its process group as this rank's shard. */
export type NativeLoaderOptions = Omit<DataLoaderOptions, 'distributed'> & { batchSize: number; shardRank?: number; shardCount?: number };

export interface NativeBatchStream {
  next(): Promise<{ images: NativeTensor; labels: NativeTensor; index: number } | null>;
  close(): Promise<void>;
}

export interface NativeLoader {
  readonly batchCount: number;
  epoch(index: number): NativeBatchStream;
}

export interface NativeFitControl {
  cancel(): void;
  readonly cancelled: boolean;
}

export interface NativeTunerPlan {
  groupLabels: string[];
  optimizer: string;
  groups: { params: string[]; [option: string]: unknown }[];
  /** trainable: 1 per group that trains in the stage; lrTable: one row of a rate per group for
   *  every step of the stage (lrPerStep) or every epoch. */
  stages: {
    name: string;
    epochs: number;
    trainable: Uint8Array;
    lrTable: Float64Array;
    lrPerStep: boolean;
    /** ReduceLROnPlateau over the stage's rates (native/training/fine_tuner.h PlateauOptions). */
    plateau?: { monitor: string; mode: 'min' | 'max'; factor: number; patience: number; threshold: number; cooldown: number; minLr: number };
  }[];
  batchNorm?: 'eval' | 'train';
  labelSmoothing?: number;
  namSparsity?: number;
  gradClip?: number;
  precision?: string;
  lossScaling?: LossScaling;
  logEvery?: number;
  checkpointDir?: string;
  resume?: string;
  distributed?: NativeProcessGroup;
  syncBatchNorm?: boolean;
  winograd?: boolean;
}

export type NativeTunerEvent =
  | { type: 'stage'; index: number; name: string; trainable: boolean[] }
  | { type: 'batch'; epoch: number; batch: number; batches: number; loss: number; meanLoss: number; lr: Record<string, number> }
  | { type: 'epoch'; record: EpochRecord };

export interface NativeTunerResult {
  cancelled: boolean;
  records: EpochRecord[];
  best: { metric: number; epoch: number };
  checkpoint?: string;
  bestCheckpoint?: string;
}

/** A training checkpoint's training.progress (native/training/progress.h). */
export interface NativeProgress {
  version: number;
  stage: number;
  stageName: string;
  nextEpoch: number;
  nextBatch: number;
  step: number;
  partial: { lossSum: number; correct: number; count: number; seconds: number; skipped?: number };
  best: { metric: number | null; epoch: number };
  run: { version: number; seed: number; batchesPerEpoch: number; groups: string[]; stages: [string, number][]; optimizer: string };
  records: EpochRecord[];
  scaler?: { scale: number; growthTracker: number };
}

export interface NativeEvalResult {
  lossSum: number;
  count: number;
  top1: number;
  top5: number;
  classes: number;
  confusion: Float64Array;
  probabilities?: Float32Array;
  labels?: Int32Array;
}

export interface NativeGroupOptions {
  backend: string;
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  localRank: number;
  timeoutMs: number;
}

/** Raw addon ProcessGroup (native/distributed/group_wrap.h); lib/distributed.ts types it. */
export interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly backend: string;
  readonly destroyed: boolean;
  barrier(): Promise<void>;
  allReduce(t: NativeTensor, op?: string): Promise<NativeTensor>;
  broadcast(t: NativeTensor, src?: number): Promise<NativeTensor>;
  allGather(t: NativeTensor): Promise<NativeTensor[]>;
  destroy(): void;
}

export interface NativeBinding {
  cpuCache(empty?: boolean): { cachedBytes: number; limitBytes: number; hits: number; misses: number };
  buildInfo(): NativeBuildInfo;
  stopOwnedThreads(all: boolean): void;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudnnBenchmark(on?: boolean): boolean;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number | bigint): void;

  Tensor: abstract new () => NativeTensor;
  tensor(data: ArrayBufferView, shape: number[], dtype?: string, device?: string): NativeTensor;
  zeros(shape: number[], dtype?: string, device?: string): NativeTensor;
  ones(shape: number[], dtype?: string, device?: string): NativeTensor;
  randn(shape: number[], dtype?: string, device?: string): NativeTensor;
  arange(start: number, end: number, step: number, dtype: string, device: string): NativeTensor;

  Model: abstract new () => NativeModel;
  createModel(spec: NativeModelSpec): NativeModel;
  readStateDict(path: string): Promise<Record<string, NativeTensor>>;
  encodePth(tensors: Record<string, NativeTensor>): Buffer;
  /** The plans' Winograd kernel on one convolution, F(2x2, 3x3) (float32 or bfloat16) or F(4x4, 3x3) (`tile` 4, float32), for its tests (model_wrap.cc). */
  winogradConv2d(x: NativeTensor, weight: NativeTensor, bias: NativeTensor, relu: boolean, precision: 'fp32' | 'bf16', residual?: NativeTensor | null, tile?: 2 | 4): NativeTensor;
  /** Training's Winograd convolution through autograd on one convolution: [output, input gradient, weight gradient] for `gradOutput`, for its tests (model_wrap.cc). */
  winogradTrainingConv2d(x: NativeTensor, weight: NativeTensor, gradOutput: NativeTensor, tile: 2 | 4, precision: 'fp32' | 'bf16'): [NativeTensor, NativeTensor, NativeTensor];
  /** Training's Winograd weight gradient on one convolution with the form given (float32), for its tests (model_wrap.cc). */
  winogradWeightGradient(x: NativeTensor, gradOutput: NativeTensor, tile: 2 | 4): NativeTensor;

  Dataset: abstract new () => NativeDataset;
  createMemoryDataset(pixels: Uint8Array, labels: Int32Array, shape: number[]): NativeDataset;
  createFileDataset(paths: string[], labels: Int32Array): NativeDataset;
  applyTransform(steps: readonly object[], image: NativeTensor, seed?: number | bigint): NativeTensor;
  decodeImage(data: Uint8Array, steps: readonly object[] | undefined, name?: string, maxPixels?: number): Promise<NativeTensor>;
  drawSeed(): bigint;
  imageLimits(limits?: { maxPixels?: number; maxFileBytes?: number }): { maxPixels: number; maxFileBytes: number };
  DataLoader: abstract new () => NativeLoader;
  createLoader(dataset: NativeDataset, options: NativeLoaderOptions): NativeLoader;

  createFitControl(): NativeFitControl;
  fineTune(
    model: NativeModel,
    train: NativeLoader,
    test: NativeLoader | null,
    plan: NativeTunerPlan,
    control: NativeFitControl,
    onEvent: (event: NativeTunerEvent) => void,
  ): Promise<NativeTunerResult>;
  evaluate(model: NativeModel, loader: NativeLoader, keepProbabilities: boolean, precision?: string, progress?: Int32Array): Promise<NativeEvalResult>;
  readTrainingProgress(path: string): Promise<NativeProgress>;
  epochRecordFields(): { name: string; optional: boolean }[];
  /** The precision names, in the core's order (models/precision.h). */
  precisions: string[];
  gradScalerSteps(steps: NativeTensor[][], options?: LossScaling): { foundInf: boolean; scale: number; growthTracker: number }[];

  ProcessGroup: abstract new () => NativeProcessGroup;
  initProcessGroup(options: NativeGroupOptions): Promise<NativeProcessGroup>;
  distributedBackends(): string[];

  Optimizer: abstract new () => NativeOptimizer;
  createOptimizer(model: NativeModel, type: string, groups: { params: string[]; [option: string]: unknown }[]): NativeOptimizer;
}

export { packageRoot, packageVersion } from './package';

// LibTorch builds that link Open MPI (Debian 13's 2.6) load UCX with it, and UCX's libucs
// patches libc's mmap family as it loads (its memory hooks, for RDMA registration caches):
// about 1 Node process in 150 then crashed later (a SIGSEGV on an address equal to the
// process id, in V8's heap) or hung (UCX's own SIGSEGV handler deadlocked in malloc). torch-attn
// does not use MPI; these settings, read by libucs as the addon loads, turn the hooks and the
// handler off unless the user set them (CONTRIBUTING, "Debian 13's UCX").
export const ucxDefaults: Readonly<Record<string, string>> = { UCX_MEM_MMAP_HOOK_MODE: 'none', UCX_HANDLE_ERRORS: 'none' };

/** The addon file this process loads: TORCH_ATTN_ADDON when set (another build, such as the
 *  sanitizer build of scripts/test-asan.sh), else what node-gyp-build finds (prebuilds/ or the
 *  local build). Code that loads the addon elsewhere (a worker, a child process) loads this file. */
function locate(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return process.env.TORCH_ATTN_ADDON ? path.resolve(process.env.TORCH_ATTN_ADDON) : require('node-gyp-build').path(packageRoot);
  } catch {
    throw new Error(
      'torch-attn: the native addon is not built. Run `npm rebuild torch-attn` (or `npm run build:native` ' +
        'in a clone); it needs LibTorch: `sudo apt-get install -y libtorch-dev`, or TORCH_ATTN_LIBTORCH=/path/to/libtorch.',
    );
  }
}

function load(file: string): NativeBinding {
  for (const [name, value] of Object.entries(ucxDefaults)) process.env[name] ??= value;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as NativeBinding;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(
      `torch-attn: the native addon ${file} failed to load: ${reason}. If LibTorch was removed or moved ` +
        'since the build, reinstall it (`sudo apt-get install -y libtorch-dev`) or rebuild with ' +
        '`npm rebuild torch-attn` (TORCH_ATTN_LIBTORCH selects another LibTorch).',
    );
  }
}

export const addonFile: string = locate();
export const native: NativeBinding = load(addonFile);

// process.exit() runs the 'exit' listeners and then C++'s exit handlers, which destroy
// LibTorch's static objects: a native thread still inside a kernel then would crash. Stop and
// join this environment's native threads (every one, on the main thread) first.
process.once('exit', () => native.stopOwnedThreads(isMainThread));
