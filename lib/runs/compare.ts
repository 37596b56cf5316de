// Runs side by side (`torch-attn compare runs/a runs/b ...`): their curves overlaid on one page
// and their final figures in one table — what an ablation needs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../files';
import type { TopLevelSpec } from 'vega-lite';
import { SCHEMA, duration, escapeHtml, readRun, svg } from './report';

export interface RunSummary {
  run: string;
  dir: string;
  model: string;
  epochs: number;
  bestEpoch?: number;
  bestTop1?: number;
  top1?: number;
  top5?: number;
  macroF1?: number;
  trainSeconds: number;
}

/** One run directory's figures (RangeError when it holds no run). */
export function summarizeRun(dir: string): RunSummary & { records: ReturnType<typeof readRun>['records'] } {
  if (!fs.existsSync(path.join(dir, 'metrics.jsonl')) && !fs.existsSync(path.join(dir, 'config.json'))) {
    throw new RangeError(`${dir} is not a run directory (no config.json or metrics.jsonl)`);
  }
  const { config, records, evaluation } = readRun(dir);
  const withTest = records.filter((r) => r.testTop1 !== undefined);
  const best = withTest.reduce<(typeof records)[number] | undefined>((b, r) => (b === undefined || r.testTop1! > b.testTop1! ? r : b), undefined);
  return {
    run: String(config.name ?? path.basename(path.resolve(dir))),
    dir,
    model: String(config.model?.description ?? config.model?.arch ?? ''),
    epochs: records.length,
    bestEpoch: best?.epoch,
    bestTop1: best?.testTop1,
    top1: evaluation?.top1,
    top5: evaluation?.top5,
    macroF1: evaluation?.macroF1,
    trainSeconds: records.reduce((n, r) => n + r.seconds, 0),
    records,
  };
}

const pct = (v: number | undefined) => (v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);

/** The terminal table: one row per run. */
export function compareTable(runs: RunSummary[]): string {
  const header = ['run', 'model', 'epochs', 'best test top-1 (epoch)', 'final top-1', 'top-5', 'macro-F1', 'training'];
  const rows = runs.map((r) => [r.run, r.model, String(r.epochs), r.bestTop1 === undefined ? '-' : `${pct(r.bestTop1)} (${r.bestEpoch})`, pct(r.top1), pct(r.top5), r.macroF1?.toFixed(4) ?? '-', duration(r.trainSeconds)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function overlay(runs: ReturnType<typeof summarizeRun>[], title: string, field: 'testTop1' | 'trainLoss' | 'testLoss' | 'trainAcc', percent: boolean): TopLevelSpec {
  const values = runs.flatMap((r) => r.records.filter((e) => e[field] !== undefined).map((e) => ({ run: r.run, epoch: e.epoch, value: e[field] })));
  return {
    $schema: SCHEMA,
    title,
    width: 470,
    height: 240,
    data: { values },
    mark: { type: 'line', point: values.length <= 200 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { format: 'd', tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: percent ? { format: '.0%' } : {} },
      color: { field: 'run', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 300 } },
    },
  } as TopLevelSpec;
}

/** Reads the runs, writes the comparison page to `out`, returns the summaries and the table. */
export async function compareRuns(dirs: string[], out: string): Promise<{ runs: RunSummary[]; table: string; file: string }> {
  if (dirs.length === 0) throw new RangeError('compare needs at least one run directory');
  const runs = dirs.map(summarizeRun);
  // Two runs with one name (runs/a/x and runs/b/x) are told apart by their folders.
  const names = runs.map((r) => r.run);
  for (const r of runs) if (names.filter((n) => n === r.run).length > 1) r.run = r.dir;
  const table = compareTable(runs);
  const figures = await Promise.all([
    svg(overlay(runs, 'Test top-1 per epoch', 'testTop1', true)),
    svg(overlay(runs, 'Test loss per epoch', 'testLoss', false)),
    svg(overlay(runs, 'Training accuracy per epoch', 'trainAcc', true)),
    svg(overlay(runs, 'Training loss per epoch', 'trainLoss', false)),
  ]);
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>torch-attn: ${escapeHtml(runs.map((r) => r.run).join(' vs '))}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1220px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child, td:nth-child(2) { text-align: left; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1em 1.5em; } figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>${runs.length} runs compared</h1>
<table><tr><th>run</th><th>model</th><th>epochs</th><th>best test top-1 (epoch)</th><th>final top-1</th><th>top-5</th><th>macro-F1</th><th>training</th></tr>
${runs.map((r) => `<tr><td>${escapeHtml(r.run)}</td><td>${escapeHtml(r.model)}</td><td>${r.epochs}</td><td>${r.bestTop1 === undefined ? '-' : `${pct(r.bestTop1)} (${r.bestEpoch})`}</td><td>${pct(r.top1)}</td><td>${pct(r.top5)}</td><td>${r.macroF1?.toFixed(4) ?? '-'}</td><td>${duration(r.trainSeconds)}</td></tr>`).join('\n')}
</table>
<div class="grid">${figures.map((f) => `<figure>${f}</figure>`).join('')}</div>
<p>Written by torch-attn compare from ${runs.map((r) => `<code>${escapeHtml(r.dir)}</code>`).join(', ')}.</p>
</body>
</html>
`;
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileAtomic(out, html);
  return { runs: runs.map(({ records: _r, ...s }) => s), table, file: path.resolve(out) };
}
