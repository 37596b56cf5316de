// Generates the PyTorch parity fixtures (hundreds of MB, never committed) when they are missing
// or older than their generator, using Debian's PyTorch and the peer models in ../shared/peer
// (or TORCH_ATTN_PEER) when both are there. Without them the parity suite is skipped and says why.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
export const parityDir = path.join(root, 'test', 'fixtures', 'parity');
const generator = path.join(root, 'scripts', 'make-parity-fixtures.py');
const sources = [generator, path.join(root, 'scripts', 'peer_cases.py')];
const python = '/usr/bin/python3';
const peerDir = process.env.TORCH_ATTN_PEER ?? path.resolve(root, '..', 'shared', 'peer');

export default function setup(): void {
  const index = path.join(parityDir, 'index.json');
  const newestSource = Math.max(...sources.map((file) => fs.statSync(file).mtimeMs));
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= newestSource) return;
  if (!fs.existsSync(path.join(peerDir, 'peer_models.py'))) {
    console.warn(`parity fixtures not generated: no peer models at ${peerDir} (set TORCH_ATTN_PEER to the folder holding peer_models.py)`);
    return;
  }
  const probe = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.warn(`parity fixtures not generated: ${python} cannot import torch and torchvision (apt-get install -y python3-torch python3-torchvision)`);
    return;
  }
  const run = spawnSync(python, [generator, parityDir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TORCH_ATTN_PEER: peerDir },
  });
  if (run.status !== 0) throw new Error(`scripts/make-parity-fixtures.py failed:\n${run.stderr}`);
}
