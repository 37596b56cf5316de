// One benchmark run: torch-attn and the PyTorch peer (../shared/peer/bench.py, Debian's
// python3-torch: the same LibTorch) on the same machine, the same workloads, in one go.
//   npm run bench [-- --json] [--threads 2] [--rounds 3] [--reps 3] [--fit-epochs 1]
// Workloads (the peer's): ResNet18-CBAM, CIFAR stem, 10 classes, batch 64, 32x32, Adam, full
// model trainable (training step); eval at batch 64 and batch 1 on a fresh seeded model; each in
// fp32 and bf16 autocast, contiguous and channels-last (keys *_bf16, *_cl, *_bf16_cl), and
// torch-attn's training step by Winograd (*_winograd, against the peer's exact step); the CIFAR
// augmentation chain on one thread. Plus torch-attn's end-to-end fit on real CIFAR-10 (../shared/data/cifar10-subset-bin):
// throughput, event-loop lag during it, peak RSS. Each part runs in a child process of its own so
// its peak RSS is its own. The core figures and bench.py take turns in `--rounds` rounds (the
// order alternating), so a slow spell of the machine falls on both sides: each figure is the median
// over rounds (inside a round, torch-attn's is the median of `--reps` repetitions), each ratio the
// median of the rounds' own ratios, all listed in `ratios_per_round`; warm-up first. bf16 against
// fp32 within torch-attn is also measured with the two precisions' calls taking turns
// (`*_turns_bf16_over_fp32`), free of the drift between variants measured a minute apart.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  ResNetCBAM,
  StagedFineTuner,
  buildInfo,
  datasets,
  getNumThreads,
  manualSeed,
  optim,
  randn,
  setNumThreads,
  tensor,
} from '../lib';
import { CIFAR_TRAIN_AUGMENT, augmentImagesPerSecond } from './bench-augment';
import { inferenceFigures } from './bench-inference';
import { loopDelayMs, median, medians, runs as timedRuns, turnTimes } from './timing';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    threads: { type: 'string', default: '2' },
    reps: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    'fit-epochs': { type: 'string', default: '1' },
    part: { type: 'string' },
    data: { type: 'string', default: path.resolve(__dirname, '..', '..', 'shared', 'data', 'cifar10-subset-bin') },
  },
});
const threads = Number(values.threads);
const reps = Number(values.reps);
const peerBench = path.resolve(__dirname, '..', '..', 'shared', 'peer', 'bench.py');

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;
const runs = (fn: () => unknown, n: number, warm: number, count = reps) => timedRuns(fn, n, warm, count);

const VARIANTS = [
  { suffix: '', precision: 'fp32', memoryFormat: 'contiguous' },
  { suffix: '_cl', precision: 'fp32', memoryFormat: 'channels-last' },
  { suffix: '_bf16', precision: 'bf16', memoryFormat: 'contiguous' },
  { suffix: '_bf16_cl', precision: 'bf16', memoryFormat: 'channels-last' },
] as const;

