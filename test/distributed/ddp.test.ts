// Data-parallel training on c10d (Gloo over loopback, ports chosen free at run time): collectives,
// the launcher, bad environments, a rank that dies, and equivalence with PyTorch's
// DistributedDataParallel (scripts/peer-ddp.py, when Debian's python3-torch and the peer models
// in ../shared/peer are there).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/index';
import { cuda, distributed, ErrorCode, manualSeed, optim, randn, readStateDict, ResNetCBAM, ResNetNAM, saveStateDict, tensor, type Tensor } from '../../lib/index';
import { SYNC_BN_CASE, trainRows } from './syncbn-case';
import { cliBin, cliBuilt, interruptedCli, rejection } from '../helpers';

const root = path.resolve(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-ddp-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const python = '/usr/bin/python3';
const peerModels = path.join(process.env.TORCH_ATTN_PEER ?? path.resolve(root, '..', 'shared', 'peer'), 'peer_models.py');
const peerProbe = fs.existsSync(peerModels) ? spawnSync(python, ['-c', 'import torch, torch.distributed as d; assert d.is_available(); print(torch.__version__)'], { encoding: 'utf8' }) : undefined;
const havePeer = peerProbe?.status === 0;
/** PyTorch 2.x's Python Adam updates exp_avg with lerp_ where LibTorch's C++ Adam (and PyTorch 1.x)
 *  use mul_/add_: a few ulps per step, which Adam's normalisation turns into up to 9.2e-3 (relative
 *  to a tensor's largest value) after these 5 steps on PyTorch 2.6. SGD, and Adam on 1.x, are exact. */
const adamTolerance = havePeer && !peerProbe!.stdout.trim().startsWith('1.') ? 2e-2 : 1e-5;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** `torch-attn launch` in this process; its own messages are collected. */
async function launch(nproc: number, command: string[], port: number): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await main(['launch', '--nproc-per-node', String(nproc), '--master-port', String(port), '--threads', '1', '--', ...command], {
    out: () => {},
    err: (t) => (err += t),
    isTTY: false,
  });
  return { code, err };
}

const tsx = (script: string, ...args: string[]) => [process.execPath, '--import', 'tsx', path.join(__dirname, script), ...args];

