// ResNet18-CBAM training img/s on CUDA, torch-attn beside the PyTorch it was built against
// (scripts/peer-cuda.py, same architecture, Adam, eager fp32, same batch), in one run; JSON out.
//   npx tsx scripts/bench-cuda.ts [--batch 256] [--steps 30] [--python python3]
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ResNetCBAM, buildInfo, cuda, manualSeed, optim, randn, tensor } from '../lib';

const { values } = parseArgs({
  options: { batch: { type: 'string', default: '256' }, steps: { type: 'string', default: '30' }, python: { type: 'string', default: 'python3' } },
});
const batch = Number(values.batch);
const steps = Number(values.steps);

async function main() {
  if (!cuda.isAvailable()) throw new Error(`bench-cuda: no CUDA device (buildInfo: ${JSON.stringify(buildInfo())})`);
  manualSeed(0);
  const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).to('cuda');
  const opt = optim.adam(model, [{ params: 'all' }], { lr: 1e-3 });
  const x = randn([batch, 3, 32, 32]).to('cuda');
  const y = tensor(BigInt64Array.from({ length: batch }, (_, i) => BigInt((i * 7) % 10)), [batch]);
  for (let i = 0; i < 5; i++) await model.trainStep(opt, x, y);
  const start = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) await model.trainStep(opt, x, y); // each step reads its loss: synchronised
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const peer = spawnSync(values.python!, [path.join(__dirname, 'peer-cuda.py'), '--batch', String(batch), '--steps', String(steps)], { encoding: 'utf8' });
  const pytorch = peer.status === 0 ? JSON.parse(peer.stdout) : { error: peer.stderr.trim().split('\n').slice(-3).join(' ') };
  console.log(JSON.stringify({ batch, steps, torch_attn: { libtorch: buildInfo().libtorchVersion, train_img_per_s: +((batch * steps) / seconds).toFixed(1) }, pytorch }));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
