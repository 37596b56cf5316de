// One rank of the collectives case of test/distributed/ddp.test.ts: checks allReduce (every op),
// broadcast, allGather and barrier against what they must give, and exits 0 only if all hold.
//   node --import tsx test/distributed/collectives-rank.ts [gloo | nccl]   (nccl: CUDA tensors on cuda:LOCAL_RANK)
import { distributed, tensor } from '../../lib/index';

const backend = (process.argv[2] ?? 'gloo') as 'gloo' | 'nccl';

async function main(): Promise<void> {
  const g = await distributed.init({ timeout: 60, backend });
  const { rank, worldSize } = g;
  const values = (t: { data(): ArrayBufferView }) => [...(t.data() as Float32Array)];
  const mine = tensor(new Float32Array([rank + 1, -(rank + 1)]), [2], { device: backend === 'nccl' ? `cuda:${g.localRank}` : 'cpu' });
  const expectEqual = (what: string, got: number[], want: number[]) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`rank ${rank}: ${what} gave ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };
  const ranks = Array.from({ length: worldSize }, (_, r) => r + 1);
  const sum = ranks.reduce((a, b) => a + b, 0);
  expectEqual('allReduce sum', values(await g.allReduce(mine)), [sum, -sum]);
  expectEqual('allReduce avg', values(await g.allReduce(mine, 'avg')), [sum / worldSize, -sum / worldSize]);
  expectEqual('allReduce max', values(await g.allReduce(mine, 'max')), [worldSize, -1]);
  expectEqual('allReduce min', values(await g.allReduce(mine, 'min')), [1, -worldSize]);
  expectEqual('the argument after allReduce', values(mine), [rank + 1, -(rank + 1)]);
  expectEqual('broadcast from the last rank', values(await g.broadcast(mine, worldSize - 1)), [worldSize, -worldSize]);
  const gathered = await g.allGather(mine);
  expectEqual('allGather', gathered.flatMap(values), ranks.flatMap((r) => [r, -r]));
  await g.barrier();
  if (g.localRank !== Number(process.env.LOCAL_RANK)) throw new Error(`rank ${rank}: localRank ${g.localRank}`);
  g.destroy();
  let refused = false;
  await g.barrier().catch((err: { code?: string }) => (refused = err.code === 'ERR_TORCH_ATTN_DISTRIBUTED'));
  if (!refused) throw new Error(`rank ${rank}: a destroyed group was not refused`);
  console.log(`rank ${rank}: collectives ok`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