describe('process groups', () => {
  it('allReduce (sum, avg, max, min), broadcast, allGather and barrier across 2 launched ranks', async () => {
    const { code, err } = await launch(2, tsx('collectives-rank.ts'), await freePort());
    expect(err).toBe('');
    expect(code).toBe(0);
  }, 120_000);

  it('a one-rank group works without peers; trainStep with it is an ordinary step', async () => {
    const g = await distributed.init({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeout: 10 });
    expect([g.rank, g.worldSize, g.localRank, g.backend]).toEqual([0, 1, 0, 'gloo']);
    await g.barrier();
    g.destroy();
    expect(g.destroyed).toBe(true);
    expect((await rejection(g.barrier())).code).toBe(ErrorCode.DISTRIBUTED);
  });

  it('syncBatchNorm in a one-rank group is BatchNorm: ResNet-NAM (BatchNorms inside its attention too), fp32 and bf16, channels-last', async () => {
    const g = await distributed.init({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeout: 10 });
    manualSeed(3);
    const x = randn([4, 3, 32, 32]);
    const y = tensor(new BigInt64Array([1n, 2n, 3n, 4n]), [4], { dtype: 'int64' });
    const file = path.join(tmp, 'nam-init.safetensors');
    await new ResNetNAM({ depth: 18, numClasses: 10 }).save(file);
    for (const precision of ['fp32', 'bf16'] as const) {
      const losses = [];
      for (const options of [{}, { distributed: g, syncBatchNorm: true }]) {
        const model = new ResNetNAM({ depth: 18, numClasses: 10 });
        await model.loadStateDict(file);
        model.to({ memoryFormat: 'channels-last' }).train();
        const opt = optim.sgd(model, [{ params: 'all', lr: 0.01 }]);
        await model.trainStep(opt, x, y, { precision, ...options });
        losses.push((await model.trainStep(opt, x, y, { precision, ...options })).loss);
      }
      expect(Math.abs(losses[1] - losses[0]), precision).toBeLessThan(precision === 'fp32' ? 1e-5 : 2e-2);
    }
    g.destroy();
  });

  it('training by Winograd in a one-rank group is the one-process Winograd step (the reducer gets every weight gradient)', async () => {
    const g = await distributed.init({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeout: 10 });
    manualSeed(4);
    const x = randn([16, 3, 32, 32]); // layer1-2 give the 1024 tiles training's Winograd takes
    const y = tensor(BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i % 10)), [16], { dtype: 'int64' });
    const file = path.join(tmp, 'cbam-init.safetensors');
    await new ResNetCBAM({ depth: 18, numClasses: 10 }).save(file);
    const losses = [];
    for (const options of [{}, { distributed: g }]) {
      const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
      await model.loadStateDict(file);
      model.train();
      const opt = optim.sgd(model, [{ params: 'all', lr: 0.01 }]);
      await model.trainStep(opt, x, y, { winograd: true, ...options });
      losses.push((await model.trainStep(opt, x, y, { winograd: true, ...options })).loss);
    }
    expect(Math.abs(losses[1] - losses[0])).toBeLessThan(1e-5);
    g.destroy();
  });

  it('EXPECTED FAILURE - a missing environment, a rank beyond the world, a port in use, an unknown backend', async () => {
    const saved = { ...process.env };
    try {
      for (const k of ['MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK']) delete process.env[k];
      let e = await rejection(distributed.init());
      expect(e).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(/WORLD_SIZE is not set\. Start the ranks with `torch-attn launch --nproc-per-node N -- <command>`/);
      Object.assign(process.env, { WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' });
      expect((await rejection(distributed.init())).message).toMatch(/RANK must be below WORLD_SIZE \(2\), got 2/);
      process.env.RANK = 'one';
      expect((await rejection(distributed.init())).message).toMatch(/RANK must be an integer from 0 to \d+, got 'one'/);
      expect((await rejection(distributed.init({ backend: 'mpi' as never }))).message).toMatch(/options\.backend must be one of 'gloo', 'nccl', got 'mpi'/);
      if (!distributed.backends().includes('nccl')) {
        e = await rejection(distributed.init({ backend: 'nccl', rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeout: 5 }));
        expect(e).toBeInstanceOf(RangeError);
        expect(e.message).toMatch(/backend 'nccl' is not in this build: it needs a CUDA LibTorch 2\.x with NCCL/);
      }
      const busy = net.createServer();
      await new Promise<void>((resolve) => busy.listen(0, '0.0.0.0', resolve));
      const port = (busy.address() as net.AddressInfo).port;
      try {
        e = await rejection(distributed.init({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: port, timeout: 5 }));
        expect(e.code).toBe(ErrorCode.DISTRIBUTED);
        expect(e.message).toMatch(new RegExp(`rank 0 of 1: cannot meet the other ranks at 127\\.0\\.0\\.1:${port} \\(rank 0 serves the rendezvous there: is the port in use\\?\\)`));
      } finally {
        busy.close();
      }
    } finally {
      process.env = saved;
    }
  });

  it('EXPECTED FAILURE - trainStep refuses what is not a process group', async () => {
    const { CBAMCNN, optim, tensor } = await import('../../lib/index');
    const model = new CBAMCNN({ numClasses: 10 });
    const opt = optim.sgd(model, [{ params: 'all', lr: 0.1 }]);
    const x = tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
    const y = tensor(new BigInt64Array(2), [2], { dtype: 'int64' });
    await expect(model.trainStep(opt, x, y, { distributed: {} as never })).rejects.toThrow(/Expected a ProcessGroup \(from distributed\.init\(\)\) for trainStep\(\) options\.distributed/);
    await expect(model.trainStep(opt, x, y, { syncBatchNorm: true })).rejects.toThrow(/trainStep\(\) options\.syncBatchNorm needs trainStep\(\) options\.distributed/);
    await expect(model.trainStep(opt, x, y, { syncBatchNorm: 'yes' as never })).rejects.toThrow(/Expected true or false for trainStep\(\) options\.syncBatchNorm/);
  });
});

/** Largest |a - b| over a tensor, relative to its largest |b|. */
function relativeDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  let scale = 1e-12;
  let diff = 0;
  for (let i = 0; i < y.length; i++) scale = Math.max(scale, Math.abs(y[i]));
  for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(x[i] - y[i]) / scale);
  return diff;
}

