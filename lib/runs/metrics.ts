// Precision-recall curves and average precision per class (one class against the rest), from
// the softmax outputs evaluate() keeps. Average precision is scikit-learn's
// average_precision_score: sum over thresholds of (recall step) x precision; ROC-AUC is
// roc_auc_score's (trapezoids between distinct thresholds, so ties count half).
export interface PRCurve {
  class: string;
  /** One point per distinct score threshold, from the highest score down. */
  precision: number[];
  recall: number[];
  /** Area under the precision-recall curve as average precision. */
  averagePrecision: number;
  /** Area under the ROC curve; null when the class has no positives or no negatives. */
  rocAuc: number | null;
  positives: number;
}

/** `probabilities`: [n x classes] row-major; `labels`: n true classes. */
export function prCurves(probabilities: ArrayLike<number>, labels: ArrayLike<number>, classes: readonly string[]): PRCurve[] {
  const n = labels.length;
  const k = classes.length;
  if (probabilities.length !== n * k) throw new RangeError(`prCurves: ${probabilities.length} scores for ${n} samples x ${k} classes`);
  return classes.map((name, c) => {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probabilities[b * k + c] - probabilities[a * k + c]);
    const positives = Array.prototype.filter.call(labels, (l: number) => l === c).length;
    const precision: number[] = [];
    const recall: number[] = [];
    let tp = 0;
    let fp = 0;
    let ap = 0;
    let lastRecall = 0;
    const negatives = n - positives;
    let auc = 0;
    let lastFpr = 0;
    let lastTpr = 0;
    for (let i = 0; i < n; i++) {
      const idx = order[i];
      if (labels[idx] === c) tp++;
      else fp++;
      // Ties: one point per distinct score.
      if (i + 1 < n && probabilities[order[i + 1] * k + c] === probabilities[idx * k + c]) continue;
      const p = tp / (tp + fp);
      const r = positives ? tp / positives : 0;
      precision.push(p);
      recall.push(r);
      ap += (r - lastRecall) * p;
      lastRecall = r;
      const fpr = negatives ? fp / negatives : 0;
      auc += ((fpr - lastFpr) * (r + lastTpr)) / 2;
      lastFpr = fpr;
      lastTpr = r;
    }
    return { class: name, precision, recall, averagePrecision: positives ? ap : 0, rocAuc: positives && negatives ? auc : null, positives };
  });
}
