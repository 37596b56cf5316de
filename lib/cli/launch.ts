// `torch-attn launch`: torchrun's job for torch-attn scripts. Starts --nproc-per-node ranks of a
// command on this machine with the environment distributed.init() reads, forwards Ctrl-C and
// SIGTERM to them, and when one rank fails stops the others and exits with its code.
import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** Threads per rank (OMP_NUM_THREADS); default: this machine's cores / local ranks, at least 1. */
  threads?: number;
  command: string[];
  /** Seconds the other ranks get to stop after SIGTERM before SIGKILL. */
  grace?: number;
}

/** The environment of rank `local` of this node, as torchrun sets it. */
export function rankEnvironment(o: LaunchOptions, local: number, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const threads = o.threads ?? Math.max(1, Math.floor(os.availableParallelism() / o.nprocPerNode));
  return {
    ...base,
    MASTER_ADDR: o.masterAddr,
    MASTER_PORT: String(o.masterPort),
    WORLD_SIZE: String(o.nprocPerNode * o.nnodes),
    RANK: String(o.nodeRank * o.nprocPerNode + local),
    LOCAL_RANK: String(local),
    LOCAL_WORLD_SIZE: String(o.nprocPerNode),
    GROUP_RANK: String(o.nodeRank),
    OMP_NUM_THREADS: base.OMP_NUM_THREADS ?? String(threads),
  };
}

/** Runs the ranks; resolves to the exit code: 0 when every rank succeeded, else the first
 *  failure's (128 + signal number for a rank killed by a signal). `log` gets one line per event. */
export function launch(o: LaunchOptions, log: (line: string) => void): Promise<number> {
  const [file, ...args] = o.command;
  const children: ChildProcess[] = [];
  let failure: number | undefined;
  let remaining = o.nprocPerNode;
  let killTimer: NodeJS.Timeout | undefined;
  return new Promise((resolve) => {
    const stopAll = (signal: NodeJS.Signals) => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
      killTimer ??= setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, (o.grace ?? 10) * 1000);
    };
    const forward = (signal: NodeJS.Signals) => () => {
      log(`launch: ${signal}, passing it to the ranks`);
      failure ??= 128 + (os.constants.signals[signal] ?? 0);
      stopAll(signal);
    };
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    for (let local = 0; local < o.nprocPerNode; local++) {
      const env = rankEnvironment(o, local);
      const child = spawn(file, args, { env, stdio: 'inherit' });
      children.push(child);
      const rank = env.RANK;
      child.on('error', (err) => {
        log(`launch: rank ${rank} could not start '${file}': ${err.message}`);
        child.emit('exit', 127, null);
      });
      child.once('exit', (code, signal) => {
        const status = code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
        if (status !== 0 && failure === undefined) {
          failure = status;
          log(`launch: rank ${rank} failed (${signal ? `signal ${signal}` : `exit code ${code}`}); stopping the other ranks`);
          stopAll('SIGTERM');
        }
        if (--remaining === 0) {
          clearTimeout(killTimer);
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onTerm);
          resolve(failure ?? 0);
        }
      });
    }
  });
}
