// The run report: training curves (loss and top-1 per epoch, train against test, stage
// boundaries marked), learning rate per group, the confusion matrix as a heat map and the PR
// curves, drawn with Vega-Lite as SVG, inlined into one self-contained report.html (no scripts,
// no external resources) and also written to plots/*.svg.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Evaluation } from '../training/evaluate';
import type { EpochRecord } from '../training/finetune';
import type { PRCurve } from './metrics';

/** What evaluation.json holds: evaluate()'s result without the raw outputs, with PR curves. */
export type RunEvaluation = Omit<Evaluation, 'probabilities' | 'labels'> & {
  prCurves?: PRCurve[];
  /** Which weights were evaluated: the best epoch's best.pth, or the last epoch's. */
  checkpoint?: 'best.pth' | 'last';
  epoch?: number;
  /** The last epoch's figures when the evaluation is the best epoch's. */
  last?: { epoch: number; top1: number; top5: number; loss: number; macroF1: number };
};

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

const WIDTH = 520;
const HEIGHT = 260;

/** Epoch boundaries where a new stage starts (x = last epoch of the previous stage + 0.5). */
function stageRules(records: EpochRecord[]) {
  const rules: { x: number; stage: string }[] = [];
  records.forEach((r, i) => {
    if (i > 0 && r.stage !== records[i - 1].stage) rules.push({ x: r.epoch - 0.5, stage: r.stage });
  });
  return rules;
}

function curve(records: EpochRecord[], title: string, series: [string, (r: EpochRecord) => number | undefined][], yTitle: string): TopLevelSpec {
  const values = records.flatMap((r) => series.map(([name, get]) => ({ epoch: r.epoch, value: get(r), series: name, stage: r.stage })).filter((v) => v.value !== undefined));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { values: records.map((r) => r.epoch), format: 'd' } },
          y: { field: 'value', type: 'quantitative', title: yTitle },
          color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 300 } },
        },
      },
      {
        data: { values: stageRules(records) },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#888' },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
      {
        data: { values: stageRules(records) },
        mark: { type: 'text', align: 'left', dx: 3, dy: -HEIGHT / 2 + 8, color: '#555' },
        encoding: { x: { field: 'x', type: 'quantitative' }, text: { field: 'stage' } },
      },
    ],
  } as TopLevelSpec;
}

export async function plots(records: EpochRecord[], evaluation: RunEvaluation | null): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (records.length > 0) {
    out.loss = await svg(curve(records, 'Loss per epoch', [['train', (r) => r.trainLoss], ['test', (r) => r.testLoss]], 'cross-entropy'));
    out.top1 = await svg(curve(records, 'Accuracy per epoch', [['train top-1', (r) => r.trainAcc], ['test top-1', (r) => r.testTop1], ['test top-5', (r) => r.testTop5]], 'accuracy'));
    const groups = Object.keys(records[0].lr);
    out.lr = await svg(curve(records, 'Learning rate per group (0: frozen)', groups.map((g) => [g, (r: EpochRecord) => r.lr[g]] as [string, (r: EpochRecord) => number]), 'learning rate'));
  }
  if (evaluation) {
    const cells = evaluation.confusion.flatMap((row, t) => row.map((count, p) => ({ truth: evaluation.classes[t], predicted: evaluation.classes[p], count })));
    out.confusion = await svg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Confusion matrix (rows: true class)',
      data: { values: cells },
      width: Math.min(40 * evaluation.classes.length, 640),
      height: Math.min(40 * evaluation.classes.length, 640),
      encoding: {
        x: { field: 'predicted', type: 'nominal', sort: evaluation.classes, title: 'predicted' },
        y: { field: 'truth', type: 'nominal', sort: evaluation.classes, title: 'true' },
      },
      layer: [
        { mark: 'rect', encoding: { color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues' } } } },
        ...(evaluation.classes.length <= 20 ? [{ mark: { type: 'text' as const, fontSize: 10 }, encoding: { text: { field: 'count', type: 'quantitative' as const } } }] : []),
      ],
    } as TopLevelSpec);
    if (evaluation.prCurves) {
      const values = evaluation.prCurves.flatMap((c) => {
        const label = `${c.class} (AP ${c.averagePrecision.toFixed(3)})`;
        return [{ class: label, recall: 0, precision: 1, i: -1 }, ...c.recall.map((r, i) => ({ class: label, recall: r, precision: c.precision[i], i }))];
      });
      out.pr = await svg({
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: 'Precision-recall per class (one against the rest)',
        data: { values },
        width: WIDTH,
        height: WIDTH * 0.7,
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 'recall', type: 'quantitative', scale: { domain: [0, 1] } },
          y: { field: 'precision', type: 'quantitative', scale: { domain: [0, 1] } },
          color: { field: 'class', type: 'nominal', title: null, legend: { labelLimit: 300 } },
          order: { field: 'i', type: 'quantitative' },
        },
      } as TopLevelSpec);
    }
  }
  return out;
}

