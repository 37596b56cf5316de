// Inference for services: images decoded from memory, and a dynamic batcher that coalesces
// concurrent requests on one model into batches (TorchServe's batch_size / max_batch_delay), with
// a bounded queue, cancellation and statistics.
import { codedError, ErrorCode } from '../errors';
import { native } from '../native';
import { type Precision, precisionOption } from '../precision';
import { type TransformLike, type TransformStep, toSteps } from '../data/transforms';
import { type Tensor, expectTensor } from '../tensor/tensor';
import type { Model } from '../models/model';
import * as validate from '../validate';

export interface DecodeImageOptions {
  /** Applied after decoding, natively (e.g. a run's eval transform: resize, center crop, toTensor, normalize). */
  transform?: TransformLike;
  /** Shown in errors instead of 'image' (a file name, a request id). */
  name?: string;
  /** Most pixels (width x height) taken: an image its header declares larger is refused
   *  (ERR_TORCH_ATTN_DATA) before anything is decoded. Default: only the process-wide limits of
   *  `datasets.imageLimits()` (PIL's: up to 179 M pixels, 537 MB decoded). A service taking
   *  uploads wants far less: a JPEG of 1 MB can hold 8000 x 8000 pixels, 196 MB and 0.3 s of a
   *  core to decode (refused from the header: 1.3 ms). */
  maxPixels?: number;
}

/**
 * Decodes a JPEG or PNG held in memory (an HTTP body) off the main thread, with the decoder, the
 * PIL-equivalent rules and the size limits (`datasets.imageLimits()`) of the image datasets. A
 * small image (at most 16 KiB and 64 x 64 pixels, with no transform or one of resize, centerCrop
 * to at most 64, toTensor and normalize) is decoded at once on the calling thread instead: it takes
 * microseconds, less than the hop to a pool thread and back.
 * Resolves to a uint8 [H, W, 3] tensor, or with a transform ending in toTensor, float32 [C, H, W].
 * A corrupt or oversized image rejects with code ERR_TORCH_ATTN_DATA.
 */
export function decodeImage(data: Uint8Array, options?: DecodeImageOptions): Promise<Tensor> {
  try {
    if (!(data instanceof Uint8Array)) throw validate.typeError('decodeImage(data)', 'a Buffer or Uint8Array', data);
    const o = validate.options(options, 'decodeImage() options', ['transform', 'name', 'maxPixels']);
    const steps = o.transform === undefined ? undefined : toSteps(o.transform, 'decodeImage() options.transform');
    const name = o.name === undefined ? undefined : String(o.name);
    const maxPixels = o.maxPixels === undefined ? undefined : validate.integer(o.maxPixels, 'decodeImage() options.maxPixels', 1);
    return native.decodeImage(data, steps, name, maxPixels) as unknown as Promise<Tensor>;
  } catch (err) {
    return Promise.reject(err);
  }
}

