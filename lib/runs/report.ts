// The run report: training curves (loss and top-1 per epoch, train against test, stage
// boundaries marked; loss per logged batch), the learning rate per step and group, the confusion
// matrix (counts and row-normalised) and the PR curves, drawn with Vega-Lite as SVG; pictures of
// the test images, the most confidently wrong ones and the attention maps (pictures.ts). One
// self-contained report.html (no scripts, no external resources), every figure also in
// plots/*.svg and plots/*.png. The plotting stack (vega, resvg) is loaded only here, when a report
// is written.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Evaluation } from '../training/evaluate';
import type { BatchEvent, EpochRecord } from '../training/finetune';
import type { PRCurve } from './metrics';
import { readJsonFile, readJsonObject, readRegularTextFile, writeFileAtomic } from '../files';
import { isPlainObject } from '../validate';

/** What evaluation.json holds: evaluate()'s result without the raw outputs, with PR curves. */
export type RunEvaluation = Omit<Evaluation, 'probabilities' | 'labels'> & {
  prCurves?: PRCurve[];
  /** Which weights were evaluated: the best epoch's best.pth, or the last epoch's. */
  checkpoint?: 'best.pth' | 'last';
  epoch?: number;
  /** The last epoch's figures when the evaluation is the best epoch's. */
  last?: { epoch: number; top1: number; top5: number; loss: number; macroF1: number };
};

/** What run.json holds: when and where the run ran. */
export interface RunInfo {
  started: string;
  finished?: string;
  /** Wall-clock seconds from start to the report, this invocation (a resumed run: since resuming). */
  seconds?: number;
  host: { cpu: string; cores: number; memoryGiB: number; platform: string; node: string };
  device: string;
  torchAttn: string;
  libtorch: string;
  /** Data-parallel runs: the number of ranks (host is rank 0's machine). */
  ranks?: number;
}

