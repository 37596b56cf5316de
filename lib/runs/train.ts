// A training run from a RunConfig: data, model (and backbone weights), the staged fine-tune, the
// run directory (config.json, metrics.jsonl, last.pth / best.pth, evaluation.json, report.html,
// plots/) — what `torch-attn train`, `npm start` and the experiment scripts do.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRegularTextFile, removeStaleTemporaries, writeFileAtomic } from '../files';
import { buildInfo, libtorchRelease } from '../runtime';
import { StagedFineTuner, type BatchEvent, type EpochRecord, type FitResult } from '../training/finetune';
import { evaluate } from '../training/evaluate';
import { manualSeed } from '../runtime';
import type { ProcessGroup } from '../distributed';
import { type RunConfig, buildModel, loadData, transformsFor } from './config';
import { prCurves } from './metrics';
import { pictures } from './pictures';
import { METRICS_MAX_BYTES, type RunEvaluation, type RunInfo, hostInfo, writeReport } from './report';

export interface RunHooks {
  signal?: AbortSignal;
  /** Lines worth printing (what the run does, stage changes, per-epoch results). */
  log?: (line: string) => void;
  /** Every batch (for a progress bar). `images`: training images of the epoch so far. */
  onBatch?: (event: BatchEvent & { stage: string; images: number }) => void;
  /** Log a plain line every config.logEvery batches, as the seed documents print them
   *  (`Epoch 1/50 | Batch 100/782 | loss 1.8068 | mean 1.9504`); for logs and pipes. */
  batchLines?: boolean;
  onEpoch?: (record: EpochRecord) => void;
  /** The final evaluation's progress (images done, total). */
  onEvalProgress?: (images: number, total: number) => void;
  /** Continue from a checkpoint (the run's own last.pth). */
  resume?: string;
  /** Data-parallel: this process is one rank (fit shards the data and averages gradients); rank 0
   *  alone writes the run directory (records, checkpoints, the final evaluation, the report). */
  distributed?: ProcessGroup;
}

export interface RunResult {
  dir: string;
  fit: FitResult;
  evaluation: RunEvaluation | null;
  report: string;
}

