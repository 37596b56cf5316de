// DataLoader: batches made on native worker threads, in order, with a bounded prefetch queue.
// Iterate it with `for await`; each iteration is one epoch (reshuffled when `shuffle` is set).
import { expectGroup, type ProcessGroup } from '../distributed';
import { native, type NativeLoader } from '../native';
import { Tensor } from '../tensor/tensor';
import * as validate from '../validate';
import { integer, options, typeError } from '../validate';
import { type ImageDataset, nativeDataset } from './datasets';

export interface DataLoaderOptions {
  batchSize?: number;
  shuffle?: boolean;
  /** Leave out the last, smaller batch. */
  dropLast?: boolean;
  /** Loader threads (default 2); 0 makes each batch when it is asked for. */
  workers?: number;
  /** Batches made ahead of the consumer (default 2 per worker). */
  prefetch?: number;
  /** Seeds the shuffle and every sample's augmentation (default: drawn from manualSeed's generator). */
  seed?: number | bigint;
  /** Batches in page-locked memory, so the fine-tuner and evaluate() copy them to the GPU without
   *  blocking (CUDA only; an error without it). Default false. */
  pinMemory?: boolean;
  /** Data parallelism: this rank's share of every epoch, as PyTorch's DistributedSampler gives it
   *  (the same order on every rank, padded to a multiple of the world size, rank r takes positions
   *  r, r + worldSize, ...). `batchSize` is per rank. Augmentation seeds stay per sample, so the
   *  images do not depend on the world size. */
  distributed?: ProcessGroup;
}

export interface Batch {
  /** float32 [B, C, H, W]. */
  images: Tensor;
  /** int64 [B]. */
  labels: Tensor;
  /** Position of the batch in its epoch. */
  index: number;
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly dataset: ImageDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly workers: number;
  readonly seed: bigint;
  readonly distributed?: ProcessGroup;
  /** @internal */
  readonly handle: NativeLoader;
  private nextEpoch = 0;

  constructor(dataset: ImageDataset, opts?: DataLoaderOptions) {
    const handle = nativeDataset(dataset, 'new DataLoader(dataset)');
    const o = options(opts, 'DataLoader options', ['batchSize', 'shuffle', 'dropLast', 'workers', 'prefetch', 'seed', 'pinMemory', 'distributed']);
    this.distributed = o.distributed === undefined ? undefined : expectGroup(o.distributed, 'DataLoader options.distributed');
    this.dataset = dataset;
    this.batchSize = o.batchSize === undefined ? 1 : integer(o.batchSize, 'DataLoader options.batchSize', 1);
    this.shuffle = flag(o.shuffle, 'shuffle');
    this.dropLast = flag(o.dropLast, 'dropLast');
    this.workers = o.workers === undefined ? 2 : integer(o.workers, 'DataLoader options.workers', 0, 256);
    const prefetch = o.prefetch === undefined ? undefined : integer(o.prefetch, 'DataLoader options.prefetch', 1, 4096);
    if (o.seed !== undefined && typeof o.seed !== 'bigint') integer(o.seed, 'DataLoader options.seed', 0);
    this.seed = o.seed === undefined ? native.drawSeed() : BigInt(o.seed);
    this.handle = native.createLoader(handle, {
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      dropLast: this.dropLast,
      workers: this.workers,
      prefetch,
      seed: this.seed,
      pinMemory: flag(o.pinMemory, 'pinMemory'),
      shardRank: this.distributed?.rank ?? 0,
      shardCount: this.distributed?.worldSize ?? 1,
    });
  }

  /** Batches per epoch. */
  get length(): number {
    return this.handle.batchCount;
  }

  /** The batches of one epoch (0-based); the shuffle and augmentation depend on (seed, epoch) only. */
  epoch(index: number): AsyncIterableIterator<Batch> {
    const stream = this.handle.epoch(integer(index, 'loader.epoch(index)', 0));
    let done = false;
    const iterator: AsyncIterableIterator<Batch> = {
      async next(): Promise<IteratorResult<Batch>> {
        if (done) return { done: true, value: undefined };
        const batch = await stream.next();
        if (batch === null) {
          done = true;
          await stream.close();
          return { done: true, value: undefined };
        }
        return { done: false, value: { images: batch.images as unknown as Tensor, labels: batch.labels as unknown as Tensor, index: batch.index } };
      },
      /** Stops the loader threads at once; resolves when they are joined (off the JS thread). */
      async return(): Promise<IteratorResult<Batch>> {
        done = true;
        await stream.close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** The next epoch: the first `for await` is epoch 0, the next epoch 1, ... */
  [Symbol.asyncIterator](): AsyncIterableIterator<Batch> {
    return this.epoch(this.nextEpoch++);
  }
}

function flag(value: unknown, name: string): boolean {
  return value === undefined ? false : validate.flag(value, `DataLoader options.${name}`);
}
