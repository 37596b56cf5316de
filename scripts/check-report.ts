// Opens a report.html in headless Chromium (Debian's `chromium`) and reports console errors and
// what rendered; exits 1 on any console error. Also used by the report test.
//   npx tsx scripts/check-report.ts runs/demo-resnet18-cbam-cifar10/report.html [--screenshot out.png]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

export interface BrowserCheck {
  consoleErrors: string[];
  svgCount: number;
  dom: string;
}

/** Loads `file` in headless Chromium; console messages come from its log (--enable-logging). */
export function checkInBrowser(file: string, screenshot?: string, windowSize: [number, number] = [1240, 5200]): BrowserCheck {
  if (!CHROMIUM) throw new Error('Chromium is not installed (sudo apt-get install -y chromium)');
  const url = `file://${path.resolve(file)}`;
  const common = ['--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', '--log-level=0'];
  const run = spawnSync(CHROMIUM, [...common, '--dump-dom', url], { encoding: 'utf8', timeout: 120_000 });
  if (run.status !== 0) throw new Error(`chromium failed (${run.status}): ${run.stderr.slice(-500)}`);
  if (screenshot) spawnSync(CHROMIUM, [...common, `--screenshot=${path.resolve(screenshot)}`, `--window-size=${windowSize[0]},${windowSize[1]}`, url], { timeout: 120_000 });
  const consoleErrors = run.stderr.split('\n').filter((line) => /CONSOLE/.test(line) || /Uncaught|Failed to load resource/.test(line));
  return { consoleErrors, svgCount: (run.stdout.match(/<svg[\s>]/g) ?? []).length, dom: run.stdout };
}

if (require.main === module) {
  const [file, flag, shot] = process.argv.slice(2);
  if (!file) {
    console.error('usage: npx tsx scripts/check-report.ts <report.html> [--screenshot out.png]');
    process.exit(2);
  }
  const result = checkInBrowser(file, flag === '--screenshot' ? shot : undefined);
  console.log(JSON.stringify({ file, svgCount: result.svgCount, consoleErrors: result.consoleErrors }, null, 2));
  process.exit(result.consoleErrors.length ? 1 : 0);
}