export async function runTraining(config: RunConfig, hooks: RunHooks = {}): Promise<RunResult> {
  const writer = (hooks.distributed?.rank ?? 0) === 0;
  const log = (writer && hooks.log) || (() => {});
  const started = new Date();
  manualSeed(config.seed);
  const { train, test } = await loadData(config);
  const model = buildModel(config, train.classes.length).to({ device: config.device as never, memoryFormat: config.memoryFormat });
  log(`${config.name}: ${model.description}, ${model.parameterCount().toLocaleString('en-US')} parameters`);
  log(`data: ${config.data.dataset} ${config.data.path}: ${train.length.toLocaleString('en-US')} training images${test ? `, ${test.length.toLocaleString('en-US')} test images` : ''}, ${train.classes.length} classes`);
  if (!test) log(`warning: no test split for ${config.data.path} (looked for train/ + val/ or test/ in it, and a sibling val/; data.testPath names one): best.pth is chosen by training accuracy and no final evaluation is made`);
  if (config.model.weights) {
    const report = await model.loadBackbone(config.model.weights);
    log(`backbone weights ${config.model.weights}: ${report.loaded.length} tensors loaded, ${report.skipped.length} skipped, ${report.missing.length} not in the file`);
  }
  const dir = path.resolve(config.out);
  if (writer) {
    fs.mkdirSync(dir, { recursive: true });
    removeStaleTemporaries(dir); // a killed run's half-written run.json, config.json or evaluation.json
  }
  const tuner = new StagedFineTuner(model, {
    optimizer: config.optimizer,
    stages: config.stages,
    scheduler: config.scheduler,
    loss: config.loss,
    namSparsity: config.namSparsity,
    gradClip: config.gradClip,
    batchNorm: config.batchNorm,
    precision: config.precision,
    winograd: config.winograd,
    // Every batch reaches a progress bar; metrics.jsonl and the batch lines take every logEvery-th.
    logEvery: hooks.onBatch ? 1 : config.logEvery,
    checkpointDir: dir,  // written by rank 0 only
  });
  const info = buildInfo();
  const runInfo: RunInfo = { started: started.toISOString(), host: hostInfo(), device: model.device, torchAttn: info.version, libtorch: libtorchRelease().version };
  if (hooks.distributed) runInfo.ranks = hooks.distributed.worldSize;
  const writeRunInfo = () => writeFileAtomic(path.join(dir, 'run.json'), `${JSON.stringify(runInfo, null, 2)}\n`);
  if (writer) {
    writeRunInfo();
    writeFileAtomic(
      path.join(dir, 'config.json'),
      `${JSON.stringify({ ...config, classes: train.classes, model: { ...config.model, description: model.description, spec: model.spec }, torchAttn: info.version, libtorch: libtorchRelease().version }, null, 2)}\n`,
    );
  }
  if (hooks.distributed) log(`data-parallel: rank ${hooks.distributed.rank} of ${hooks.distributed.worldSize} (${hooks.distributed.backend}); batch ${config.batchSize} per rank, ${config.batchSize * hooks.distributed.worldSize} in all${config.syncBatchNorm ? '; BatchNorm statistics over all ranks' : ''}`);
  log(`stages: ${config.stages.map((s) => `${s.name} (${s.epochs} epoch${s.epochs === 1 ? '' : 's'})`).join(' -> ')}; batch ${config.batchSize}, ${config.precision}${config.memoryFormat === 'channels-last' ? ', channels-last' : ''}${config.winograd ? ', 3 x 3 convolutions by Winograd' : ''}, ${config.workers} loader thread${config.workers === 1 ? '' : 's'}, seed ${config.seed}`);
  log(`run directory: ${dir}`);
  const totalEpochs = config.stages.reduce((n, st) => n + st.epochs, 0);
  const metricsFile = path.join(dir, 'metrics.jsonl');
  if (writer && hooks.resume) endLastLine(metricsFile);
  const metrics = writer ? fs.openSync(metricsFile, hooks.resume ? 'a' : 'w') : undefined;
  const record = (line: object) => metrics !== undefined && fs.writeSync(metrics, `${JSON.stringify(line)}\n`);
  let stage = '';
  let fit: FitResult;
  try {
    fit = await tuner.fit(train, test, {
      batchSize: config.batchSize,
      workers: config.workers,
      seed: config.seed,
      signal: hooks.signal,
      resume: hooks.resume,
      distributed: hooks.distributed,
      syncBatchNorm: hooks.distributed ? config.syncBatchNorm : undefined,
      onWarning: (message) => log(`warning: ${message}`),
      onStage: (s) => {
        stage = s.name;
        log(`stage ${s.index + 1}/${config.stages.length} '${s.name}': training ${Object.entries(s.groups).filter(([, v]) => v === 'trainable').map(([k]) => k).join(', ')}`);
      },
      onBatch: (b) => {
        if (config.logEvery > 0 && (b.batch % config.logEvery === 0 || b.batch === b.batches)) {
          record({ type: 'batch', stage, ...b });
          if (hooks.batchLines && b.batch % config.logEvery === 0) log(formatBatch(b, totalEpochs));
        }
        hooks.onBatch?.({ ...b, stage, images: config.batchSize * b.batch });
      },
      onEpoch: (r) => {
        record({ type: 'epoch', ...r });
        hooks.onEpoch?.(r);
      },
    });
  } finally {
    if (metrics !== undefined) fs.closeSync(metrics);
  }
  // The other ranks are done: the final evaluation and the report are rank 0's.
  if (!writer) return { dir, fit, evaluation: null, report: '' };
  let evaluation: RunEvaluation | null = null;
  if (test) {
    const run = async () => {
      const ev = await evaluate(model, test, { batchSize: config.batchSize, workers: config.workers, probabilities: true, precision: config.precision, onProgress: hooks.onEvalProgress });
      const { probabilities, labels, ...rest } = ev;
      return { evaluation: { ...rest, prCurves: prCurves(probabilities!, labels!, ev.classes) }, probabilities: probabilities!, labels: labels! };
    };
    const lastEpoch = fit.epochs.at(-1)?.epoch ?? 0;
    let final = await run();
    const last = final.evaluation;
    // The final evaluation is the best epoch's (best.pth), as the seed documents report it; the
    // last epoch's figures stand beside it.
    const best = fit.best;
    if (best?.checkpoint && best.epoch !== lastEpoch && fs.existsSync(best.checkpoint)) {
      await model.loadStateDict(best.checkpoint, { strict: true });
      final = await run();
      evaluation = { ...final.evaluation, checkpoint: 'best.pth', epoch: best.epoch, last: { epoch: lastEpoch, top1: last.top1, top5: last.top5, loss: last.loss, macroF1: last.macroF1 } };
    } else {
      evaluation = { ...last, checkpoint: fit.best?.checkpoint ? 'best.pth' : 'last', epoch: lastEpoch };
    }
    writeFileAtomic(path.join(dir, 'evaluation.json'), `${JSON.stringify(evaluation)}\n`);
    // Pictures of the evaluated weights: test images, the most confidently wrong, attention maps.
    const display = test.withTransform(transformsFor(config).test.slice(0, -1));
    const figures = await pictures({ model, test, display, classes: evaluation.classes, probabilities: final.probabilities, labels: final.labels });
    fs.mkdirSync(path.join(dir, 'plots'), { recursive: true });
    for (const [name, content] of Object.entries(figures)) fs.writeFileSync(path.join(dir, 'plots', `${name}.svg`), content);
  }
  runInfo.finished = new Date().toISOString();
  runInfo.seconds = (Date.now() - started.getTime()) / 1000;
  writeRunInfo();
  const report = await writeReport(dir);
  return { dir, fit, evaluation, report };
}