const escape = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (v: number | undefined) => (v === undefined ? '' : `${(100 * v).toFixed(2)}%`);

/** Reads a run directory and writes report.html and plots/*.svg into it; returns the report's path. */
export async function writeReport(runDir: string): Promise<string> {
  const read = (f: string) => (fs.existsSync(path.join(runDir, f)) ? fs.readFileSync(path.join(runDir, f), 'utf8') : null);
  const config = JSON.parse(read('config.json') ?? '{}');
  const records: EpochRecord[] = (read('metrics.jsonl') ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'epoch')
    .map(({ type: _t, ...r }) => r);
  const evaluation: RunEvaluation | null = read('evaluation.json') ? JSON.parse(read('evaluation.json')!) : null;
  const figures = await plots(records, evaluation);
  fs.mkdirSync(path.join(runDir, 'plots'), { recursive: true });
  for (const [name, content] of Object.entries(figures)) fs.writeFileSync(path.join(runDir, 'plots', `${name}.svg`), content);

  const epochRows = records
    .map((r) => `<tr><td>${r.epoch}</td><td>${escape(r.stage)}</td><td>${r.trainLoss.toFixed(4)}</td><td>${pct(r.trainAcc)}</td><td>${r.testLoss?.toFixed(4) ?? ''}</td><td>${pct(r.testTop1)}</td><td>${pct(r.testTop5)}</td><td>${r.imagesPerSecond.toFixed(1)}</td><td>${r.seconds.toFixed(1)}</td></tr>`)
    .join('\n');
  const classRows = (evaluation?.perClass ?? [])
    .map((m, i) => `<tr><td>${escape(m.class)}</td><td>${m.precision.toFixed(3)}</td><td>${m.recall.toFixed(3)}</td><td>${m.f1.toFixed(3)}</td><td>${m.support}</td><td>${evaluation?.prCurves?.[i]?.averagePrecision.toFixed(3) ?? ''}</td><td>${evaluation?.prCurves?.[i]?.rocAuc?.toFixed(3) ?? ''}</td></tr>`)
    .join('\n');
  const figure = (name: string) => (figures[name] ? `<figure>${figures[name]}</figure>` : '');
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(config.name ?? 'torch-attn run')}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
</style>
</head>
<body>
<h1>${escape(config.name ?? 'torch-attn run')}</h1>
<p>${escape(config.model?.description ?? '')} ${evaluation ? `&middot; final evaluation${evaluation.checkpoint === 'best.pth' ? ` (best epoch ${evaluation.epoch}, best.pth)` : ''}: test top-1 <b>${pct(evaluation.top1)}</b>, top-5 ${pct(evaluation.top5)}, macro-F1 ${evaluation.macroF1.toFixed(3)} on ${evaluation.count} images${evaluation.last ? `; last epoch ${evaluation.last.epoch}: top-1 ${pct(evaluation.last.top1)}, top-5 ${pct(evaluation.last.top5)}` : ''}` : ''}</p>
<h2>Training</h2>
<div class="grid">${figure('loss')}${figure('top1')}${figure('lr')}</div>
<table><tr><th>epoch</th><th>stage</th><th>train loss</th><th>train acc</th><th>test loss</th><th>test top-1</th><th>test top-5</th><th>img/s</th><th>seconds</th></tr>
${epochRows}
</table>
${evaluation ? `<h2>Evaluation</h2>
<div class="grid">${figure('confusion')}${figure('pr')}</div>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>AP (PR AUC)</th><th>ROC-AUC</th></tr>
${classRows}
</table>` : ''}
<h2>Configuration</h2>
<pre>${escape(JSON.stringify(config, null, 2))}</pre>
<p>Written by torch-attn. Plots also in <code>plots/*.svg</code>.</p>
</body>
</html>
`;
  const file = path.join(runDir, 'report.html');
  fs.writeFileSync(file, html);
  return file;
}
