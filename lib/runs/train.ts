// A training run from a RunConfig: data, model (and backbone weights), the staged fine-tune, the
// run directory (config.json, metrics.jsonl, last.pth / best.pth, evaluation.json, report.html,
// plots/) — what `torch-attn train`, `npm start` and the experiment scripts do.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildInfo } from '../runtime';
import { StagedFineTuner, type BatchEvent, type EpochRecord, type FitResult } from '../training/finetune';
import { evaluate } from '../training/evaluate';
import { manualSeed } from '../runtime';
import { type RunConfig, buildModel, loadData } from './config';
import { prCurves } from './metrics';
import { type RunEvaluation, writeReport } from './report';

export interface RunHooks {
  signal?: AbortSignal;
  /** Lines worth printing (what the run does, stage changes, per-epoch results). */
  log?: (line: string) => void;
  /** `images`: training images of the epoch so far (batches x batch size). */
  onBatch?: (event: BatchEvent & { stage: string; images: number }) => void;
  onEpoch?: (record: EpochRecord) => void;
  /** Continue from a checkpoint (the run's own last.pth). */
  resume?: string;
}

export interface RunResult {
  dir: string;
  fit: FitResult;
  evaluation: RunEvaluation | null;
  report: string;
}

export async function runTraining(config: RunConfig, hooks: RunHooks = {}): Promise<RunResult> {
  const log = hooks.log ?? (() => {});
  manualSeed(config.seed);
  const { train, test } = await loadData(config);
  const model = buildModel(config, train.classes.length).to({ memoryFormat: config.memoryFormat });
  log(`${config.name}: ${model.description}, ${model.parameterCount().toLocaleString('en-US')} parameters`);
  log(`data: ${config.data.dataset} ${config.data.path}: ${train.length} training images${test ? `, ${test.length} test images` : ''}, ${train.classes.length} classes`);
  if (config.model.weights) {
    const report = await model.loadBackbone(config.model.weights);
    log(`backbone weights ${config.model.weights}: ${report.loaded.length} tensors loaded, ${report.skipped.length} skipped, ${report.missing.length} not in the file`);
  }
  const dir = path.resolve(config.out);
  fs.mkdirSync(dir, { recursive: true });
  const tuner = new StagedFineTuner(model, {
    optimizer: config.optimizer,
    stages: config.stages,
    scheduler: config.scheduler,
    loss: config.loss,
    namSparsity: config.namSparsity,
    gradClip: config.gradClip,
    precision: config.precision,
    logEvery: config.logEvery,
    checkpointDir: dir,
  });
  const info = buildInfo();
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    `${JSON.stringify({ ...config, classes: train.classes, model: { ...config.model, description: model.description, spec: model.spec }, torchAttn: info.version, libtorch: info.libtorchVersion }, null, 2)}\n`,
  );
  log(`stages: ${config.stages.map((s) => `${s.name} (${s.epochs} epoch${s.epochs === 1 ? '' : 's'})`).join(' -> ')}; batch ${config.batchSize}, ${config.precision}${config.memoryFormat === 'channels-last' ? ', channels-last' : ''}, ${config.workers} loader threads, seed ${config.seed}`);
  log(`run directory: ${dir}`);
  const metrics = fs.openSync(path.join(dir, 'metrics.jsonl'), hooks.resume ? 'a' : 'w');
  let stage = '';
  let fit: FitResult;
  try {
    fit = await tuner.fit(train, test, {
      batchSize: config.batchSize,
      workers: config.workers,
      seed: config.seed,
      signal: hooks.signal,
      resume: hooks.resume,
      onStage: (s) => {
        stage = s.name;
        log(`stage ${s.index + 1}/${config.stages.length} '${s.name}': training ${Object.entries(s.groups).filter(([, v]) => v === 'trainable').map(([k]) => k).join(', ')}`);
      },
      onBatch: (b) => {
        fs.writeSync(metrics, `${JSON.stringify({ type: 'batch', stage, ...b })}\n`);
        hooks.onBatch?.({ ...b, stage, images: config.batchSize * b.batch });
      },
      onEpoch: (r) => {
        fs.writeSync(metrics, `${JSON.stringify({ type: 'epoch', ...r })}\n`);
        hooks.onEpoch?.(r);
      },
    });
  } finally {
    fs.closeSync(metrics);
  }
  let evaluation: RunEvaluation | null = null;
  if (test) {
    const ev = await evaluate(model, test, { batchSize: config.batchSize, workers: config.workers, probabilities: true, precision: config.precision });
    const { probabilities, labels, ...rest } = ev;
    evaluation = { ...rest, prCurves: prCurves(probabilities!, labels!, ev.classes) };
    fs.writeFileSync(path.join(dir, 'evaluation.json'), `${JSON.stringify(evaluation)}\n`);
  }
  const report = await writeReport(dir);
  return { dir, fit, evaluation, report };
}

/** The lines that close a run: best epoch, final evaluation, the report. */
export function formatResult(result: RunResult): string[] {
  const { best } = result.fit;
  const ev = result.evaluation;
  return [
    `best epoch ${best?.epoch ?? '-'} (${ev ? 'test top-1' : 'train accuracy'} ${(100 * (best?.metric ?? 0)).toFixed(2)}%)`,
    ...(ev ? [`final test top-1 ${(100 * ev.top1).toFixed(2)}%, top-5 ${(100 * ev.top5).toFixed(2)}%, macro-F1 ${ev.macroF1.toFixed(4)}`] : []),
    `report: ${result.report}`,
  ];
}

/** One line for an epoch record. */
export function formatEpoch(r: EpochRecord): string {
  const test = r.testTop1 === undefined ? '' : ` | test loss ${r.testLoss!.toFixed(4)} top-1 ${(100 * r.testTop1).toFixed(2)}% top-5 ${(100 * r.testTop5!).toFixed(2)}%`;
  return `epoch ${String(r.epoch).padStart(3)} [${r.stage}] train loss ${r.trainLoss.toFixed(4)} acc ${(100 * r.trainAcc).toFixed(2)}%${test} | ${r.imagesPerSecond.toFixed(1)} img/s, ${r.seconds.toFixed(1)} s`;
}