/** The lines that close a run: best epoch, final evaluation, the report. */
export function formatResult(result: RunResult): string[] {
  const { best } = result.fit;
  const ev = result.evaluation;
  return [
    `best epoch ${best?.epoch ?? '-'} (${ev ? 'test top-1' : 'train accuracy'} ${(100 * (best?.metric ?? 0)).toFixed(2)}%)`,
    ...(ev
      ? [
          `final evaluation (${ev.checkpoint === 'best.pth' ? `best epoch ${ev.epoch}, best.pth` : `epoch ${ev.epoch}`}): test top-1 ${(100 * ev.top1).toFixed(2)}%, top-5 ${(100 * ev.top5).toFixed(2)}%, macro-F1 ${ev.macroF1.toFixed(4)}`,
          ...(ev.last ? [`last epoch ${ev.last.epoch}: test top-1 ${(100 * ev.last.top1).toFixed(2)}%, top-5 ${(100 * ev.last.top5).toFixed(2)}%`] : []),
        ]
      : []),
    `report: ${result.report}`,
  ];
}

/** The seed documents' batch line: `Epoch 1/50 | Batch 100/782 | loss 1.8068 | mean 1.9504`. */
export function formatBatch(b: BatchEvent, totalEpochs: number): string {
  return `Epoch ${b.epoch}/${totalEpochs} | Batch ${b.batch}/${b.batches} | loss ${b.loss.toFixed(4)} | mean ${b.meanLoss.toFixed(4)}`;
}

/** One line for an epoch record. */
export function formatEpoch(r: EpochRecord): string {
  const test = r.testTop1 === undefined ? '' : ` | test loss ${r.testLoss!.toFixed(4)} top-1 ${(100 * r.testTop1).toFixed(2)}% top-5 ${(100 * r.testTop5!).toFixed(2)}%`;
  return `epoch ${String(r.epoch).padStart(3)} [${r.stage}] train loss ${r.trainLoss.toFixed(4)} acc ${(100 * r.trainAcc).toFixed(2)}%${test} | ${r.imagesPerSecond.toFixed(1)} img/s, ${r.seconds.toFixed(1)} s`;
}

/** A resumed run appends to metrics.jsonl: a last line the killed run left without its newline is
 *  ended (a whole record) or removed (cut short) first, so that the new records do not run on
 *  from it. */
function endLastLine(file: string): void {
  if (!fs.existsSync(file)) return;
  const text = readRegularTextFile(file, METRICS_MAX_BYTES);
  if (text === '' || text.endsWith('\n')) return;
  const start = text.lastIndexOf('\n') + 1;
  try {
    JSON.parse(text.slice(start));
    fs.appendFileSync(file, '\n');
  } catch {
    fs.truncateSync(file, Buffer.byteLength(text.slice(0, start)));
  }
}