// NCCL: in CUDA builds that have it, with a GPU (scripts/gpu-check.sh runs these); NCCL puts one
// rank on each GPU, so the launched case takes as many ranks as there are GPUs, up to 2.
const nccl = cuda.isAvailable() && distributed.backends().includes('nccl');
describe.runIf(nccl)('NCCL', () => {
  it('collectives on CUDA tensors across launched ranks, one per GPU', async () => {
    const { code, err } = await launch(Math.min(2, cuda.deviceCount()), tsx('collectives-rank.ts', 'nccl'), await freePort());
    expect(code, err).toBe(0);
  }, 120_000);

  it('a data-parallel step on CUDA over NCCL, with syncBatchNorm, is the one-process step in a one-rank group', async () => {
    const g = await distributed.init({ backend: 'nccl', rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeout: 60 });
    manualSeed(5);
    const x = randn([8, 3, 32, 32]).to('cuda:0');
    const y = tensor(BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i % 10)), [8], { dtype: 'int64' }).to('cuda:0');
    const file = path.join(tmp, 'nccl-init.safetensors');
    await new ResNetCBAM({ depth: 18, numClasses: 10 }).save(file);
    const states: Record<string, Tensor>[] = [];
    for (const options of [{}, { distributed: g, syncBatchNorm: true }]) {
      const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
      await model.loadStateDict(file);
      model.to('cuda:0').train();
      const opt = optim.sgd(model, [{ params: 'all', lr: 0.01 }], { momentum: 0.9 });
      await model.trainStep(opt, x, y, options);
      states.push(model.stateDict());
    }
    for (const key of Object.keys(states[0]).filter((k) => states[0][k].dtype === 'float32')) {
      expect(relativeDiff(states[1][key], states[0][key]), key).toBeLessThan(1e-4);
    }
    g.destroy();
  }, 120_000);
});

/** The worst |a - b| / (atol + rtol |b|) over the elements (at most 1: torch.testing.assert_close holds). */
function closeness(a: Tensor, b: Tensor, rtol: number, atol: number): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  let worst = 0;
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (atol + rtol * Math.abs(y[i])));
  return worst;
}

describe('syncBatchNorm', () => {
  it('2 ranks x 6 images with synchronised BatchNorms train as 1 process on the 12: after an SGD step, parameters and running statistics within assert_close\'s float32 tolerances, identical on both ranks; without it, not', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'syncbn-'));
    const { batch, steps, model: spec } = SYNC_BN_CASE;
    manualSeed(7);
    const init = new ResNetCBAM(spec);
    await init.save(path.join(dir, 'init.safetensors'));
    const global = 2 * batch;
    const labels = BigInt64Array.from({ length: steps * global }, (_, i) => BigInt((i * 7) % 10));
    await saveStateDict({ x: randn([steps * global, 3, 32, 32]), y: tensor(labels, [labels.length], { dtype: 'int64' }) }, path.join(dir, 'data.safetensors'));
    const { code, err } = await launch(2, tsx('syncbn-rank.ts', dir), await freePort());
    expect(code, err).toBe(0);

    const whole = new ResNetCBAM(spec);
    await whole.loadStateDict(path.join(dir, 'init.safetensors'));
    const data = await readStateDict(path.join(dir, 'data.safetensors'));
    await trainRows(whole, data.x, data.y, global, (step) => step * global);
    const reference = whole.stateDict();
    // torch.testing.assert_close with its float32 tolerances (rtol 1.3e-6, atol 1e-5), as the
    // worst ratio of its two sides: a tensor's largest value is no scale for BatchNorm biases that
    // feed a convolution and another BatchNorm (their gradients are near zero by construction, so
    // a change in summation order moves them by a large fraction of themselves: 1.2e-2 of their
    // largest value on LibTorch 2.6, whose convolution gradients also differ by up to 5e-6 between
    // a batch of 12 and two of 6). Measured: 0.011 with LibTorch 1.13, 0.19 with 2.6; without
    // syncBatchNorm, ~110 (parameters) and ~4,200 (running statistics).
    const worst = (ours: Record<string, Tensor>, keys: string[]) => Math.max(...keys.map((k) => closeness(ours[k], reference[k], 1.3e-6, 1e-5)));
    const floats = Object.keys(reference).filter((k) => reference[k].dtype === 'float32');
    const running = floats.filter((k) => k.includes('running_'));
    const params = floats.filter((k) => !running.includes(k));
    const ranks = [];
    for (const rank of [0, 1]) {
      const sync = await readStateDict(path.join(dir, `sync_rank${rank}.safetensors`));
      const plain = await readStateDict(path.join(dir, `plain_rank${rank}.safetensors`));
      expect(worst(sync, floats), `rank ${rank}`).toBeLessThanOrEqual(1);
      expect(worst(plain, running), `rank ${rank} without syncBatchNorm: running statistics`).toBeGreaterThan(100);
      expect(worst(plain, params), `rank ${rank} without syncBatchNorm: parameters`).toBeGreaterThan(10);
      ranks.push(sync);
    }
    for (const key of floats) expect(relativeDiff(ranks[1][key], ranks[0][key]), key).toBe(0);
  }, 300_000);
});

