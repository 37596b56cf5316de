// One rank of the fault case of test/distributed/ddp.test.ts: trains CBAM-CNN steps; the rank
// named by FAULT_RANK kills itself (SIGKILL, as an OOM kill or a lost machine would) after step 2.
// The others must fail with ERR_TORCH_ATTN_DISTRIBUTED within the timeout, never hang; they print
// the error and the seconds it took, as JSON.
import { CBAMCNN, distributed, optim, tensor } from '../../lib/index';

async function main(): Promise<void> {
  const g = await distributed.init({ timeout: Number(process.env.FAULT_TIMEOUT ?? 20) });
  const model = new CBAMCNN({ numClasses: 10 });
  const opt = optim.sgd(model, [{ params: 'all', lr: 0.01 }]);
  const x = tensor(new Float32Array(8 * 3 * 32 * 32).fill(0.5), [8, 3, 32, 32]);
  const y = tensor(new BigInt64Array(8), [8], { dtype: 'int64' });
  let killedAt = 0;
  for (let step = 0; step < 1000; step++) {
    if (g.rank === Number(process.env.FAULT_RANK) && step === 2) process.kill(process.pid, 'SIGKILL');
    killedAt = Date.now();
    try {
      await model.trainStep(opt, x, y, { distributed: g });
    } catch (err) {
      const e = err as Error & { code?: string };
      console.log(JSON.stringify({ rank: g.rank, step, code: e.code, message: e.message, seconds: (Date.now() - killedAt) / 1000 }));
      process.exit(3);
    }
  }
  console.log(JSON.stringify({ rank: g.rank, finished: true }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
