// The torch-attn commands (index.ts parses and dispatches to them). Loading this module loads the
// library and the native addon.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import YAML from 'yaml';
import { distributed } from '../distributed';
import { buildInfo, cuda, getNumThreads, libtorchRelease, setNumThreads } from '../runtime';
import { type LaunchOptions, launch } from './launch';
import { packageRoot } from '../package';
import { type RunConfig, defaultStages, buildModel, checkConfig, inputSize, loadData, readConfigFile, readRunConfig, runConfigRaw, transformsFor } from '../runs/config';
import { compareRuns } from '../runs/compare';
import { prCurves } from '../runs/metrics';
import { formatEpoch, formatResult, runTraining } from '../runs/train';
import { evaluate } from '../training/evaluate';
import { StagedFineTuner } from '../training/finetune';
import { parameterGroups } from '../training/groups';
import { backboneWeights } from '../models/backbone';
import { findWeights, listWeights, pullWeights, weightsCacheDir, weightsPath, IMAGENET_CATEGORIES } from '../models/weights';
import { resnet, vgg } from '../models/builders';
import { transforms } from '../data/transforms';
import { type Device, deviceOption } from '../tensor/tensor';
import { datasets } from '../data/datasets';
import { ErrorCode, codedError } from '../errors';
import { readRegularFile } from '../files';
import { PRECISIONS, type Precision } from '../precision';
import { type Io, UsageError, int, paint, parse, table } from './index';

/** The run configuration from --config and the flags. */
export function trainConfig(values: Record<string, string | boolean | (string | boolean)[] | undefined>): RunConfig {
  // --resume alone: the run's own config.json (beside its last.pth), the run directory its out.
  const resumeConfig = values.resume && !values.config ? path.join(path.dirname(String(values.resume)), 'config.json') : undefined;
  if (resumeConfig && !fs.existsSync(resumeConfig)) throw new UsageError(`--resume ${values.resume}: no config.json beside it; pass the run's configuration with --config`);
  const base = values.config ? readConfigFile(String(values.config)) : resumeConfig ? { ...runConfigRaw(resumeConfig).raw, out: path.dirname(String(values.resume)) } : {};
  if (typeof base !== 'object' || base === null || Array.isArray(base)) throw new UsageError(`${values.config} does not hold a configuration object`);
  const raw = structuredClone(base) as Record<string, any>;
  raw.model = { ...(raw.model ?? {}) };
  raw.data = { ...(raw.data ?? {}) };
  if (values.model) raw.model.arch = values.model;
  if (values.attention) raw.model.attention = values.attention;
  if (values.weights) raw.model.weights = values.weights;
  if (values.data) raw.data.path = values.data;
  if (values.dataset) raw.data.dataset = values.dataset;
  raw.model.arch ??= 'resnet18';
  raw.data.dataset ??= 'cifar10';
  if (raw.data.path === undefined) throw new UsageError('train needs a dataset: --data DIR or data.path in --config');
  if (values.epochs) {
    const list = String(values.epochs).split(',').map((e) => int(e.trim(), '--epochs', 1)!);
    raw.epochs = list.length === 1 ? list[0] : list;
  }
  if (values['batch-size']) raw.batchSize = int(String(values['batch-size']), '--batch-size', 1);
  if (values.workers) raw.workers = int(String(values.workers), '--workers', 0);
  if (values.seed) raw.seed = int(String(values.seed), '--seed', 0);
  if (values.out) raw.out = values.out;
  if (values.name) raw.name = values.name;
  if (values.device) raw.device = values.device;
  if (values.precision) raw.precision = values.precision;
  if (values['channels-last']) raw.memoryFormat = 'channels-last';
  if (values['sync-batch-norm']) raw.syncBatchNorm = true;
  if (values.winograd) raw.winograd = true;
  for (const assignment of ([] as (string | boolean)[]).concat(values.set ?? [])) applySet(raw, String(assignment));
  const config = checkConfig(raw, values.config ? String(values.config) : 'config');
  if (raw.stages === undefined) DEFAULT_SCHEDULE.add(config);
  return config;
}

/** Configs whose stages are their architecture's default schedule (the run says which). */
const DEFAULT_SCHEDULE = new WeakSet<RunConfig>();

/** torch-attn's and LibTorch's versions (--version). */
export function versions(): { version: string; libtorch: string } {
  return { version: buildInfo().version, libtorch: libtorchRelease().version };
}

/** `--set optimizer.lr=3e-4`: a dotted path into the config, the value read as YAML (numbers,
 *  booleans, lists and maps as in a config file). Stages are addressed by index: stages.0.lr=1e-3. */
