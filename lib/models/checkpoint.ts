// Checkpoint files: .pth (PyTorch's zip format; read by the native restricted reader, written
// through LibTorch's own pickler) and .safetensors (read and written here: a little-endian u64
// header length, a JSON header, then the raw tensor bytes). Writes are atomic: a temporary
// file in the same folder, flushed, then renamed over the target.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, codedError } from '../errors';
import { native } from '../native';
import { expectTensor, tensor } from '../tensor/tensor';
import type { Tensor } from '../tensor/tensor';
import type { DType } from '../tensor/tensor';
import { readRegularFile, writeFileAtomicAsync } from '../files';
import * as validate from '../validate';

export type CheckpointFormat = 'pth' | 'safetensors';

/** One entry of inspectCheckpoint(). */
export interface CheckpointEntry {
  name: string;
  shape: number[];
  dtype: DType;
}

export interface CheckpointInfo {
  format: CheckpointFormat;
  entries: CheckpointEntry[];
  /** Total bytes of tensor data. */
  tensorBytes: number;
}

const SAFETENSORS_DTYPES: Record<string, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const SAFETENSORS_CODES = Object.fromEntries(Object.entries(SAFETENSORS_DTYPES).map(([code, dtype]) => [dtype, code])) as Record<DType, string>;
const ELEMENT_SIZE: Record<DType, number> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};
const MAX_HEADER = 100 * 2 ** 20;

/** The format a path's extension names: .safetensors, else .pth / .pt / .bin. */
export function checkpointFormat(file: string, what: string): CheckpointFormat {
  if (typeof file !== 'string' || file.length === 0) throw validate.typeError(what, 'a file path', file);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.pth' || ext === '.pt' || ext === '.bin') return 'pth';
  throw new RangeError(`${what} must end in .pth, .pt, .bin or .safetensors, got '${path.basename(file)}'`);
}

/** Reading goes by extension too, but leniently: .safetensors, else the .pth reader (which
 *  checks the bytes), so .ckpt and other names of torch.save zips load. */
export function isSafetensors(file: string): boolean {
  return path.extname(file).toLowerCase() === '.safetensors';
}

