// StagedFineTuner: the staged fine-tuning recipe, run natively. TypeScript resolves the plan
// (parameter groups, which train in each stage, the learning rate of every group at every
// step), the addon runs each stage's loop on a thread of its own and reports batches and
// epochs back. Every group is in the optimizer from the start; a stage only changes which
// groups train and their learning rates, so optimizer state carries over and a checkpoint
// always has the same layout.
import { expectGroup, syncBatchNormOption, type ProcessGroup } from '../distributed';
import * as path from 'node:path';
import { DataLoader } from '../data/loader';
import { ImageDataset } from '../data/datasets';
import { ErrorCode, codedError } from '../errors';
import type { Model } from '../models/model';
import { native, type LossScaling, type NativeTunerPlan, type NativeTunerResult } from '../native';
import * as validate from '../validate';
import { precisionOption, type Precision } from '../precision';
import { parameterGroups, resolveParameters } from './groups';
import { nativeOptions, type OptimizerType } from './optim';
import { cosineAnnealing, linearWarmup, multiStepLR, stepLR, type Schedule } from './schedulers';

export type SchedulerSpec =
  | { type: 'step'; stepSize: number; gamma?: number; unit?: 'epoch' | 'step' }
  | { type: 'multistep'; milestones: number[]; gamma?: number; unit?: 'epoch' | 'step' }
  | { type: 'cosine'; tMax?: number; etaMin?: number; unit?: 'epoch' | 'step' }
  | { type: 'warmup'; steps: number; startFactor?: number; then?: SchedulerSpec; unit?: 'epoch' | 'step' }
  | { type: 'constant' }
  /** ReduceLROnPlateau (PyTorch's defaults): the rates times `factor` once `monitor` (default the
   *  test loss) has not improved by a relative `threshold` for more than `patience` epochs. */
  | { type: 'plateau'; monitor?: PlateauMonitor; mode?: 'min' | 'max'; factor?: number; patience?: number; threshold?: number; cooldown?: number; minLr?: number };

export type PlateauMonitor = 'testLoss' | 'testTop1' | 'trainLoss' | 'trainAcc';
const PLATEAU_KEYS = ['type', 'monitor', 'mode', 'factor', 'patience', 'threshold', 'cooldown', 'minLr'];

/** A plateau spec checked, with its defaults (mode follows the monitor: 'min' for losses). */
function plateauOptions(spec: Extract<SchedulerSpec, { type: 'plateau' }>, where: string): NonNullable<NativeTunerPlan['stages'][number]['plateau']> {
  const s = validate.options(spec, where, PLATEAU_KEYS);
  const monitor = validate.oneOf(s.monitor ?? 'testLoss', `${where}.monitor`, ['testLoss', 'testTop1', 'trainLoss', 'trainAcc'] as const);
  const factor = validate.finiteNumber(s.factor ?? 0.1, `${where}.factor`);
  if (factor <= 0 || factor >= 1) throw new RangeError(`${where}.factor must be in (0, 1), got ${factor}`);
  const nonNegative = (v: number, name: string) => {
    if (validate.finiteNumber(v, `${where}.${name}`) < 0) throw new RangeError(`${where}.${name} must be at least 0, got ${v}`);
    return v;
  };
  return {
    monitor,
    mode: validate.oneOf(s.mode ?? (monitor.endsWith('Loss') ? 'min' : 'max'), `${where}.mode`, ['min', 'max'] as const),
    factor,
    patience: validate.integer(s.patience ?? 10, `${where}.patience`, 0),
    threshold: nonNegative(s.threshold ?? 1e-4, 'threshold'),
    cooldown: validate.integer(s.cooldown ?? 0, `${where}.cooldown`, 0),
    minLr: nonNegative(s.minLr ?? 0, 'minLr'),
  };
}

export interface StageSpec {
  name: string;
  epochs: number;
  /** Groups ('head', 'attention', 'layer3', 'backbone', ...), patterns over parameter names, or 'all'. */
  train: string | string[];
  /** One rate for every training group, or per group: { head: 1e-3, attention: 1e-3, backbone: 1e-5, default: ... }. */
  lr: number | Record<string, number>;
  /** This stage's own schedule (counted from the stage's start); overrides the global one. */
  scheduler?: SchedulerSpec;
}

