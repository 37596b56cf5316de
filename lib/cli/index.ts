// The torch-attn command line: train, eval, predict, serve, summary, compare, weights, doctor, launch.
//   npx torch-attn <command> [options]        (npx torch-attn help <command>)
// This module parses and dispatches; the commands (commands.ts) load the library, and with it the
// native addon, only when one runs: help, usage errors and `doctor` work when the addon cannot load.
import * as os from 'node:os';
import * as path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ARCHS } from '../runs/archs';
import { packageRoot, packageVersion } from '../package';
import * as validate from '../validate';

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
  summary   a model's layers, output shapes, parameters and MACs
  compare   runs side by side: a table of their final figures, their curves on one page
  weights   torchvision's ImageNet weights: list, path, pull (the only command that downloads)
  doctor    LibTorch, CUDA, threads, and what to fix when something is missing
  launch    run a command as several data-parallel ranks (torchrun's environment)

torch-attn help <command> shows a command's options; torch-attn --version the versions.
`,
  train: `usage: torch-attn train [--config run.yaml] [options]

  --config FILE       a run configuration (.json, .yaml); the flags below override it
  --data DIR          dataset folder (CIFAR batches, or an image folder)
  --dataset NAME      cifar10 | cifar100 | imageFolder (default cifar10). An image folder is one
                      sub-folder per class; a folder holding train/ and val/ (or test/) is split
                      that way (else a sibling val/ folder is the test split, when there is one)
  --model ARCH        ${ARCHS.join(' | ')} (default resnet18)
  --attention KIND    cbam | nam | se | eca | none (default cbam)
  --epochs LIST       epochs per stage, e.g. 5,15,30 (or one number for every stage)
  --batch-size N      default 64
  --workers N         loader threads, default 2
  --seed N            default 0
  --precision P       fp32 | bf16 | fp16 (fp16: CUDA only; bf16 about 2x on CPUs with bf16 arithmetic)
  --channels-last     channels-last (NHWC) weights and inputs
  --winograd          3 x 3 convolutions trained by Winograd: faster (float32 ~1.3x here), results
                      not bit-identical to PyTorch's
  --weights FILE      torchvision ImageNet checkpoint for the backbone, or 'imagenet' / 'imagenet-v2'
                      (torchvision's file from PyTorch's cache; torch-attn weights pull fetches it)
  --name NAME         the run's name (default <arch>-<attention>-<dataset>)
  --device DEV        cpu | cuda | cuda:N (default cpu)
  --quiet             no progress bar, no per-epoch lines: warnings and the result only
  --out DIR           run directory (default runs/<name>); one that holds a run already is not
                      overwritten: the run goes to DIR-2 (DIR-3, ...) unless --exist-ok
  --exist-ok          write into --out even when it holds a run
  --resume FILE       continue a run from its last.pth (alone: the run's own config.json and folder)
  --set KEY=VALUE     override one config field by its dotted path, the value as YAML; repeatable
                      (--set optimizer.weightDecay=5e-4 --set stages.0.lr=1e-2)
  --threads N         intra-op threads (default: LibTorch's, the cores)
  --dry-run           print the resolved config, the model and its learning rates; train nothing
  --nproc-per-node N  data-parallel: N ranks on this machine (c10d, Gloo), each --batch-size images
                      per step, threads per rank = cores / N; rank 0 writes the run directory
  --nnodes M --node-rank K --master-addr HOST --master-port P
                      several machines: the same command on each, K = 0 .. M-1 (default 1 node,
                      127.0.0.1:29500)
  --sync-batch-norm   data-parallel: BatchNorm statistics over all ranks' batches (SyncBatchNorm)
Without stages in a config, ResNets and VGGs get the staged fine-tune (head + attention, then the
high stages, then everything) and the CBAM-CNN one stage training everything.
Ctrl-C stops at the next batch with a resumable checkpoint.
`,
  eval: `usage: torch-attn eval --checkpoint FILE [--data DIR] [--config FILE] [--json]

  --checkpoint FILE   a .pth/.safetensors state dict (a run's best.pth or last.pth)
  --data DIR          the dataset to evaluate on (its test split; default the run's own)
  --config FILE       the run's config.json (default: config.json beside the checkpoint)
  --json              print the evaluation as JSON
`,
  predict: `usage: torch-attn predict --checkpoint FILE [options] <folder or image files...>
       torch-attn predict --weights imagenet --model resnet50 [options] <images...>

  --checkpoint FILE   a run's best.pth (its config.json beside it gives model, classes, transforms),
                      or any state dict with the flags that describe its model:
  --model ARCH          ${ARCHS.join(' | ')}
  --classes N           the class count, or
  --class-names A,B,..  the class names, in the order of the outputs
  --attention KIND      cbam | nam | se | eca | none (default cbam)
  --image-size S        input side the images are resized and cropped to (default 32)
  --weights NAME      imagenet | imagenet-v2: the plain torchvision model with its ImageNet weights
                      (from PyTorch's cache), its eval transform and the 1000 ImageNet classes
  --model ARCH        with --weights: resnet18-152, vgg11-19 (default resnet18)
  --bn                with --weights and a VGG: vgg*_bn
  --config FILE       the run's config.json, when it is not beside the checkpoint
  --top-k N           classes per image (default 3)
  --format FMT        table | json | csv (default table)
An image that cannot be read is reported in its row (the others are predicted); the exit code is
then 1.
`,
  serve: `usage: torch-attn serve --checkpoint FILE [options]

  --checkpoint FILE   a run's best.pth (its config.json beside it gives model, classes, transforms)
  --config FILE       the run's config.json, when it is not beside the checkpoint
  --host HOST         default 127.0.0.1
  --port PORT         default 8080 (0: any free port)
  --max-batch N       most images per forward pass (default 32; 1: no batching)
  --max-delay-ms MS   longest a batch waits for more requests, from its first one's arrival or
                      when the model became free, whichever is later (default 5)
  --max-queue N       most images waiting; more get 503 (default 1024)
  --precision P       fp32 | bf16 | fp16 (fp16: CUDA only)
  --device DEV        cpu | cuda | cuda:N: where the model computes (default cpu; images are
                      decoded on the CPU either way)
  --top-k N           classes per answer unless the request asks (?topk=N); default 5
  --max-body-mb N     largest request body in MiB (default 10)
  --max-pixels N      most pixels of an uploaded image, refused from its header (default 16777216,
                      4096 x 4096)
  --request-timeout-s N  longest a client may take to send a request; then 408 (default 30; 0: none)
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

What torch-attn runs on here (LibTorch, CUDA, threads, precisions, cached weights) and what to
fix; works when the native addon cannot load.
`,
  compare: `usage: torch-attn compare RUN_DIR RUN_DIR ... [--out FILE] [--json]

  --out FILE          the page with the runs' curves overlaid (default compare.html)
  --json              print the runs' figures as JSON instead of the table
`,
  weights: `usage: torch-attn weights list | path NAME | pull NAME [--mirror URL] [--timeout S]

  list                every ImageNet weights file torchvision publishes for the backbones here,
                      and whether it is in PyTorch's cache ($TORCH_HOME/hub/checkpoints)
  path NAME           where NAME's file is (or goes) in the cache
  pull NAME           download NAME into the cache: a progress bar, the size and the SHA-256
                      prefix of the file name checked, an atomic rename; an interrupted pull
                      continues where it stopped. HTTPS_PROXY / NO_PROXY are honoured.
  NAME                resnet18 ... resnet152, vgg11 ... vgg19, vgg11_bn ... vgg19_bn; add .v2 for
                      the V2 weights (resnet50/101/152), or torchvision's ResNet50_Weights.IMAGENET1K_V2
  --mirror URL        fetch <URL>/<file name> instead of download.pytorch.org
  --timeout S         longest silence from the server, in seconds (default 30)
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

export function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, command: string) {
  try {
    return parseArgs({ args, options, allowPositionals: command === 'predict' || command === 'weights' || command === 'compare', strict: true });
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

export function int(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} takes an integer of at least ${min}, got '${value}'`);
  return n;
}

/** A plain-text table: the first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return `${[line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')}\n`;
}

const COMMANDS = ['train', 'eval', 'predict', 'serve', 'summary', 'compare', 'weights', 'doctor', 'launch'];

/** ANSI colour for a terminal only: not in pipes or files, and never with NO_COLOR set. */
export function paint(io: Io, style: 'bold' | 'green' | 'red' | 'yellow' | 'dim', text: string): string {
  if (!io.isTTY || process.env.NO_COLOR) return text;
  const codes = { bold: [1, 22], green: [32, 39], red: [31, 39], yellow: [33, 39], dim: [2, 22] }[style];
  return `\x1b[${codes[0]}m${text}\x1b[${codes[1]}m`;
}

/** `doctor` when the library cannot load: what failed and what to check, without the addon. */
function doctorWithoutAddon(io: Io, err: unknown): number {
  const reason = err instanceof Error ? err.message : String(err);
  // Where the install step looks for LibTorch (TORCH_ATTN_LIBTORCH, else Debian's libtorch-dev).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { locateLibTorch } = require(path.join(packageRoot, 'scripts', 'libtorch.js')) as { locateLibTorch: () => { libDir: string; source: string } | Error };
  const libtorch = locateLibTorch();
  io.out(
    [
      `torch-attn ${packageVersion}, node ${process.version}, ${os.cpus().length} CPUs`,
      paint(io, 'red', `the native addon does not load: ${reason}`),
      libtorch instanceof Error ? libtorch.message : `LibTorch: found in ${libtorch.libDir} (${libtorch.source})`,
      '',
      'to fix:',
      '  - npm rebuild torch-attn   (builds the addon against the LibTorch found; needs cmake and g++)',
      '',
    ].join('\n'),
  );
  return 1;
}

/** Runs one command; resolves to the process exit code. */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      const topic = args[0] ?? '';
      if (!(topic in HELP)) throw new UsageError(`no command '${topic}'${validate.didYouMean(topic, COMMANDS)}`);
      io.out(HELP[topic]);
      return 0;
    }
    // launch's arguments after -- belong to the command it runs.
    const own = command === 'launch' && args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
    if (own.includes('--help') || own.includes('-h')) {
      if (!(command in HELP)) throw new UsageError(`unknown command '${command}'${validate.didYouMean(command, COMMANDS)}`);
      io.out(HELP[command]);
      return 0;
    }
    if (command !== '--version' && command !== '-V' && !COMMANDS.includes(command)) {
      throw new UsageError(`unknown command '${command}'${validate.didYouMean(command, COMMANDS)} (commands: ${COMMANDS.join(', ')})`);
    }
    if (command === 'doctor' && args.length > 0) throw new UsageError(`doctor takes no options or arguments, got '${args.join(' ')}'`);
    let commands: typeof import('./commands');
    try {
      commands = await import('./commands');
    } catch (err) {
      if (command === 'doctor') return doctorWithoutAddon(io, err);
      throw err;
    }
    switch (command) {
      case '--version':
      case '-V': {
        const info = commands.versions();
        io.out(`torch-attn ${info.version} (LibTorch ${info.libtorch})\n`);
        return 0;
      }
      case 'train':
        return await commands.train(args, io);
      case 'eval':
        return await commands.evalCommand(args, io);
      case 'predict':
        return await commands.predict(args, io);
      case 'serve':
        return await commands.serveCommand(args, io);
      case 'summary':
        return commands.summary(args, io);
      case 'compare':
        return await commands.compareCommand(args, io);
      case 'doctor':
        return commands.doctor(io);
      case 'launch':
        return await commands.launchCommand(args, io);
      default:
        return await commands.weightsCommand(args, io);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${paint(io, 'red', `torch-attn: ${err.message}`)}\n${HELP[command && command in HELP ? command : ''] ?? ''}`);
      return 2;
    }
    io.err(`${paint(io, 'red', `torch-attn ${command}: ${err instanceof Error ? err.message : String(err)}`)}\n`);
    return 1;
  }
}
