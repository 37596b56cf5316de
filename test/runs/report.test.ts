// The run report: a self-contained page (inline SVG, no scripts, no external resources) with the
// training curves, learning rates, confusion matrix and PR curves; rendered in headless Chromium
// without console errors when Chromium is installed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRun, writeReport } from '../../lib/runs/report';
import { prCurves } from '../../lib/runs/metrics';
import { CHROMIUM, checkInBrowser } from '../../scripts/check-report';
import { inkShare } from '../helpers';


const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-report-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeRun() {
  const records = [1, 2, 3, 4].map((epoch) => ({
    type: 'epoch', stage: epoch <= 2 ? 'head' : 'full', stageIndex: epoch <= 2 ? 0 : 1, epoch,
    trainLoss: 2 / epoch, trainAcc: 0.2 * epoch, testLoss: 2.1 / epoch, testTop1: 0.18 * epoch, testTop5: 0.5 + 0.1 * epoch,
    lr: { head: 1e-3, layer1: epoch <= 2 ? 0 : 1e-4 }, seconds: 10, imagesPerSecond: 100,
  }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), [{ type: 'batch', epoch: 1, batch: 1, batches: 2, loss: 2, meanLoss: 2 }, ...records].map((r) => JSON.stringify(r)).join('\n'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ name: 'a <test> run', model: { description: 'ResNet18-cbam' } }));
  const probabilities = [0.9, 0.1, 0.3, 0.7, 0.6, 0.4];
  const labels = [0, 1, 1];
  fs.writeFileSync(path.join(dir, 'evaluation.json'), JSON.stringify({
    loss: 0.5, top1: 2 / 3, top5: 1, count: 3, classes: ['cat', 'dog'], confusion: [[1, 0], [1, 1]],
    perClass: [{ class: 'cat', precision: 0.5, recall: 1, f1: 2 / 3, support: 1 }, { class: 'dog', precision: 1, recall: 0.5, f1: 2 / 3, support: 2 }],
    macroF1: 2 / 3, prCurves: prCurves(probabilities, labels, ['cat', 'dog']),
  }));
}

describe('writeReport', () => {
  it('writes report.html with every plot inline and SVG copies', async () => {
    writeRun();
    const file = await writeReport(dir);
    const html = fs.readFileSync(file, 'utf8');
    for (const name of ['loss', 'top1', 'lr', 'confusion', 'pr']) {
      const svg = fs.readFileSync(path.join(dir, 'plots', `${name}.svg`), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(html).toContain(svg);
    }
    expect(html).toContain('a &lt;test&gt; run'); // escaped
    expect(html).not.toMatch(/<script|<link|src="http/);
    expect(fs.readFileSync(path.join(dir, 'plots', 'loss.svg'), 'utf8')).toContain('full'); // stage boundary label
    expect(fs.readFileSync(path.join(dir, 'plots', 'pr.svg'), 'utf8')).toContain('AP 1.00');
    // PNG copies for papers and slides, each with a non-empty drawing area.
    for (const name of ['loss', 'top1', 'lr', 'confusion', 'pr']) expect(inkShare(path.join(dir, 'plots', `${name}.png`)), name).toBeGreaterThan(0.02);
    // Accuracies in percent, the loss axis not forced through 0, the confusion matrix normalised beside the counts.
    expect(fs.readFileSync(path.join(dir, 'plots', 'top1.svg'), 'utf8')).toMatch(/>\d+%</);
    expect(fs.readFileSync(path.join(dir, 'plots', 'confusion.svg'), 'utf8')).toContain('share of the true class');
    expect(fs.readFileSync(path.join(dir, 'plots', 'loss.svg'), 'utf8')).not.toMatch(/>0\.0</);
  });

  it('a metrics.jsonl whose last line was cut short (a killed run) reports what it holds; a bad line elsewhere, or a config.json that is not JSON, is an error naming the file', async () => {
    writeRun();
    const file = path.join(dir, 'metrics.jsonl');
    const whole = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, `${whole}\n{"type":"epoch","epoch":5,"trainLo`);
    expect(readRun(dir).records.map((r) => r.epoch)).toEqual([1, 2, 3, 4]);
    await writeReport(dir);
    fs.writeFileSync(file, `{"type":"epoch","epo\n${whole}`);
    expect(() => readRun(dir)).toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, line 1, is not a JSON record`));
    fs.writeFileSync(file, `[1, 2]\n${whole}`);
    expect(() => readRun(dir)).toThrow(/line 1, is not a JSON object/);
    fs.writeFileSync(file, whole);
    fs.writeFileSync(path.join(dir, 'config.json'), '{"name": "half');
    expect(() => readRun(dir)).toThrow(/config\.json is not valid JSON \(.*\): was it cut short or edited by hand\?/);
    fs.writeFileSync(path.join(dir, 'config.json'), 'null');
    expect(() => readRun(dir)).toThrow(/config\.json is not a torch-attn run config \(not a JSON object\)/);
    writeRun();
  });

  it.runIf(CHROMIUM)('renders in headless Chromium with no console errors', async () => {
    writeRun();
    const shot = path.join(dir, 'screenshot.png');
    const result = checkInBrowser(await writeReport(dir), shot);
    expect(result.consoleErrors).toEqual([]);
    expect(inkShare(shot)).toBeGreaterThan(0.005); // the page drew something
    // Every plot, as Chromium draws it at its own size, has a non-empty drawing area.
    for (const name of ['loss', 'top1', 'lr', 'confusion', 'pr']) {
      const svg = path.join(dir, 'plots', `${name}.svg`);
      const [, w, h] = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(fs.readFileSync(svg, 'utf8'))!;
      const plotShot = path.join(dir, `${name}-chromium.png`);
      expect(checkInBrowser(svg, plotShot, [Math.ceil(Number(w)), Math.ceil(Number(h))]).consoleErrors).toEqual([]);
      expect(inkShare(plotShot), name).toBeGreaterThan(0.02);
    }
    expect(result.svgCount).toBeGreaterThanOrEqual(5);
    expect(result.dom).toContain('Confusion matrix');
  }, 120_000);
});
