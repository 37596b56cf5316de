// PR curves and average precision against values worked out by hand (scikit-learn's
// precision_recall_curve / average_precision_score give the same).
import { describe, expect, it } from 'vitest';
import { prCurves } from '../../lib/runs/metrics';

describe('prCurves', () => {
  it('one class against the rest: points per threshold, average precision', () => {
    // 4 samples, 2 classes; class-0 scores 0.9, 0.8, 0.7, 0.1 for labels 0, 1, 0, 1.
    const probs = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.1, 0.9];
    const labels = [0, 1, 0, 1];
    const [c0, c1] = prCurves(probs, labels, ['a', 'b']);
    expect(c0.precision).toEqual([1, 0.5, 2 / 3, 0.5]);
    expect(c0.recall).toEqual([0.5, 0.5, 1, 1]);
    expect(c0.averagePrecision).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12); // 0.8333
    // class 1 scores 0.1, 0.2, 0.3, 0.9 for labels 0, 1, 0, 1: 0.9 (pos), 0.3 (neg), 0.2 (pos), 0.1 (neg)
    expect(c1.averagePrecision).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12);
    expect(c1.positives).toBe(2);
  });

  it('tied scores make one point; a class without positives has AP 0', () => {
    const probs = [0.5, 0.5, 0.5, 0.5, 0.2, 0.8];
    const [a, b] = prCurves(probs, [0, 1, 1], ['a', 'b']);
    expect(a.precision).toEqual([0.5, 1 / 3]);
    expect(a.recall).toEqual([1, 1]);
    expect(a.averagePrecision).toBeCloseTo(0.5, 12);
    expect(b.averagePrecision).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12); // 0.8 (pos), then 0.5 tied (pos, neg)
    const none = prCurves([0.3, 0.7], [1], ['a', 'b'])[0];
    expect(none.averagePrecision).toBe(0);
    expect(() => prCurves([0.1], [0, 1], ['a', 'b'])).toThrow(/1 scores for 2 samples x 2 classes/);
  });

  it('ROC-AUC per class equals the Mann-Whitney statistic (ties count half), null without negatives', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const n = 60;
    const k = 3;
    const labels = Array.from({ length: n }, (_, i) => i % k);
    // Scores rounded to 0.1 so that there are ties.
    const probs = labels.flatMap((l) => Array.from({ length: k }, (_, c) => Math.round((rand() + (c === l ? 0.4 : 0)) * 10) / 10));
    const curves = prCurves(probs, labels, ['a', 'b', 'c']);
    for (let c = 0; c < k; c++) {
      let wins = 0;
      let pairs = 0;
      for (let i = 0; i < n; i++) {
        if (labels[i] !== c) continue;
        for (let j = 0; j < n; j++) {
          if (labels[j] === c) continue;
          pairs++;
          const d = probs[i * k + c] - probs[j * k + c];
          wins += d > 0 ? 1 : d === 0 ? 0.5 : 0;
        }
      }
      expect(curves[c].rocAuc).toBeCloseTo(wins / pairs, 12);
    }
    expect(prCurves([0.9, 0.1, 0.8, 0.2], [0, 0], ['a', 'b'])[0].rocAuc).toBeNull();
  });
});