function applySet(raw: Record<string, any>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new UsageError(`--set takes key=value with a dotted key (e.g. optimizer.weightDecay=5e-4), got '${assignment}'`);
  const keys = assignment.slice(0, eq).split('.');
  if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) throw new UsageError(`--set: '${assignment.slice(0, eq)}' is not a config key`);
  let value: unknown;
  try {
    value = YAML.parse(assignment.slice(eq + 1));
  } catch (err) {
    throw new UsageError(`--set ${assignment}: the value is not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  // Stages not written in the config are the default recipe's: --set addresses those.
  if (keys[0] === 'stages' && raw.stages === undefined) raw.stages = defaultStages(String(raw.model?.arch ?? 'resnet18')).stages;
  let node: Record<string, any> = raw;
  for (const key of keys.slice(0, -1)) {
    if (node[key] === undefined) node[key] = {};
    if (typeof node[key] !== 'object' || node[key] === null) throw new UsageError(`--set ${assignment}: '${key}' holds ${JSON.stringify(node[key])}, not a section`);
    node = node[key];
  }
  node[keys.at(-1)!] = value;
}

export async function train(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    config: { type: 'string' }, data: { type: 'string' }, dataset: { type: 'string' }, model: { type: 'string' }, attention: { type: 'string' },
    epochs: { type: 'string' }, 'batch-size': { type: 'string' }, workers: { type: 'string' }, seed: { type: 'string' },
    weights: { type: 'string' }, out: { type: 'string' }, resume: { type: 'string' }, precision: { type: 'string' }, 'channels-last': { type: 'boolean' },
    'sync-batch-norm': { type: 'boolean' }, winograd: { type: 'boolean' }, set: { type: 'string', multiple: true }, 'dry-run': { type: 'boolean' }, threads: { type: 'string' }, 'exist-ok': { type: 'boolean' },
    name: { type: 'string' }, device: { type: 'string' }, quiet: { type: 'boolean' },
    'nproc-per-node': { type: 'string' }, nnodes: { type: 'string' }, 'node-rank': { type: 'string' }, 'master-addr': { type: 'string' }, 'master-port': { type: 'string' },
  }, 'train');
  const config = trainConfig(values);
  // A rank of a data-parallel run (started by --nproc-per-node, `torch-attn launch` or torchrun).
  const rank = process.env.WORLD_SIZE !== undefined && Number(process.env.WORLD_SIZE) > 1 ? Number(process.env.RANK) : undefined;
  const leader = (rank ?? 0) === 0;  // a single process, or rank 0: the one that prints and writes
  const quiet = Boolean(values.quiet) || !leader;
  const launcher = launchOptions(values);
  if (launcher && rank !== undefined) throw new UsageError('train: --nproc-per-node: this process is already a rank (WORLD_SIZE is set); start it once, without torch-attn launch or torchrun');
  if (!values.resume && !values['exist-ok'] && !values['dry-run'] && leader) {
    // A run directory in use is not overwritten: the run goes to a numbered sibling.
    const taken = (dir: string) => fs.existsSync(dir) && fs.readdirSync(dir).length > 0;
    if (taken(config.out)) {
      let n = 2;
      while (taken(`${config.out}-${n}`)) n++;
      io.out(`${config.out} holds a run already: writing to ${config.out}-${n} (--exist-ok writes into it)\n`);
      config.out = `${config.out}-${n}`;
    }
  }
  const threads = int(values.threads as string | undefined, '--threads', 1);
  if (threads !== undefined) setNumThreads(threads);
  if (DEFAULT_SCHEDULE.has(config) && !quiet) io.out(`schedule: ${defaultStages(config.model.arch).description} (the default for ${config.model.arch}; set stages in a config to change it)\n`);
  if (values['dry-run']) return dryRun(config, io);
  if (launcher) {
    // The ranks run this command again with the run directory settled here, so that they agree.
    const own = ['nproc-per-node', 'nnodes', 'node-rank', 'master-addr', 'master-port', 'out', 'exist-ok'];
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const flag = args[i].startsWith('--') ? args[i].slice(2).split('=')[0] : '';
      if (!own.includes(flag)) rest.push(args[i]);
      else if (!args[i].includes('=') && flag !== 'exist-ok') i++;  // and its value
    }
    const world = launcher.nprocPerNode * launcher.nnodes;
    if (!quiet) io.out(`data-parallel: ${world} ranks (${launcher.nprocPerNode} on this machine, node ${launcher.nodeRank} of ${launcher.nnodes}), rendezvous at ${launcher.masterAddr}:${launcher.masterPort}; rank 0 writes ${config.out}\n`);
    const command = [process.execPath, path.join(packageRoot, 'bin', 'torch-attn.js'), 'train', ...rest, ...(values.resume ? [] : ['--out', config.out, '--exist-ok'])];
    return launch({ ...launcher, threads: int(values.threads as string | undefined, '--threads', 1), command }, (line) => io.err(`${line}\n`));
  }
  // On GPUs each rank takes its own device (cuda:LOCAL_RANK) and NCCL where this build has it.
  const onCuda = config.device.startsWith('cuda');
  const group = rank === undefined ? undefined : await distributed.init({ backend: onCuda && distributed.backends().includes('nccl') ? 'nccl' : 'gloo' });
  if (group && config.device === 'cuda') config.device = `cuda:${group.localRank}`;
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) return;
    if (leader) io.err('\nstopping at the next batch; a resumable checkpoint is being written ...\n');
    controller.abort();
  };
  // A second Ctrl-C ends a single process at once; a rank gets it twice (from the terminal and
  // from its launcher) and keeps stopping in step with the others.
  if (rank === undefined) process.once('SIGINT', onSigint);
  else process.on('SIGINT', onSigint);
  let bar: SingleBar | undefined;
  let first = { batch: 0, at: 0 };
  const evalProgress = quiet ? { stop: () => {} } : evalBar(io);
  try {
    const result = await runTraining(config, {
      distributed: group,
      signal: controller.signal,
      resume: values.resume as string | undefined,
      batchLines: !io.isTTY && !quiet,
      onEvalProgress: evalProgress.update,
      log: (line) => {
        bar?.stop();
        bar = undefined;
        if (!quiet || line.startsWith('warning:')) io.out(`${line.startsWith('warning:') ? paint(io, 'yellow', line) : line}\n`);
      },
      onBatch: !io.isTTY || quiet ? undefined : (b) => {
        const now = Date.now();
        if (!bar) {
          first = { batch: b.batch, at: now };
          bar = new SingleBar({ format: `epoch ${b.epoch} [${b.stage}] {bar} {value}/{total} batches | loss {loss} | {rate} img/s | eta {remaining}`, hideCursor: true });
          bar.start(b.batches, 0, { loss: '-', rate: '-', remaining: '-' });
        }
        const { rate, eta } = epochProgress(first, { batch: b.batch, batches: b.batches, at: now }, config.batchSize);
        bar.update(b.batch, { loss: b.meanLoss.toFixed(4), rate: rate === null ? '-' : rate.toFixed(1), remaining: eta === null ? '-' : `${Math.round(eta)}s` });
      },
      onEpoch: (r) => {
        bar?.stop();
        bar = undefined;
        if (!quiet) io.out(`${formatEpoch(r)}\n`);
      },
    });
    evalProgress.stop();
    if (leader) io.out(`${formatResult(result).map((line, i) => (i < 2 ? paint(io, 'bold', line) : line)).join('\n')}\n`);
    return 0;
  } catch (err) {
    bar?.stop();
    evalProgress.stop();
    if ((err as Error).name === 'AbortError') {
      const checkpoint = (err as Error & { checkpoint?: string }).checkpoint;
      const ranks = group ? ` --nproc-per-node ${process.env.LOCAL_WORLD_SIZE ?? group.worldSize}` : '';
      if (leader) io.err(checkpoint ? `stopped; continue with: npx torch-attn train --resume ${path.relative(process.cwd(), checkpoint) || checkpoint}${ranks}\n` : `${(err as Error).message}\n`);
      return 130;
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
    group?.destroy();
  }
}

/** The launcher flags of train and launch (--nproc-per-node and the several-machines ones), or
 *  undefined without --nproc-per-node. */
function launchOptions(values: Record<string, unknown>, command: 'train' | 'launch' = 'train'): Omit<LaunchOptions, 'command'> | undefined {
  const nprocPerNode = int(values['nproc-per-node'] as string | undefined, '--nproc-per-node', 1);
  if (nprocPerNode === undefined) {
    const stray = ['nnodes', 'node-rank', 'master-addr', 'master-port'].find((k) => values[k] !== undefined);
    if (stray) throw new UsageError(`${command}: --${stray} goes with --nproc-per-node N (the ranks to start on this machine)`);
    return undefined;
  }
  const nnodes = int(values.nnodes as string | undefined, '--nnodes', 1) ?? 1;
  const nodeRank = int(values['node-rank'] as string | undefined, '--node-rank', 0) ?? 0;
  if (nodeRank >= nnodes) throw new UsageError(`${command}: --node-rank must be below --nnodes (${nnodes}), got ${nodeRank}`);
  const masterPort = int(values['master-port'] as string | undefined, '--master-port', 1) ?? 29500;
  if (masterPort > 65535) throw new UsageError(`${command}: --master-port must be at most 65535, got ${masterPort}`);
  return { nprocPerNode, nnodes, nodeRank, masterAddr: (values['master-addr'] as string | undefined) ?? '127.0.0.1', masterPort };
}

/**
 * An epoch's rate (images/s) and remaining seconds from its batch events, timed from the first
 * event seen: the batch already done when timing started does not count (a rate over a few
 * microseconds was 320,000 img/s). Null until a second event.
 */
export function epochProgress(first: { batch: number; at: number }, now: { batch: number; batches: number; at: number }, batchSize: number): { rate: number | null; eta: number | null } {
  const done = now.batch - first.batch;
  const seconds = (now.at - first.at) / 1000;
  if (done <= 0 || seconds <= 0) return { rate: null, eta: null };
  return { rate: (done * batchSize) / seconds, eta: ((now.batches - now.batch) * seconds) / done };
}

/** `train --dry-run`: the resolved configuration, the model and its schedule; nothing trained or written. */
async function dryRun(config: RunConfig, io: Io): Promise<number> {
  const { train, test } = await loadData(config);
  const model = buildModel(config, train.classes.length);
  io.out(`${JSON.stringify(config, null, 2)}\n\n`);
  io.out(`${model.summaryTable([1, 3, inputSize(config), inputSize(config)])}\n`);
  io.out(`data: ${train.length} training images${test ? `, ${test.length} test images` : ' (no test split)'}, ${train.classes.length} classes\n`);
  const tuner = new StagedFineTuner(model, { optimizer: config.optimizer, stages: config.stages, scheduler: config.scheduler, batchNorm: config.batchNorm });
  const batches = Math.ceil(train.length / config.batchSize);
  const rates = tuner.learningRates(batches);
  for (const s of rates.stages) {
    const first = s.rates[0];
    const last = s.rates.at(-1)!;
    const fmt = (row: number[]) => rates.groups.map((g, i) => `${g} ${row[i].toExponential(2)}`).join(', ');
    io.out(`stage '${s.name}': ${s.rates.length} ${s.unit}s${s.plateau ? ' (reduced on plateaus)' : ''}; lr first ${fmt(first)}; last ${fmt(last)}\n`);
  }
  io.out('dry run: nothing trained, nothing written\n');
  return 0;
}

/** A progress bar for an evaluation on a terminal (nothing in pipes and files). */
function evalBar(io: Io): { update?: (images: number, total: number) => void; stop: () => void } {
  if (!io.isTTY) return { stop: () => {} };
  let bar: SingleBar | undefined;
  return {
    update: (images, total) => {
      if (!bar) {
        bar = new SingleBar({ format: 'evaluating {bar} {value}/{total} images', hideCursor: true });
        bar.start(total, 0);
      }
      bar.update(images);
    },
    stop: () => bar?.stop(),
  };
}

/** A usage error when --checkpoint names no file (before looking for its config.json beside it). */
function checkpointGiven(checkpoint: string): void {
  if (!fs.existsSync(checkpoint)) throw new UsageError(`--checkpoint ${checkpoint}: file not found`);
}

/** The run's config.json beside a checkpoint (or the one given). */
function runConfigFor(checkpoint: string, explicit?: string): RunConfig & { classes: string[] } {
  checkpointGiven(checkpoint);
  try {
    return readRunConfig(checkpoint, explicit);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export async function evalCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { checkpoint: { type: 'string' }, data: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } }, 'eval');
  if (!values.checkpoint) throw new UsageError('eval needs --checkpoint FILE');
  const config = runConfigFor(String(values.checkpoint), values.config as string | undefined);
  if (values.data) config.data.path = String(values.data);
  const { test } = await loadData(config);
  if (!test) throw new UsageError(`no test split found for ${config.data.path}`);
  const model = buildModel(config, config.classes.length);
  await model.loadStateDict(String(values.checkpoint), { strict: true });
  const progress = evalBar(io);
  const ev = await evaluate(model, test, { batchSize: config.batchSize, workers: config.workers, probabilities: true, onProgress: progress.update }).finally(progress.stop);
  const curves = prCurves(ev.probabilities!, ev.labels!, ev.classes);
  const { probabilities: _p, labels: _l, ...summary } = ev;
  if (values.json) {
    io.out(`${JSON.stringify({ ...summary, prCurves: curves.map((c) => ({ class: c.class, averagePrecision: c.averagePrecision })) }, null, 2)}\n`);
    return 0;
  }
  io.out(`${test.length} images: loss ${ev.loss.toFixed(4)}, top-1 ${(100 * ev.top1).toFixed(2)}%, top-5 ${(100 * ev.top5).toFixed(2)}%, macro-F1 ${ev.macroF1.toFixed(4)}\n`);
  const rows = ev.perClass.map((m, i) => [m.class, m.precision.toFixed(3), m.recall.toFixed(3), m.f1.toFixed(3), String(m.support), curves[i].averagePrecision.toFixed(3)]);
  io.out(table(['class', 'precision', 'recall', 'F1', 'support', 'AP'], rows));
  return 0;
}

const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

function imageFiles(inputs: string[]): string[] {
  const out: string[] = [];
  for (const input of inputs) {
    if (!fs.existsSync(input)) throw new UsageError(`predict: ${input} does not exist`);
    if (fs.statSync(input).isDirectory()) {
      for (const entry of fs.readdirSync(input, { recursive: true, withFileTypes: true }) as fs.Dirent[]) {
        const full = path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
        if (entry.isFile() && IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) out.push(full);
      }
    } else {
      out.push(input);
    }
  }
  return out.sort();
}

/** A run's model, classes and eval transform, from its checkpoint and config.json, or, for any
 *  other state dict, from flags that describe the model (--model, --classes / --class-names,
 *  --attention, --image-size). */
async function runModel(checkpoint: string, values: Record<string, string | boolean | (string | boolean)[] | undefined>) {
  checkpointGiven(checkpoint);
  const described = values.model !== undefined || values.classes !== undefined || values['class-names'] !== undefined;
  const beside = path.join(path.dirname(checkpoint), 'config.json');
  let config: RunConfig & { classes: string[] };
  if (values.config || (!described && fs.existsSync(beside))) {
    config = runConfigFor(checkpoint, values.config as string | undefined);
  } else {
    if (!described) throw new UsageError(`no config.json beside ${checkpoint}: describe the model with --model ARCH and --classes N or --class-names a,b,... (or pass the run's --config)`);
    if (values.model === undefined) throw new UsageError('predict: --model ARCH is needed to read a checkpoint without its config.json');
    const names = values['class-names'] === undefined ? undefined : String(values['class-names']).split(',').map((n) => n.trim());
    if (names && names.some((n) => n === '')) throw new UsageError(`--class-names takes comma-separated names, got '${values['class-names']}'`);
    const count = int(values.classes as string | undefined, '--classes', 1);
    if (names && count !== undefined && names.length !== count) throw new UsageError(`--classes ${count} but --class-names lists ${names.length} names`);
    if (!names && count === undefined) throw new UsageError('predict: give the class count with --classes N or the names with --class-names a,b,...');
    const size = int(values['image-size'] as string | undefined, '--image-size', 8) ?? 32;
    try {
      config = {
        ...checkConfig({ model: { arch: values.model, attention: values.attention ?? 'cbam' }, data: { dataset: size >= 64 ? 'imageFolder' : 'cifar10', path: '.', imageSize: size } }, 'predict'),
        classes: names ?? Array.from({ length: count! }, (_, i) => String(i)),
      };
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const model = buildModel(config, config.classes.length);
  await model.loadStateDict(checkpoint, { strict: true });
  return { model, classes: config.classes, test: transformsFor(config).test };
}

/** torchvision's plain model with its cached ImageNet weights, eval transform and class names. */
async function imagenetModel(source: string, arch: string, bn: boolean) {
  if (source !== 'imagenet' && source !== 'imagenet-v2') throw new UsageError(`predict --weights takes imagenet or imagenet-v2, got '${source}' (a run's checkpoint goes with --checkpoint)`);
  const m = /^(resnet|vgg)(\d+)$/.exec(arch);
  if (!m) throw new UsageError(`predict --model takes resnet18-152 or vgg11-19 with --weights, got '${arch}'`);
  const depth = Number(m[2]);
  const model = m[1] === 'resnet'
    ? resnet({ depth: depth as 18, numClasses: 1000, stem: 'imagenet', attention: 'none' })
    : vgg({ depth: depth as 16, batchNorm: bn, numClasses: 1000, stem: 'imagenet', attention: 'none' });
  const w = backboneWeights(model, source)!;
  const report = await model.loadBackbone(source);
  if (report.skipped.length > 0 || report.missing.length > 0) throw new Error(`${w.file} does not fit ${model.description}: ${[...report.skipped.map((s) => `${s.name} (${s.reason})`), ...report.missing].slice(0, 3).join(', ')}`);
  const t = w.transform;
  const test = [transforms.resize(t.resize), transforms.centerCrop(t.crop), transforms.toTensor(), transforms.normalize(t.mean, t.std)];
  return { model, classes: [...IMAGENET_CATEGORIES], test };
}

type PredictRow = { file: string; top: { class: string; probability: number }[]; error?: undefined } | { file: string; top?: undefined; error: string };

export async function predict(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    checkpoint: { type: 'string' }, config: { type: 'string' }, 'top-k': { type: 'string' }, format: { type: 'string' },
    weights: { type: 'string' }, model: { type: 'string' }, bn: { type: 'boolean' },
    classes: { type: 'string' }, 'class-names': { type: 'string' }, attention: { type: 'string' }, 'image-size': { type: 'string' },
  }, 'predict');
  if (!values.checkpoint && !values.weights) throw new UsageError('predict needs --checkpoint FILE (a run\'s) or --weights imagenet (a plain ImageNet model)');
  if (values.checkpoint && values.weights) throw new UsageError('predict takes --checkpoint or --weights, not both');
  if (positionals.length === 0) throw new UsageError('predict needs image files or a folder of images');
  const format = (values.format as string | undefined) ?? 'table';
  if (!['table', 'json', 'csv'].includes(format)) throw new UsageError(`--format must be table, json or csv, got '${format}'`);
  const files = imageFiles(positionals);
  if (files.length === 0) throw new UsageError(`predict: no ${IMAGE_EXTENSIONS.join('/')} images in ${positionals.join(', ')}`);
  const { model, classes, test } = values.weights
    ? await imagenetModel(String(values.weights), (values.model as string | undefined) ?? 'resnet18', Boolean(values.bn))
    : await runModel(String(values.checkpoint), values);
  const k = Math.min(int(values['top-k'] as string | undefined, '--top-k', 1) ?? 3, classes.length);
  // The serving predictor decodes, transforms, batches and ranks; an unreadable image fails its own
  // request (an error row) and the others are predicted. 64 files in flight at a time.
  const predictor = model.eval().predictor({ transform: test, classes, maxBatch: 32 });
  const results: PredictRow[] = [];
  try {
    for (let start = 0; start < files.length; start += 64) {
      results.push(...(await Promise.all(files.slice(start, start + 64).map(async (file): Promise<PredictRow> => {
        try {
          // Read as the image datasets read: a regular file within the image size limit (a FIFO
          // blocked for ever, /dev/zero read until memory ran out).
          const bytes = await readRegularFile(file, datasets.imageLimits().maxFileBytes, (message) => codedError(ErrorCode.DATA, message));
          const top = await predictor.classify(bytes, { topK: k, name: file });
          return { file, top: top.map((t) => ({ class: t.label, probability: t.probability })) };
        } catch (err) {
          return { file, error: (err as Error).message };
        }
      }))));
    }
  } finally {
    await predictor.close();
  }
  if (format === 'json') io.out(`${JSON.stringify(results, null, 2)}\n`);
  else if (format === 'csv') {
    const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    io.out(`file,${Array.from({ length: k }, (_, i) => `class_${i + 1},probability_${i + 1}`).join(',')},error\n`);
    for (const r of results) io.out(`${quote(r.file)},${r.top ? `${r.top.map((t) => `${quote(t.class)},${t.probability.toFixed(6)}`).join(',')},` : `${','.repeat(2 * k)}${quote(r.error!)}`}\n`);
  } else {
    io.out(table(['file', ...Array.from({ length: k }, (_, i) => `#${i + 1}`)], results.map((r) => [r.file, ...(r.top ? r.top.map((t) => `${t.class} ${(100 * t.probability).toFixed(1)}%`) : [paint(io, 'red', 'unreadable'), ...Array(k - 1).fill('')])])));
  }
  const failed = results.filter((r) => r.error !== undefined).length;
  if (failed > 0) {
    if (format === 'table') for (const r of results) if (r.error !== undefined) io.err(`${r.error}\n`);
    io.err(`${failed} of ${results.length} image${results.length === 1 ? '' : 's'} could not be read\n`);
  }
  return failed > 0 ? 1 : 0;
}

export async function serveCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(
    args,
    {
      checkpoint: { type: 'string' },
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'max-batch': { type: 'string' },
      'max-delay-ms': { type: 'string' },
      'max-queue': { type: 'string' },
      precision: { type: 'string' },
      device: { type: 'string' },
      'top-k': { type: 'string' },
      'max-body-mb': { type: 'string' },
      'max-pixels': { type: 'string' },
      'request-timeout-s': { type: 'string' },
    },
    'serve',
  );
  if (!values.checkpoint) throw new UsageError('serve needs --checkpoint FILE');
  const port = int(values.port as string | undefined, '--port', 0) ?? 8080;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const delay = values['max-delay-ms'] === undefined ? undefined : Number(values['max-delay-ms']);
  if (delay !== undefined && !(delay >= 0)) throw new UsageError(`--max-delay-ms takes a number of at least 0, got '${values['max-delay-ms']}'`);
  const precision = values.precision as string | undefined;
  if (precision !== undefined && !(PRECISIONS as readonly string[]).includes(precision)) throw new UsageError(`--precision must be ${PRECISIONS.join(', ')}, got '${precision}'`);
  let device: Device | undefined;
  try {
    device = deviceOption(values.device, '--device');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const bodyMb = int(values['max-body-mb'] as string | undefined, '--max-body-mb', 1);
  const timeoutS = int(values['request-timeout-s'] as string | undefined, '--request-timeout-s', 0);
  runConfigFor(String(values.checkpoint), values.config as string | undefined);
  const { serve } = await import('../serving/server');
  await serve({
    checkpoint: String(values.checkpoint),
    config: values.config as string | undefined,
    host: values.host as string | undefined,
    port,
    maxBatch: int(values['max-batch'] as string | undefined, '--max-batch', 1),
    maxDelayMs: delay,
    maxQueue: int(values['max-queue'] as string | undefined, '--max-queue', 1),
    precision: precision as Precision | undefined,
    device,
    topK: int(values['top-k'] as string | undefined, '--top-k', 1),
    maxBodyBytes: bodyMb === undefined ? undefined : bodyMb << 20,
    maxPixels: int(values['max-pixels'] as string | undefined, '--max-pixels', 1),
    requestTimeoutMs: timeoutS === undefined ? undefined : timeoutS * 1000,
    log: (line) => io.err(`${line}\n`),
  });
  return 0;
}

export function summary(args: string[], io: Io): number {
  const { values } = parse(args, { config: { type: 'string' }, model: { type: 'string' }, attention: { type: 'string' }, placement: { type: 'string' }, classes: { type: 'string' }, input: { type: 'string' } }, 'summary');
  const given = (values.input as string | undefined)?.split(',').map((d) => int(d, '--input', 1)!);
  if (given && given.length !== 3) throw new UsageError(`--input takes C,H,W, got '${values.input}'`);
  let config: RunConfig;
  if (values.config) {
    const raw = structuredClone(readConfigFile(String(values.config))) as Record<string, any>;
    raw.model = { ...(raw.model ?? {}), ...(values.model ? { arch: values.model } : {}), ...(values.attention ? { attention: values.attention } : {}), ...(values.placement ? { placement: values.placement } : {}) };
    raw.data = { path: '.', ...(raw.data ?? {}) };
    config = checkConfig(raw, String(values.config));
  } else {
    const side = given?.[1] ?? 32;
    const model = { arch: values.model ?? 'resnet18', attention: values.attention ?? 'cbam', ...(values.placement ? { placement: values.placement } : {}) };
    config = checkConfig({ model, data: { dataset: side >= 64 ? 'imageFolder' : 'cifar10', path: '.' } }, 'summary');
  }
  const classes = int(values.classes as string | undefined, '--classes', 1) ?? (config.data.dataset === 'cifar100' ? (config.data.label === 'coarse' ? 20 : 100) : 10);
  const input = given ?? [3, inputSize(config), inputSize(config)];
  const model = buildModel(config, classes);
  io.out(`${model.summaryTable([1, ...input])}\n`);
  // Where the attention modules are (inside blocks they do not show as rows of the table).
  const modules = [...new Set((parameterGroups(model).get('attention') ?? []).map((n) => n.split('.').slice(0, n.split('.').findIndex((p) => /^(cbam|nam|se|eca)(_|\d|$)/.test(p)) + 1).join('.')))];
  if (modules.length > 0) io.out(`attention modules (${modules.length}): ${modules.join(', ')}\n`);
  return 0;
}

export function doctor(io: Io): number {
  const info = buildInfo();
  const release = libtorchRelease();
  const lines = [
    `torch-attn ${info.version} (N-API ${info.napiVersion})`,
    `LibTorch ${release.version} from ${info.libtorchDir}${release.debianPackage ? ` (Debian's ${release.debianPackage})` : ''}`,
    `CUDA: ${info.cuda ? `built with CUDA ${info.cudaVersion || '?'}; ${cuda.isAvailable() ? `${cuda.deviceCount()} device(s) usable` : 'no usable GPU'}` : 'CPU build'}`,
    `threads: ${getNumThreads()} intra-op (OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? 'unset'}), ${os.cpus().length} CPUs`,
    `node ${process.version}`,
    `precisions in hardware: CPU ${info.nativePrecisions.cpu.join(', ')}${info.nativePrecisions.cuda ? `; GPU (capability ${info.cudaCapability}) ${info.nativePrecisions.cuda.join(', ')}` : ''}${info.nativePrecisions.cpu.includes('bf16') ? '' : ' (bf16 runs emulated here: slower than fp32)'}`,
    ...(info.onednnVersion ? [`oneDNN ${info.onednnVersion}`] : []),
    `inference plans (folded, prepared convolutions in eval mode): ${info.inferencePlans ? `on, convolutions on ${info.planConvolutions === 'onednn' ? "oneDNN's API" : "LibTorch's prepacked ops (a build with libdnnl-dev 2.x runs them on oneDNN's API, faster at small batches)"}` : 'off with this LibTorch (eval runs the modules eagerly)'}`,
    `distributed (c10d): ${distributed.backends().join(', ')}${distributed.backends().includes('nccl') ? '' : ' (NCCL needs a build against a CUDA LibTorch 2.x with NCCL and libnccl-dev)'}`,
    `pretrained weights in ${weightsCacheDir()}: ${listWeights().filter((w) => fs.existsSync(path.join(weightsCacheDir(), w.file))).map((w) => `${w.arch}${w.version === 'v1' ? '' : '.v2'}`).join(', ') || 'none (npx torch-attn weights pull resnet18)'}`,
    ...info.workarounds.map((w) => `works around: ${w}`),
  ];
  const fixes: string[] = [];
  lines.push('image decoding: libjpeg-turbo (TurboJPEG) and libpng, linked into the addon');
  if (!info.nativePrecisions.cpu.includes('bf16')) fixes.push("this CPU has no bf16 arithmetic: train in fp32 (--precision bf16 would be slower here)");
  if (!info.cuda) fixes.push('for GPUs: build against a CUDA LibTorch, e.g. TORCH_ATTN_LIBTORCH=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))") npm rebuild torch-attn');
  io.out(`${lines.join('\n')}\n${fixes.length ? `\nto fix or improve:\n${fixes.map((f) => `  - ${f}`).join('\n')}\n` : '\neverything is in place.\n'}`);
  return 0;
}

export async function launchCommand(args: string[], io: Io): Promise<number> {
  const split = args.indexOf('--');
  if (split < 0 || split === args.length - 1) throw new UsageError('launch: give the command to run after --, e.g. -- npx tsx train.ts');
  const { values } = parse(
    args.slice(0, split),
    {
      'nproc-per-node': { type: 'string' },
      nnodes: { type: 'string' },
      'node-rank': { type: 'string' },
      'master-addr': { type: 'string' },
      'master-port': { type: 'string' },
      threads: { type: 'string' },
    },
    'launch',
  );
  const launcher = launchOptions(values, 'launch');
  if (!launcher) throw new UsageError('launch: --nproc-per-node is required');
  const threads = int(values.threads as string | undefined, '--threads', 1);
  return launch({ ...launcher, threads, command: args.slice(split + 1) }, (line) => io.err(`${line}\n`));
}

export async function weightsCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { mirror: { type: 'string' }, timeout: { type: 'string' } }, 'weights');
  const [action, name] = positionals;
  if (action === 'list') {
    const dir = weightsCacheDir();
    const rows = listWeights().map((w) => [`${w.arch}${w.version === 'v1' ? '' : '.v2'}`, w.name, w.file, `${w.acc1.toFixed(1)}%`, fs.existsSync(path.join(dir, w.file)) ? 'cached' : '-']);
    io.out(table(['name', 'torchvision', 'file', 'ImageNet top-1', 'here'], rows));
    io.out(`cache: ${dir}\n`);
    return 0;
  }
  if (action !== 'path' && action !== 'pull') throw new UsageError(action === undefined ? 'weights needs list, path NAME or pull NAME' : `weights: unknown action '${action}' (list, path, pull)`);
  if (!name) throw new UsageError(`weights ${action} needs a NAME, e.g. resnet18`);
  if (action === 'path') {
    io.out(`${weightsPath(name)}\n`);
    return 0;
  }
  const w = findWeights(name);
  const dest = weightsPath(name);
  if (fs.existsSync(dest)) {
    io.out(`${w.name}: already in the cache, ${dest}\n`);
    return 0;
  }
  const timeout = int(values.timeout as string | undefined, '--timeout', 1);
  let bar: SingleBar | undefined;
  try {
    const file = await pullWeights(name, {
      mirror: values.mirror as string | undefined,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
      onProgress: (received, total) => {
        if (!io.isTTY || total === null) return;
        if (!bar) {
          bar = new SingleBar({ format: `${w.file} {bar} {percentage}% | {value}/{total} MB`, hideCursor: true });
          bar.start(Math.round(total / 1e6), 0);
        }
        bar.update(Math.round(received / 1e6));
      },
    });
    bar?.stop();
    io.out(`${w.name}: ${file} (${(fs.statSync(file).size / 1e6).toFixed(1)} MB, SHA-256 ${w.sha256Prefix}... checked)\n`);
    return 0;
  } finally {
    bar?.stop();
  }
}

/** `compare runs/a runs/b ...`: the runs' final figures as a table, their curves on one page. */
export async function compareCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { out: { type: 'string' }, json: { type: 'boolean' } }, 'compare');
  if (positionals.length === 0) throw new UsageError('compare needs run directories, e.g. torch-attn compare runs/a runs/b');
  for (const dir of positionals) if (!fs.existsSync(dir)) throw new UsageError(`compare: ${dir} does not exist`);
  const out = (values.out as string | undefined) ?? 'compare.html';
  let result: Awaited<ReturnType<typeof compareRuns>>;
  try {
    result = await compareRuns(positionals, out);
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  io.out(values.json ? `${JSON.stringify(result.runs, null, 2)}\n` : `${result.table}\n\ncurves: ${result.file}\n`);
  return 0;
}