describe('the launcher', () => {
  it('gives each rank torchrun\'s environment and one thread; a failing rank stops the others and sets the exit code', async () => {
    const port = await freePort();
    const script = `const e = process.env; if (e.RANK === '1') process.exit(7); console.log([e.RANK, e.LOCAL_RANK, e.WORLD_SIZE, e.MASTER_ADDR, e.MASTER_PORT, e.OMP_NUM_THREADS].join(' ')); setTimeout(() => {}, 60000);`;
    const started = Date.now();
    const { code, err } = await launch(2, [process.execPath, '-e', script], port);
    expect(code).toBe(7);
    expect(err).toMatch(/launch: rank 1 failed \(exit code 7\); stopping the other ranks/);
    expect(Date.now() - started).toBeLessThan(30_000); // rank 0 sleeps 60 s unless stopped
  }, 60_000);

  it('EXPECTED FAILURE - usage mistakes', async () => {
    const run = async (...args: string[]) => {
      let err = '';
      const code = await main(['launch', ...args], { out: () => {}, err: (t) => (err += t), isTTY: false });
      return { code, err };
    };
    expect(await run('--', 'node')).toMatchObject({ code: 2, err: expect.stringMatching(/--nproc-per-node is required/) });
    expect(await run('--nproc-per-node', '2')).toMatchObject({ code: 2, err: expect.stringMatching(/give the command to run after --/) });
    expect(await run('--nproc-per-node', '0', '--', 'node')).toMatchObject({ code: 2, err: expect.stringMatching(/--nproc-per-node takes an integer of at least 1, got '0'/) });
    expect(await run('--nproc-per-node', '1', '--nnodes', '2', '--node-rank', '2', '--', 'node')).toMatchObject({ code: 2, err: expect.stringMatching(/--node-rank must be below --nnodes \(2\)/) });
  });
});