async function core() {
  setNumThreads(threads);
  const x = randn([64, 3, 32, 32]);
  const x1 = randn([1, 3, 32, 32]);
  const y = tensor(BigInt64Array.from({ length: 64 }, (_, i) => BigInt((i * 7) % 10)), [64]);
  const out: Record<string, number> = {};
  /** bench.py's training model: seeded, Adam on everything, in training mode; its step. */
  const trainStep = (precision: 'fp32' | 'bf16', memoryFormat: 'contiguous' | 'channels-last', winograd = false) => {
    manualSeed(0);
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).to({ memoryFormat });
    const opt = optim.adam(model, [{ params: 'all' }], { lr: 1e-3 });
    model.train();
    return () => model.trainStep(opt, x, y, { precision, winograd });
  };
  // bench.py's order per variant: a seeded model trained 2 warm-up + timed steps; eval on a fresh
  // seeded model (default initialisation), batch 64 then batch 1.
  for (const v of VARIANTS) {
    const step = median(await runs(trainStep(v.precision, v.memoryFormat), 5, 2));
    manualSeed(1);
    const evalModel = new ResNetCBAM({ depth: 18, numClasses: 10 }).to({ memoryFormat: v.memoryFormat }).eval();
    // fp32 through forward() (synchronous, as a PyTorch call is); bf16 through predict(), the
    // entry point that takes a precision.
    const infer = (input: typeof x) => (v.precision === 'fp32' ? Promise.resolve(evalModel.forward(input)) : evalModel.predict(input, { precision: v.precision }));
    const evalB64 = median(await runs(async () => (await infer(x)).dispose(), 5, 2));
    const evalB1 = median(await runs(async () => (await infer(x1)).dispose(), 20, 3));
    out[`train_img_per_s${v.suffix}`] = +(64 / step).toFixed(2);
    out[`eval_img_per_s${v.suffix}`] = +(64 / evalB64).toFixed(2);
    out[`eval_b1_ms${v.suffix}`] = +(evalB1 * 1000).toFixed(2);
  }
  // Training by Winograd (trainStep's `winograd`, not bit-identical to PyTorch), fp32 and bf16;
  // against the exact step with the two taking turns call by call.
  for (const precision of ['fp32', 'bf16'] as const) {
    const suffix = precision === 'fp32' ? '' : '_bf16';
    out[`train_img_per_s${suffix}_winograd`] = +(64 / median(await runs(trainStep(precision, 'contiguous', true), 5, 2))).toFixed(2);
    const [exact, fast] = await turnTimes([trainStep(precision, 'contiguous'), trainStep(precision, 'contiguous', true)], 3 * reps, 2);
    out[`train_turns_winograd_over_exact${suffix}`] = +(median(exact) / median(fast)).toFixed(3);
  }
  // bf16 against fp32 within torch-attn, the two precisions taking turns call by call (training
  // steps on two models seeded alike, eval at batch 64 on one model and input). The variants above
  // run a minute or more apart (bench.py's order), and this machine's speed drifts by 10-30% over
  // minutes, which lands whole on a ratio of two of them.
  const inTurns = async (calls: Record<'fp32' | 'bf16', () => unknown>, n: number) => {
    const [fp32, bf16] = await turnTimes([calls.fp32, calls.bf16], n, 2);
    return +(median(fp32) / median(bf16)).toFixed(3);
  };
  out.train_turns_bf16_over_fp32 = await inTurns({ fp32: trainStep('fp32', 'contiguous'), bf16: trainStep('bf16', 'contiguous') }, 3 * reps);
  manualSeed(1);
  const pairModel = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
  const evalCall = (precision: 'fp32' | 'bf16') => async () => (await pairModel.predict(x, { precision })).dispose();
  out.eval_turns_bf16_over_fp32 = await inTurns({ fp32: evalCall('fp32'), bf16: evalCall('bf16') }, 5 * reps);
  const augment = await augmentImagesPerSecond(2048, reps);
  return { ...out, augment_img_per_s_1core: Math.round(augment), peak_rss_mb: Math.round(peakRssMb()) };
}

async function fit() {
  setNumThreads(threads);
  manualSeed(0);
  const epochs = Number(values['fit-epochs']);
  const train = await datasets.cifar10(values.data!, { transform: CIFAR_TRAIN_AUGMENT });
  const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
  const tuner = new StagedFineTuner(model, { optimizer: { type: 'adam' }, stages: [{ name: 'all', epochs, train: 'all', lr: 1e-3 }], logEvery: 0 });
  const lagSampleMs = 5;
  const lag = monitorEventLoopDelay({ resolution: lagSampleMs });
  lag.enable();
  const result = await tuner.fit(train, null, { batchSize: 64, workers: 2, seed: 0 });
  lag.disable();
  return {
    fit_epoch_img_per_s: +median(result.epochs.map((r) => r.imagesPerSecond)).toFixed(2),
    fit_images: train.length,
    // The delay beyond the sampler's own interval (what it reads on an idle loop).
    loop_lag_p99_ms: +loopDelayMs(lag.percentile(99) / 1e6, lagSampleMs).toFixed(2),
    loop_lag_max_ms: +loopDelayMs(lag.max / 1e6, lagSampleMs).toFixed(2),
    fit_peak_rss_mb: Math.round(peakRssMb()),
  };
}

