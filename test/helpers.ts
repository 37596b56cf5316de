// Small helpers shared by the test files.
import * as crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { datasets, transforms, type Model } from '../lib/index';

/** Running against the ASan build (npm run test:asan): resident memory is not the program's alone. */
export const sanitized = process.env.TORCH_ATTN_SANITIZED === '1';

/** The CPU's feature flags (the first `flags` line of Linux's /proc/cpuinfo); undefined elsewhere. */
function cpuFlags(): Set<string> | undefined {
  try {
    return new Set((/^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
  } catch {
    return undefined;
  }
}

/** Whether this CPU has AVX-512 (elsewhere than Linux unknown, so the flag is not checked against
 *  it). */
export function cpuHasAvx512(): boolean | undefined {
  return cpuFlags()?.has('avx512f');
}

/** Whether this CPU has AVX-512 with its BW and VL parts, which the hand-written kernels need
 *  (elsewhere than Linux unknown). */
export function cpuHasAvx512BwVl(): boolean | undefined {
  const flags = cpuFlags();
  return flags && ['avx512f', 'avx512bw', 'avx512vl'].every((f) => flags.has(f));
}

/** fn() with the environment variable `name` set to `value` (undefined: unset), restored after
 *  it returns or, for a promise, settles (the native switches read it when called). */
export function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const saved = process.env[name];
  const set = (v: string | undefined) => {
    if (v === undefined) delete process.env[name];
    else process.env[name] = v;
  };
  set(value);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    set(saved);
    throw err;
  }
  if (result instanceof Promise) return result.finally(() => set(saved)) as T;
  set(saved);
  return result;
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** The error a function throws; fails the test if it returns. */
export function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

/** A raw little-endian float32 file (as the fixture scripts write them). */
export function readFloats(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Whether two TypedArrays hold the same bytes (fast, for large tensors; toEqual walks elements). */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** A learnable task: the class is which colour channel is brightest, under noise. */
export function colourData(n: number, size = 32, seed = 1) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const images = new Uint8Array(n * 3 * size * size);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    labels.push(label);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < size * size; p++) images[((i * 3 + c) * size * size) + p] = Math.min(255, Math.floor(rand() * 150 + (c === label ? 90 : 0)));
    }
  }
  return datasets.fromArrays({ images, shape: [n, 3, size, size], labels, classes: ['red', 'green', 'blue'], transform: transforms.toTensor() });
}

/** SHA-256 over a model's state dict: every entry's name and float32 bytes, in order. */
export function stateDictHash(model: Model): string {
  const hash = crypto.createHash('sha256');
  for (const [name, t] of Object.entries(model.stateDict())) {
    hash.update(name);
    const v = t.toFloat32Array();
    hash.update(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    t.dispose();
  }
  return hash.digest('hex');
}

/** Runs a PyTorch-side script of scripts/ (Debian's /usr/bin/python3) on a job file written as
 *  JSON; returns its stdout after checking it ran cleanly. The peer models come from
 *  TORCH_ATTN_PEER (default ../shared/peer). */
export function runPeerScript(script: string, jobFile: string, job: unknown): string {
  const root = path.resolve(__dirname, '..');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  const run = spawnSync('/usr/bin/python3', [path.join(root, 'scripts', script), jobFile], {
    encoding: 'utf8',
    env: { ...process.env, TORCH_ATTN_PEER: process.env.TORCH_ATTN_PEER ?? path.resolve(root, '..', 'shared', 'peer') },
  });
  if (run.stderr !== '' || run.status !== 0) throw new Error(`${script} failed (status ${run.status}):\n${run.stderr}`);
  return run.stdout;
}

/** The share of a PNG's pixels that are not (near) white: something was drawn. */
export function inkShare(file: string): number {
  const png = PNG.sync.read(fs.readFileSync(file));
  let ink = 0;
  for (let i = 0; i < png.data.length; i += 4) if (png.data[i] < 235 || png.data[i + 1] < 235 || png.data[i + 2] < 235) ink++;
  return ink / (png.width * png.height);
}

/** The packaged CLI (bin/torch-attn.js, which loads dist/): whether it is built, and a run of it
 *  in `cwd` that gets Ctrl-C (SIGINT) once its output shows epoch `epoch` done. */
export const cliBin = path.join(__dirname, '..', 'bin', 'torch-attn.js');
export const cliBuilt = fs.existsSync(path.join(__dirname, '..', 'dist', 'cli', 'commands.js'));
export async function interruptedCli(args: string[], cwd: string, epoch = 2): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliBin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const done = new RegExp(`^epoch +${epoch} \\[`, 'm');
  // One Ctrl-C: a second one ends a single process at once (by the signal, no exit code), which
  // is what CI saw when more output came after the match and each chunk sent another.
  let sent = false;
  child.stdout.on('data', (d) => {
    stdout += d;
    if (!sent && done.test(stdout)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  return { code, signal, stdout, stderr };
}
