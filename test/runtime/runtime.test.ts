import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { buildInfo, cpuCache, cuda, getNumThreads, manualSeed, setNumThreads, zeros } from '../../lib';
import { addonFile } from '../../lib/native';

const root = path.resolve(__dirname, '..', '..');

describe('buildInfo()', () => {
  it('says what the addon was built against', () => {
    const info = buildInfo();
    expect(info.version).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    expect(info.libtorchVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof info.cuda).toBe('boolean');
    expect(info.napiVersion).toBe(8);
    expect(fs.existsSync(info.libtorchDir)).toBe(true);
    if (!info.cuda) expect(info.cudaVersion).toBeUndefined();
  });
});

describe("oneDNN work-arounds", () => {
  it('oneDNN 3.7 (Debian 13) runs capped to SSE4.1, unless the user chose; other versions run as they are', () => {
    const info = buildInfo();
    expect(Array.isArray(info.workarounds)).toBe(true);
    const onednn = info.workarounds.filter((w) => /oneDNN/.test(w));
    const ucx = info.workarounds.filter((w) => /^UCX/.test(w));
    expect(onednn.length + ucx.length).toBe(info.workarounds.length);
    if (info.onednnVersion !== undefined) expect(info.onednnVersion).toMatch(/^\d+\.\d+\.\d+$/);
    if (info.onednnVersion?.startsWith('3.7.')) {
      // Only where the environment did not choose: then the addon set it.
      if (onednn.length > 0) expect(process.env.ONEDNN_MAX_CPU_ISA).toBe('SSE41');
      expect(onednn.length).toBeLessThanOrEqual(1);
    } else {
      expect(onednn).toEqual([]);
    }
    // UCX comes with an Open MPI that LibTorch links (Debian 13's 2.6), never with 1.13's.
    const ucxLoaded = /\/libucs\.so/.test(fs.readFileSync('/proc/self/maps', 'utf8'));
    if (ucxLoaded && process.env.UCX_MEM_MMAP_HOOK_MODE === 'none') {
      expect(ucx).toHaveLength(1);
      expect(ucx[0]).toMatch(/UCX_MEM_MMAP_HOOK_MODE=none/);
    } else {
      expect(ucx).toEqual([]);
    }
  });

  it('turns UCX\'s memory hooks and error handler off before the addon loads, unless the environment chose', () => {
    // A child whose environment sets one of the two: that one is kept, the other is set.
    const code = `process.env.UCX_HANDLE_ERRORS = 'bt'; require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'runtime.ts'))}); console.log(process.env.UCX_MEM_MMAP_HOOK_MODE, process.env.UCX_HANDLE_ERRORS)`;
    const env = { ...process.env };
    delete env.UCX_MEM_MMAP_HOOK_MODE;
    delete env.UCX_HANDLE_ERRORS;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', env, timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('none bt');
  });
});

describe('cuda', () => {
  it('reports availability and a device count that agree', () => {
    expect(typeof cuda.isAvailable()).toBe('boolean');
    if (cuda.isAvailable()) expect(cuda.deviceCount()).toBeGreaterThanOrEqual(1);
    else expect(cuda.deviceCount()).toBe(0);
    if (!buildInfo().cuda) expect(cuda.isAvailable()).toBe(false);
  });
});

describe('threads', () => {
  it('setNumThreads / getNumThreads round trip', () => {
    const before = getNumThreads();
    expect(before).toBeGreaterThanOrEqual(1);
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(before);
    expect(getNumThreads()).toBe(before);
  });

  it('refuses counts outside 1..1024 and non-integers', () => {
    expect(() => setNumThreads(0)).toThrow(RangeError);
    expect(() => setNumThreads(2.5)).toThrow(RangeError);
    expect(() => setNumThreads('2' as never)).toThrow(TypeError);
    expect(() => setNumThreads(2000)).toThrow(/from 1 to 1024, got 2000/);
    expect(() => setNumThreads(2 ** 60)).toThrow(/from 1 to 1024, got 1152921504606847000/);
  });

  it('manualSeed refuses negative and non-integer seeds', () => {
    expect(() => manualSeed(-1)).toThrow(RangeError);
    expect(() => manualSeed(1.5)).toThrow(RangeError);
    expect(() => manualSeed(2n ** 64n)).toThrow(RangeError);
    // An integer a number cannot hold exactly: said as such, with the bigint that can.
    expect(() => manualSeed(2 ** 70)).toThrow(/manualSeed\(seed\) takes a number from 0 to 2\^53 - 1 .* or a bigint up to 2\^64 - 1, got 1\.1805916207174113e\+21/);
    expect(() => manualSeed('1' as never)).toThrow(TypeError);
  });
});

