// Example: freezing and differential learning rates on ResNet18-CBAM.
//   npx tsx scripts/example-groups.ts
// Builds the model, freezes the backbone but layer4, prints the summary, trains head +
// attention at 1e-3 and layer4 at 1e-5 for a few steps on random data, and shows what changed.
import { ResNetCBAM, manualSeed, optim, parameterGroups, randn, tensor } from '../lib';
import type { Model } from '../lib';

function groupNorms(model: Model): Map<string, number> {
  const state = model.stateDict();
  const norms = new Map<string, number>();
  for (const [group, names] of parameterGroups(model)) {
    if (group === 'all' || group === 'backbone') continue;
    let sum = 0;
    for (const name of names) for (const v of state[name].data() as Float32Array) sum += v * v;
    norms.set(group, Math.sqrt(sum));
  }
  return norms;
}

async function main(): Promise<void> {
  manualSeed(0);
  const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
  model.freeze('backbone').unfreeze('layer4');
  console.log(model.summaryTable());
  console.log('groups:', model.trainableGroups(), '\n');

  const optimizer = optim.adam(model, [
    { params: ['head', 'attention'], lr: 1e-3 },
    { params: 'layer4', lr: 1e-5 },
  ]);
  const before = groupNorms(model);
  const x = randn([16, 3, 32, 32]);
  const y = tensor(BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i % 10)), [16]);
  model.train();
  for (let step = 1; step <= 5; step++) {
    const { loss, correct, count } = await model.trainStep(optimizer, x, y);
    console.log(`step ${step}: loss ${loss.toFixed(4)}, top-1 ${correct}/${count}`);
  }
  const after = groupNorms(model);
  console.log('\nparameter norm per group (before -> after; frozen groups must not move):');
  for (const [group, norm] of before) {
    const now = after.get(group)!;
    console.log(`  ${group.padEnd(10)} ${norm.toFixed(6)} -> ${now.toFixed(6)}  ${now === norm ? 'unchanged' : `changed by ${(now - norm).toExponential(2)}`}`);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
