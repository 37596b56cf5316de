// The TypeScript side's file rules (lib/files.ts): outside files read as regular files within a
// bound; run-directory files written whole or not at all.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJsonFile, readRegularTextFile, removeStaleTemporaries, writeFileAtomic, writeFileAtomicAsync } from '../lib/files';
import { rejection, thrown } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-files-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('replaces a file whole, leaving no temporary file', () => {
    const file = path.join(tmp, 'run.json');
    writeFileAtomic(file, '{"a": 1}\n');
    writeFileAtomic(file, '{"a": 2}\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('{"a": 2}\n');
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('run.json'))).toEqual(['run.json']);
  });

  it('a write that fails leaves the previous file as it was and no temporary file; its error names the file', async () => {
    const file = path.join(tmp, 'evaluation.json');
    writeFileAtomic(file, 'before');
    expect(thrown(() => writeFileAtomic(file, 42 as never))).toBeInstanceOf(TypeError);
    expect(fs.readFileSync(file, 'utf8')).toBe('before');
    expect(fs.readdirSync(tmp).filter((f) => f.includes('evaluation.json'))).toEqual(['evaluation.json']);
    const missing = path.join(tmp, 'no-such-folder', 'x.json');
    for (const err of [thrown(() => writeFileAtomic(missing, 'x')), await rejection(writeFileAtomicAsync(missing, [Buffer.from('x')]))]) {
      expect(err.message).toBe(`cannot write ${missing}: ENOENT: no such file or directory`);
      expect(err.code).toBe('ENOENT');
    }
    // A folder where the file should go: the rename fails; the temporary goes.
    const folder = path.join(tmp, 'taken.json');
    fs.mkdirSync(folder);
    for (const err of [thrown(() => writeFileAtomic(folder, 'x')), await rejection(writeFileAtomicAsync(folder, [Buffer.from('x')]))]) {
      expect(err.message).toMatch(new RegExp(`^cannot write ${folder}: EISDIR`));
    }
    expect(fs.readdirSync(tmp).filter((f) => f.includes('taken.json'))).toEqual(['taken.json']);
  });

  it('a link at the target is replaced, not written through; the temporary has an unpredictable name', async () => {
    const victim = path.join(tmp, 'victim.txt');
    fs.writeFileSync(victim, 'untouched');
    for (const [name, write] of [['config.json', (f: string) => writeFileAtomic(f, 'new')], ['model.pth', (f: string) => writeFileAtomicAsync(f, [Buffer.from('new')])]] as const) {
      const file = path.join(tmp, name);
      fs.symlinkSync(victim, file);
      await write(file);
      expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
      expect(fs.readFileSync(file, 'utf8')).toBe('new');
      expect(fs.lstatSync(file).isSymbolicLink()).toBe(false);
      expect(fs.readdirSync(tmp).filter((f) => f.includes(name))).toEqual([name]);
    }
  });
});

describe('readRegularTextFile, readJsonFile', () => {
  it('read regular files within the bound; refuse FIFOs, devices, folders and larger files, naming them', () => {
    const file = path.join(tmp, 'ok.json');
    fs.writeFileSync(file, '{"x": [1, 2]}');
    expect(readJsonFile(file)).toEqual({ x: [1, 2] });
    expect(thrown(() => readRegularTextFile(file, 4)).message).toMatch(/ok\.json is 13 bytes, more than the 4 bytes allowed/);
    const fifo = path.join(tmp, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    expect(thrown(() => readJsonFile(fifo)).message).toMatch(/fifo\.json is not a regular file/);
    expect(thrown(() => readJsonFile('/dev/zero')).message).toMatch(/not a regular file/);
    expect(thrown(() => readJsonFile(tmp)).message).toMatch(/not a regular file/);
    expect(thrown(() => readJsonFile(path.join(tmp, 'missing.json'))).message).toMatch(/missing\.json: cannot read \(ENOENT\)/);
    fs.writeFileSync(file, '{"x": ');
    expect(thrown(() => readJsonFile(file)).message).toMatch(/ok\.json is not valid JSON \(.*\): was it cut short or edited by hand\?/);
  });
});

describe('removeStaleTemporaries', () => {
  it("removes the writer's own temporaries a killed write left in a folder, nothing else", () => {
    const folder = fs.mkdtempSync(path.join(tmp, 'run-'));
    const names = ['.run.json.0123456789abcdef.tmp', '.config.json.fedcba9876543210.tmp', 'run.json', '.keep.tmp', '.run.json.0123456789abcdeg.tmp', 'x.0123456789abcdef.tmp', 'last.pth.tmp-AbC123'];
    for (const name of names) fs.writeFileSync(path.join(folder, name), 'x');
    expect(removeStaleTemporaries(folder).sort()).toEqual(['.config.json.fedcba9876543210.tmp', '.run.json.0123456789abcdef.tmp']);
    expect(fs.readdirSync(folder).sort()).toEqual(names.slice(2).sort());
    expect(removeStaleTemporaries(path.join(folder, 'missing'))).toEqual([]);
  });
});
