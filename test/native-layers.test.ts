// The design's layers, checked on the sources: only the wrap layer (the *_wrap files, addon.cc
// and the common/ helpers that exist for them) may include napi.h, directly or through any
// project header. Follows every `#include "..."` transitively. (The build's own dependency
// files give the same answer: see the command in README's Layout section.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', 'native');
const WRAP_COMMON = ['common/js_errors', 'common/args', 'common/async', 'common/json_js', 'common/type_tag', 'common/addon_data'];

function isWrapLayer(file: string): boolean {
  const stem = file.replace(/\.(cc|h)$/, '');
  return /_wrap$/.test(stem) || stem === 'addon' || WRAP_COMMON.includes(stem);
}

function sources(dir = root): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return /\.(cc|h)$/.test(e.name) ? [path.relative(root, full)] : [];
  });
}

/** The chain of project files through which `file` reaches napi.h, or null. */
function napiChain(file: string, seen = new Set<string>()): string[] | null {
  if (seen.has(file)) return null;
  seen.add(file);
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  if (/^\s*#\s*include\s*[<"]napi\.h[>"]/m.test(text)) return [file, 'napi.h'];
  for (const [, inc] of text.matchAll(/^\s*#\s*include\s*"([^"]+)"/gm)) {
    if (!fs.existsSync(path.join(root, inc))) continue;
    const chain = napiChain(inc, seen);
    if (chain) return [file, ...chain];
  }
  return null;
}

describe('native layers', () => {
  const files = sources();

  it('finds the sources', () => {
    expect(files).toContain('training/fine_tuner.cc');
    expect(files).toContain('training/tuner_wrap.cc');
  });

  it('no core file includes napi.h, directly or transitively', () => {
    const offenders = files.filter((f) => !isWrapLayer(f)).map((f) => napiChain(f)).filter((c): c is string[] => c !== null);
    expect(offenders.map((c) => c.join(' -> '))).toEqual([]);
  });

  it('the wrap layer is the only place that does', () => {
    const including = files.filter((f) => napiChain(f) !== null);
    expect(including.every(isWrapLayer)).toBe(true);
    expect(including).toContain('models/model_wrap.cc');
  });

  it('common/async.h does not depend on runtime/', () => {
    const text = fs.readFileSync(path.join(root, 'common/async.h'), 'utf8');
    expect(text).not.toMatch(/#include "runtime\//);
  });
});