export interface FineTunerOptions {
  optimizer?: { type?: OptimizerType; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number; betas?: [number, number]; eps?: number; amsgrad?: boolean };
  stages: StageSpec[];
  /** A schedule over the whole run (counted from its start), for stages without their own. */
  scheduler?: SchedulerSpec;
  loss?: { type?: 'cross-entropy'; labelSmoothing?: number };
  /** λ of the NAM |γ| sparsity penalty (its subgradient is added in each step). */
  namSparsity?: number;
  /** Clip the global gradient norm to this. */
  gradClip?: number;
  /** A batch event every logEvery batches (and at each epoch's last batch). Default 100. */
  logEvery?: number;
  /** Write last.pth and best.pth here every epoch (and last.pth when cancelled). */
  checkpointDir?: string;
  /** BatchNorms of frozen groups: 'eval' keeps their running statistics fixed (default), 'train' updates them. */
  batchNorm?: 'eval' | 'train';
  /** 'fp32' (default, exact), 'bf16' (autocast; about twice as fast on CPUs with bf16 arithmetic)
   *  or 'fp16' (CUDA, with dynamic loss scaling). Parameters, optimizer state and checkpoints stay
   *  float32. fit() may override it per run. */
  precision?: Precision;
  /** 3 x 3, stride-1 convolutions' forward pass and input gradient by Winograd (trainStep()'s
   *  `winograd`): faster, not bit-identical to PyTorch. Default false. */
  winograd?: boolean;
  /** fp16 loss scaling (PyTorch's GradScaler defaults: initScale 65536, growthFactor 2,
   *  backoffFactor 0.5, growthInterval 2000). */
  lossScaling?: LossScaling;
}

/** One epoch of a run. The native fine-tuner defines the record (native/training/progress.h);
 *  this type mirrors it field for field (test/training/records.test.ts checks that). */
export interface EpochRecord {
  stage: string;
  stageIndex: number;
  /** 1-based, counted over the whole run. */
  epoch: number;
  trainLoss: number;
  trainAcc: number;
  testLoss?: number;
  testTop1?: number;
  testTop5?: number;
  /** Learning rate per optimizer group at the epoch's last step (0: the group was frozen). */
  lr: Record<string, number>;
  seconds: number;
  imagesPerSecond: number;
  /** fp16 runs: steps skipped because a gradient overflowed, and the loss scale at the epoch's end. */
  skippedSteps?: number;
  lossScale?: number;
}

export interface BatchEvent {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  meanLoss: number;
  /** The learning rate each parameter group's step used, by group label (0: frozen). */
  lr: Record<string, number>;
}

export interface FitOptions {
  batchSize?: number;
  workers?: number;
  /** Seeds the shuffle and augmentation (default: drawn from manualSeed's generator; kept in checkpoints). */
  seed?: number;
  /** Drop the last, smaller training batch of each epoch. Default: only when it would hold a
   *  single image (BatchNorm cannot train on one); other partial batches train, as in PyTorch. */
  dropLast?: boolean;
  signal?: AbortSignal;
  onBatch?: (event: BatchEvent) => void;
  onEpoch?: (record: EpochRecord) => void;
  onStage?: (stage: { index: number; name: string; groups: Record<string, 'trainable' | 'frozen'> }) => void;
  /** Advice about the run (a random backbone frozen in the first stage); default process.emitWarning. */
  onWarning?: (message: string) => void;
  /** Continue the run a checkpoint of this configuration (last.pth) stopped at. */
  resume?: string;
  /** This run's precision, over the fine-tuner's option. */
  precision?: Precision;
  /** Page-locked batches for non-blocking copies to the GPU (CUDA only). */
  pinMemory?: boolean;
  /** Data-parallel: this process is one rank of `distributed` (distributed.init()). Datasets are
   *  sharded per rank (batchSize is per rank), gradients averaged as by PyTorch's DDP, epoch
   *  metrics and evaluation are over all ranks, a stop on one rank stops all at the same batch,
   *  and only rank 0 writes checkpoints; resume every rank from the same last.pth. */
  distributed?: ProcessGroup;
  /** With `distributed`: BatchNorms that train take their statistics over the batches of all ranks
   *  (PyTorch's SyncBatchNorm after convert_sync_batchnorm); default false, DDP's default, where
   *  each rank normalises with its own batch and rank 0's running statistics are kept. */
  syncBatchNorm?: boolean;
}

