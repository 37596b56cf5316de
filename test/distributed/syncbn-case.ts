// The syncBatchNorm equivalence case, shared by test/distributed/ddp.test.ts and its ranks
// (syncbn-rank.ts): SGD steps on rows of fixed global batches, each rank taking its `batch` rows.
// One step: a BatchNorm bias that feeds a convolution and another BatchNorm has a gradient near
// zero by construction (the second BatchNorm's input gradient sums to zero per channel), so sums
// taken in another order (two ranks' halves, then the whole) drift apart at once after a second
// step (measured: 2e-6 of a tensor's largest value after one step, 6e-3 after two, in those
// biases); the running statistics agree to 3e-7 either way.
import { optim, tensor, type Model, type Tensor } from '../../lib/index';

export const SYNC_BN_CASE = { model: { depth: 18, numClasses: 10 } as const, batch: 6, steps: 1, lr: 0.01 };

/** `steps` SGD steps (momentum 0.9); step s trains on rows [first(s), first(s) + rows) of x and y. */
export async function trainRows(model: Model, x: Tensor, y: Tensor, rows: number, first: (step: number) => number, options: object = {}): Promise<void> {
  const image = x.numel / x.shape[0];
  const xs = x.data() as Float32Array;
  const ys = y.data() as BigInt64Array;
  model.train();
  const opt = optim.sgd(model, [{ params: 'all', lr: SYNC_BN_CASE.lr }], { momentum: 0.9 });
  for (let step = 0; step < SYNC_BN_CASE.steps; step++) {
    const at = first(step);
    const xb = tensor(xs.slice(at * image, (at + rows) * image), [rows, ...x.shape.slice(1)]);
    const yb = tensor(ys.slice(at, at + rows), [rows], { dtype: 'int64' });
    await model.trainStep(opt, xb, yb, options);
  }
}
