// Writes test/fixtures/resume/: a training checkpoint (last.pth) of a three-stage CBAMCNN run
// aborted in its second stage, and expected.json with the uninterrupted run's per-epoch train
// loss and the SHA-256 of its final state dict. The committed files were made by torch-attn
// 0.1.0 before the fine-tuner loop moved into C++ (commit 09f7bce), so the test that resumes
// last.pth checks that checkpoints of that version still resume, to the same weights.
//   npx tsx scripts/make-resume-fixture.ts
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CBAMCNN, StagedFineTuner, buildInfo, manualSeed } from '../lib';
import { colourData, stateDictHash } from '../test/helpers';

export const RESUME_FIXTURE = {
  seed: 11,
  batchSize: 16,
  samples: 64,
  modelSeed: 5,
  /** The batch event after which the interrupted run is aborted (global epoch 2 = stage 'high'). */
  abortAt: { epoch: 2, batch: 2 },
  config: (dir: string) => ({
    optimizer: { type: 'adam' as const },
    stages: [
      { name: 'attention', epochs: 1, train: ['attention'], lr: 1e-3 },
      { name: 'high', epochs: 1, train: ['attention', 'block3'], lr: { attention: 1e-3, block3: 5e-4 } },
      { name: 'full', epochs: 1, train: 'all', lr: 1e-4 },
    ],
    scheduler: { type: 'step' as const, stepSize: 1, gamma: 0.5 },
    logEvery: 1,
    checkpointDir: dir,
  }),
};

/** The fixture's run, never stopped: the trained model and fit()'s result. */
export async function straightRun(dir: string) {
  const f = RESUME_FIXTURE;
  manualSeed(f.modelSeed);
  const model = new CBAMCNN({ numClasses: 3 });
  const result = await new StagedFineTuner(model, f.config(dir)).fit(colourData(f.samples), null, { batchSize: f.batchSize, seed: f.seed });
  return { model, result };
}

/** The same run aborted at `abortAt`: the checkpoint it names (it must reject with an AbortError). */
export async function interruptedRun(dir: string): Promise<string> {
  const f = RESUME_FIXTURE;
  manualSeed(f.modelSeed);
  const model = new CBAMCNN({ numClasses: 3 });
  const controller = new AbortController();
  const fit = new StagedFineTuner(model, f.config(dir)).fit(colourData(f.samples), null, {
    batchSize: f.batchSize,
    seed: f.seed,
    signal: controller.signal,
    onBatch: (e) => e.epoch === f.abortAt.epoch && e.batch === f.abortAt.batch && controller.abort(),
  });
  return fit.then(
    () => {
      throw new Error('the run was not aborted');
    },
    (err: Error & { checkpoint?: string }) => {
      if (err.name !== 'AbortError' || !err.checkpoint) throw err;
      return err.checkpoint;
    },
  );
}

async function main() {
  const out = path.resolve(__dirname, '..', 'test', 'fixtures', 'resume');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-resume-fixture-'));
  const { model, result } = await straightRun(path.join(tmp, 'a'));
  const checkpoint = await interruptedRun(path.join(tmp, 'b'));
  fs.mkdirSync(out, { recursive: true });
  fs.copyFileSync(checkpoint, path.join(out, 'last.pth'));
  // Bit-identical results hold on the LibTorch that made them: the test compares bits only there.
  const expected = { libtorch: buildInfo().libtorchVersion, trainLoss: result.epochs.map((r) => r.trainLoss), stateDictSha256: stateDictHash(model) };
  fs.writeFileSync(path.join(out, 'expected.json'), JSON.stringify(expected, null, 2) + '\n');
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(JSON.stringify({ out, bytes: fs.statSync(path.join(out, 'last.pth')).size, ...expected }));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