export interface FitResult {
  epochs: EpochRecord[];
  /** The epoch with the best test top-1 (train accuracy without a test set). */
  best: { epoch: number; metric: number; checkpoint?: string } | null;
  /** The optimizer groups: label -> parameter names. */
  groups: Record<string, string[]>;
}

const STAGE_KEYS = ['name', 'epochs', 'train', 'lr', 'scheduler'];

/** The most learning rates a stage's table may hold (8 bytes each): 400 MB. */
const MAX_LR_TABLE = 50_000_000;

/** A schedule spec as a function of the step (or epoch) count; `span`: the schedule's length in
 *  its unit; `batchesPerEpoch` relates the two units. */
function toSchedule(spec: SchedulerSpec, span: number, where: string, batchesPerEpoch: number): { schedule: Schedule; unit: 'epoch' | 'step' } {
  if (!validate.isPlainObject(spec)) throw validate.typeError(where, 'a scheduler { type, ... }', spec);
  const type = validate.oneOf(spec.type, `${where}.type`, ['step', 'multistep', 'cosine', 'warmup', 'constant', 'plateau'] as const);
  const unit = 'unit' in spec && spec.unit !== undefined ? validate.oneOf(spec.unit, `${where}.unit`, ['epoch', 'step'] as const) : 'epoch';
  switch (type) {
    case 'constant':
      validate.options(spec, where, ['type']);
      return { schedule: { name: 'constant', lr: (base) => base }, unit };
    case 'plateau':
      // The stage's rates as they are; the fine-tuner scales them down on plateaus.
      plateauOptions(spec as Extract<SchedulerSpec, { type: 'plateau' }>, where);
      return { schedule: { name: 'reduceOnPlateau', lr: (base) => base }, unit: 'epoch' };
    case 'step': {
      const s = validate.options(spec as { stepSize: number; gamma?: number }, where, ['type', 'stepSize', 'gamma', 'unit']);
      return { schedule: stepLR(s.stepSize as number, s.gamma ?? 0.1), unit };
    }
    case 'multistep': {
      const s = validate.options(spec as { milestones: number[]; gamma?: number }, where, ['type', 'milestones', 'gamma', 'unit']);
      return { schedule: multiStepLR(s.milestones as number[], s.gamma ?? 0.1), unit };
    }
    case 'cosine': {
      const s = validate.options(spec as { tMax?: number; etaMin?: number }, where, ['type', 'tMax', 'etaMin', 'unit']);
      return { schedule: cosineAnnealing(s.tMax ?? Math.max(span, 1), s.etaMin ?? 0), unit };
    }
    case 'warmup': {
      const s = validate.options(spec as { steps: number; startFactor?: number; then?: SchedulerSpec }, where, ['type', 'steps', 'startFactor', 'then', 'unit']);
      const steps = validate.integer(s.steps, `${where}.steps`, 1);
      const thenUnit = s.then !== undefined && 'unit' in s.then && s.then.unit !== undefined ? validate.oneOf(s.then.unit, `${where}.then.unit`, ['epoch', 'step'] as const) : unit;
      if (s.then !== undefined && thenUnit !== unit) {
        if (unit === 'epoch') throw new RangeError(`${where}.then: a warm-up counted in epochs can only be followed by a schedule counted in epochs (unit 'epoch')`);
        // A warm-up per step, then a schedule that moves at each epoch end from the one in which
        // the warm-up finished (the NAM document's LinearWarmup around a per-epoch cosine).
        const B = batchesPerEpoch;
        const then = toSchedule(s.then, Math.max(Math.ceil(span / B) - Math.ceil(steps / B), 1), `${where}.then`, B).schedule;
        const warm = linearWarmup(steps, s.startFactor ?? 0.1);
        return { schedule: { name: `${warm.name}+${then.name}`, lr: (base, t) => (t < steps ? warm.lr(base, t) : then.lr(base, Math.floor(t / B) - Math.floor((steps - 1) / B))) }, unit };
      }
      const then = s.then === undefined ? undefined : toSchedule({ unit, ...s.then } as SchedulerSpec, Math.max(span - steps, 1), `${where}.then`, batchesPerEpoch).schedule;
      return { schedule: linearWarmup(steps, s.startFactor ?? 0.1, then), unit };
    }
  }
}

