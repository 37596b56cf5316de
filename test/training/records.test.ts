// The epoch record is defined once, natively (native/training/progress.h); the TypeScript
// EpochRecord type mirrors it. This reads the type's declaration with the TypeScript compiler
// and compares it, field for field and optionality included, with the native record.
import * as path from 'node:path';
import * as ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native';

function declaredFields(file: string, name: string): { name: string; optional: boolean }[] {
  const program = ts.createProgram([file], { strict: true });
  const source = program.getSourceFile(file)!;
  let found: ts.InterfaceDeclaration | undefined;
  source.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === name) found = node;
  });
  if (!found) throw new Error(`${file} declares no interface ${name}`);
  return found.members.filter(ts.isPropertySignature).map((m) => ({ name: (m.name as ts.Identifier).text, optional: m.questionToken !== undefined }));
}

describe('EpochRecord', () => {
  it('the TypeScript type has exactly the native record\'s fields, in order, with the same optionality', () => {
    const declared = declaredFields(path.resolve(__dirname, '../../lib/training/finetune.ts'), 'EpochRecord');
    expect(declared).toEqual(native.epochRecordFields());
    // What the native record is: the fields a checkpoint's training.progress has always held,
    // then the loss-scaling fields of fp16 runs (0.2).
    expect(native.epochRecordFields().map((f) => f.name)).toEqual([
      'stage', 'stageIndex', 'epoch', 'trainLoss', 'trainAcc', 'testLoss', 'testTop1', 'testTop5', 'lr', 'seconds', 'imagesPerSecond',
      'skippedSteps', 'lossScale',
    ]);
  });
});
