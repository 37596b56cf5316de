// Forward-pass speed of ResNet18-CBAM (CIFAR stem, 10 classes, 32x32) in eval mode, side by side
// with the PyTorch peer (../shared/peer/bench.py, Debian's python3-torch: the same LibTorch) in
// the same run. Prints one JSON object.
//   npx tsx scripts/bench-forward.ts [--threads 2] [--reps 10]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ResNetCBAM, buildInfo, manualSeed, randn, setNumThreads } from '../lib';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' }, reps: { type: 'string', default: '10' } } });
const threads = Number(values.threads);
const reps = Number(values.reps);
setNumThreads(threads);
manualSeed(0);

// The peer's method (bench.py's timeit): `warm` untimed calls, then the mean of `n` calls, in ms.
function time(fn: () => void, n: number, warm = 2): number {
  for (let i = 0; i < warm; i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - start) / 1e6 / n;
}

const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
const x64 = randn([64, 3, 32, 32]);
const x1 = randn([1, 3, 32, 32]);
const b64 = time(() => model.forward(x64).dispose(), reps);
const b1 = time(() => model.forward(x1).dispose(), 20, 3);
const ours = { eval_b64_ms: +b64.toFixed(2), eval_img_per_s: +((64 * 1000) / b64).toFixed(1), eval_b1_ms: +b1.toFixed(2) };

// Like for like: a fresh peer model timed the same way (scripts/peer-forward.py). bench.py's
// figure is reported too; it comes after 7 training steps (other BatchNorm statistics).
const peerDir = path.resolve(__dirname, '..', '..', 'shared', 'peer');
function python(args: string[]): Record<string, number> | null {
  if (!fs.existsSync(peerDir)) return null;
  const run = spawnSync('/usr/bin/python3', args, { encoding: 'utf8' });
  return run.status === 0 ? JSON.parse(run.stdout.trim().split('\n').pop()!) : null;
}
const peer = python([path.join(__dirname, 'peer-forward.py'), peerDir, String(threads), String(reps)]);
const benchPy = python([path.join(peerDir, 'bench.py'), '--threads', String(threads), '--steps', String(reps)]);
const result = {
  model: 'ResNet18-CBAM, CIFAR stem, 10 classes, 32x32, eval, no grad',
  threads,
  libtorch: buildInfo().libtorchVersion,
  ours,
  peer: peer ?? 'missing: ../shared/peer or /usr/bin/python3 with torch',
  ratios: peer && {
    eval_throughput: +(ours.eval_img_per_s / peer.eval_img_per_s).toFixed(3),
    eval_b1_latency: +(ours.eval_b1_ms / peer.eval_b1_ms).toFixed(3),
  },
  peer_bench_py_after_training: benchPy && { eval_img_per_s: benchPy.eval_img_per_s, eval_b1_ms: benchPy.eval_b1_ms },
};
console.log(JSON.stringify(result, null, 2));
