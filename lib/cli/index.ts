// The torch-attn command line: train, eval, predict, summary, doctor.
//   npx torch-attn <command> [options]        (npx torch-attn help <command>)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { DataLoader } from '../data/loader';
import { datasets } from '../data/datasets';
import { distributed } from '../distributed';
import { buildInfo, cuda, getNumThreads } from '../runtime';
import { launch } from './launch';
import { type RunConfig, ARCHS, buildModel, checkConfig, inputSize, loadData, readConfigFile, readRunConfig, transformsFor } from '../runs/config';
import { prCurves } from '../runs/metrics';
import { formatEpoch, formatResult, runTraining } from '../runs/train';
import { evaluate } from '../training/evaluate';
import { parameterGroups } from '../training/groups';
import { PRECISIONS, type Precision } from '../precision';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

const defaultIo: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), isTTY: Boolean(process.stdout.isTTY) };

/** A mistake in how the command was called (exit code 2, with usage). */
export class UsageError extends Error {
  override name = 'UsageError';
}

const HELP: Record<string, string> = {
  '': `usage: torch-attn <command> [options]

commands:
  train     train a model with the staged fine-tuner (--config run.json|run.yaml, or flags)
  eval      evaluate a checkpoint on a dataset
  predict   top-k classes for images (a folder or files), as a table, JSON or CSV
  serve     a checkpoint behind HTTP: POST /predictions, batched dynamically; /health /ready /metrics
  summary   a model's layers, output shapes and parameter counts
  doctor    LibTorch, CUDA, threads, and what to fix when something is missing
  launch    run a command as several data-parallel ranks (torchrun's environment)

torch-attn help <command> shows a command's options.
`,
  train: `usage: torch-attn train [--config run.yaml] [options]

  --config FILE       a run configuration (.json, .yaml); the flags below override it
  --data DIR          dataset folder (CIFAR batches, or an image folder)
  --dataset NAME      cifar10 | cifar100 | imageFolder (default cifar10)
  --model ARCH        ${ARCHS.join(' | ')} (default resnet18)
  --attention KIND    cbam | nam | se | eca | none (default cbam)
  --epochs LIST       epochs per stage, e.g. 5,15,30 (or one number for every stage)
  --batch-size N      default 64
  --workers N         loader threads, default 2
  --seed N            default 0
  --precision P       fp32 | bf16 | fp16 (fp16: CUDA only; bf16 about 2x on CPUs with bf16 arithmetic)
  --channels-last     channels-last (NHWC) weights and inputs
  --weights FILE      torchvision ImageNet checkpoint for the backbone
  --out DIR           run directory (default runs/<name>)
  --resume FILE       continue a run from its last.pth
Ctrl-C stops at the next batch with a resumable checkpoint.
`,
  eval: `usage: torch-attn eval --checkpoint FILE --data DIR [--config FILE] [--json]

  --checkpoint FILE   a .pth/.safetensors state dict (a run's best.pth or last.pth)
  --data DIR          the dataset to evaluate on (its test split)
  --config FILE       the run's config.json (default: config.json beside the checkpoint)
  --json              print the evaluation as JSON
`,
  predict: `usage: torch-attn predict --checkpoint FILE [options] <folder or image files...>

  --checkpoint FILE   a run's best.pth (its config.json beside it gives model, classes, transforms)
  --config FILE       the run's config.json, when it is not beside the checkpoint
  --top-k N           classes per image (default 3)
  --format FMT        table | json | csv (default table)
`,
  serve: `usage: torch-attn serve --checkpoint FILE [options]

  --checkpoint FILE   a run's best.pth (its config.json beside it gives model, classes, transforms)
  --config FILE       the run's config.json, when it is not beside the checkpoint
  --host HOST         default 127.0.0.1
  --port PORT         default 8080 (0: any free port)
  --max-batch N       most images per forward pass (default 32; 1: no batching)
  --max-delay-ms MS   longest a request waits for others to join its batch (default 5)
  --max-queue N       most images waiting; more get 503 (default 1024)
  --precision P       fp32 | bf16 | fp16 (fp16: CUDA only)
  --top-k N           classes per answer unless the request asks (?topk=N); default 5
  --max-body-mb N     largest request body in MiB (default 10)
POST /predictions takes an image body (image/jpeg, image/png, application/octet-stream) or
multipart/form-data with image files; it answers JSON { predictions: [{ label, index,
probability }] } (multipart: { results: [{ name, predictions }] }); a bad image gets 400, a full
queue 503. SIGTERM or Ctrl-C stops accepting, finishes what is in flight and exits 0.
`,
  summary: `usage: torch-attn summary [--config FILE] [--model ARCH] [--attention KIND] [--placement stage|block] [--classes N] [--input C,H,W]

  --config FILE       the model of a run configuration (a recipe); the flags below override it
  --placement WHERE   ResNet: 'stage' (after each stage) or 'block' (inside every residual block);
                      default: CBAM after stages, NAM/SE/ECA in blocks
  --classes N         default: the config's dataset's (10 without one)
  --input C,H,W       default: the config's input size (3,32,32 without one)
`,
  doctor: `usage: torch-attn doctor
`,
  launch: `usage: torch-attn launch --nproc-per-node N [options] -- <command> [args...]

  --nproc-per-node N  ranks on this machine
  --nnodes M          machines in the job (default 1)
  --node-rank K       this machine's index, 0 to M-1 (default 0)
  --master-addr HOST  where rank 0 listens for the rendezvous (default 127.0.0.1)
  --master-port PORT  its port (default 29500)
  --threads N         threads per rank (default: cores / N)
Each rank gets MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK and OMP_NUM_THREADS, as
torchrun sets them; the script calls distributed.init(). Ctrl-C reaches every rank; when one rank
fails the others are stopped and launch exits with its code.
`,
};

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, command: string) {
  try {
    return parseArgs({ args, options, allowPositionals: command === 'predict', strict: true });
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

function int(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} takes an integer of at least ${min}, got '${value}'`);
  return n;
}

/** The run configuration from --config and the flags. */
export function trainConfig(values: Record<string, string | boolean | (string | boolean)[] | undefined>): RunConfig {
  const base = values.config ? readConfigFile(String(values.config)) : {};
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
  if (values.precision) raw.precision = values.precision;
  if (values['channels-last']) raw.memoryFormat = 'channels-last';
  return checkConfig(raw, values.config ? String(values.config) : 'config');
}

async function train(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    config: { type: 'string' }, data: { type: 'string' }, dataset: { type: 'string' }, model: { type: 'string' }, attention: { type: 'string' },
    epochs: { type: 'string' }, 'batch-size': { type: 'string' }, workers: { type: 'string' }, seed: { type: 'string' },
    weights: { type: 'string' }, out: { type: 'string' }, resume: { type: 'string' }, precision: { type: 'string' }, 'channels-last': { type: 'boolean' },
  }, 'train');
  const config = trainConfig(values);
  const controller = new AbortController();
  const onSigint = () => {
    io.err('\nstopping at the next batch; a resumable checkpoint is being written ...\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  let bar: SingleBar | undefined;
  let epochStarted = Date.now();
  try {
    const result = await runTraining(config, {
      signal: controller.signal,
      resume: values.resume as string | undefined,
      batchLines: !io.isTTY,
      log: (line) => {
        bar?.stop();
        bar = undefined;
        io.out(`${line}\n`);
      },
      onBatch: !io.isTTY ? undefined : (b) => {
        if (!bar) {
          epochStarted = Date.now();
          bar = new SingleBar({ format: `epoch ${b.epoch} [${b.stage}] {bar} {value}/{total} batches | loss {loss} | {rate} img/s | eta {eta}s`, hideCursor: true });
          bar.start(b.batches, 0, { loss: '-', rate: '-' });
        }
        const seconds = (Date.now() - epochStarted) / 1000;
        bar.update(b.batch, { loss: b.meanLoss.toFixed(4), rate: seconds > 0 ? (b.images / seconds).toFixed(1) : '-' });
      },
      onEpoch: (r) => {
        bar?.stop();
        bar = undefined;
        io.out(`${formatEpoch(r)}\n`);
      },
    });
    io.out(`${formatResult(result).join('\n')}\n`);
    return 0;
  } catch (err) {
    bar?.stop();
    if ((err as Error).name === 'AbortError') {
      io.err(`${(err as Error).message}\n`);
      return 130;
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** The run's config.json beside a checkpoint (or the one given). */
function runConfigFor(checkpoint: string, explicit?: string): RunConfig & { classes: string[] } {
  try {
    return readRunConfig(checkpoint, explicit);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function evalCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { checkpoint: { type: 'string' }, data: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } }, 'eval');
  if (!values.checkpoint) throw new UsageError('eval needs --checkpoint FILE');
  const config = runConfigFor(String(values.checkpoint), values.config as string | undefined);
  if (values.data) config.data.path = String(values.data);
  const { test } = await loadData(config);
  if (!test) throw new UsageError(`no test split found for ${config.data.path}`);
  const model = buildModel(config, config.classes.length);
  await model.loadStateDict(String(values.checkpoint), { strict: true });
  const ev = await evaluate(model, test, { batchSize: config.batchSize, workers: config.workers, probabilities: true });
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

async function predict(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { checkpoint: { type: 'string' }, config: { type: 'string' }, 'top-k': { type: 'string' }, format: { type: 'string' } }, 'predict');
  if (!values.checkpoint) throw new UsageError('predict needs --checkpoint FILE');
  if (positionals.length === 0) throw new UsageError('predict needs image files or a folder of images');
  const format = (values.format as string | undefined) ?? 'table';
  if (!['table', 'json', 'csv'].includes(format)) throw new UsageError(`--format must be table, json or csv, got '${format}'`);
  const config = runConfigFor(String(values.checkpoint), values.config as string | undefined);
  const k = Math.min(int(values['top-k'] as string | undefined, '--top-k', 1) ?? 3, config.classes.length);
  const files = imageFiles(positionals);
  if (files.length === 0) throw new UsageError(`predict: no ${IMAGE_EXTENSIONS.join('/')} images in ${positionals.join(', ')}`);
  const model = buildModel(config, config.classes.length);
  await model.loadStateDict(String(values.checkpoint), { strict: true });
  const data = datasets.fromFiles(files, config.classes, transformsFor(config).test);
  const ev = await evaluate(model, new DataLoader(data, { batchSize: 32, workers: config.workers }), { probabilities: true });
  const probs = ev.probabilities!;
  const n = config.classes.length;
  const results = files.map((file, i) => {
    const row = Array.from(probs.subarray(i * n, (i + 1) * n));
    const top = row.map((p, c) => ({ class: config.classes[c], probability: p })).sort((a, b) => b.probability - a.probability).slice(0, k);
    return { file, top };
  });
  if (format === 'json') io.out(`${JSON.stringify(results, null, 2)}\n`);
  else if (format === 'csv') {
    const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    io.out(`file,${Array.from({ length: k }, (_, i) => `class_${i + 1},probability_${i + 1}`).join(',')}\n`);
    for (const r of results) io.out(`${quote(r.file)},${r.top.map((t) => `${quote(t.class)},${t.probability.toFixed(6)}`).join(',')}\n`);
  } else {
    io.out(table(['file', ...Array.from({ length: k }, (_, i) => `#${i + 1}`)], results.map((r) => [r.file, ...r.top.map((t) => `${t.class} ${(100 * t.probability).toFixed(1)}%`)])));
  }
  return 0;
}

