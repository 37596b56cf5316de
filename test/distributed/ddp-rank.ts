// One rank of the data-parallel equivalence case (test/distributed/ddp.test.ts), started by
// `torch-attn launch`: the same model, data and optimizers as scripts/peer-ddp.py, each rank on
// its 16 rows of every global batch; writes its final state dict to OUT/ta_<optimizer>_rank<r>.safetensors.
//   node --import tsx test/distributed/ddp-rank.ts PEER_DIR OUT
import * as fs from 'node:fs';
import * as path from 'node:path';
import { distributed, optim, ResNetCBAM, tensor } from '../../lib/index';

const [peer, out] = process.argv.slice(2);
const STEPS = 5;
const BATCH = 16;

async function main(): Promise<void> {
  const group = await distributed.init({ timeout: 60 });
  const xBytes = fs.readFileSync(path.join(peer, 'ddp_x.f32'));
  const yBytes = fs.readFileSync(path.join(peer, 'ddp_y.i64'));
  const xs = new Float32Array(xBytes.buffer, xBytes.byteOffset, xBytes.length / 4);
  const ys = new BigInt64Array(yBytes.buffer.slice(yBytes.byteOffset, yBytes.byteOffset + yBytes.length));
  const global = group.worldSize * BATCH;
  const image = 3 * 32 * 32;
  for (const name of ['sgd', 'adam'] as const) {
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
    await model.loadStateDict(path.join(peer, 'ddp_init.pth'));
    model.train();
    const opt = name === 'sgd' ? optim.sgd(model, [{ params: 'all', lr: 0.01 }], { momentum: 0.9 }) : optim.adam(model, [{ params: 'all', lr: 1e-3 }]);
    for (let step = 0; step < STEPS; step++) {
      const first = step * global + group.rank * BATCH;
      const x = tensor(xs.slice(first * image, (first + BATCH) * image), [BATCH, 3, 32, 32]);
      const y = tensor(ys.slice(first, first + BATCH), [BATCH], { dtype: 'int64' });
      await model.trainStep(opt, x, y, { distributed: group });
    }
    await model.save(path.join(out, `ta_${name}_rank${group.rank}.safetensors`));
  }
  await group.barrier();
  group.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
