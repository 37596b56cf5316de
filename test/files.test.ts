// The TypeScript side's file rules (lib/files.ts): outside files read as regular files within a
// bound; run-directory files written whole or not at all.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJsonFile, readRegularTextFile, writeFileAtomic } from '../lib/files';
import { thrown } from './helpers';

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

  it('a write that fails leaves the previous file as it was and no temporary file', () => {
    const file = path.join(tmp, 'evaluation.json');
    writeFileAtomic(file, 'before');
    expect(thrown(() => writeFileAtomic(file, 42 as never))).toBeInstanceOf(TypeError);
    expect(fs.readFileSync(file, 'utf8')).toBe('before');
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('evaluation.json'))).toEqual(['evaluation.json']);
    expect(thrown(() => writeFileAtomic(path.join(tmp, 'no-such-folder', 'x.json'), 'x')).message).toMatch(/ENOENT/);
  });

  it('a link planted at the temporary name is replaced, not followed', () => {
    const victim = path.join(tmp, 'victim.txt');
    fs.writeFileSync(victim, 'untouched');
    const file = path.join(tmp, 'config.json');
    fs.symlinkSync(victim, `${file}.tmp-${process.pid}`);
    writeFileAtomic(file, 'new');
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(false);
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