/** The machine a run is on, for run.json. */
export function hostInfo(): RunInfo['host'] {
  return { cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}`, node: process.version };
}

export type BatchRecord = BatchEvent & { stage: string };

export async function svg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

const WIDTH = 470;
const HEIGHT = 240;
export const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** Epoch boundaries where a new stage starts (x = last epoch of the previous stage + 0.5). */
function stageRules(records: EpochRecord[]) {
  const rules: { x: number; stage: string }[] = [];
  records.forEach((r, i) => {
    if (i > 0 && r.stage !== records[i - 1].stage) rules.push({ x: r.epoch - 0.5, stage: r.stage });
  });
  return rules;
}

function stageLayers(records: EpochRecord[]) {
  const rules = stageRules(records);
  return [
    { data: { values: rules }, mark: { type: 'rule', strokeDash: [4, 4], color: '#888' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
    { data: { values: rules }, mark: { type: 'text', align: 'left', dx: 3, y: 8, color: '#555' }, encoding: { x: { field: 'x', type: 'quantitative' }, text: { field: 'stage' } } },
  ];
}

function curve(records: EpochRecord[], title: string, series: [string, (r: EpochRecord) => number | undefined][], y: { title: string; percent?: boolean }): TopLevelSpec {
  const values = records.flatMap((r) => series.map(([name, get]) => ({ epoch: r.epoch, value: get(r), series: name, stage: r.stage })).filter((v) => v.value !== undefined));
  return {
    $schema: SCHEMA,
    title,
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: records.length <= 60 },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { format: 'd', tickMinStep: 1 } },
          // Not forced through 0: the interesting range of a loss or an accuracy is narrow.
          y: { field: 'value', type: 'quantitative', title: y.title, scale: { zero: false }, axis: y.percent ? { format: '.0%' } : {} },
          color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 300, orient: 'bottom' } },
        },
      },
      ...stageLayers(records),
    ],
  } as TopLevelSpec;
}

/** Fractional epoch of a batch record: epoch 3, batch 50 of 100 -> 2.5. */
const stepX = (b: BatchRecord) => b.epoch - 1 + b.batch / b.batches;

/** The learning rate per logged step, one small panel per group, on a log scale (frozen steps,
 *  rate 0, leave gaps). From the batch records when they carry rates, else per epoch. */
function learningRates(records: EpochRecord[], batches: BatchRecord[]): TopLevelSpec {
  const fromBatches = batches.some((b) => b.lr !== undefined);
  const values = fromBatches
    ? batches.flatMap((b) => Object.entries(b.lr ?? {}).map(([group, lr]) => ({ x: stepX(b), lr: lr > 0 ? lr : null, group })))
    : records.flatMap((r) => Object.entries(r.lr).map(([group, lr]) => ({ x: r.epoch, lr: lr > 0 ? lr : null, group })));
  const groups = [...new Set(values.map((v) => v.group))];
  return {
    $schema: SCHEMA,
    title: `Learning rate per ${fromBatches ? 'logged step' : 'epoch'} and group (gaps: frozen)`,
    data: { values },
    facet: { row: { field: 'group', type: 'nominal', title: null, sort: groups, header: { labelAngle: 0, labelAlign: 'left' } } },
    spec: {
      width: WIDTH - 60,
      height: Math.max(36, Math.min(80, 220 / groups.length)),
      mark: { type: 'line', interpolate: 'step-before', point: { size: 12 } },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: 'epoch' },
        y: { field: 'lr', type: 'quantitative', title: null, scale: { type: 'log' }, axis: { format: '.0e', tickCount: 3, grid: false } },
        color: { field: 'group', type: 'nominal', legend: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

function batchLoss(batches: BatchRecord[]): TopLevelSpec {
  const values = batches.map((b) => ({ x: stepX(b), loss: b.loss, mean: b.meanLoss }));
  return {
    $schema: SCHEMA,
    title: 'Training loss per logged batch (line: the epoch\'s running mean)',
    data: { values },
    width: WIDTH,
    height: HEIGHT,
    layer: [
      { mark: { type: 'point', size: 8, opacity: 0.5, color: '#4c78a8' }, encoding: { x: { field: 'x', type: 'quantitative', title: 'epoch' }, y: { field: 'loss', type: 'quantitative', title: 'cross-entropy', scale: { zero: false } } } },
      { mark: { type: 'line', color: '#e45756' }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'mean', type: 'quantitative' } } },
    ],
  } as TopLevelSpec;
}

function confusion(evaluation: RunEvaluation): TopLevelSpec {
  const { classes } = evaluation;
  const cells = evaluation.confusion.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({ truth: classes[t], predicted: classes[p], count, share: total > 0 ? count / total : 0 }));
  });
  const maxCount = Math.max(1, ...cells.map((c) => c.count));
  const side = Math.min(26 * classes.length, 460);
  const labels = classes.length <= 20;
  const panel = (field: 'count' | 'share', title: string, max: number) => ({
    title,
    width: side,
    height: side,
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: classes, title: 'predicted', axis: { labels } },
      y: { field: 'truth', type: 'nominal', sort: classes, title: 'true', axis: { labels } },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field, type: 'quantitative', scale: { scheme: 'blues', domain: [0, max] }, legend: field === 'share' ? { format: '.0%' } : { format: 'd', tickMinStep: 1 } } } },
      ...(labels
        ? [{
            transform: [{ filter: 'datum.count > 0' }],
            mark: { type: 'text', fontSize: 9 },
            encoding: {
              text: { field, type: 'quantitative', format: field === 'share' ? '.0%' : 'd' },
              // Light text on dark cells, dark on light ones.
              color: { condition: { test: `datum.${field} > ${max / 2}`, value: 'white' }, value: '#222' },
            },
          }]
        : []),
    ],
  });
  return {
    $schema: SCHEMA,
    title: 'Confusion matrix (rows: true class)',
    data: { values: cells },
    hconcat: [panel('count', 'images', maxCount), panel('share', 'share of the true class', 1)],
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

/** PR curves as small multiples (every class up to 20; else the 10 best and 10 worst by AP). */
function prCurvesSpec(curves: PRCurve[]): TopLevelSpec {
  const sorted = [...curves].sort((a, b) => b.averagePrecision - a.averagePrecision);
  const shown = curves.length <= 20 ? curves : [...sorted.slice(0, 10), ...sorted.slice(-10)];
  const values = shown.flatMap((c) => {
    const label = `${c.class} (AP ${c.averagePrecision.toFixed(2)})`;
    return [{ class: label, recall: 0, precision: 1, i: -1 }, ...c.recall.map((r, i) => ({ class: label, recall: r, precision: c.precision[i], i }))];
  });
  return {
    $schema: SCHEMA,
    title: `Precision-recall per class, one against the rest${shown.length < curves.length ? ' (the 10 best and 10 worst by AP)' : ''}`,
    data: { values },
    facet: { field: 'class', type: 'nominal', title: null, sort: shown.map((c) => `${c.class} (AP ${c.averagePrecision.toFixed(2)})`), header: { labelLimit: 150 } },
    columns: 5,
    spec: {
      width: 150,
      height: 110,
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'recall', type: 'quantitative', scale: { domain: [0, 1] }, axis: { tickCount: 3 } },
        y: { field: 'precision', type: 'quantitative', scale: { domain: [0, 1] }, axis: { tickCount: 3 } },
        order: { field: 'i', type: 'quantitative' },
      },
    },
  } as TopLevelSpec;
}

export async function plots(records: EpochRecord[], evaluation: RunEvaluation | null, batches: BatchRecord[] = []): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (records.length > 0) {
    out.loss = await svg(curve(records, 'Loss per epoch', [['train', (r) => r.trainLoss], ['test', (r) => r.testLoss]], { title: 'cross-entropy' }));
    out.top1 = await svg(curve(records, 'Accuracy per epoch', [['train top-1', (r) => r.trainAcc], ['test top-1', (r) => r.testTop1], ['test top-5', (r) => r.testTop5]], { title: 'accuracy', percent: true }));
    out.lr = await svg(learningRates(records, batches));
  }
  if (batches.length > 1) out.batches = await svg(batchLoss(batches));
  if (evaluation) {
    out.confusion = await svg(confusion(evaluation));
    if (evaluation.prCurves) out.pr = await svg(prCurvesSpec(evaluation.prCurves));
  }
  return out;
}

/** PNG copies of SVG figures (for papers and slides), rendered by resvg with the system's fonts. */
export async function pngCopies(figures: Record<string, string>): Promise<Record<string, Buffer>> {
  const { Resvg } = await import('@resvg/resvg-js');
  const out: Record<string, Buffer> = {};
  for (const [name, content] of Object.entries(figures)) {
    out[name] = new Resvg(content, { background: 'white', fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  }
  return out;
}

export const escapeHtml = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (v: number | undefined) => (v === undefined ? '' : `${(100 * v).toFixed(2)}%`);

/** The pictures pictures.ts writes into plots/ (read back, not redrawn, by the report). */
export const PICTURES = ['samples', 'wrong', 'attention'] as const;

/** A run directory's records: config.json, run.json, epoch and batch lines of metrics.jsonl, evaluation.json. */
export function readRun(runDir: string) {
  const json = (f: string) => (fs.existsSync(path.join(runDir, f)) ? readJsonFile(path.join(runDir, f)) : null);
  const configFile = path.join(runDir, 'config.json');
  const config = fs.existsSync(configFile) ? readJsonObject(configFile, RUN_CONFIG) : {};
  const lines = metricLines(path.join(runDir, 'metrics.jsonl'));
  const records: EpochRecord[] = lines.filter((e) => e.type === 'epoch').map(({ type: _t, ...r }) => r as unknown as EpochRecord);
  const batches: BatchRecord[] = lines.filter((e) => e.type === 'batch').map(({ type: _t, ...r }) => r as unknown as BatchRecord);
  return {
    config: config as Record<string, any>,
    info: json('run.json') as RunInfo | null,
    records,
    batches,
    evaluation: json('evaluation.json') as RunEvaluation | null,
  };
}

/** What a run directory's config.json is, in errors. */
export const RUN_CONFIG = 'a torch-attn run config';

/** The largest metrics.jsonl read (a run's writes a line every logEvery batches and per epoch). */
export const METRICS_MAX_BYTES = 256 << 20;

/** The records of a metrics.jsonl (none when there is none). A last line without its newline is a
 *  write that was cut short (the run was killed, the disk filled): left out. Any other line that is
 *  not a JSON object is an error naming the file and line. */
function metricLines(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  const text = readRegularTextFile(file, METRICS_MAX_BYTES);
  const lines = text.split('\n');
  const out: Record<string, unknown>[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (i === lines.length - 1) break;  // no newline after it: cut short
      throw new Error(`${file}, line ${i + 1}, is not a JSON record (${(err as Error).message})`);
    }
    if (!isPlainObject(value)) throw new Error(`${file}, line ${i + 1}, is not a JSON object`);
    out.push(value);
  }
  return out;
}

export function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`;
}

