// evaluate()'s progress: the native evaluation counts images into shared memory; the caller sees
// the count grow on the main thread and the whole set at the end. Batch events carry the rates.
import { describe, expect, it } from 'vitest';
import { CBAMCNN, DataLoader, evaluate, manualSeed, StagedFineTuner } from '../../lib/index';
import { native } from '../../lib/native';
import { colourData, thrown } from '../helpers';

describe('evaluate() progress', () => {
  it('reports images done, ending with the whole set; rejects a callback that is not a function', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const seen: [number, number][] = [];
    const ev = await evaluate(model, new DataLoader(colourData(40), { batchSize: 4, workers: 1 }), { onProgress: (n, total) => seen.push([n, total]) });
    expect(ev.count).toBe(40);
    expect(seen.at(-1)).toEqual([40, 40]);
    for (let i = 1; i < seen.length; i++) expect(seen[i][0]).toBeGreaterThanOrEqual(seen[i - 1][0]);
    await expect(evaluate(model, colourData(4), { onProgress: 5 as never })).rejects.toThrow(/onProgress/);
    // A model built for fewer classes than the data has: says which (colourData has 3).
    await expect(evaluate(new CBAMCNN({ numClasses: 2 }), colourData(6))).rejects.toThrow(
      /labels must be class indices from 0 to 1 \(the model has 2 outputs\), got values from 0 to 2: does the data have more classes than the model was built for \(numClasses\)\?/,
    );
  });

  it('a listener that throws: evaluate() rejects with its error after the pass, and it is not called again (thrown from the timer, it ended the process)', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    let calls = 0;
    // 800 images: long enough (~0.8 s here) for the timer to call it before the pass ends.
    const err = await evaluate(model, new DataLoader(colourData(800), { batchSize: 4, workers: 1 }), {
      onProgress: () => {
        calls++;
        throw new Error('the progress bar broke');
      },
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toBe('the progress bar broke');
    expect(calls).toBe(1);
    // The model is free again.
    expect((await evaluate(model, colourData(4))).count).toBe(4);
  });

  it('the native counter is a SharedArrayBuffer\'s memory only (an ordinary buffer could be detached)', () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const loader = new DataLoader(colourData(4), { batchSize: 4, workers: 1 });
    expect(thrown(() => native.evaluate(model.native, loader.handle, false, 'fp32', new Int32Array(1)))).toBeInstanceOf(TypeError);
    expect(String(thrown(() => native.evaluate(model.native, loader.handle, false, 'fp32', new Float64Array(new SharedArrayBuffer(8)) as never)))).toMatch(/an Int32Array over a SharedArrayBuffer/);
  });

  it('batch events carry the learning rate each group stepped with', async () => {
    manualSeed(1);
    const lrs: Record<string, number>[] = [];
    await new StagedFineTuner(new CBAMCNN({ numClasses: 3 }), { stages: [{ name: 'head', epochs: 1, train: ['head'], lr: 0.01 }, { name: 'all', epochs: 1, train: 'all', lr: 0.001 }], logEvery: 1 })
      .fit(colourData(16), null, { batchSize: 8, seed: 1, onBatch: (e) => lrs.push(e.lr) });
    expect(lrs).toHaveLength(4);
    expect(lrs[0].head).toBe(0.01);
    expect(lrs[0].block1).toBe(0); // frozen
    expect(lrs[3].block1).toBe(0.001);
  });
});
