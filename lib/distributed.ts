// Several processes training one model, on LibTorch's own distributed engine (c10d): what
// torch.distributed.init_process_group and DistributedDataParallel give a PyTorch user. Launch
// the ranks with `torch-attn launch --nproc-per-node N -- <command>` (or torchrun, or by hand with
// its environment), call distributed.init() in each, and pass the group to trainStep / fit.
import { ErrorCode, codedError } from './errors';
import { native, type NativeProcessGroup } from './native';
import { expectTensor, type Tensor } from './tensor/tensor';
import * as validate from './validate';

export const REDUCE_OPS = ['sum', 'avg', 'max', 'min', 'product'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];
/** Gloo: collectives on CPU tensors, over TCP. NCCL: CUDA tensors (and CPU tensors through Gloo
 *  beside it), in builds against a CUDA LibTorch 2.x with NCCL (distributed.backends() says). */
export const BACKENDS = ['gloo', 'nccl'] as const;
export type DistributedBackend = (typeof BACKENDS)[number];

export interface InitOptions {
  /** 'gloo' (the default; CPU tensors) or 'nccl' (CUDA tensors; each rank uses cuda:LOCAL_RANK). */
  backend?: DistributedBackend;
  /** Seconds a rendezvous or a collective may wait for the other ranks before failing with
   *  ERR_TORCH_ATTN_DISTRIBUTED. Default 1800, PyTorch's. */
  timeout?: number;
  /** Override torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). */
  rank?: number;
  worldSize?: number;
  localRank?: number;
  masterAddr?: string;
  masterPort?: number;
}

/** The environment variables init() reads, as torchrun sets them. */
export const LAUNCH_ENV = ['MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'] as const;

function envInteger(name: string, min: number, max: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    throw new RangeError(`distributed.init(): the environment variable ${name} must be an integer from ${min} to ${max}, got '${raw}'`);
  }
  return Number(raw);
}

/** A group of ranks. Collectives return new tensors (the argument is not changed) and reject with
 *  ERR_TORCH_ATTN_DISTRIBUTED when another rank fails or does not answer within the timeout. */
export class ProcessGroup {
  /** @internal */
  constructor(readonly native: NativeProcessGroup) {}
  get rank(): number {
    return this.native.rank;
  }
  get worldSize(): number {
    return this.native.worldSize;
  }
  get localRank(): number {
    return this.native.localRank;
  }
  get backend(): DistributedBackend {
    return this.native.backend as DistributedBackend;
  }
  get destroyed(): boolean {
    return this.native.destroyed;
  }
  /** Waits until every rank has called barrier(). */
  barrier(): Promise<void> {
    return this.native.barrier();
  }
  /** The element-wise reduction over all ranks' tensors (same shape and dtype on every rank). */
  allReduce(t: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
    validate.oneOf(op, 'allReduce() op', REDUCE_OPS);
    return this.native.allReduce(expectTensor(t, 'allReduce() tensor') as never, op) as unknown as Promise<Tensor>;
  }
  /** Rank `src`'s tensor on every rank. */
  broadcast(t: Tensor, src = 0): Promise<Tensor> {
    validate.integer(src, 'broadcast() src', 0, this.worldSize - 1);
    return this.native.broadcast(expectTensor(t, 'broadcast() tensor') as never, src) as unknown as Promise<Tensor>;
  }
  /** Every rank's tensor, indexed by rank. */
  allGather(t: Tensor): Promise<Tensor[]> {
    return this.native.allGather(expectTensor(t, 'allGather() tensor') as never) as unknown as Promise<Tensor[]>;
  }
  /** Leaves the group; later collectives on it fail. */
  destroy(): void {
    this.native.destroy();
  }
}

/** Joins the group described by torchrun's environment (or `options`); resolves once every rank
 *  has joined (rank 0 serves the rendezvous at MASTER_ADDR:MASTER_PORT). */
export async function init(options?: InitOptions): Promise<ProcessGroup> {
  const o = validate.options(options, 'distributed.init() options', ['backend', 'timeout', 'rank', 'worldSize', 'localRank', 'masterAddr', 'masterPort']);
  const backend = o.backend === undefined ? 'gloo' : validate.oneOf(o.backend, 'distributed.init() options.backend', BACKENDS);
  const timeout = o.timeout === undefined ? 1800 : validate.finiteNumber(o.timeout, 'distributed.init() options.timeout');
  if (!(timeout > 0)) throw new RangeError(`distributed.init() options.timeout must be more than 0 seconds, got ${timeout}`);
  const missing = (name: string) =>
    new RangeError(`distributed.init(): ${name} is not set. Start the ranks with \`torch-attn launch --nproc-per-node N -- <command>\` (or torchrun), which sets ${LAUNCH_ENV.join(', ')}; or pass it in the options`);
  const worldSize = o.worldSize !== undefined ? validate.integer(o.worldSize, 'distributed.init() options.worldSize', 1) : envInteger('WORLD_SIZE', 1, 1 << 20);
  if (worldSize === undefined) throw missing('WORLD_SIZE');
  const rank = o.rank !== undefined ? validate.integer(o.rank, 'distributed.init() options.rank', 0) : envInteger('RANK', 0, 1 << 20);
  if (rank === undefined) throw missing('RANK');
  if (rank >= worldSize) throw new RangeError(`distributed.init(): RANK must be below WORLD_SIZE (${worldSize}), got ${rank}`);
  const localRank = o.localRank !== undefined ? validate.integer(o.localRank, 'distributed.init() options.localRank', 0) : (envInteger('LOCAL_RANK', 0, 1 << 20) ?? 0);
  const masterAddr = o.masterAddr ?? process.env.MASTER_ADDR;
  if (masterAddr === undefined || masterAddr === '') throw missing('MASTER_ADDR');
  if (typeof masterAddr !== 'string') throw validate.typeError('distributed.init() options.masterAddr', 'a host name or address', masterAddr);
  const masterPort = o.masterPort !== undefined ? validate.integer(o.masterPort, 'distributed.init() options.masterPort', 1, 65535) : envInteger('MASTER_PORT', 1, 65535);
  if (masterPort === undefined) throw missing('MASTER_PORT');
  const group = await native.initProcessGroup({ backend, masterAddr, masterPort, rank, worldSize, localRank, timeoutMs: Math.ceil(timeout * 1000) });
  return new ProcessGroup(group);
}

/** `value` as a ProcessGroup; a TypeError naming `name` for anything else. */
export function expectGroup(value: unknown, name: string): ProcessGroup {
  if (!(value instanceof ProcessGroup)) throw validate.typeError(name, 'a ProcessGroup (from distributed.init())', value);
  if (value.destroyed) throw codedError(ErrorCode.DISTRIBUTED, `${name}: the process group was destroyed`);
  return value;
}

export const distributed = { init, backends: () => native.distributedBackends() as DistributedBackend[], REDUCE_OPS };

/** The syncBatchNorm option of trainStep / fit: a boolean, and true only with a process group. */
export function syncBatchNormOption(value: unknown, grouped: boolean, where: string): boolean {
  if (value === undefined) return false;
  const sync = validate.flag(value, `${where}.syncBatchNorm`);
  if (sync && !grouped) throw new RangeError(`${where}.syncBatchNorm needs ${where}.distributed (a process group from distributed.init())`);
  return sync;
}
