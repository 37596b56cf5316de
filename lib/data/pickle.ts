// A restricted unpickler for the CIFAR "python version" batches (the files torchvision
// downloads): dicts of lists, strings, ints and uint8 numpy arrays, pickled by Python 2's cPickle
// or Python 3. Only numpy's array/dtype reconstructors and _codecs.encode may be named; any
// other global (code) is refused, and nothing is ever called.
import { ErrorCode, codedError } from '../errors';

export interface NdArray {
  readonly kind: 'ndarray';
  shape: number[];
  dtype: string;
  data: Buffer;
}

export type PickleValue =
  | null
  | boolean
  | number
  | string
  | Buffer
  | NdArray
  | PickleValue[]
  | Map<string, PickleValue>
  | { readonly kind: 'tuple'; items: PickleValue[] }
  | { readonly kind: 'global'; name: string }
  | { readonly kind: 'dtype'; name: string };

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

const ALLOWED_GLOBALS = new Set(['numpy.core.multiarray._reconstruct', 'numpy.ndarray', 'numpy.dtype', '_codecs.encode']);

function keyOf(value: PickleValue, fail: (m: string) => never): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (typeof value === 'number') return String(value);
  return fail('a dict key is not a string');
}

function isTuple(v: unknown): v is { kind: 'tuple'; items: PickleValue[] } {
  return typeof v === 'object' && v !== null && (v as { kind?: string }).kind === 'tuple';
}

/** The most opcodes one pickle may hold (CIFAR-100's training batch: about 300,000). */
export const MAX_OPCODES = 2_000_000;