describe('torch-attn train --nproc-per-node', () => {
  const cifar = path.join(root, 'test', 'fixtures', 'data', 'cifar-10-batches-py');
  it.runIf(cliBuilt)('runs 2 ranks (with --sync-batch-norm); rank 0 alone prints and writes one run directory', async () => {
    const out = path.join(tmp, 'cli-ddp');
    const child = spawn(process.execPath, [cliBin, 'train', '--model', 'cbamcnn', '--data', cifar, '--epochs', '2', '--batch-size', '4', '--workers', '1', '--nproc-per-node', '2', '--sync-batch-norm', '--master-port', String(await freePort()), '--out', out], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.on('close', resolve));
    // Nothing on stderr but LibTorch 2.x's Gloo warning for a host name without an address (a chroot).
    expect(stderr.split('\n').filter((l) => l !== '' && !/ProcessGroupGloo\.cpp:\d+\] Warning: Unable to resolve hostname/.test(l))).toEqual([]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/data-parallel: 2 ranks \(2 on this machine, node 0 of 1\), rendezvous at 127\.0\.0\.1:\d+; rank 0 writes /);
    expect(stdout).toMatch(/data-parallel: rank 0 of 2 \(gloo\); batch 4 per rank, 8 in all; BatchNorm statistics over all ranks/);
    expect(stdout.match(/^epoch +\d+ \[/gm)).toHaveLength(2);  // rank 0's lines only
    expect(stdout.match(/^final evaluation/gm)).toHaveLength(1);
    const records = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.filter((r) => r.type === 'epoch').map((r) => r.epoch)).toEqual([1, 2]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')).ranks).toBe(2);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).syncBatchNorm).toBe(true);
    for (const f of ['last.pth', 'config.json', 'evaluation.json', 'report.html']) expect(fs.existsSync(path.join(out, f))).toBe(true);
    expect(fs.readdirSync(tmp).filter((d) => d.startsWith('cli-ddp'))).toEqual(['cli-ddp']);
  }, 180_000);

  it.runIf(cliBuilt)('Ctrl-C stops every rank and names the resume command with the ranks', async () => {
    const out = path.join(tmp, 'cli-ddp-interrupted');
    const { code, signal, stderr } = await interruptedCli(['train', '--model', 'cbamcnn', '--data', cifar, '--epochs', '500', '--batch-size', '2', '--workers', '1', '--nproc-per-node', '2', '--master-port', String(await freePort()), '--out', out], tmp);
    expect(code, `ended by ${signal}; stderr: ${stderr}`).toBe(130);
    expect(stderr).toMatch(/launch: SIGINT, passing it to the ranks/);
    expect(stderr.match(/stopping at the next batch/g)).toHaveLength(1);  // rank 0 only
    expect(stderr).toContain(`stopped; continue with: npx torch-attn train --resume ${path.join('cli-ddp-interrupted', 'last.pth')} --nproc-per-node 2`);
    expect(fs.existsSync(path.join(out, 'last.pth'))).toBe(true);
  }, 120_000);

  it('EXPECTED FAILURE - usage mistakes', async () => {
    const run = async (...args: string[]) => {
      let err = '';
      const code = await main(['train', '--model', 'cbamcnn', '--data', cifar, ...args], { out: () => {}, err: (t) => (err += t), isTTY: false });
      return { code, err };
    };
    expect(await run('--nnodes', '2')).toMatchObject({ code: 2, err: expect.stringMatching(/train: --nnodes goes with --nproc-per-node N/) });
    expect(await run('--nproc-per-node', '0')).toMatchObject({ code: 2, err: expect.stringMatching(/--nproc-per-node takes an integer of at least 1, got '0'/) });
    expect(await run('--nproc-per-node', '2', '--nnodes', '2', '--node-rank', '2')).toMatchObject({ code: 2, err: expect.stringMatching(/train: --node-rank must be below --nnodes \(2\)/) });
    expect(await run('--nproc-per-node', '2', '--master-port', '70000')).toMatchObject({ code: 2, err: expect.stringMatching(/--master-port must be at most 65535/) });
    process.env.WORLD_SIZE = '2';
    try {
      expect(await run('--nproc-per-node', '2')).toMatchObject({ code: 2, err: expect.stringMatching(/this process is already a rank \(WORLD_SIZE is set\)/) });
    } finally {
      delete process.env.WORLD_SIZE;
    }
  });
});

describe('faults', () => {
  it('a rank killed mid-training makes the other fail with ERR_TORCH_ATTN_DISTRIBUTED, not hang', async () => {
    const port = await freePort();
    const env = { ...process.env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', OMP_NUM_THREADS: '1', FAULT_RANK: '1', FAULT_TIMEOUT: '20' };
    const run = (rank: number) =>
      new Promise<{ code: number | null; signal: string | null; out: string }>((resolve) => {
        const child = spawn(tsx('fault-rank.ts')[0], tsx('fault-rank.ts').slice(1), { env: { ...env, RANK: String(rank), LOCAL_RANK: String(rank) }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('exit', (code, signal) => resolve({ code, signal, out }));
      });
    const [survivor, killed] = await Promise.all([run(0), run(1)]);
    expect(killed.signal).toBe('SIGKILL');
    expect(survivor.code).toBe(3);
    const report = JSON.parse(survivor.out.trim().split('\n').pop()!);
    expect(report.code).toBe(ErrorCode.DISTRIBUTED);
    expect(report.message).toMatch(/^rank 0 of 2: .* failed: /);
    expect(report.seconds).toBeLessThan(25); // the timeout is 20 s; a closed connection is seen at once
  }, 120_000);
});

const cifarSubset = path.resolve(root, '..', 'shared', 'data', 'cifar10-subset-bin');

/** The staged fit of fit-rank.ts on 2 ranks in `mode`; each rank's JSON line. */
async function fitRanks(mode: 'straight' | 'abort' | 'resume', dir: string, data?: string) {
  const port = await freePort();
  const run = (rank: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { ...process.env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: String(rank), OMP_NUM_THREADS: '1' };
      if (data) env.DATA = data;
      else delete env.DATA;
      const child = spawn(process.execPath, tsx('fit-rank.ts', mode, dir).slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`rank ${rank} exited ${code}: ${err}`))));
    });
  return Promise.all([run(0), run(1)]);
}

