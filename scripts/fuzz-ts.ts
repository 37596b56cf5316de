// The mutation property of test/data/parsers-mutation.test.ts run for a while with random seeds:
// damaged safetensors, .pth, CIFAR binary and CIFAR python files through the public loaders.
//   npx tsx scripts/fuzz-ts.ts [seconds per target, default 600]
// Prints one JSON line per target; exits 1 if a damaged file got an uncoded error, an error not
// naming the file, or no answer (the counterexample is printed, with fast-check's seed to replay).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { applyMutations, damaged, misbehaviour, parserTargets } from '../test/data/parser-mutations';

async function main(): Promise<number> {
  const seconds = Number(process.argv[2] ?? 600);
  if (!(seconds > 0)) throw new RangeError(`seconds must be a positive number, got '${process.argv[2]}'`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-fuzz-ts-'));
  let status = 0;
  try {
    for (const target of await parserTargets(path.join(tmp, 'seeds'))) {
      let cases = 0;
      const started = performance.now();
      const result = await fc.check(
        fc.asyncProperty(damaged(target), async (mutations) => {
          cases++;
          const problem = await misbehaviour(target, path.join(tmp, 'case'), applyMutations(target.seed, mutations));
          if (problem) throw new Error(problem);
        }),
        { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false },
      );
      const elapsed = (performance.now() - started) / 1000;
      const line = { target: target.name, seconds: Math.round(elapsed), cases, casesPerSec: Math.round(cases / elapsed), seedBytes: target.seed.length, failed: result.failed };
      console.log(JSON.stringify(line));
      if (result.failed) {
        status = 1;
        console.error(fc.defaultReportMessage(result));
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return status;
}

main().then((status) => process.exit(status), (err) => {
  console.error(err);
  process.exit(2);
});