/** Runs this script's `part` in a child process and parses its JSON. */
function child(part: string): Record<string, any> {
  const run = spawnSync(process.execPath, [...process.execArgv, __filename, '--part', part, '--threads', String(threads), '--reps', String(reps), '--fit-epochs', values['fit-epochs']!, '--data', values.data!], {
    encoding: 'utf8',
    env: process.env,
  });
  if (run.status !== 0) throw new Error(`bench part ${part} failed:\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!);
}

function peerOnce(): Record<string, number> | string {
  if (!fs.existsSync(peerBench)) return 'missing: ../shared/peer/bench.py';
  // bench.py plus the peak RSS of its process (resource.getrusage, KB on Linux).
  const code = `import runpy, sys, resource; sys.argv = [${JSON.stringify(peerBench)}, '--threads', '${threads}']; runpy.run_path(sys.argv[0], run_name='__main__'); print('{"peak_rss_kb": %d}' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)`;
  const run = spawnSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' });
  if (run.status !== 0) return `missing: /usr/bin/python3 with torch and torchvision (${run.stderr.trim().split('\n').pop()})`;
  const lines = run.stdout.trim().split('\n');
  const out = JSON.parse(lines[lines.length - 2]);
  out.peak_rss_mb = Math.round(JSON.parse(lines[lines.length - 1]).peak_rss_kb / 1024);
  return out;
}

async function main() {
  if (values.part === 'core') return console.log(JSON.stringify(await core()));
  if (values.part === 'fit') return console.log(JSON.stringify(await fit()));
  if (values.part === 'inference') {
    // At most 3 repetitions per figure inside each of the 3 rounds that take turns with onnxruntime.
    const r = await inferenceFigures(threads, Math.min(reps, 3));
    return console.log(JSON.stringify(typeof r === 'string' ? { skipped: r } : r));
  }
  // torch-attn's core figures and bench.py's, in turns.
  const rounds = Number(values.rounds);
  const oursRounds: Record<string, number>[] = [];
  const peerRounds: Record<string, number>[] = [];
  let peerMissing: string | undefined;
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours']) {
      if (side === 'ours') {
        oursRounds.push(child('core'));
      } else if (peerMissing === undefined) {
        const one = peerOnce();
        if (typeof one === 'string') peerMissing = one;
        else peerRounds.push(one);
      }
    }
  }
  const ours: Record<string, number> = medians(oursRounds);
  const hasData = fs.existsSync(path.join(values.data!, 'data_batch_1.bin')) || fs.existsSync(path.join(values.data!, 'cifar-10-batches-bin'));
  if (hasData) Object.assign(ours, child('fit'));
  const p: Record<string, number> | string = peerMissing ?? medians(peerRounds);
  // The inference peer (onnxruntime-node) beside torch-attn's inference plans, same weights.
  const inference = child('inference');
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? +(a / b).toFixed(3) : null);
  /** One round's ratios: torch-attn against the peer, and within torch-attn. */
  const ratiosOf = (o: Record<string, number>, q: Record<string, number>) => ({
    ...Object.fromEntries(
      VARIANTS.flatMap((v) => [
        [`train${v.suffix}`, ratio(o[`train_img_per_s${v.suffix}`], q[`train_img_per_s${v.suffix}`])],
        [`eval${v.suffix}`, ratio(o[`eval_img_per_s${v.suffix}`], q[`eval_img_per_s${v.suffix}`])],
        [`eval_b1${v.suffix}`, ratio(o[`eval_b1_ms${v.suffix}`], q[`eval_b1_ms${v.suffix}`])],
      ]),
    ),
    // Training by Winograd against the peer's (exact) step of the same precision.
    train_winograd: ratio(o.train_img_per_s_winograd, q.train_img_per_s),
    train_bf16_winograd: ratio(o.train_img_per_s_bf16_winograd, q.train_img_per_s_bf16),
    // Within torch-attn: what bf16 (and channels-last) buys over fp32.
    ours_bf16_over_fp32_train: ratio(o.train_img_per_s_bf16, o.train_img_per_s),
    ours_bf16_cl_over_fp32_train: ratio(o.train_img_per_s_bf16_cl, o.train_img_per_s),
    ours_bf16_over_fp32_eval: ratio(o.eval_img_per_s_bf16, o.eval_img_per_s),
    ours_bf16_cl_over_fp32_eval: ratio(o.eval_img_per_s_bf16_cl, o.eval_img_per_s),
    // the same, fp32 and bf16 calls taking turns (above)
    ours_bf16_over_fp32_train_turns: o.train_turns_bf16_over_fp32,
    ours_bf16_over_fp32_eval_turns: o.eval_turns_bf16_over_fp32,
    augment: ratio(o.augment_img_per_s_1core, q.augment_img_per_s_1core),
    peak_rss: ratio(o.peak_rss_mb, q.peak_rss_mb),
  });
  const perRound = peerRounds.length === oursRounds.length ? oursRounds.map((o, i) => ratiosOf(o, peerRounds[i])) : [];
  const ratios_per_round = perRound.length === 0 ? null : Object.fromEntries(Object.keys(perRound[0]).map((k) => [k, perRound.map((r) => r[k as keyof typeof r])]));
  const ratios =
    ratios_per_round === null
      ? null
      : {
          ...Object.fromEntries(Object.entries(ratios_per_round).map(([k, xs]) => [k, xs.every((x) => x !== null) ? median(xs as number[]) : null])),
          fit_vs_train_step: ratio(ours.fit_epoch_img_per_s, ours.train_img_per_s),
        };
  const result = { threads, cpus: os.cpus().length, libtorch: buildInfo().libtorchVersion, torch_attn_threads: getNumThreads(), rounds, ours, peer: p, ratios, ratios_per_round, inference };
  if (values.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const r = ratios as Record<string, number | null> | null;
  const rows: [string, unknown, unknown, unknown][] = [
    ...VARIANTS.flatMap((v) => {
      const label = `${v.precision}${v.memoryFormat === 'channels-last' ? ' channels-last' : ''}`;
      return [
        [`training step ${label}, img/s`, ours[`train_img_per_s${v.suffix}`], typeof p === 'string' ? '-' : p[`train_img_per_s${v.suffix}`], r?.[`train${v.suffix}`]],
        [`eval b64 ${label}, img/s`, ours[`eval_img_per_s${v.suffix}`], typeof p === 'string' ? '-' : p[`eval_img_per_s${v.suffix}`], r?.[`eval${v.suffix}`]],
        [`eval b1 ${label}, ms`, ours[`eval_b1_ms${v.suffix}`], typeof p === 'string' ? '-' : p[`eval_b1_ms${v.suffix}`], r?.[`eval_b1${v.suffix}`]],
      ] as [string, unknown, unknown, unknown][];
    }),
    ['training step fp32 winograd, img/s', ours.train_img_per_s_winograd, typeof p === 'string' ? '-' : p.train_img_per_s, r?.train_winograd],
    ['training step bf16 winograd, img/s', ours.train_img_per_s_bf16_winograd, typeof p === 'string' ? '-' : p.train_img_per_s_bf16, r?.train_bf16_winograd],
    ['winograd / exact fp32 training, in turns', ours.train_turns_winograd_over_exact, '', ''],
    ['winograd / exact bf16 training, in turns', ours.train_turns_winograd_over_exact_bf16, '', ''],
    ['bf16 / fp32 training, in turns', ours.train_turns_bf16_over_fp32, '', ''],
    ['bf16 / fp32 eval b64, in turns', ours.eval_turns_bf16_over_fp32, '', ''],
    ['augmentation, img/s/core', ours.augment_img_per_s_1core, typeof p === 'string' ? '-' : p.augment_img_per_s_1core, r?.augment],
    ['peak RSS (same work), MB', ours.peak_rss_mb, typeof p === 'string' ? '-' : p.peak_rss_mb, r?.peak_rss],
    ['fit on CIFAR-10, img/s', ours.fit_epoch_img_per_s ?? '-', '', r?.fit_vs_train_step == null ? '' : `${r.fit_vs_train_step} of the step`],
    ['event-loop lag p99 in fit, ms', ours.loop_lag_p99_ms ?? '-', '', ''],
    ['peak RSS in fit, MB', ours.fit_peak_rss_mb ?? '-', '', ''],
  ];
  console.log(`threads ${threads}, ${os.cpus().length} CPUs, LibTorch ${result.libtorch}${typeof p === 'string' ? `; peer ${p}` : ''}`);
  console.log(['', 'torch-attn', 'peer', 'ratio'].map((h, i) => h.padEnd(i ? 14 : 32)).join(''));
  for (const r of rows) console.log(r.map((c, i) => String(c ?? '').padEnd(i ? 14 : 32)).join(''));
  if (inference.skipped) {
    console.log(`inference peer: ${inference.skipped}`);
    return;
  }
  console.log(`\ninference, ResNet18-CBAM, same weights          torch-attn    onnxruntime-node ${inference.onnxruntime}`);
  const inf: [string, unknown, unknown][] = [
    ['batch 64 fp32, plan, img/s', inference.plan_eval_img_per_s, inference.ort_eval_img_per_s],
    ['batch 64 fp32, no plan, img/s', inference.eager_eval_img_per_s, ''],
    ['batch 64 bf16, plan, img/s', inference.plan_bf16_eval_img_per_s, ''],
    ['batch 1 fp32, plan, ms', inference.plan_eval_b1_ms, inference.ort_eval_b1_ms],
    ['batch 1 fp32, no plan, ms', inference.eager_eval_b1_ms, ''],
    ['batch 1 bf16, plan, ms', inference.plan_bf16_eval_b1_ms, ''],
    ['logits vs onnxruntime, max abs', inference.plan_max_abs_diff_vs_ort, ''],
  ];
  for (const r of inf) console.log(r.map((c, i) => String(c ?? '').padEnd(i ? 14 : 48)).join(''));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