describe.each([
  ['colour data', undefined],
  ['the CIFAR-10 subset (../shared/data/cifar10-subset-bin)', fs.existsSync(cifarSubset) ? cifarSubset : null],
] as const)('a staged fit on 2 ranks: %s', (_name, data) => {
  it.skipIf(data === null)('3 stages with changing frozen sets: same records on both ranks, identical parameters, one set of checkpoints; aborted on rank 1 and resumed, the uninterrupted run\'s weights on every rank', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'fit-'));
    const straight = await fitRanks('straight', path.join(dir, 'straight'), data ?? undefined);
    expect(straight[0].records).toHaveLength(3);
    expect(straight[1].records).toEqual(straight[0].records);
    expect(straight[1].parameters).toBe(straight[0].parameters);
    expect(straight[0].files).toEqual(['best.pth', 'last.pth']);
    const aborted = await fitRanks('abort', path.join(dir, 'abort'), data ?? undefined);
    expect(aborted.map((r) => r.error)).toEqual(['AbortError', 'AbortError']); // rank 1 stopped, rank 0 with it
    const resumed = await fitRanks('resume', path.join(dir, 'abort'), data ?? undefined);
    expect(resumed.map((r) => r.records)).toEqual(straight.map((r) => r.records));
    expect(resumed.map((r) => r.hash)).toEqual(straight.map((r) => r.hash)); // parameters and each rank's BatchNorm statistics
  }, 600_000);
});

describe.skipIf(!havePeer)('equivalence with PyTorch DistributedDataParallel', () => {
  it('2 ranks, ResNet18-CBAM, 5 steps of SGD (momentum 0.9) and of Adam: parameters and BatchNorm buffers within 1e-5 of PyTorch on each rank, parameters identical across ranks', async () => {
    const peerDir = path.join(tmp, 'peer');
    const peer = spawnSync(python, [path.join(root, 'scripts', 'peer-ddp.py'), peerDir, String(await freePort())], {
      cwd: path.join(root, 'scripts'),
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    expect(peer.status, peer.stderr).toBe(0);
    const out = path.join(tmp, 'ours');
    fs.mkdirSync(out);
    const { code, err } = await launch(2, tsx('ddp-rank.ts', peerDir, out), await freePort());
    expect(code, err).toBe(0);
    for (const name of ['sgd', 'adam']) {
      const ranks = [];
      for (const rank of [0, 1]) {
        const ours = await readStateDict(path.join(out, `ta_${name}_rank${rank}.safetensors`));
        const theirs = await readStateDict(path.join(peerDir, `ddp_${name}_rank${rank}.safetensors`));
        const worst: Record<string, number> = {};
        for (const [key, t] of Object.entries(theirs)) {
          const a = ours[key].data() as Float32Array;
          const b = t.data() as Float32Array;
          if (t.dtype !== 'float32') {
            expect([...a], key).toEqual([...b]);
            continue;
          }
          let scale = 1e-12;
          let diff = 0;
          for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
          for (let i = 0; i < b.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]) / scale);
          if (diff > (name === 'adam' ? adamTolerance : 1e-5)) worst[key] = diff;
        }
        expect(worst, `${name} rank ${rank}`).toEqual({});
        ranks.push(ours);
      }
      for (const key of Object.keys(ranks[0]).filter((k) => !k.includes('running_') && !k.endsWith('num_batches_tracked'))) {
        expect(Buffer.from((ranks[0][key].data() as Float32Array).buffer).equals(Buffer.from((ranks[1][key].data() as Float32Array).buffer)), key).toBe(true);
      }
    }
  }, 300_000);
});