export interface PredictorOptions {
  /** Most images in one forward pass; default 32. The model then keeps its inference plans
   *  (one per input shape) for as many more shapes, so that every batch size the batcher forms
   *  keeps its plan (72 plans at most in all). */
  maxBatch?: number;
  /** Longest a batch is held open for more requests, in ms; default 5. The time counts from its
   *  oldest request's arrival, or, where that request arrived while a batch ran, from when the
   *  model became free (as TorchServe's max_batch_delay counts from when a worker takes its first
   *  job). 0: a batch runs as soon as the model is free. */
  maxDelayMs?: number;
  /** Most images waiting (not counting the batch running); beyond it calls reject with code
   *  ERR_TORCH_ATTN_OVERLOADED. Default 1024. */
  maxQueue?: number;
  /** 'fp32' (default), 'bf16' or 'fp16' (CUDA), as predict(). */
  precision?: Precision;
  /** What classify() applies to decoded images: the model's eval transform (ending in toTensor
   *  and normalize). Required for classify(). */
  transform?: TransformLike;
  /** Class names for classify(), by index; default the index as a string. */
  classes?: readonly string[];
  /** The only image size, H x W (one number: square), that predictions take: an image the
   *  transform leaves at another size is refused (ERR_TORCH_ATTN_DATA), as is a predict() input of
   *  another size (RangeError), before it reaches the model. Default: any size. A model computes
   *  in proportion to the pixels, so without it a transform with no resize lets a small upload
   *  hold the model for long and take gigabytes (ResNet18-CBAM: a 36-KB JPEG of 1500 x 1500,
   *  14.7 s and 2.2 GB). predictorFromRun sets the size the run's eval transform makes. */
  imageSize?: number | readonly [number, number];
  /** Most pixels of an image classify() decodes (DecodeImageOptions.maxPixels): a larger one is
   *  refused from its header (ERR_TORCH_ATTN_DATA). Default: only the process-wide image limits;
   *  predictorFromRun sets 4096 x 4096 (16,777,216). */
  maxPixels?: number;
  /** Called after each forward pass (for metrics). An error it throws is reported as a process
   *  warning (code TORCH_ATTN_LISTENER_ERROR); the batcher goes on. */
  onBatch?: (batch: BatchInfo) => void;
}

export interface BatchInfo {
  images: number;
  requests: number;
  /** The forward pass, in ms: from its start as far as the batcher can tell (when it was handed
   *  to the model, or when the batch ahead of it ended) until its results were taken. */
  ms: number;
  /** Each request's wait for this batch, in ms: from its arrival to the batch's start (as `ms`
   *  counts it), in the order the requests arrived. */
  waitsMs: number[];
}

/** Listeners of a predictor's batches besides its own onBatch: a server's metrics
 *  (observeBatches). */
const observers = new WeakMap<Predictor, Set<(batch: BatchInfo) => void>>();

/** @internal Calls `listener` after each of the predictor's forward passes, as onBatch, until the
 *  returned function is called. */
export function observeBatches(predictor: Predictor, listener: (batch: BatchInfo) => void): () => void {
  let set = observers.get(predictor);
  if (set === undefined) observers.set(predictor, (set = new Set()));
  const own = (batch: BatchInfo) => listener(batch);  // one registration per call, even of one function
  set.add(own);
  return () => void set.delete(own);
}

export interface PredictRequestOptions {
  /** Aborting removes a request that is still queued (it rejects with an AbortError); a request
   *  whose batch has been handed to the model completes. */
  signal?: AbortSignal;
}

export interface ClassifyOptions extends PredictRequestOptions {
  /** Classes per image, most probable first; default 5 (at most the number of classes). */
  topK?: number;
  /** What a decoding error calls the image (a file name); default 'image' ('image 3' in an array). */
  name?: string;
}

export interface Classification {
  label: string;
  index: number;
  probability: number;
}

export interface PredictorStats {
  /** Requests accepted (predict() calls; classify() counts one per image). */
  requests: number;
  /** Images predicted. */
  images: number;
  batches: number;
  /** Images per forward pass, on average. */
  meanBatchSize: number;
  maxBatchSize: number;
  /** Requests and images waiting now. */
  queueLength: number;
  queuedImages: number;
  /** Time from a request's arrival to the start of its batch, on average, in ms. */
  meanQueueWaitMs: number;
  /** Time batches were running, in all, in ms (BatchInfo.ms summed: the forward passes, and the
   *  hand-over to the compute thread and back). Over a stretch of wall
   *  time, its share is the model's utilization: near all of it, requests wait on compute, and
   *  only a faster model (a lower precision) or more hardware serves more. */
  computeMs: number;
  /** Refused because the queue was full. */
  rejected: number;
  /** Removed from the queue by their signal. */
  aborted: number;
  /** Completed with an error. */
  failed: number;
}