/** Reads one pickle. `file` names the source in errors. */
export function unpickle(bytes: Buffer, file: string): PickleValue {
  let at = 0;
  const stack: Slot[] = [];
  const memo = new Map<number, PickleValue>();
  const fail = (message: string): never => {
    throw codedError(ErrorCode.DATA, `${file}: not a CIFAR python batch: ${message} (byte ${at})`);
  };
  const take = (n: number): Buffer => {
    if (n < 0 || at + n > bytes.length) fail('the file ends early (truncated?)');
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const u8 = () => take(1)[0];
  const u16 = () => take(2).readUInt16LE(0);
  const u32 = () => take(4).readUInt32LE(0);
  const u64 = () => {
    const v = take(8).readBigUInt64LE(0);
    if (v > BigInt(bytes.length)) fail('a length runs past the end of the file');
    return Number(v);
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) fail('the file ends early (truncated?)');
    const s = bytes.toString('latin1', at, end);
    at = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail('the pickle stack is malformed');
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail('the pickle stack is malformed');
    return v as PickleValue;
  };
  // Where each open MARK is: popMark is O(1) to find it (a search from the top made a file of
  // MARKs quadratic: half a minute on the event loop).
  const marks: number[] = [];
  const popMark = (): PickleValue[] => {
    const i = marks.pop();
    if (i === undefined || stack[i] !== MARK) return fail('the pickle stack is malformed');
    const items = stack.splice(i) as PickleValue[];
    items.shift();
    return items;
  };
  const dictSet = (dict: PickleValue, items: PickleValue[]) => {
    if (!(dict instanceof Map)) fail('SETITEM on something that is not a dict');
    for (let i = 0; i + 1 < items.length; i += 2) (dict as Map<string, PickleValue>).set(keyOf(items[i], fail), items[i + 1]);
  };
  const global = (module: string, name: string): PickleValue => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) fail(`it names ${full}, which a CIFAR batch never does (refused: pickles can run code)`);
    return { kind: 'global', name: full };
  };
  const reduce = (fn: PickleValue, args: PickleValue): PickleValue => {
    const name = (fn as { kind?: string; name?: string })?.kind === 'global' ? (fn as { name: string }).name : '';
    const a = isTuple(args) ? args.items : fail('REDUCE arguments are not a tuple');
    if (name === 'numpy.core.multiarray._reconstruct') return { kind: 'ndarray', shape: [], dtype: '', data: Buffer.alloc(0) };
    if (name === 'numpy.dtype' && (typeof a[0] === 'string' || Buffer.isBuffer(a[0]))) return { kind: 'dtype', name: a[0].toString('latin1') };
    if (name === '_codecs.encode' && typeof a[0] === 'string') return Buffer.from(a[0], 'latin1');
    return fail(`unexpected call of ${name || 'a non-global'}`);
  };
  const build = (target: PickleValue, state: PickleValue) => {
    if ((target as { kind?: string })?.kind === 'dtype') return;
    if ((target as { kind?: string })?.kind !== 'ndarray' || !isTuple(state)) fail('unexpected BUILD');
    const [, shape, dtype, , raw] = (state as { items: PickleValue[] }).items;
    const array = target as NdArray;
    if (!isTuple(shape) || !shape.items.every((d) => typeof d === 'number')) fail('array shape is not a tuple of ints');
    array.shape = (shape as { items: number[] }).items;
    array.dtype = (dtype as { kind?: string; name?: string })?.kind === 'dtype' ? (dtype as { name: string }).name : fail('array dtype missing');
    array.data = Buffer.isBuffer(raw) ? raw : typeof raw === 'string' ? Buffer.from(raw, 'latin1') : fail('array data is not bytes');
  };

  // A CIFAR batch is a few hundred thousand opcodes (one large string of pixels, the labels, the
  // file names); a file of tens of millions of tiny container opcodes would fill the JS heap.
  let budget = MAX_OPCODES;
  for (;;) {
    if (--budget < 0) fail(`it holds more than ${MAX_OPCODES} pickle opcodes, which a CIFAR batch never does`);
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: take(8); break; // FRAME
      case 0x2e: return stack.length === 1 ? pop() : fail('the pickle stack is malformed'); // STOP
      case 0x28: marks.push(stack.length); stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const m = new Map<string, PickleValue>(); dictSet(m, popMark()); stack.push(m); break; } // DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x29: stack.push({ kind: 'tuple', items: [] }); break; // EMPTY_TUPLE
      case 0x74: stack.push({ kind: 'tuple', items: popMark() }); break; // TUPLE
      case 0x85: stack.push({ kind: 'tuple', items: [pop()] }); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push({ kind: 'tuple', items: [a, b] }); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push({ kind: 'tuple', items: [a, b, c] }); break; } // TUPLE3
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(take(4).readInt32LE(0)); break; // BININT
      case 0x49: { const s = line(); stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10)); break; } // INT
      case 0x8a: { const n = u8(); const b = take(n); let v = 0n; for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]); if (n && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n); stack.push(Number(v)); break; } // LONG1
      case 0x47: stack.push(take(8).readDoubleBE(0)); break; // BINFLOAT
      case 0x58: stack.push(take(u32()).toString('utf8')); break; // BINUNICODE
      case 0x8c: stack.push(take(u8()).toString('utf8')); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(take(u64()).toString('utf8')); break; // BINUNICODE8
      case 0x54: stack.push(take(u32())); break; // BINSTRING (Python 2 str: bytes)
      case 0x55: stack.push(take(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32())); break; // BINBYTES
      case 0x43: stack.push(take(u8())); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64())); break; // BINBYTES8
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { const k = op === 0x68 ? u8() : u32(); if (!memo.has(k)) fail('a memo reference is missing'); stack.push(memo.get(k)!); break; } // BINGET, LONG_BINGET
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND to something that is not a list'); (l as PickleValue[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail('APPENDS to something that is not a list'); for (const v of items) (l as PickleValue[]).push(v); break; } // APPENDS
      case 0x73: { const v = pop(), k = pop(); dictSet(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); dictSet(top(), items); break; } // SETITEMS
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { const name = pop(), module = pop(); stack.push(global(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(), fn = pop(); stack.push(reduce(fn, args)); break; } // REDUCE
      case 0x62: { const state = pop(); build(top(), state); break; } // BUILD
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
