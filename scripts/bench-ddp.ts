// Data-parallel throughput on this machine: ResNet18-CBAM training steps (CIFAR stem, 32x32,
// SGD momentum 0.9) on one global batch of 64, as 1 process x 2 threads and as 2 ranks x 1 thread
// (Gloo over loopback, each rank 32 images). Prints JSON: images/s of each, their ratio, and the
// data-parallel step's synchronisation cost (a rank's DDP step minus the same rank's step alone).
// --sync-batch-norm: the ranks' BatchNorms synchronised (syncBatchNorm), which that cost includes.
//   npx tsx scripts/bench-ddp.ts [--steps 20] [--sync-batch-norm]
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { parseArgs } from 'node:util';
import { ResNetCBAM, distributed, manualSeed, optim, randn, tensor } from '../lib';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '20' }, role: { type: 'string' }, batch: { type: 'string' }, 'sync-batch-norm': { type: 'boolean', default: false } } });
const syncBatchNorm = values['sync-batch-norm']!;
const steps = Number(values.steps);
const GLOBAL = 64;

async function stepsPerSecond(batch: number, group?: Awaited<ReturnType<typeof distributed.init>>): Promise<number> {
  manualSeed(0);
  const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
  model.train();
  const opt = optim.sgd(model, [{ params: 'all', lr: 0.01 }], { momentum: 0.9 });
  const x = randn([batch, 3, 32, 32]);
  const y = tensor(BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10)), [batch], { dtype: 'int64' });
  const options = group ? { distributed: group, syncBatchNorm } : {};
  for (let i = 0; i < 3; i++) await model.trainStep(opt, x, y, options); // warm-up (and the Reducer's bucket rebuild)
  if (group) await group.barrier();
  const start = performance.now();
  for (let i = 0; i < steps; i++) await model.trainStep(opt, x, y, options);
  return steps / ((performance.now() - start) / 1000);
}

async function role(): Promise<void> {
  const batch = Number(values.batch);
  if (values.role === 'single') {
    console.log(JSON.stringify({ stepsPerSecond: await stepsPerSecond(batch) }));
    return;
  }
  const group = await distributed.init({ timeout: 120 });
  const ddp = await stepsPerSecond(batch, group);
  await group.barrier();
  // The same rank's step without synchronisation, while the other rank does the same (the
  // machine as loaded as during the DDP steps).
  const alone = await stepsPerSecond(batch);
  await group.barrier();
  group.destroy();
  if (group.rank === 0) console.log(JSON.stringify({ stepsPerSecond: ddp, aloneStepsPerSecond: alone }));
}

function child(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', __filename, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`bench child exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const single = JSON.parse(await child(['--role', 'single', '--batch', String(GLOBAL), '--steps', String(steps)], { OMP_NUM_THREADS: '2' }));
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
  const env = (rank: number) => ({ MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: String(rank), OMP_NUM_THREADS: '1' });
  const args = ['--role', 'rank', '--batch', String(GLOBAL / 2), '--steps', String(steps), ...(syncBatchNorm ? ['--sync-batch-norm'] : [])];
  const outs = await Promise.all([child(args, env(0)), child(args, env(1))]);
  const ddp = JSON.parse(outs[0].trim().split('\n').pop()!);
  const singleImages = single.stepsPerSecond * GLOBAL;
  const ddpImages = ddp.stepsPerSecond * GLOBAL;
  console.log(
    JSON.stringify(
      {
        workload: `ResNet18-CBAM training step, global batch ${GLOBAL}, 32x32, SGD momentum 0.9, ${steps} steps`,
        single: { processes: 1, threads: 2, imagesPerSecond: Math.round(singleImages * 10) / 10 },
        dataParallel: { processes: 2, threadsPerRank: 1, backend: 'gloo', syncBatchNorm, imagesPerSecond: Math.round(ddpImages * 10) / 10 },
        ratio: Math.round((ddpImages / singleImages) * 1000) / 1000,
        syncMsPerStep: Math.round((1000 / ddp.stepsPerSecond - 1000 / ddp.aloneStepsPerSecond) * 10) / 10,
      },
      null,
      2,
    ),
  );
}

(values.role ? role() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