/** Reads a run directory and writes report.html, plots/*.svg and plots/*.png into it; returns the report's path. */
export async function writeReport(runDir: string): Promise<string> {
  const { config, info, records, batches, evaluation } = readRun(runDir);
  const figures = await plots(records, evaluation, batches);
  const plotDir = path.join(runDir, 'plots');
  fs.mkdirSync(plotDir, { recursive: true });
  for (const [name, content] of Object.entries(figures)) fs.writeFileSync(path.join(plotDir, `${name}.svg`), content);
  for (const name of PICTURES) {
    const file = path.join(plotDir, `${name}.svg`);
    if (fs.existsSync(file)) figures[name] = fs.readFileSync(file, 'utf8');
  }
  for (const [name, png] of Object.entries(await pngCopies(figures))) fs.writeFileSync(path.join(plotDir, `${name}.png`), png);

  const epochRows = records
    .map((r) => `<tr><td>${r.epoch}</td><td>${escapeHtml(r.stage)}</td><td>${r.trainLoss.toFixed(4)}</td><td>${pct(r.trainAcc)}</td><td>${r.testLoss?.toFixed(4) ?? ''}</td><td>${pct(r.testTop1)}</td><td>${pct(r.testTop5)}</td><td>${r.imagesPerSecond.toFixed(1)}</td><td>${r.seconds.toFixed(1)}</td></tr>`)
    .join('\n');
  const classRows = (evaluation?.perClass ?? [])
    .map((m, i) => `<tr><td>${escapeHtml(m.class)}</td><td>${m.precision.toFixed(3)}</td><td>${m.recall.toFixed(3)}</td><td>${m.f1.toFixed(3)}</td><td>${m.support}</td><td>${evaluation?.prCurves?.[i]?.averagePrecision.toFixed(3) ?? ''}</td><td>${evaluation?.prCurves?.[i]?.rocAuc?.toFixed(3) ?? ''}</td></tr>`)
    .join('\n');
  const figure = (name: string, caption = '', wide = false) => (figures[name] ? `<figure${wide ? ' class="wide"' : ''}>${figures[name]}${caption ? `<figcaption>${caption}</figcaption>` : ''}</figure>` : '');
  const trainSeconds = records.reduce((n, r) => n + r.seconds, 0);
  const when = info
    ? `<p class="meta">started ${escapeHtml(info.started)}${info.finished ? `, finished ${escapeHtml(info.finished)}` : ''}${info.seconds !== undefined ? ` (${duration(info.seconds)} in all` : ' ('}${records.length ? `, ${duration(trainSeconds)} training` : ''}) &middot; ${escapeHtml(info.host.cpu)}, ${info.host.cores} cores, ${info.host.memoryGiB} GiB, ${escapeHtml(info.device)}${info.ranks ? ` &times; ${info.ranks} data-parallel ranks` : ''} &middot; torch-attn ${escapeHtml(info.torchAttn)}, LibTorch ${escapeHtml(info.libtorch)}, Node ${escapeHtml(info.host.node)}</p>`
    : '';
  const pictures = PICTURES.some((p) => figures[p]);
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(config.name ?? 'torch-attn run')}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1220px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1em 1.5em; align-items: start; }
figure { margin: 0; overflow-x: auto; } figure.wide { grid-column: 1 / -1; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
</style>
</head>
<body>
<h1>${escapeHtml(config.name ?? 'torch-attn run')}</h1>
${when}
<p>${escapeHtml(config.model?.description ?? '')} ${evaluation ? `&middot; final evaluation${evaluation.checkpoint === 'best.pth' ? ` (best epoch ${evaluation.epoch}, best.pth)` : ''}: test top-1 <b>${pct(evaluation.top1)}</b>, top-5 ${pct(evaluation.top5)}, macro-F1 ${evaluation.macroF1.toFixed(3)} on ${evaluation.count} images${evaluation.last ? `; last epoch ${evaluation.last.epoch}: top-1 ${pct(evaluation.last.top1)}, top-5 ${pct(evaluation.last.top5)}` : ''}` : ''}</p>
<h2>Training</h2>
<div class="grid">${figure('loss')}${figure('top1')}${figure('batches')}${figure('lr')}</div>
<table><tr><th>epoch</th><th>stage</th><th>train loss</th><th>train acc</th><th>test loss</th><th>test top-1</th><th>test top-5</th><th>img/s</th><th>seconds</th></tr>
${epochRows}
</table>
${evaluation ? `<h2>Evaluation</h2>
<div class="grid">${figure('confusion', '', true)}${figure('pr', '', true)}</div>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>AP (PR AUC)</th><th>ROC-AUC</th></tr>
${classRows}
</table>` : ''}
${pictures ? `<h2>What the model sees</h2>
<div class="grid">${figure('attention', 'Each stage&rsquo;s spatial attention (CBAM&rsquo;s spatial map; for NAM in blocks, the stage&rsquo;s last gate averaged over channels), scaled min&ndash;max per map, upsampled and laid over the test image (yellow: most attended).', true)}${figure('samples', 'The first test images: true class, then the prediction (red: wrong).', true)}${figure('wrong', 'The most confidently wrong test images.', true)}</div>` : ''}
<h2>Configuration</h2>
<pre>${escapeHtml(JSON.stringify(config, null, 2))}</pre>
<p>Written by torch-attn. Every figure is also in <code>plots/</code> as SVG and PNG.</p>
</body>
</html>
`;
  const file = path.join(runDir, 'report.html');
  writeFileAtomic(file, html);
  return file;
}
