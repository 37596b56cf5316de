// `npm start`: the main job. Until the model and fine-tuner issues land, it checks the install end
// to end: what the addon was built against, and a small computation through LibTorch.
import { arange, buildInfo, cuda, getNumThreads, manualSeed, randn } from '../lib';

const info = buildInfo();
console.log('torch-attn', info.version);
console.log(`  LibTorch ${info.libtorchVersion} from ${info.libtorchDir}${info.cuda ? ` (CUDA ${info.cudaVersion ?? '?'})` : ' (CPU)'}`);
console.log(`  CUDA available: ${cuda.isAvailable()} (${cuda.deviceCount()} device(s)), intra-op threads: ${getNumThreads()}`);

manualSeed(0);
const x = randn([64, 3, 32, 32]);
const values = x.data();
const mean = values.reduce((s, v) => s + v, 0) / values.length;
console.log(`  randn([64, 3, 32, 32]) under manualSeed(0): mean ${mean.toFixed(5)}, first ${values[0].toFixed(6)}`);
console.log(`  arange(5, { dtype: 'int64' }): ${arange(5, { dtype: 'int64' }).data().join(', ')}`);
x.dispose();