describe('worker threads', () => {
  // The worker loads the addon file the package loads (TORCH_ATTN_ADDON's, when set) and works
  // with tensors there, while the main thread keeps its own instance: the addon is context-aware.
  const workerCode = `
    const { parentPort, workerData } = require('node:worker_threads');
    const addon = require(workerData.addonFile);
    const t = addon.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const kept = addon.randn([64, 64]); // left alive on purpose: freed when the worker is torn down
    parentPort.postMessage({ shape: t.shape, data: Array.from(t.data()), info: addon.buildInfo(), kept: kept.numel });
  `;

  function runWorker(): Promise<{ shape: number[]; data: number[]; info: { napiVersion: number }; kept: number }> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(workerCode, { eval: true, workerData: { addonFile } });
      worker.once('message', (m) => {
        void worker.terminate();
        resolve(m);
      });
      worker.once('error', reject);
    });
  }

  it('loads in a worker thread and in several at once', async () => {
    const results = await Promise.all([runWorker(), runWorker(), runWorker()]);
    for (const r of results) {
      expect(r.shape).toEqual([2, 2]);
      expect(r.data).toEqual([1, 2, 3, 4]);
      expect(r.info.napiVersion).toBe(8);
      expect(r.kept).toBe(4096);
    }
    // The main thread's instance is unaffected by the workers coming and going.
    expect(buildInfo().napiVersion).toBe(8);
  });

  it('a worker terminated while a predict() runs on it goes away without crashing the process', async () => {
    // The promise can no longer be settled when the job ends; that must not terminate Node.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.addonFile);
      const model = addon.createModel({ arch: 'resnet', depth: 18 });
      model.predict(addon.randn([32, 3, 32, 32]), 32);
      parentPort.postMessage('running');
    `;
    for (let i = 0; i < 3; i++) {
      const worker = new Worker(code, { eval: true, workerData: { addonFile } });
      await new Promise((resolve) => worker.once('message', resolve));
      await worker.terminate();
    }
    await new Promise((resolve) => setTimeout(resolve, 1500)); // let the orphaned jobs finish
    expect(buildInfo().napiVersion).toBe(8);
  });
});

describe('the caching CPU allocator', () => {
  it('keeps the buffers of repeated passes for reuse, not one-off blocks, and empties on request', () => {
    cpuCache.empty();
    const start = cpuCache.stats();
    expect(start.cachedBytes).toBe(0);
    expect(start.limitBytes).toBe(1024 * 2 ** 20);
    // A one-off 70 MiB block (of a size class no test here asks for otherwise: 70 to 72 MiB) goes
    // back to the system when freed.
    zeros([70 * 2 ** 18 + 7]).dispose();
    expect(cpuCache.stats().cachedBytes).toBe(0);
    // The same size again and again: kept and reused.
    for (let i = 0; i < 5; i++) zeros([2 ** 19 + 13]).dispose();
    const after = cpuCache.stats();
    expect(after.cachedBytes).toBeGreaterThanOrEqual(2 * 2 ** 20);
    expect(after.hits - start.hits).toBeGreaterThanOrEqual(3);
    // A nearby size of the same class (2 to 2.5 MiB: four classes to an octave) reuses that block
    // (a batcher's nearby batch sizes share their buffers) instead of keeping one of its own.
    for (let i = 0; i < 3; i++) zeros([2 ** 19 + 2 ** 17]).dispose();
    expect(cpuCache.stats().hits - after.hits).toBe(3);
    expect(cpuCache.stats().cachedBytes).toBe(after.cachedBytes);
    cpuCache.empty();
    expect(cpuCache.stats().cachedBytes).toBe(0);
  });
});
