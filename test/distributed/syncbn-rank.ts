// One rank of the syncBatchNorm case (test/distributed/ddp.test.ts), started by `torch-attn
// launch`: the model in DIR/init.safetensors trained on this rank's rows of each global batch of
// DIR/data.safetensors, with synchronised BatchNorms and without; writes
// DIR/sync_rank<r>.safetensors and DIR/plain_rank<r>.safetensors.
//   node --import tsx test/distributed/syncbn-rank.ts DIR
import * as path from 'node:path';
import { distributed, readStateDict, ResNetCBAM } from '../../lib/index';
import { SYNC_BN_CASE, trainRows } from './syncbn-case';

const [dir] = process.argv.slice(2);

async function main(): Promise<void> {
  const group = await distributed.init({ timeout: 60 });
  const { x, y } = await readStateDict(path.join(dir, 'data.safetensors'));
  const { batch } = SYNC_BN_CASE;
  for (const sync of [true, false]) {
    const model = new ResNetCBAM(SYNC_BN_CASE.model);
    await model.loadStateDict(path.join(dir, 'init.safetensors'));
    await trainRows(model, x, y, batch, (step) => (step * group.worldSize + group.rank) * batch, { distributed: group, syncBatchNorm: sync });
    await model.save(path.join(dir, `${sync ? 'sync' : 'plain'}_rank${group.rank}.safetensors`));
  }
  await group.barrier();
  group.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
