// One rank of the data-parallel staged fit of test/distributed/ddp.test.ts: the resume fixture's
// three-stage CBAM-CNN run (freezing changes at every stage) with 2 ranks, on colour data, or on
// a CIFAR-10 binary folder when DATA is set. MODE: straight (uninterrupted), abort (rank 1 aborts
// at a batch of stage 2; every rank must stop there), resume (from OUT/ckpt/last.pth). Prints the
// run's records and its parameters' hash as JSON (rank 0 also lists OUT/ckpt).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CBAMCNN, datasets, distributed, manualSeed, StagedFineTuner, transforms } from '../../lib/index';
import { RESUME_FIXTURE } from '../../scripts/make-resume-fixture';
import { colourData, stateDictHash } from '../helpers';

const [mode, out] = process.argv.slice(2);

/** The parameters' bytes (BatchNorm statistics are per rank until the next forward broadcasts them). */
function parameterHash(model: CBAMCNN): string {
  const hash = crypto.createHash('sha256');
  for (const [name, t] of Object.entries(model.stateDict())) {
    if (name.includes('running_') || name.endsWith('num_batches_tracked')) continue;
    hash.update(name).update(Buffer.from(t.toFloat32Array().buffer));
  }
  return hash.digest('hex');
}

async function main(): Promise<void> {
  const group = await distributed.init({ timeout: 60 });
  const f = RESUME_FIXTURE;
  manualSeed(f.modelSeed + group.rank); // different on each rank: rank 0's weights must win
  const model = new CBAMCNN({ numClasses: process.env.DATA ? 10 : 3 });
  const train = process.env.DATA
    ? (await datasets.cifar10(process.env.DATA)).withTransform(transforms.compose([transforms.randomHorizontalFlip(), transforms.toTensor()]))
    : colourData(f.samples);
  const ckpt = path.join(out, 'ckpt');
  const controller = new AbortController();
  let error: string | undefined;
  try {
    const result = await new StagedFineTuner(model, f.config(ckpt)).fit(train, null, {
      batchSize: process.env.DATA ? 32 : f.batchSize / 2,
      seed: f.seed,
      workers: 1,
      distributed: group,
      resume: mode === 'resume' ? path.join(ckpt, 'last.pth') : undefined,
      signal: controller.signal,
      onBatch: (b) => {
        if (mode === 'abort' && group.rank === 1 && b.epoch === f.abortAt.epoch && b.batch === f.abortAt.batch) controller.abort();
      },
    });
    const files = group.rank === 0 ? fs.readdirSync(ckpt).sort() : undefined;
    console.log(JSON.stringify({ rank: group.rank, records: result.epochs.map((r) => [r.epoch, r.trainLoss, r.trainAcc]), hash: stateDictHash(model), parameters: parameterHash(model), files }));
  } catch (err) {
    error = (err as Error).name;
    console.log(JSON.stringify({ rank: group.rank, error, hash: stateDictHash(model) }));
  }
  group.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
