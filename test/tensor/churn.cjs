// Child process for memory.test.ts: makes and drops many tensors, printing RSS as JSON.
// Usage: node --expose-gc churn.cjs <addon file> <count> <elements> <mode: drop|dispose>
// The loop yields to the event loop every 1,000 tensors, as any real program does: Node runs
// the finalizers of collected objects from the event loop, never inside a synchronous loop.
'use strict';
const addon = require(process.argv[2]);

const [count, elements, mode] = [Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
const data = new Float32Array(elements).fill(1.5);
const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const tick = () => new Promise((resolve) => setImmediate(resolve));

async function churn(n) {
  for (let i = 0; i < n; i++) {
    const t = addon.tensor(data, [elements]);
    if (t.numel !== elements) throw new Error('wrong numel');
    if (mode === 'dispose') t.dispose();
    if (i % 1000 === 999) await tick();
  }
}

async function settle() {
  global.gc();
  await tick();
  global.gc();
  await tick();
}

(async () => {
  const warmup = Math.floor(count / 5);
  await churn(warmup);
  await settle();
  const afterWarmup = rssMb();
  await churn(count - warmup);
  const beforeGc = rssMb();
  await settle();
  const end = rssMb();
  const tensorMb = (count * elements * 4) / 2 ** 20;
  console.log(JSON.stringify({ count, elements, mode, afterWarmup, beforeGc, end, tensorMb }));
})();
