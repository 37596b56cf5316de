// Files from outside, read safely: regular files only (a FIFO would block forever, a device
// never end), opened non-blocking, sized from fstat and bounded per kind. The native readers
// follow the same rule (native/common/files.h).
import * as fs from 'node:fs';

/** The whole regular file at `file`, at most `maxBytes` long; a coded error otherwise. */
export async function readRegularFile(file: string, maxBytes: number, fail: (message: string) => Error): Promise<Buffer> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    throw fail(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file';
      throw fail(`${file} is not a regular file (${kind}): only regular files are read`);
    }
    if (st.size > maxBytes) throw fail(`${file} is ${st.size} bytes, more than the ${maxBytes} bytes allowed for it`);
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