interface Pending {
  x: Tensor;
  images: number;
  key: string;
  arrived: number;
  resolve: (y: Tensor) => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('the request was aborted'), { name: 'AbortError' });
}

/**
 * Concurrent inference on one model. Requests (single images C x H x W or batches B x C x H x W)
 * queue; the batcher runs the oldest one together with those that arrived with it, up to
 * `maxBatch` images, as soon as that many wait or `maxDelayMs` after the oldest arrived or the
 * model became free (whichever was later), one batch at a time (a full one may wait behind the
 * running one on the compute thread), and hands each caller its own rows. Outputs equal
 * one-at-a-time predict() outputs.
 * Made by `model.predictor(options)`.
 */
export class Predictor {
  readonly maxBatch: number;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
  readonly precision: Precision;
  readonly classes: readonly string[] | undefined;
  /** The only H x W predictions take (PredictorOptions.imageSize), or undefined: any. */
  readonly imageSize: readonly [number, number] | undefined;
  /** Most pixels of an image classify() decodes (PredictorOptions.maxPixels), or undefined: the
   *  process-wide image limits only. */
  readonly maxPixels: number | undefined;
  readonly #model: Model;
  readonly #transform: TransformStep[] | undefined;
  readonly #onBatch: ((batch: BatchInfo) => void) | undefined;
  #queue: Pending[] = [];
  #queuedImages = 0;
  /** Batches handed to the model and not yet answered: the running one, and at most one full
   *  one waiting behind it (#schedule). */
  #inFlight = 0;
  /** When the batcher last took a batch's results (performance.now()): a batch handed over while
   *  another ran starts running, as far as the batcher can tell, then. */
  #lastEnd = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #drained: (() => void)[] = [];
  #stats = { requests: 0, images: 0, batches: 0, maxBatchSize: 0, waitMs: 0, waited: 0, computeMs: 0, rejected: 0, aborted: 0, failed: 0 };

  /** @internal Use model.predictor(). */
  constructor(model: Model, options?: PredictorOptions) {
    const o = validate.options(options, 'predictor() options', ['maxBatch', 'maxDelayMs', 'maxQueue', 'precision', 'transform', 'classes', 'onBatch', 'imageSize', 'maxPixels']);
    this.#model = model;
    this.maxBatch = o.maxBatch === undefined ? 32 : validate.integer(o.maxBatch, 'predictor() options.maxBatch', 1, 1 << 16);
    this.maxDelayMs = o.maxDelayMs === undefined ? 5 : validate.finiteNumber(o.maxDelayMs, 'predictor() options.maxDelayMs');
    // A timer takes at most 2^31 - 1 ms: Node made a longer delay 1 ms (with a warning).
    if (this.maxDelayMs < 0 || this.maxDelayMs > validate.MAX_TIMER_MS) {
      throw new RangeError(`predictor() options.maxDelayMs must be from 0 to ${validate.MAX_TIMER_MS} (a timer's longest), got ${this.maxDelayMs}`);
    }
    this.maxQueue = o.maxQueue === undefined ? 1024 : validate.integer(o.maxQueue, 'predictor() options.maxQueue', 1);
    this.precision = precisionOption(o.precision, 'predictor() options.precision', model.device);
    this.#transform = o.transform === undefined ? undefined : toSteps(o.transform, 'predictor() options.transform');
    if (o.onBatch !== undefined && typeof o.onBatch !== 'function') throw validate.typeError('predictor() options.onBatch', 'a function', o.onBatch);
    this.#onBatch = o.onBatch;
    if (o.classes !== undefined) {
      if (!Array.isArray(o.classes) || o.classes.some((c) => typeof c !== 'string')) {
        throw validate.typeError('predictor() options.classes', 'an Array of class names (strings)', o.classes);
      }
      this.classes = [...o.classes];
    }
    if (o.imageSize !== undefined) {
      const pair = typeof o.imageSize === 'number' ? [o.imageSize, o.imageSize] : o.imageSize;
      if (!Array.isArray(pair) || pair.length !== 2) throw validate.typeError('predictor() options.imageSize', 'a size (a number, or [height, width])', o.imageSize);
      this.imageSize = [validate.integer(pair[0], 'predictor() options.imageSize height', 1), validate.integer(pair[1], 'predictor() options.imageSize width', 1)];
    }
    this.maxPixels = o.maxPixels === undefined ? undefined : validate.integer(o.maxPixels, 'predictor() options.maxPixels', 1);
    model.native.reservePlans(this.maxBatch);
  }