async function serveCommand(args: string[], io: Io): Promise<number> {
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
      'top-k': { type: 'string' },
      'max-body-mb': { type: 'string' },
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
  const bodyMb = int(values['max-body-mb'] as string | undefined, '--max-body-mb', 1);
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
    topK: int(values['top-k'] as string | undefined, '--top-k', 1),
    maxBodyBytes: bodyMb === undefined ? undefined : bodyMb << 20,
    log: (line) => io.err(`${line}\n`),
  });
  return 0;
}

function summary(args: string[], io: Io): number {
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
  io.out(`${model.toString()}\n${model.summaryTable([1, ...input])}\n`);
  // Where the attention modules are (inside blocks they do not show as rows of the table).
  const modules = [...new Set((parameterGroups(model).get('attention') ?? []).map((n) => n.split('.').slice(0, n.split('.').findIndex((p) => /^(cbam|nam|se|eca)(_|\d|$)/.test(p)) + 1).join('.')))];
  if (modules.length > 0) io.out(`attention modules (${modules.length}): ${modules.join(', ')}\n`);
  return 0;
}

function doctor(io: Io): number {
  const info = buildInfo();
  const lines = [
    `torch-attn ${info.version} (N-API ${info.napiVersion})`,
    `LibTorch ${info.libtorchVersion} from ${info.libtorchDir}`,
    `CUDA: ${info.cuda ? `built with CUDA ${info.cudaVersion || '?'}; ${cuda.isAvailable() ? `${cuda.deviceCount()} device(s) usable` : 'no usable GPU'}` : 'CPU build'}`,
    `threads: ${getNumThreads()} intra-op (OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? 'unset'}), ${require('node:os').cpus().length} CPUs`,
    `node ${process.version}`,
    `precisions in hardware: CPU ${info.nativePrecisions.cpu.join(', ')}${info.nativePrecisions.cuda ? `; GPU (capability ${info.cudaCapability}) ${info.nativePrecisions.cuda.join(', ')}` : ''}${info.nativePrecisions.cpu.includes('bf16') ? '' : ' (bf16 runs emulated here: slower than fp32)'}`,
    ...(info.onednnVersion ? [`oneDNN ${info.onednnVersion}`] : []),
    `inference plans (folded, prepacked convolutions in eval mode): ${info.inferencePlans ? 'on' : 'off with this LibTorch (eval runs the modules eagerly)'}`,
    `distributed (c10d): ${distributed.backends().join(', ')} (no NCCL: CUDA tensors are not reduced across ranks yet)`,
    ...info.workarounds.map((w) => `works around: ${w}`),
  ];
  const fixes: string[] = [];
  lines.push('image decoding: libjpeg-turbo (TurboJPEG) and libpng, linked into the addon');
  try {
    const v = execFileSync('/usr/bin/python3', ['-c', 'import torch, torchvision; print(torch.__version__, torchvision.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    lines.push(`PyTorch for the parity tests and the benchmark: ${v}`);
  } catch {
    fixes.push('no PyTorch for the parity tests and the benchmark peer: sudo apt-get install -y python3-torch python3-torchvision');
  }
  if (!info.cuda) fixes.push('for GPUs: build against a CUDA LibTorch, e.g. TORCH_ATTN_LIBTORCH=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))") npm run build:native');
  io.out(`${lines.join('\n')}\n${fixes.length ? `\nto fix or improve:\n${fixes.map((f) => `  - ${f}`).join('\n')}\n` : '\neverything needed is there.\n'}`);
  return 0;
}

async function launchCommand(args: string[], io: Io): Promise<number> {
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
  const nprocPerNode = int(values['nproc-per-node'] as string | undefined, '--nproc-per-node', 1);
  if (nprocPerNode === undefined) throw new UsageError('launch: --nproc-per-node is required');
  const nnodes = int(values.nnodes as string | undefined, '--nnodes', 1) ?? 1;
  const nodeRank = int(values['node-rank'] as string | undefined, '--node-rank', 0) ?? 0;
  if (nodeRank >= nnodes) throw new UsageError(`launch: --node-rank must be below --nnodes (${nnodes}), got ${nodeRank}`);
  const masterPort = int(values['master-port'] as string | undefined, '--master-port', 1) ?? 29500;
  if (masterPort > 65535) throw new UsageError(`launch: --master-port must be at most 65535, got ${masterPort}`);
  const threads = int(values.threads as string | undefined, '--threads', 1);
  return launch(
    { nprocPerNode, nnodes, nodeRank, masterAddr: (values['master-addr'] as string | undefined) ?? '127.0.0.1', masterPort, threads, command: args.slice(split + 1) },
    (line) => io.err(`${line}\n`),
  );
}

/** A plain-text table: the first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return `${[line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')}\n`;
}

/** Runs one command; resolves to the process exit code. */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      const topic = args[0] ?? '';
      if (!(topic in HELP)) throw new UsageError(`no command '${topic}'`);
      io.out(HELP[topic]);
      return 0;
    }
    // launch's arguments after -- belong to the command it runs.
    const own = command === 'launch' && args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
    if (own.includes('--help') || own.includes('-h')) {
      if (!(command in HELP)) throw new UsageError(`unknown command '${command}'`);
      io.out(HELP[command]);
      return 0;
    }
    switch (command) {
      case 'train':
        return await train(args, io);
      case 'eval':
        return await evalCommand(args, io);
      case 'predict':
        return await predict(args, io);
      case 'serve':
        return await serveCommand(args, io);
      case 'summary':
        return summary(args, io);
      case 'doctor':
        return doctor(io);
      case 'launch':
        return await launchCommand(args, io);
      default:
        throw new UsageError(`unknown command '${command}' (commands: train, eval, predict, serve, summary, doctor, launch)`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`torch-attn: ${err.message}\n${HELP[command && command in HELP ? command : ''] ?? ''}`);
      return 2;
    }
    io.err(`torch-attn ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
