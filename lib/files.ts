// Files from outside, read safely: regular files only (a FIFO would block forever, a device
// never end), opened non-blocking, sized from fstat and bounded per kind. The native readers
// follow the same rule (native/common/files.h).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPlainObject } from './validate';

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

function cannotOpen(file: string, err: unknown): string {
  return `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
}

/** Why an opened file is not read (not a regular file, or larger than `maxBytes`), or undefined. */
function refusal(file: string, st: fs.Stats, maxBytes: number): string | undefined {
  if (!st.isFile()) {
    const kind = st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file';
    return `${file} is not a regular file (${kind}): only regular files are read`;
  }
  if (st.size > maxBytes) return `${file} is ${st.size} bytes, more than the ${maxBytes} bytes allowed for it`;
  return undefined;
}

/** The whole regular file at `file`, at most `maxBytes` long; a coded error otherwise. */
export async function readRegularFile(file: string, maxBytes: number, fail: (message: string) => Error): Promise<Buffer> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, OPEN_FLAGS);
  } catch (err) {
    throw fail(cannotOpen(file, err));
  }
  try {
    const st = await handle.stat();
    const refused = refusal(file, st, maxBytes);
    if (refused) throw fail(refused);
    const out = Buffer.allocUnsafe(st.size);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await handle.read(out, done, out.length - done, done);
      if (bytesRead === 0) break; // it shrank meanwhile
      done += bytesRead;
    }
    return out.subarray(0, done);
  } finally {
    await handle.close();
  }
}

/** The same rule, synchronously, as text: for the small files of a run directory (config.json,
 *  run.json, evaluation.json, metrics.jsonl). Errors are plain Errors naming the file. */
export function readRegularTextFile(file: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (err) {
    throw new Error(cannotOpen(file, err));
  }
  try {
    const st = fs.fstatSync(fd);
    const refused = refusal(file, st, maxBytes);
    if (refused) throw new Error(refused);
    const out = Buffer.allocUnsafe(st.size);
    let done = 0;
    while (done < out.length) {
      const read = fs.readSync(fd, out, done, out.length - done, done);
      if (read === 0) break; // it shrank meanwhile
      done += read;
    }
    return out.subarray(0, done).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** A JSON file of a run directory, parsed; a file that is not JSON is an error naming it. */
export function readJsonFile(file: string, maxBytes = 64 << 20): unknown {
  const text = readRegularTextFile(file, maxBytes);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}): was it cut short or edited by hand?`);
  }
}

/** A JSON file that must hold an object (`what`: what it should be, for the error). */
export function readJsonObject(file: string, what: string): Record<string, unknown> {
  const value = readJsonFile(file);
  if (!isPlainObject(value)) throw new Error(`${file} is not ${what} (not a JSON object)`);
  return value;
}

/** The temporary a write of `file` goes through: beside it (a rename does not cross file systems),
 *  named unpredictably, so that with an exclusive create ('wx') a planted file or link at its name
 *  is never written through. */
function temporaryFor(file: string): string {
  return path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
}
/** The names temporaryFor gives. */
const TEMPORARY_NAME = /^\..+\.[0-9a-f]{16}\.tmp$/;

/** The temporaries temporaryFor names, in `folder`: what a writer killed between its create and its
 *  rename leaves behind (hidden files). A run removes them from its directory when it starts, as
 *  the native checkpoint writer removes its own (native/common/files.h). */
export function removeStaleTemporaries(folder: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(folder);
  } catch {
    return [];
  }
  const stale = names.filter((name) => TEMPORARY_NAME.test(name));
  for (const name of stale) fs.rmSync(path.join(folder, name), { force: true });
  return stale;
}

/** A write of `file` that the system refused, naming it (its message named the temporary), its code
 *  (ENOENT, EACCES, ENOSPC ...) kept. */
function cannotWrite(file: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error) || e.syscall === undefined) return err as Error;  // not the system's (a bad argument)
  // 'ENOENT: no such file or directory, open '/x/.a.json.1f...tmp'': the reason, without the path.
  return Object.assign(new Error(`cannot write ${file}: ${e.message.replace(/, \w+ '.*'$/, '')}`, { cause: err }), { code: e.code });
}

/** Flushes the folder of `file`, so that a rename into it is durable. */
function syncFolder(file: string): void {
  const fd = fs.openSync(path.dirname(path.resolve(file)), 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `data` to `file` whole or not at all: into a new temporary file beside it, flushed, then
 *  renamed over it, the folder flushed after. A crash or a full disk leaves the previous file or
 *  the new one, never a part of either; an error names `file`. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const temp = temporaryFor(file);
  try {
    const fd = fs.openSync(temp, 'wx');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    syncFolder(file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw cannotWrite(file, err);
  }
}

/** writeFileAtomic off the JS thread, for large files (checkpoints), written chunk by chunk. */
export async function writeFileAtomicAsync(file: string, chunks: readonly Uint8Array[]): Promise<void> {
  const temp = temporaryFor(file);
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(temp, 'wx');
    for (const chunk of chunks) await handle.write(chunk);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.promises.rename(temp, file);
    const folder = await fs.promises.open(path.dirname(path.resolve(file)), 'r');
    await folder.sync().finally(() => folder.close());
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.promises.rm(temp, { force: true });
    throw cannotWrite(file, err);
  }
}
