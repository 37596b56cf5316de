// Resume across versions and stages: a checkpoint committed from torch-attn 0.1.0 (made by
// scripts/make-resume-fixture.ts before the run loop moved into C++) still resumes, to the
// weights of the uninterrupted run; and a three-stage run aborted in its second stage resumes
// to the same weights as a run that was never stopped.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CBAMCNN, ErrorCode, StagedFineTuner, buildInfo, manualSeed } from '../../lib/index';
import { RESUME_FIXTURE, interruptedRun, straightRun } from '../../scripts/make-resume-fixture';
import { colourData, rejection, stateDictHash } from '../helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-resume-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const fixture = path.resolve(__dirname, '../fixtures/resume');
const expected = JSON.parse(fs.readFileSync(path.join(fixture, 'expected.json'), 'utf8')) as { libtorch: string; trainLoss: number[]; stateDictSha256: string };
/** Bits are compared with the fixture's only on the LibTorch that made it (other kernels, other bits). */
const sameLibTorch = buildInfo().libtorchVersion === expected.libtorch;
const f = RESUME_FIXTURE;

describe('resume', () => {
  it('a checkpoint written by torch-attn 0.1.0 resumes to the uninterrupted run\'s weights', async () => {
    manualSeed(99); // a different initialisation: everything comes from the checkpoint
    const model = new CBAMCNN({ numClasses: 3 });
    const stages: string[] = [];
    const result = await new StagedFineTuner(model, f.config(path.join(tmp, 'old'))).fit(colourData(f.samples), null, {
      batchSize: f.batchSize,
      resume: path.join(fixture, 'last.pth'),
      onStage: (s) => stages.push(s.name),
    });
    expect(stages).toEqual(['high', 'full']); // the stage it stopped in, then the rest
    expect(result.epochs.map((r) => r.epoch)).toEqual([1, 2, 3]);
    expect(result.epochs[0].trainLoss).toBe(expected.trainLoss[0]); // from the checkpoint's own records
    if (sameLibTorch) {
      expect(result.epochs.map((r) => r.trainLoss)).toEqual(expected.trainLoss);
      expect(stateDictHash(model)).toBe(expected.stateDictSha256);
    } else {
      expect(result.epochs.every((r) => Number.isFinite(r.trainLoss))).toBe(true);
    }
  }, 60_000);

  it('a three-stage run aborted in stage 2 resumes to the same weights as an uninterrupted one', async () => {
    const { model: straight, result: full } = await straightRun(path.join(tmp, 'a'));
    const checkpoint = await interruptedRun(path.join(tmp, 'b'));
    manualSeed(123);
    const resumed = new CBAMCNN({ numClasses: 3 });
    const rest = await new StagedFineTuner(resumed, f.config(path.join(tmp, 'b'))).fit(colourData(f.samples), null, { batchSize: f.batchSize, resume: checkpoint });
    expect(rest.epochs.map((r) => r.trainLoss)).toEqual(full.epochs.map((r) => r.trainLoss));
    expect(stateDictHash(resumed)).toBe(stateDictHash(straight));
    // The run from a fresh seeded model, the same with GCC and clang builds. (0.1.0 built with GCC
    // drew CBAM's two MLP layers' weights in the reverse order, the order of a call's arguments
    // being unspecified in C++, so its run from the same seed ended at expected.stateDictSha256.)
    if (sameLibTorch) expect(stateDictHash(straight)).toBe('6fcd2216b78ccf58e0a8f8b4bce68b4f4f7169aecce1bf5b33ca9b2a619c3bdf');
  }, 120_000);

  it('an abort while the checkpoint is being read stops the run before it trains (hardening class 7)', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const controller = new AbortController();
    let batches = 0;
    const running = new StagedFineTuner(model, f.config(path.join(tmp, 'abort'))).fit(colourData(f.samples), null, {
      batchSize: f.batchSize,
      resume: path.join(fixture, 'last.pth'),
      signal: controller.signal,
      onBatch: () => batches++,
    });
    controller.abort(); // while readTrainingProgress reads the file
    const err = await rejection(running);
    expect(err.name).toBe('AbortError');
    expect(batches).toBe(0);
  });

  it('a checkpoint of another run is refused, naming what differs', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const err = await rejection(
      new StagedFineTuner(model, f.config(path.join(tmp, 'c'))).fit(colourData(f.samples), null, { batchSize: 8, resume: path.join(fixture, 'last.pth') }),
    );
    expect(err.code).toBe(ErrorCode.CHECKPOINT);
    expect(err.message).toMatch(/another batchesPerEpoch \(4, now 8\)/);
  });

  it('a file that is not a training checkpoint is refused clearly', async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const file = path.join(tmp, 'weights.pth');
    await model.save(file);
    const err = await rejection(new StagedFineTuner(model, f.config(path.join(tmp, 'd'))).fit(colourData(16), null, { batchSize: 8, resume: file }));
    expect(err.code).toBe(ErrorCode.CHECKPOINT);
    expect(err.message).toMatch(/is not a torch-attn training checkpoint/);
  });
});
