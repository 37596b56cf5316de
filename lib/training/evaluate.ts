// evaluate(): loss, top-1/top-5, the confusion matrix and per-class precision/recall/F1 of a
// model on a dataset, computed natively off the main thread.
import { DataLoader } from '../data/loader';
import { ImageDataset } from '../data/datasets';
import type { Model } from '../models/model';
import { native } from '../native';
import * as validate from '../validate';
import { precisionOption, type Precision } from '../precision';

export interface ClassMetrics {
  class: string;
  precision: number;
  recall: number;
  f1: number;
  /** Test samples of this class. */
  support: number;
}

export interface Evaluation {
  loss: number;
  top1: number;
  top5: number;
  count: number;
  classes: string[];
  /** confusion[true][predicted]. */
  confusion: number[][];
  perClass: ClassMetrics[];
  macroF1: number;
  /** Softmax outputs, [count x classes] row-major, with `labels` (when asked for). */
  probabilities?: Float32Array;
  labels?: Int32Array;
}

export interface EvaluateOptions {
  batchSize?: number;
  workers?: number;
  /** Keep every sample's class probabilities (for PR curves). */
  probabilities?: boolean;
  /** 'fp32' (default), 'bf16' or 'fp16' (CUDA): autocast for the forward passes; loss and metrics in float32. */
  precision?: Precision;
  /** Called on the main thread about ten times a second while the evaluation runs, and once at
   *  the end, with the images evaluated so far and the dataset's size (a progress bar). One that
   *  throws is not called again, and evaluate() rejects with its error when the pass has ended. */
  onProgress?: (images: number, total: number) => void;
}

/** Precision, recall and F1 per class from a confusion matrix (0 where undefined, as sklearn's zero_division=0). */
export function classMetrics(confusion: number[][], classes: readonly string[]): ClassMetrics[] {
  return confusion.map((row, c) => {
    const tp = row[c];
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, r) => a + r[c], 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { class: classes[c] ?? String(c), precision, recall, f1, support };
  });
}

export async function evaluate(model: Model, data: ImageDataset | DataLoader, options?: EvaluateOptions): Promise<Evaluation> {
  const o = validate.options(options, 'evaluate() options', ['batchSize', 'workers', 'probabilities', 'precision', 'onProgress']);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw validate.typeError('evaluate() options.onProgress', 'a function (images, total)', o.onProgress);
  const precision = precisionOption(o.precision, 'evaluate() options.precision', model.device);
  const loader =
    data instanceof DataLoader
      ? data
      : data instanceof ImageDataset
        ? new DataLoader(data, { batchSize: o.batchSize ?? 256, workers: o.workers ?? 2, shuffle: false })
        : (() => {
            throw validate.typeError('evaluate(data)', 'a dataset or a DataLoader', data);
          })();
  let r: Awaited<ReturnType<typeof native.evaluate>>;
  if (o.onProgress) {
    // The native evaluation stores its count in shared memory; a timer reads it here.
    // A listener that throws is not called again, and evaluate() rejects with its error once the
    // pass has ended (thrown from the timer, it would end the process).
    const done = new Int32Array(new SharedArrayBuffer(4));
    const total = loader.dataset.length;
    let listenerError: { err: unknown } | undefined;
    const report = () => {
      if (listenerError) return;
      try {
        o.onProgress!(Atomics.load(done, 0), total);
      } catch (err) {
        listenerError = { err };
      }
    };
    const timer = setInterval(report, 100);
    try {
      r = await native.evaluate(model.native, loader.handle, o.probabilities === true, precision, done);
    } finally {
      clearInterval(timer);
    }
    report();
    if (listenerError) throw listenerError.err;
  } else {
    r = await native.evaluate(model.native, loader.handle, o.probabilities === true, precision);
  }
  const classes = [...loader.dataset.classes];
  const k = r.classes;
  if (k !== classes.length) {
    throw new RangeError(`evaluate(): the model has ${k} outputs but the dataset has ${classes.length} classes`);
  }
  const confusion = Array.from({ length: k }, (_, i) => Array.from(r.confusion.subarray(i * k, (i + 1) * k)));
  const perClass = classMetrics(confusion, classes);
  return {
    loss: r.count ? r.lossSum / r.count : 0,
    top1: r.count ? r.top1 / r.count : 0,
    top5: r.count ? r.top5 / r.count : 0,
    count: r.count,
    classes,
    confusion,
    perClass,
    macroF1: perClass.reduce((a, m) => a + m.f1, 0) / Math.max(perClass.length, 1),
    probabilities: r.probabilities,
    labels: r.labels,
  };
}
