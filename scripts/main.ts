// `npm start`: the main job. Until the fine-tuner lands it checks the install end to end: what
// the addon was built against, and a ResNet18-CBAM forward pass and off-thread prediction.
import { ResNetCBAM, buildInfo, cuda, getNumThreads, manualSeed, randn } from '../lib';

async function main(): Promise<void> {
  const info = buildInfo();
  console.log(`torch-attn ${info.version}`);
  console.log(`  LibTorch ${info.libtorchVersion} from ${info.libtorchDir}${info.cuda ? ` (CUDA ${info.cudaVersion ?? '?'})` : ' (CPU)'}`);
  console.log(`  CUDA available: ${cuda.isAvailable()} (${cuda.deviceCount()} device(s)), intra-op threads: ${getNumThreads()}`);

  manualSeed(0);
  const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
  if (cuda.isAvailable()) model.to('cuda');
  console.log(`\n${model.summaryTable()}\n`);

  const x = randn([64, 3, 32, 32]);
  const start = performance.now();
  const logits = model.forward(x);
  const forwardMs = performance.now() - start;
  const values = logits.to('cpu').data() as Float32Array;
  console.log(`forward, batch 64 (32x32): ${forwardMs.toFixed(1)} ms; logits ${logits.shape.join('x')}, first row ${Array.from(values.slice(0, 3), (v) => v.toFixed(4)).join(', ')}, ...`);

  const predicted = await model.predict(x, { batchSize: 16 });
  console.log(`predict (off the main thread, batches of 16): ${predicted.shape.join('x')} on ${predicted.device}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
