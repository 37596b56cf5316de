// Damaged files through every TypeScript-side parser of outside bytes (safetensors, CIFAR binary,
// the CIFAR python pickles) and the native .pth reader as users reach them: a result or a coded
// error naming the file, never an uncoded exception or a hang. Fixed seed, so a failure repeats;
// scripts/fuzz-ts.ts runs the same property for minutes with random seeds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMutations, damaged, misbehaviour, parserTargets, TARGET_NAMES, type ParserTarget } from './parser-mutations';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-mutate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const targets = new Map<string, ParserTarget>();
beforeAll(async () => {
  for (const t of await parserTargets(path.join(tmp, 'seeds'))) targets.set(t.name, t);
});

describe('damaged files', () => {
  it.each(TARGET_NAMES)('%s: the undamaged seed loads', async (name) => {
    const target = targets.get(name)!;
    expect(await misbehaviour(target, path.join(tmp, 'ok'), target.seed)).toBeNull();
  });

  it.each(TARGET_NAMES)('%s: 150 damaged copies give a result or a coded error naming the file', async (name) => {
    const target = targets.get(name)!;
    await fc.assert(
      fc.asyncProperty(damaged(target), async (mutations) => {
        const problem = await misbehaviour(target, path.join(tmp, 'case'), applyMutations(target.seed, mutations));
        if (problem) throw new Error(problem);
      }),
      { numRuns: 150, seed: 20261202 },
    );
  }, 120_000);
});
