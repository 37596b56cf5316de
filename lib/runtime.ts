// Process-wide facts and settings: what the addon was built against, threads, seeds, CUDA.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { native, packageVersion, ucxDefaults } from './native';
import * as validate from './validate';

export interface BuildInfo {
  /** torch-attn's version. */
  version: string;
  /** LibTorch's version as its headers state it (Debian's 1.13.1 package says 1.13.0). */
  libtorchVersion: string;
  /** The folder the addon loads LibTorch from. */
  libtorchDir: string;
  /** Built against a CUDA LibTorch. */
  cuda: boolean;
  /** The CUDA toolkit version of a CUDA build, when CMake found it. */
  cudaVersion?: string;
  /** The Node-API version the addon targets. */
  napiVersion: number;
  /** The oneDNN LibTorch runs CPU convolutions with, when it is a shared library (Debian's). */
  onednnVersion?: string;
  /** Whether eval-mode inference runs through inference plans here (LibTorch with oneDNN 2.x;
   *  not oneDNN 3.x, whose convolution setup crashes on prepared convolutions in Debian 13's build). */
  inferencePlans: boolean;
  /** What a plan runs its convolutions on: 'onednn' (oneDNN's own API: primitives made once per
   *  shape; builds against libdnnl-dev 2.x where LibTorch links that oneDNN, Debian 12's) or
   *  'prepacked' (LibTorch's mkldnn_prepacked ops); absent without plans. TORCH_ATTN_DIRECT_ONEDNN=0
   *  in the environment picks 'prepacked', for comparisons. */
  planConvolutions?: 'onednn' | 'prepacked';
  /** Defects of this LibTorch build that torch-attn works around, one sentence each. */
  workarounds: string[];
  /** Precisions this machine computes in hardware: bf16 on CPUs with avx512_bf16 or AMX (it runs
   *  emulated, slowly, elsewhere), fp16 and bf16 (capability 8.0+) on the GPU. */
  nativePrecisions: { cpu: string[]; cuda?: string[] };
  /** The first GPU's compute capability ('9.0'), when CUDA has one. */
  cudaCapability?: string;
}

/** LibTorch's release as its package states it where a Debian package provides it (1.13.1: the
 *  headers of Debian's build say 1.13.0), else as its headers do; what people see (doctor,
 *  --version, run records). */
export function libtorchRelease(): { version: string; debianPackage?: string } {
  const info = buildInfo();
  if (info.libtorchDir.startsWith('/usr/')) {
    try {
      const full = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libtorch-dev'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      const version = /^(?:\d+:)?([\d.]+)/.exec(full)?.[1];
      if (version) return { version, debianPackage: `libtorch-dev ${full}` };
    } catch {
      // not a Debian system, or no libtorch-dev: the headers' version
    }
  }
  return { version: info.libtorchVersion };
}

/** What this torch-attn was built against. */
export function buildInfo(): BuildInfo {
  const info = native.buildInfo();
  return { version: packageVersion, ...info, workarounds: [...info.workarounds, ...ucxWorkaround()] };
}

// UCX is in the process when LibTorch links Open MPI (Debian 13's 2.6): say how torch-attn set it.
let ucxNote: string[] | undefined;
function ucxWorkaround(): string[] {
  if (ucxNote === undefined) {
    let maps = '';
    try {
      maps = fs.readFileSync('/proc/self/maps', 'utf8');
    } catch {
      // not Linux: no Debian LibTorch
    }
    const inEffect = Object.entries(ucxDefaults).filter(([name, value]) => process.env[name] === value);
    ucxNote = /\/libucs\.so/.test(maps) && inEffect.length > 0
      ? [
          "UCX (loaded with LibTorch's Open MPI) patches libc's mmap as it loads, and then about 1 Node process in 150 " +
            `crashes or hangs: ${inEffect.map(([n, v]) => `${n}=${v}`).join(' ')} in effect (torch-attn sets them where the environment does not)`,
        ]
      : [];
  }
  return ucxNote;
}

/** CUDA as this process sees it. */
export const cuda = {
  /** True when this build has CUDA and at least one GPU is usable. */
  isAvailable(): boolean {
    return native.cudaIsAvailable();
  },
  /** How many GPUs LibTorch can use (0 without CUDA). */
  deviceCount(): number {
    return native.cudaDeviceCount();
  },
  /** cuDNN autotuning (PyTorch's torch.backends.cudnn.benchmark): each new input shape tries
   *  cuDNN's algorithms once and keeps the fastest; best when shapes repeat. Returns the setting;
   *  `on` changes it first. Without CUDA it stays false. */
  cudnnBenchmark(on?: boolean): boolean {
    if (on !== undefined && typeof on !== 'boolean') throw validate.typeError('cuda.cudnnBenchmark(on)', 'true or false', on);
    return native.cudnnBenchmark(on);
  },
};

/**
 * Sets LibTorch's intra-op thread count for all torch-attn work, also work run on its own threads.
 * The default is OMP_NUM_THREADS when set, else the number of cores.
 */
export function setNumThreads(n: number): void {
  native.setNumThreads(validate.integer(n, 'setNumThreads(n)', 1, 1024));
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Seeds LibTorch's random generators (CPU and CUDA) so runs repeat. */
export function manualSeed(seed: number | bigint): void {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 2n ** 64n) throw new RangeError(`manualSeed(seed) must be from 0 to 2^64 - 1, got ${seed}`);
    native.manualSeed(seed);
    return;
  }
  if (typeof seed === 'number' && seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`manualSeed(seed) takes a number from 0 to 2^53 - 1 (beyond, a number is not exact) or a bigint up to 2^64 - 1, got ${seed}`);
  }
  native.manualSeed(validate.integer(seed, 'manualSeed(seed)', 0));
}

/**
 * LibTorch's CPU memory goes through torch-attn's caching allocator: blocks of 128 KiB and more
 * whose size recurs (the buffers of a forward pass run again and again) are kept when freed and
 * reused, instead of being mapped fresh from the kernel each call; at most `limitBytes`
 * (TORCH_ATTN_CPU_CACHE_MB, default 1024; 0 turns it off). `stats()` tells what it holds;
 * `empty()` hands the kept blocks back to the system.
 */
export const cpuCache = {
  stats(): { cachedBytes: number; limitBytes: number; hits: number; misses: number } {
    return native.cpuCache();
  },
  empty(): void {
    native.cpuCache(true);
  },
};
