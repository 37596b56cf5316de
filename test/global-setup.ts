// Generates the PyTorch parity fixtures (tens of MB, never committed) when they are missing or
// older than their generator, using Debian's PyTorch when it is installed. Without it the
// parity suite is skipped and says why.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
export const parityDir = path.join(root, 'test', 'fixtures', 'parity');
const generator = path.join(root, 'scripts', 'make-parity-fixtures.py');
const python = '/usr/bin/python3';

export default function setup(): void {
  const index = path.join(parityDir, 'index.json');
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= fs.statSync(generator).mtimeMs) return;
  const probe = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.warn(`parity fixtures not generated: ${python} cannot import torch and torchvision (apt-get install -y python3-torch python3-torchvision)`);
    return;
  }
  const run = spawnSync(python, [generator, parityDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (run.status !== 0) throw new Error(`scripts/make-parity-fixtures.py failed:\n${run.stderr}`);
}
