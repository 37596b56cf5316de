// Memory: tensors made and dropped in bulk must not grow the process, whether they are disposed
// explicitly or left to the garbage collector (the finalizer path).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addonFile } from '../../lib/native';
import { sanitized } from '../helpers';

interface ChurnResult {
  afterWarmup: number;
  beforeGc: number;
  end: number;
  tensorMb: number;
}

function churn(count: number, elements: number, mode: 'drop' | 'dispose'): ChurnResult {
  const script = path.join(__dirname, 'churn.cjs');
  const out = execFileSync(process.execPath, ['--expose-gc', script, addonFile, String(count), String(elements), mode], {
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('tensor memory', () => {
  it.skipIf(sanitized).each(['dropped', 'disposed'] as const)('100k tensors made then %s: RSS stays flat', (mode) => {
    const r = churn(100_000, 1024, mode === 'dropped' ? 'drop' : 'dispose');
    // 100k x 4 KB = 390 MB would stay resident if tensors leaked; allow allocator noise only.
    expect(r.tensorMb).toBeGreaterThan(350);
    expect(r.end - r.afterWarmup).toBeLessThan(24);
  });
});