/** The optimizer groups: the model's own disjoint groups, split further where a stage's
 *  patterns cut through one. */
function partition(model: Model, selectors: string[]): { labels: string[]; params: string[][] } {
  const natural = [...parameterGroups(model)].filter(([name]) => name !== 'all' && name !== 'backbone');
  const home = new Map<string, string>();
  for (const [group, names] of natural) for (const n of names) home.set(n, group);
  const resolved = selectors.map((s) => new Set(resolveParameters(model, s, 'stage train/lr')));
  const byKey = new Map<string, { label: string; params: string[] }>();
  for (const { name } of model.namedParameters()) {
    const group = home.get(name) ?? 'other';
    const cuts = selectors.filter((s, i) => resolved[i].has(name) && !(natural.find(([g]) => g === group)?.[1] ?? []).every((n) => resolved[i].has(n)));
    const key = `${group}|${cuts.join('|')}`;
    if (!byKey.has(key)) byKey.set(key, { label: cuts.length ? `${group}[${cuts.join(',')}]` : group, params: [] });
    byKey.get(key)!.params.push(name);
  }
  const groups = [...byKey.values()].filter((g) => g.params.length > 0);
  return { labels: groups.map((g) => g.label), params: groups.map((g) => g.params) };
}

function abortError(message: string, checkpoint?: string): Error {
  return Object.assign(new Error(message), { name: 'AbortError', code: 'ABORT_ERR', checkpoint });
}

export class StagedFineTuner {
  readonly model: Model;
  readonly options: Readonly<FineTunerOptions>;
  #running = false;