interface SafetensorsHeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses the header in `bytes` (the file's start, at least its header); data offsets are
 *  checked against `fileSize`. */
function parseSafetensorsHeader(bytes: Buffer, fileSize: number, file: string): { entries: SafetensorsHeaderEntry[]; dataStart: number } {
  const fail = (what: string) => codedError(ErrorCode.CHECKPOINT, `${file} is not a readable safetensors file: ${what}`);
  if (bytes.length < 8) throw fail('it is shorter than the 8-byte header length');
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength > MAX_HEADER || 8 + headerLength > Math.min(bytes.length, fileSize)) {
    throw fail(`its header length (${headerLength} bytes) runs past the end of the file (truncated, or not safetensors)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  } catch {
    throw fail('its header is not valid JSON');
  }
  if (!validate.isPlainObject(header)) throw fail('its header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const entries: SafetensorsHeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!validate.isPlainObject(info)) throw fail(`entry '${name}' is not an object`);
    const dtype = SAFETENSORS_DTYPES[String(info.dtype)];
    if (!dtype) throw fail(`entry '${name}' has dtype ${JSON.stringify(info.dtype)}; readable are ${Object.keys(SAFETENSORS_DTYPES).join(', ')}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail(`entry '${name}' has a malformed shape`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw fail(`entry '${name}' has malformed data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) throw fail(`the data of '${name}' runs past the end of the file (truncated?)`);
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== numel * ELEMENT_SIZE[dtype]) {
      throw fail(`entry '${name}' holds ${end - begin} bytes but its shape [${shape.join(', ')}] of ${dtype} needs ${numel * ELEMENT_SIZE[dtype]}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  return { entries, dataStart };
}

function tensorFromBytes(bytes: Buffer, entry: SafetensorsHeaderEntry): Tensor {
  // Copy into an aligned buffer: the file's offsets need not be aligned for the element type.
  const aligned = new ArrayBuffer(entry.end - entry.begin);
  new Uint8Array(aligned).set(bytes.subarray(entry.begin, entry.end));
  const views: Record<DType, () => ArrayBufferView> = {
    float64: () => new Float64Array(aligned), float32: () => new Float32Array(aligned),
    float16: () => new Uint16Array(aligned), bfloat16: () => new Uint16Array(aligned),
    int64: () => new BigInt64Array(aligned), int32: () => new Int32Array(aligned),
    int16: () => new Int16Array(aligned), int8: () => new Int8Array(aligned),
    uint8: () => new Uint8Array(aligned), bool: () => new Uint8Array(aligned),
  };
  return tensor(views[entry.dtype]() as Float32Array, entry.shape, { dtype: entry.dtype });
}

async function readSafetensors(file: string): Promise<Record<string, Tensor>> {
  // Regular files only, up to the size the .pth reader takes (16 GiB).
  const bytes = await readRegularFile(file, 16 * 2 ** 30, (message) => codedError(ErrorCode.CHECKPOINT, message));
  const { entries, dataStart } = parseSafetensorsHeader(bytes, bytes.length, file);
  const data = bytes.subarray(dataStart);
  // A null prototype: a '__proto__' entry is a name like any other.
  const out: Record<string, Tensor> = Object.create(null);
  for (const entry of entries) out[entry.name] = tensorFromBytes(data, entry);
  return out;
}

function encodeSafetensors(tensors: Record<string, Tensor>): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const data = t.data() as Uint8Array;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype: SAFETENSORS_CODES[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-byte aligned
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return [length, Buffer.from(json, 'utf8'), ...chunks];
}

/**
 * The tensors of a checkpoint file, read without executing code: `.safetensors`, or a `.pth`
 * written by `torch.save(model.state_dict(), path)` (a training checkpoint holding one under
 * 'state_dict', 'model_state_dict' or 'model' gives that inner dict).
 */
export async function readStateDict(file: string): Promise<Record<string, Tensor>> {
  if (typeof file !== 'string') throw validate.typeError('readStateDict(path)', 'a file path', file);
  if (isSafetensors(file)) return readSafetensors(file);
  return native.readStateDict(file) as unknown as Promise<Record<string, Tensor>>;
}

/** Writes tensors to `file` as .pth (loadable by torch.load) or .safetensors, by extension, atomically. */
export async function saveStateDict(tensors: Record<string, Tensor>, file: string): Promise<void> {
  const format = checkpointFormat(file, 'save() path');
  if (!validate.isPlainObject(tensors)) throw validate.typeError('save() tensors', 'an object of name -> Tensor', tensors);
  for (const [name, t] of Object.entries(tensors)) {
    expectTensor(t, `save() entry '${name}'`);
  }
  const chunks = format === 'pth' ? [native.encodePth(tensors as never)] : encodeSafetensors(tensors);
  await writeFileAtomicAsync(file, chunks);
}

/** Names, shapes and dtypes in a checkpoint, without building a model: what to look at first
 *  when a load fails. */
export async function inspectCheckpoint(file: string): Promise<CheckpointInfo> {
  if (typeof file !== 'string') throw validate.typeError('inspectCheckpoint(path)', 'a file path', file);
  if (isSafetensors(file)) {
    // Only the header is read.
    const handle = await fs.promises.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const head = Buffer.alloc(Math.min(size, 8));
      await handle.read(head, 0, head.length, 0);
      const headerLength = head.length === 8 ? Math.min(Number(head.readBigUInt64LE(0)), MAX_HEADER + 1) : 0;
      const prefix = Buffer.alloc(Math.min(size, 8 + headerLength));
      await handle.read(prefix, 0, prefix.length, 0);
      const { entries } = parseSafetensorsHeader(prefix, size, file);
      return {
        format: 'safetensors',
        entries: entries.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
        tensorBytes: entries.reduce((s, e) => s + (e.end - e.begin), 0),
      };
    } finally {
      await handle.close();
    }
  }
  const tensors = await readStateDict(file);
  const entries = Object.entries(tensors).map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype as DType }));
  for (const t of Object.values(tensors)) t.dispose();
  return { format: 'pth', entries, tensorBytes: entries.reduce((s, e) => s + e.shape.reduce((a, b) => a * b, 1) * ELEMENT_SIZE[e.dtype], 0) };
}