  /** Why an input of this shape is not taken (imageSize), or undefined. */
  #wrongSize(shape: readonly number[]): string | undefined {
    if (this.imageSize === undefined) return undefined;
    const [h, w] = this.imageSize;
    const [H, W] = shape.slice(-2);
    return H === h && W === w ? undefined : `this predictor takes ${h} x ${w} images, got ${H} x ${W}`;
  }

  /** Logits for one image (C x H x W: a 1-D result) or a batch (B x C x H x W: B x classes), in
   *  eval mode, batched with concurrent requests. */
  predict(x: Tensor, options?: PredictRequestOptions): Promise<Tensor> {
    try {
      const o = validate.options(options, 'predictor.predict() options', ['signal']);
      expectTensor(x, 'predictor.predict(x)');
      if (x.dtype !== 'float32') throw new TypeError(`predictor.predict(x) takes a float32 tensor (after toTensor), got ${x.dtype}`);
      if (x.shape.length !== 3 && x.shape.length !== 4) {
        throw new RangeError(`predictor.predict(x) takes one image C x H x W or a batch B x C x H x W, got shape [${x.shape.join(', ')}]`);
      }
      const wrong = this.#wrongSize(x.shape);
      if (wrong !== undefined) throw new RangeError(`predictor.predict(x): ${wrong}`);
      return this.#enqueue(x, validate.abortSignal(o.signal, 'predictor.predict() options.signal'));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Top-k classes for encoded images (JPEG/PNG bytes): decoded and transformed natively with the
   * predictor's `transform`, predicted through the batcher, softmax probabilities. One image gives
   * one list; an Array of images gives one list per image.
   */
  classify(images: Uint8Array, options?: ClassifyOptions): Promise<Classification[]>;
  classify(images: readonly Uint8Array[], options?: ClassifyOptions): Promise<Classification[][]>;
  async classify(images: Uint8Array | readonly Uint8Array[], options?: ClassifyOptions): Promise<Classification[] | Classification[][]> {
    const o = validate.options(options, 'classify() options', ['topK', 'signal', 'name']);
    if (o.name !== undefined && typeof o.name !== 'string') throw validate.typeError('classify() options.name', 'a string', o.name);
    const name = o.name ?? 'image';
    const k = o.topK === undefined ? 5 : validate.integer(o.topK, 'classify() options.topK', 1);
    const signal = validate.abortSignal(o.signal, 'classify() options.signal');
    if (this.#transform === undefined) {
      throw new TypeError('classify() needs the model\'s eval transform: pass predictor({ transform }) (e.g. a run\'s test transform)');
    }
    const one = async (bytes: Uint8Array, i: number) => {
      const what = Array.isArray(images) ? `${name} ${i}` : name;
      const x = await decodeImage(bytes, { transform: this.#transform, name: what, maxPixels: this.maxPixels });
      if (x.dtype !== 'float32') {
        x.dispose();
        throw new TypeError('the predictor\'s transform must end with toTensor() (and normalize) so that images become float32 tensors');
      }
      const wrong = this.#wrongSize(x.shape);
      if (wrong !== undefined) {
        x.dispose();
        throw codedError(ErrorCode.DATA, `${what}: ${wrong} after the transform (resize and centerCrop in the transform bring any image to its size)`);
      }
      try {
        const y = await this.#enqueue(x, signal);
        const logits = y.toFloat32Array();
        y.dispose();
        return this.#topK(logits, k);
      } finally {
        x.dispose();
      }
    };
    if (images instanceof Uint8Array) return one(images, 0);
    if (!Array.isArray(images)) throw validate.typeError('classify(images)', 'a Buffer, a Uint8Array or an Array of them', images);
    // Every element checked before any is decoded: a bad one found midway would leave the images
    // before it decoding with nobody to hear their errors.
    const bad = images.findIndex((b) => !(b instanceof Uint8Array));
    if (bad >= 0) throw validate.typeError(`classify(images[${bad}])`, 'a Buffer or Uint8Array', images[bad]);
    return Promise.all(images.map((b, i) => one(b, i)));
  }

  stats(): PredictorStats {
    const s = this.#stats;
    return {
      requests: s.requests,
      images: s.images,
      batches: s.batches,
      meanBatchSize: s.batches ? s.images / s.batches : 0,
      maxBatchSize: s.maxBatchSize,
      queueLength: this.#queue.length,
      queuedImages: this.#queuedImages,
      meanQueueWaitMs: s.waited ? s.waitMs / s.waited : 0,
      computeMs: s.computeMs,
      rejected: s.rejected,
      aborted: s.aborted,
      failed: s.failed,
    };
  }

  /** Takes no more requests; resolves once every queued and running one has finished. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained.push(resolve);
      this.#schedule(true);
    });
  }

  #topK(logits: Float32Array, k: number): Classification[] {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    const p = Array.from(logits, (v) => {
      const e = Math.exp(v - max);
      sum += e;
      return e;
    });
    return p
      .map((e, index) => ({ label: this.classes?.[index] ?? String(index), index, probability: e / sum }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, Math.min(k, p.length));
  }

  #enqueue(x: Tensor, signal: AbortSignal | undefined): Promise<Tensor> {
    if (this.#closed) return Promise.reject(codedError(ErrorCode.OVERLOADED, 'the predictor is closed: it takes no more requests'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const images = x.shape.length === 3 ? 1 : x.shape[0];
    if (this.#queuedImages + images > this.maxQueue && this.#queue.length > 0) {
      this.#stats.rejected++;
      return Promise.reject(
        codedError(
          ErrorCode.OVERLOADED,
          `the predictor is overloaded: ${this.#queuedImages} images wait (maxQueue ${this.maxQueue}); retry later, or raise maxQueue`,
        ),
      );
    }
    return new Promise<Tensor>((resolve, reject) => {
      const shape = x.shape.length === 3 ? x.shape : x.shape.slice(1);
      const p: Pending = { x, images, key: shape.join('x'), arrived: performance.now(), resolve, reject, signal };
      if (signal) {
        p.onAbort = () => {
          const i = this.#queue.indexOf(p);
          if (i < 0) return;
          this.#queue.splice(i, 1);
          this.#queuedImages -= p.images;
          this.#stats.aborted++;
          reject(abortError(signal));
          this.#settled();
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#queue.push(p);
      this.#queuedImages += images;
      this.#stats.requests++;
      this.#schedule(false);
    });
  }

  /** Runs a batch now if one is due (full, or maxDelayMs after its window opened), else arms the
   *  timer. While a batch runs, only a full one is handed over, to wait behind it on the compute
   *  thread: the model goes on to it as soon as the running one ends, instead of when this thread
   *  next takes the results (an event loop busy with requests took 0.44 ms more than the 3.95 ms of
   *  a batch of 1, the compute thread idle meanwhile: `serve --max-batch 1` with the model on one
   *  thread and a core left to the server, 16% more requests/s). One that is not full waits here,
   *  to gather the requests that arrive meanwhile, and then for maxDelayMs more: its window opens
   *  when its oldest request arrived or, if that was while a batch ran, when the model became free
   *  (TorchServe's max_batch_delay counts from when a worker takes its first job). Under a steady
   *  load of N clients each waiting for its answer, the requests that came during a batch are
   *  joined by those whose answers that batch just sent, instead of running at once as the other
   *  half of N: 32 connections of bench-serve formed batches of 28-31 instead of 16, and served
   *  5-14% more requests/s, servers taking turns (docs/measurements.md, "Serving"). */
  #schedule(flush: boolean) {
    if (this.#queue.length === 0 || this.#inFlight > 1) return;
    if (this.#inFlight === 1) {
      if (this.#queuedImages >= this.maxBatch) void this.#runBatch();
      return;
    }
    const waited = performance.now() - Math.max(this.#queue[0].arrived, this.#lastEnd);
    if (flush || this.#closed || this.#queuedImages >= this.maxBatch || waited >= this.maxDelayMs) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#runBatch();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#schedule(true);
    }, this.maxDelayMs - waited);
  }

  async #runBatch() {
    // The oldest request and those after it with the same image shape, up to maxBatch images.
    const key = this.#queue[0].key;
    const batch: Pending[] = [];
    let images = 0;
    for (let i = 0; i < this.#queue.length; ) {
      const p = this.#queue[i];
      if (p.key === key && (batch.length === 0 || images + p.images <= this.maxBatch)) {
        batch.push(p);
        images += p.images;
        this.#queue.splice(i, 1);
      } else {
        i++;
      }
      if (images >= this.maxBatch) break;
    }
    this.#queuedImages -= images;
    const handed = performance.now();
    for (const p of batch) {
      if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
    }
    this.#inFlight++;
    try {
      await this.#predictAll(batch);
      // Each span starts no earlier than the last one ended: they never overlap.
      const end = performance.now();
      const start = Math.max(handed, this.#lastEnd);
      const ms = end - start;
      this.#lastEnd = end;
      const waitsMs = batch.map((p) => start - p.arrived);
      for (const w of waitsMs) this.#stats.waitMs += w;
      this.#stats.waited += batch.length;
      this.#stats.batches++;
      this.#stats.images += images;
      this.#stats.maxBatchSize = Math.max(this.#stats.maxBatchSize, images);
      this.#stats.computeMs += ms;
      this.#report({ images, requests: batch.length, ms, waitsMs });
    } finally {
      this.#inFlight--;
      this.#settled();
      this.#schedule(false);
    }
  }

  /** One forward pass for the batch; when it fails and holds several requests, each runs alone,
   *  so that one bad input fails only its own request. */
  async #predictAll(batch: Pending[]) {
    try {
      const ys = (await this.#model.native.predictParts(batch.map((p) => p.x) as never, this.precision)) as unknown as Tensor[];
      batch.forEach((p, i) => p.resolve(ys[i]));
    } catch (err) {
      if (batch.length === 1 || (err as { code?: string }).code === ErrorCode.BUSY) {
        this.#stats.failed += batch.length;
        for (const p of batch) p.reject(err);
        return;
      }
      for (const p of batch) await this.#predictAll([p]);
    }
  }

  /** Calls onBatch. Its callers already have their results and nobody awaits the batch, so an
   *  error it throws cannot reject anything: it becomes a process warning (thrown on, it would be
   *  an unhandled rejection, which ends the process), and the batcher goes on. */
  #report(batch: BatchInfo) {
    for (const listener of [this.#onBatch, ...(observers.get(this) ?? [])]) {
      try {
        listener?.(batch);
      } catch (err) {
        process.emitWarning(`predictor onBatch listener threw: ${err instanceof Error ? err.message : String(err)}`, { code: 'TORCH_ATTN_LISTENER_ERROR' });
      }
    }
  }

  #settled() {
    if (this.#queue.length === 0 && this.#inFlight === 0) for (const done of this.#drained.splice(0)) done();
  }
}