  constructor(model: Model, options: FineTunerOptions) {
    if (typeof model !== 'object' || model === null || !('native' in model)) throw validate.typeError('StagedFineTuner(model)', 'a model', model);
    const o = validate.options(options, 'StagedFineTuner options', [
      'optimizer', 'stages', 'scheduler', 'loss', 'namSparsity', 'gradClip', 'logEvery', 'checkpointDir', 'batchNorm', 'precision', 'lossScaling', 'winograd',
    ]);
    if (o.precision !== undefined) precisionOption(o.precision, 'options.precision', model.device);
    if (o.winograd !== undefined) validate.flag(o.winograd, 'StagedFineTuner options.winograd');
    if (o.lossScaling !== undefined) {
      const ls = validate.options(o.lossScaling, 'options.lossScaling', ['initScale', 'growthFactor', 'backoffFactor', 'growthInterval']);
      for (const [k, v] of Object.entries(ls)) validate.finiteNumber(v, `options.lossScaling.${k}`);
    }
    if (!Array.isArray(o.stages) || o.stages.length === 0) throw validate.typeError('StagedFineTuner options.stages', 'a non-empty Array of stages', o.stages);
    o.stages.forEach((s, i) => {
      const where = `stages[${i}]`;
      validate.options(s, where, STAGE_KEYS);
      if (typeof s.name !== 'string' || s.name === '') throw validate.typeError(`${where}.name`, 'a non-empty string', s.name);
      validate.integer(s.epochs, `${where}.epochs`, 1);
      resolveParameters(model, s.train, `${where}.train`);
      if (typeof s.lr === 'number') {
        if (!(s.lr >= 0) || !Number.isFinite(s.lr)) throw new RangeError(`${where}.lr must be a non-negative number, got ${s.lr}`);
      } else if (validate.isPlainObject(s.lr)) {
        for (const [k, v] of Object.entries(s.lr)) {
          if (k !== 'default') resolveParameters(model, k, `${where}.lr`);
          if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${where}.lr.${k} must be a non-negative number, got ${String(v)}`);
        }
      } else {
        throw validate.typeError(`${where}.lr`, 'a number or { group: rate }', s.lr);
      }
      if (s.scheduler !== undefined) toSchedule(s.scheduler, s.epochs, `${where}.scheduler`, 1);
    });
    if (o.scheduler !== undefined) toSchedule(o.scheduler, 1, 'options.scheduler', 1);
    const opt = validate.options(o.optimizer ?? {}, 'options.optimizer', ['type', 'momentum', 'dampening', 'nesterov', 'weightDecay', 'betas', 'eps', 'amsgrad']);
    if (opt.type !== undefined) validate.oneOf(opt.type, 'options.optimizer.type', ['sgd', 'adam', 'adamw'] as const);
    const loss = validate.options(o.loss ?? {}, 'options.loss', ['type', 'labelSmoothing']);
    if (loss.type !== undefined) validate.oneOf(loss.type, 'options.loss.type', ['cross-entropy'] as const);
    const ls = loss.labelSmoothing ?? 0;
    if (validate.finiteNumber(ls, 'options.loss.labelSmoothing') < 0 || ls > 1) throw new RangeError(`options.loss.labelSmoothing must be in [0, 1], got ${ls}`);
    if (o.namSparsity !== undefined && validate.finiteNumber(o.namSparsity, 'options.namSparsity') < 0) throw new RangeError('options.namSparsity must be at least 0');
    if (o.gradClip !== undefined && !(validate.finiteNumber(o.gradClip, 'options.gradClip') > 0)) throw new RangeError('options.gradClip must be greater than 0');
    if (o.logEvery !== undefined) validate.integer(o.logEvery, 'options.logEvery', 0);
    if (o.checkpointDir !== undefined && (typeof o.checkpointDir !== 'string' || o.checkpointDir === '')) throw validate.typeError('options.checkpointDir', 'a folder path', o.checkpointDir);
    if (o.batchNorm !== undefined) validate.oneOf(o.batchNorm, 'options.batchNorm', ['eval', 'train'] as const);
    this.model = model;
    this.options = Object.freeze({ ...o, stages: o.stages.map((s) => ({ ...s })) }) as FineTunerOptions;
  }

  /** The recipe: epochs 1-5 head + attention at 1e-3; 6-20 plus layer3/layer4 at 1e-4; 21-50
   *  everything at 1e-5; Adam. `epochs` rescales the three stages (e.g. [1, 1, 1] for a smoke run). */
  static threeStage(model: Model, overrides: Partial<FineTunerOptions> & { epochs?: [number, number, number] } = {}): StagedFineTuner {
    const { epochs = [5, 15, 30], ...rest } = overrides;
    return new StagedFineTuner(model, {
      optimizer: { type: 'adam' },
      stages: [
        { name: 'head', epochs: epochs[0], train: ['head', 'attention'], lr: 1e-3 },
        { name: 'high', epochs: epochs[1], train: ['head', 'attention', 'layer3', 'layer4'], lr: 1e-4 },
        { name: 'full', epochs: epochs[2], train: 'all', lr: 1e-5 },
      ],
      ...rest,
    });
  }

  async fit(train: ImageDataset | DataLoader, test?: ImageDataset | DataLoader | null, options?: FitOptions): Promise<FitResult> {
    const o = validate.options(options, 'fit() options', ['batchSize', 'workers', 'seed', 'dropLast', 'signal', 'onBatch', 'onEpoch', 'onStage', 'onWarning', 'resume', 'precision', 'pinMemory', 'distributed', 'syncBatchNorm']);
    validate.abortSignal(o.signal, 'fit() options.signal');
    const group = o.distributed === undefined ? undefined : expectGroup(o.distributed, 'fit() options.distributed');
    const syncBatchNorm = syncBatchNormOption(o.syncBatchNorm, group !== undefined, 'fit() options');
    for (const [name, given] of [['train', train], ['test', test]] as const) {
      if (given instanceof DataLoader && given.distributed !== group) {
        throw new RangeError(
          group
            ? `fit(${name}): with options.distributed, a DataLoader must shard for the same group (new DataLoader(dataset, { distributed: group })), or pass the dataset`
            : `fit(${name}): the DataLoader shards for a process group; pass the same group as fit() options.distributed`,
        );
      }
    }
    const precision = precisionOption(o.precision ?? this.options.precision, o.precision !== undefined ? 'fit() options.precision' : 'options.precision', this.model.device);
    for (const key of ['onBatch', 'onEpoch', 'onStage', 'onWarning'] as const) {
      if (o[key] !== undefined && typeof o[key] !== 'function') throw validate.typeError(`fit() options.${key}`, 'a function', o[key]);
    }
    if (o.resume !== undefined && (typeof o.resume !== 'string' || o.resume === '')) throw validate.typeError('fit() options.resume', 'a checkpoint path', o.resume);
    if (this.#running) throw codedError(ErrorCode.BUSY, 'fit(): this fine-tuner is already running; await it first');
    if (o.signal?.aborted) throw abortError('fit() was aborted before it started');
    // The loader's seed is part of the run: a resumed run takes the checkpoint's unless given.
    const saved = o.resume === undefined ? undefined : await native.readTrainingProgress(o.resume);
    // An abort while the checkpoint was being read stops here, before anything trains.
    if (o.signal?.aborted) throw abortError('fit() was aborted before it started');
    const seed = o.seed ?? saved?.run.seed ?? Number(native.drawSeed() & 0xffffffffn);
    const batchSize = o.batchSize ?? 64;
    const workers = o.workers ?? 2;
    const trainSet = train instanceof DataLoader ? undefined : validDataset(train, 'fit(train)');
    // A final batch of one image is dropped by default (BatchNorm cannot train on it); any other
    // partial batch is kept, as PyTorch's DataLoader keeps it.
    const dropLast = o.dropLast === undefined ? Math.ceil((trainSet?.length ?? 0) / (group?.worldSize ?? 1)) % batchSize === 1 : validate.flag(o.dropLast, 'fit() options.dropLast');
    const trainLoader = train instanceof DataLoader ? train : new DataLoader(trainSet!, { batchSize, workers, shuffle: true, dropLast, seed, pinMemory: o.pinMemory, distributed: group });
    const testLoader = test == null ? null : test instanceof DataLoader ? test : new DataLoader(validDataset(test, 'fit(test)'), { batchSize, workers, shuffle: false, pinMemory: o.pinMemory, distributed: group });
    const plan = this.#plan(trainLoader.length);
    if (o.resume === undefined) this.#warnRandomFrozenBackbone(o.onWarning);
    const blind = plan.tables.findIndex((t) => t.plateau?.monitor.startsWith('test') && !testLoader);
    if (blind >= 0) {
      throw new RangeError(`fit(): stage '${this.options.stages[blind].name}' reduces its rates on plateaus of ${plan.tables[blind].plateau!.monitor}, which needs a test set; pass one or monitor 'trainLoss'`);
    }
    const dir = this.options.checkpointDir;
    const nativePlan: NativeTunerPlan = {
      groupLabels: plan.labels,
      optimizer: plan.type,
      groups: plan.groups,
      stages: this.options.stages.map((s, i) => ({ name: s.name, epochs: s.epochs, trainable: plan.trainable[i], lrTable: plan.tables[i].table, lrPerStep: plan.tables[i].perStep, plateau: plan.tables[i].plateau })),
      batchNorm: this.options.batchNorm ?? 'eval',
      labelSmoothing: this.options.loss?.labelSmoothing ?? 0,
      namSparsity: this.options.namSparsity ?? 0,
      gradClip: this.options.gradClip ?? 0,
      precision,
      lossScaling: this.options.lossScaling,
      logEvery: this.options.logEvery ?? 100,
      checkpointDir: dir ? path.resolve(dir) : undefined,
      resume: o.resume === undefined ? undefined : path.resolve(o.resume),
      distributed: group?.native,
      syncBatchNorm,
      winograd: this.options.winograd ?? false,
    };

    // A listener that throws stops the run; fit() rejects with its error.
    let listenerError: unknown;
    const control = native.createFitControl();
    const relay = (fn: () => void) => {
      if (listenerError !== undefined) return;
      try {
        fn();
      } catch (err) {
        listenerError = err;
        control.cancel();
      }
    };
    const onAbort = () => control.cancel();
    o.signal?.addEventListener('abort', onAbort);
    this.#running = true;
    let result: NativeTunerResult;
    try {
      result = await native.fineTune(this.model.native, trainLoader.handle, testLoader?.handle ?? null, nativePlan, control, (event) => {
        if (event.type === 'batch') {
          const { type: _type, ...batch } = event;
          relay(() => o.onBatch?.(batch));
        } else if (event.type === 'epoch') {
          relay(() => o.onEpoch?.(event.record));
        } else {
          const groups = Object.fromEntries(plan.labels.map((l, g) => [l, event.trainable[g] ? 'trainable' : 'frozen'] as const));
          relay(() => o.onStage?.({ index: event.index, name: event.name, groups }));
        }
      });
    } finally {
      this.#running = false;
      o.signal?.removeEventListener('abort', onAbort);
    }
    if (result.records.length > 0) this.model.markLearned();
    if (listenerError !== undefined) throw listenerError;
    if (result.cancelled) {
      throw abortError(
        result.checkpoint ? `fit() was aborted; resume it with fit(..., { resume: '${result.checkpoint}' })` : 'fit() was aborted (no checkpointDir, nothing to resume from)',
        result.checkpoint,
      );
    }
    return {
      epochs: result.records,
      best: result.best.epoch > 0 ? { epoch: result.best.epoch, metric: result.best.metric, checkpoint: result.bestCheckpoint } : null,
      groups: Object.fromEntries(plan.labels.map((l, g) => [l, plan.params[g]])),
    };
  }

  /** A stage that trains the head and attention over a backbone that was never loaded or trained
   *  learns next to nothing: say so (once per fit). */
  #warnRandomFrozenBackbone(onWarning: ((message: string) => void) | undefined): void {
    const backbone = parameterGroups(this.model).get('backbone');
    if (!backbone || backbone.length === 0 || this.model.hasLearnedWeights) return;
    const first = this.options.stages[0];
    const trained = new Set(resolveParameters(this.model, first.train, 'stages[0].train'));
    if (backbone.some((n) => trained.has(n))) return;
    const message = `the backbone is randomly initialised and frozen in stage '${first.name}': it cannot learn; pass weights (loadBackbone('imagenet'), --weights imagenet), or unfreeze it`;
    if (onWarning) onWarning(message);
    else process.emitWarning(message, { code: 'TORCH_ATTN_RANDOM_FROZEN_BACKBONE' });
  }

  /**
   * The learning rate of every optimizer group at every epoch (or step, for per-step schedules)
   * of every stage, as fit() will set them for `batchesPerEpoch` batches per epoch (0: the group
   * is frozen). Plateau stages list their starting rates; fit() lowers them as the metric stalls.
   */
  learningRates(batchesPerEpoch: number): { groups: string[]; stages: { name: string; unit: 'epoch' | 'step'; rates: number[][]; plateau?: boolean }[] } {
    const plan = this.#plan(validate.integer(batchesPerEpoch, 'learningRates(batchesPerEpoch)', 1));
    const k = plan.labels.length;
    return {
      groups: plan.labels,
      stages: plan.tables.map((t, i) => ({
        name: this.options.stages[i].name,
        unit: t.perStep ? 'step' : 'epoch',
        rates: Array.from({ length: t.table.length / k }, (_, r) => Array.from(t.table.subarray(r * k, (r + 1) * k))),
        ...(t.plateau ? { plateau: true } : {}),
      })),
    };
  }

  /** Groups, optimizer settings and every stage's lr table. */
  #plan(batchesPerEpoch: number) {
    const { stages } = this.options;
    const { labels, params } = this.#groups();
    const type: OptimizerType = this.options.optimizer?.type ?? 'adam';
    const { type: _t, ...hyper } = this.options.optimizer ?? {};
    const total = stages.reduce((n, s) => n + s.epochs, 0);
    const tables: { table: Float64Array; perStep: boolean; plateau?: ReturnType<typeof plateauOptions> }[] = [];
    let epochStart = 0;
    const stageRates = stages.map((stage, i) => this.#stageRates(i, labels, params));
    stages.forEach((stage, i) => {
      const own = stage.scheduler !== undefined;
      const spec = stage.scheduler ?? this.options.scheduler ?? ({ type: 'constant' } as SchedulerSpec);
      const spanEpochs = own ? stage.epochs : total;
      const perStep = 'unit' in spec && spec.unit === 'step';
      const { schedule } = toSchedule(spec, perStep ? spanEpochs * batchesPerEpoch : spanEpochs, own ? `stages[${i}].scheduler` : 'options.scheduler', batchesPerEpoch);
      const origin = own ? epochStart : 0;
      // A row per epoch when the schedule moves per epoch (a million epochs is a few MB), a row
      // per step only when it moves per step, and then within a bound.
      const rows = perStep ? stage.epochs * batchesPerEpoch : stage.epochs;
      if (rows * labels.length > MAX_LR_TABLE) {
        throw new RangeError(`stages[${i}] ('${stage.name}'): a per-step schedule over ${stage.epochs} epochs of ${batchesPerEpoch} batches needs ${rows * labels.length} learning rates, more than ${MAX_LR_TABLE}; use unit 'epoch' or fewer epochs`);
      }
      const table = new Float64Array(rows * labels.length);
      for (let r = 0; r < rows; r++) {
        const t = perStep ? epochStart * batchesPerEpoch + r - origin * batchesPerEpoch : epochStart + r - origin;
        for (let g = 0; g < labels.length; g++) {
          const base = stageRates[i][g];
          table[r * labels.length + g] = base === null ? 0 : schedule.lr(base, t);
        }
      }
      const where = own ? `stages[${i}].scheduler` : 'options.scheduler';
      tables.push({ table, perStep, plateau: spec.type === 'plateau' ? plateauOptions(spec, where) : undefined });
      epochStart += stage.epochs;
    });
    const groups = labels.map((_, g) => ({ params: params[g], ...nativeOptions(type, { lr: stageRates.map((r) => r[g]).find((v) => v !== null) ?? 0, ...hyper } as Record<string, unknown>, `options.optimizer`) }));
    // A group trains in a stage exactly when it has a rate there.
    const trainable = stageRates.map((rates) => Uint8Array.from(rates, (r) => (r === null ? 0 : 1)));
    return { labels, params, type, tables, groups, trainable };
  }

  /** Each group's base lr in stage i (null: the group is frozen). */
  #stageRates(i: number, labels: string[], params: string[][]): (number | null)[] {
    const stage = this.options.stages[i];
    const trainSet = new Set(resolveParameters(this.model, stage.train, `stages[${i}].train`));
    const keyed = typeof stage.lr === 'number' ? [] : Object.entries(stage.lr).filter(([k]) => k !== 'default').map(([k, v]) => ({ set: new Set(resolveParameters(this.model, k, `stages[${i}].lr`)), v }));
    keyed.sort((a, b) => a.set.size - b.set.size);
    return labels.map((label, g) => {
      if (!params[g].every((n) => trainSet.has(n))) return null;
      if (typeof stage.lr === 'number') return stage.lr;
      const hit = keyed.find((k) => params[g].every((n) => k.set.has(n)));
      if (hit) return hit.v;
      if (stage.lr.default !== undefined) return stage.lr.default;
      throw new RangeError(`stages[${i}] ('${stage.name}').lr has no rate for the group '${label}'; add a key for it or 'default'`);
    });
  }

  #groupsCache?: { labels: string[]; params: string[][] };
  /** The optimizer groups (see partition()). */
  #groups(): { labels: string[]; params: string[][] } {
    if (!this.#groupsCache) {
      const selectors = this.options.stages.flatMap((s) => [
        ...(typeof s.train === 'string' ? [s.train] : s.train),
        ...(typeof s.lr === 'number' ? [] : Object.keys(s.lr).filter((k) => k !== 'default')),
      ]);
      this.#groupsCache = partition(this.model, [...new Set(selectors)]);
    }
    return this.#groupsCache;
  }
}

function validDataset(value: unknown, name: string): ImageDataset {
  if (!(value instanceof ImageDataset)) throw validate.typeError(name, 'a dataset or a DataLoader', value);
  return value;
}
