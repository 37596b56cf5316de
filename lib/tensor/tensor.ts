// Tensors: creation from JS data, and the typed face of the native Tensor.
//
// Copies are explicit: tensor() copies its data into LibTorch memory, data() and
// toFloat32Array() copy out into a fresh TypedArray, and to() always returns an independent
// copy. No Tensor ever points into JS memory, so JS buffers can be reused or collected freely.
import { inspect } from 'node:util';
import { native } from '../native';
import * as validate from '../validate';

/** Element types. float16 and bfloat16 travel to and from JS as raw bits in a Uint16Array. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const DTYPES: readonly DType[] = [
  'float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool',
];

/** 'cpu', 'cuda' (the current GPU) or 'cuda:N'. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** The TypedArray that data() returns for each dtype. */
export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int16: Int16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** What item() returns for each dtype: int64 comes back as a bigint so no value is rounded. */
export type ItemOf<D extends DType> = D extends 'int64' ? bigint : D extends 'bool' ? boolean : number;

/** Data tensor() accepts. */
export type TensorData =
  | Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint8ClampedArray
  | Uint16Array
  | readonly number[] | readonly bigint[] | readonly boolean[];

/** The dtype tensor() gives `data` when options.dtype does not say. */
export type DTypeOfData<T> = T extends Float32Array ? 'float32'
  : T extends Float64Array ? 'float64'
  : T extends BigInt64Array ? 'int64'
  : T extends Int32Array ? 'int32'
  : T extends Int16Array ? 'int16'
  : T extends Int8Array ? 'int8'
  : T extends Uint8Array | Uint8ClampedArray ? 'uint8'
  : T extends readonly bigint[] ? 'int64'
  : T extends readonly boolean[] ? 'bool'
  : T extends readonly number[] ? 'float32'
  : DType;

export interface TensorOptions<D extends DType = DType> {
  /** Element type; by default the TypedArray's own (float32 for a number[]). Values are converted as torch does. */
  dtype?: D;
  /** Where the tensor lives; default 'cpu'. */
  device?: Device;
}

/**
 * A LibTorch tensor owned by JS. Free it with dispose() as soon as it is no longer needed;
 * a tensor nobody disposes is freed when garbage-collected.
 *
 * ```ts
 * const t = tensor([1, 2, 3, 4], [2, 2]);
 * t.shape; // [2, 2]
 * t.data(); // Float32Array [1, 2, 3, 4]
 * t.dispose();
 * ```
 */
export interface Tensor<D extends DType = DType> {
  readonly shape: number[];
  readonly dtype: D;
  /** 'cpu' or 'cuda:N'. */
  readonly device: string;
  /** Number of elements. */
  readonly numel: number;
  readonly disposed: boolean;
  /** A copy of the elements, row-major, in the TypedArray of this dtype. */
  data(): TypedArrayOf[D];
  /** A copy of the elements converted to float32. */
  toFloat32Array(): Float32Array;
  /** The single element of a one-element tensor. */
  item(): ItemOf<D>;
  /** An independent copy on `device` (a copy even when it is the same device). */
  to(device: Device): Tensor<D>;
  /** Frees the memory now. Idempotent; any later use throws an Error with code ERR_TORCH_ATTN_DISPOSED. */
  dispose(): void;
}

interface TensorConstructor {
  readonly prototype: Tensor;
}

/** The Tensor class, for `instanceof` checks. Tensors are made by tensor(), zeros() and friends. */
export const Tensor = native.Tensor as unknown as TensorConstructor;

function describeTensor(this: Tensor): string {
  return this.disposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
}
const proto = native.Tensor.prototype as unknown as Record<PropertyKey, unknown>;
proto[inspect.custom] = describeTensor;
proto['toString'] = describeTensor;
if (typeof Symbol.dispose === 'symbol') {
  proto[Symbol.dispose] = function (this: Tensor) {
    this.dispose();
  };
}

/** `value` as a Tensor; a TypeError naming `name` for anything else. */
export function expectTensor(value: unknown, name: string): Tensor {
  if (!(value instanceof (Tensor as unknown as new () => Tensor))) throw validate.typeError(name, 'a Tensor', value);
  return value as Tensor;
}

const DEVICE_PATTERN = /^(cpu|cuda(:\d+)?)$/;

/** A device option checked (undefined passes through): 'cpu', 'cuda' or 'cuda:N'; `name` says
 *  which option in the error. Whether this build or machine has the device is the native side's
 *  to say, when something moves there. */
export function deviceOption(value: unknown, name: string): Device | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw validate.typeError(name, "a device name ('cpu', 'cuda', 'cuda:N')", value);
  if (!DEVICE_PATTERN.test(value)) throw new RangeError(`${name} must be 'cpu', 'cuda' or 'cuda:N', got '${value}'`);
  return value as Device;
}

function tensorOptions(value: TensorOptions | undefined, fn: string): TensorOptions {
  const opts = validate.options(value, `${fn} options`, ['dtype', 'device']);
  return {
    dtype: opts.dtype === undefined ? undefined : validate.oneOf(opts.dtype, `${fn} options.dtype`, DTYPES),
    device: deviceOption(opts.device, `${fn} options.device`),
  };
}

/** Turns a JS Array into a TypedArray and the dtype it stands for. */
function fromArray(data: readonly unknown[]): { array: ArrayBufferView; dtype: DType } {
  if (data.length === 0) return { array: new Float64Array(0), dtype: 'float32' };
  const kind = typeof data[0];
  for (let i = 0; i < data.length; i++) {
    if (typeof data[i] !== kind || !['number', 'bigint', 'boolean'].includes(kind)) {
      throw validate.typeError(`tensor() data[${i}]`, `a ${kind === 'bigint' || kind === 'boolean' ? kind : 'number'} (all elements of one type)`, data[i]);
    }
  }
  if (kind === 'bigint') return { array: BigInt64Array.from(data as bigint[]), dtype: 'int64' };
  if (kind === 'boolean') return { array: Uint8Array.from(data as boolean[], (b) => (b ? 1 : 0)), dtype: 'bool' };
  return { array: Float64Array.from(data as number[]), dtype: 'float32' };
}

/** The values each integer dtype holds. */
const INTEGER_RANGES: Partial<Record<DType, readonly [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int16: [-(2n ** 15n), 2n ** 15n - 1n],
  int8: [-128n, 127n],
  uint8: [0n, 255n],
};

/** The values each TypedArray holds, where a conversion to an integer dtype may need no check. */
function arrayRange(array: ArrayBufferView): readonly [bigint, bigint] | undefined {
  if (array instanceof Uint8Array || array instanceof Uint8ClampedArray) return [0n, 255n];
  if (array instanceof Int8Array) return [-128n, 127n];
  if (array instanceof Int16Array) return [-(2n ** 15n), 2n ** 15n - 1n];
  if (array instanceof Uint16Array) return [0n, 2n ** 16n - 1n];
  if (array instanceof Int32Array) return [-(2n ** 31n), 2n ** 31n - 1n];
  if (array instanceof Uint32Array) return [0n, 2n ** 32n - 1n];
  if (array instanceof BigInt64Array) return [-(2n ** 63n), 2n ** 63n - 1n];
  return undefined;  // floating point, BigUint64Array
}

/**
 * Refuses values an integer dtype cannot hold (NaN, infinities, out of range), as torch.tensor
 * does ("value cannot be converted to type int32 without overflow"): the cast made 300 into 44 as
 * uint8 and NaN into -2147483648 as int32, silently. Fractions are truncated toward zero, as
 * PyTorch truncates them. Stricter than PyTorch in one case: a negative value is refused as uint8
 * (PyTorch wraps -1 to 255).
 */
function checkIntegerRange(array: ArrayBufferView, dtype: DType): void {
  const range = INTEGER_RANGES[dtype];
  if (range === undefined) return;
  const [min, max] = range;
  const held = arrayRange(array);
  if (held !== undefined && held[0] >= min && held[1] <= max) return;
  const values = array as unknown as ArrayLike<number | bigint>;
  // As doubles: every bound is exact, and max + 1 too (2^63 for int64, where max itself is not).
  const low = Number(min), above = Number(max) + 1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const fits = typeof v === 'bigint' ? v >= min && v <= max : Number.isFinite(v) && Math.trunc(v) >= low && Math.trunc(v) < above;
    if (!fits) throw new RangeError(`tensor() data[${i}] is ${v}, which ${dtype} cannot hold (integers from ${min} to ${max})`);
  }
}

/**
 * A tensor holding a copy of `data`, with `shape` (default: 1-D of data's length).
 *
 * ```ts
 * tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * tensor([1, 2, 3], [3], { dtype: 'int64' });
 * tensor(7, []) // not allowed: pass [7] with shape [] for a 0-d tensor
 * ```
 */
export function tensor<T extends TensorData, D extends DType = DTypeOfData<T>>(
  data: T,
  shape?: readonly number[],
  options?: TensorOptions<D>,
): Tensor<D> {
  const opts = tensorOptions(options, 'tensor()');
  let array: ArrayBufferView;
  let dtype = opts.dtype;
  if (Array.isArray(data)) {
    const converted = fromArray(data);
    array = converted.array;
    dtype ??= converted.dtype;
  } else if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
    // Memory shared with other threads is copied first (the addon reads only an ArrayBuffer's:
    // it answered "Invalid argument").
    array = data.buffer instanceof SharedArrayBuffer ? new (data.constructor as new (a: ArrayBufferView) => ArrayBufferView)(data) : data;
  } else {
    throw validate.typeError('tensor() data', 'a TypedArray or an Array of numbers, bigints or booleans', data);
  }
  if (dtype !== undefined) checkIntegerRange(array, dtype);
  const dims = shape === undefined ? [(array as Float32Array).length] : validate.shape(shape, 'tensor() shape');
  return native.tensor(array, dims, dtype, opts.device) as unknown as Tensor<D>;
}

function filled(kind: 'zeros' | 'ones' | 'randn', shape: readonly number[], options?: TensorOptions): Tensor {
  const opts = tensorOptions(options, `${kind}()`);
  return native[kind](validate.shape(shape, `${kind}() shape`), opts.dtype, opts.device) as unknown as Tensor;
}

/** A tensor of zeros (float32 unless options.dtype says otherwise). */
export function zeros<D extends DType = 'float32'>(shape: readonly number[], options?: TensorOptions<D>): Tensor<D> {
  return filled('zeros', shape, options) as Tensor<D>;
}

/** A tensor of ones (float32 unless options.dtype says otherwise). */
export function ones<D extends DType = 'float32'>(shape: readonly number[], options?: TensorOptions<D>): Tensor<D> {
  return filled('ones', shape, options) as Tensor<D>;
}

/** Standard-normal samples from LibTorch's generator (seed it with manualSeed()); floating dtypes only. */
export function randn<D extends DType = 'float32'>(shape: readonly number[], options?: TensorOptions<D>): Tensor<D> {
  return filled('randn', shape, options) as Tensor<D>;
}

/**
 * Values from start (inclusive) to end (exclusive) by step, as torch.arange: int64 when every
 * argument is an integer, else float32.
 *
 * ```ts
 * arange(5);            // int64 [0, 1, 2, 3, 4]
 * arange(0, 1, 0.25);   // float32 [0, 0.25, 0.5, 0.75]
 * ```
 */
export function arange(end: number, options?: TensorOptions): Tensor;
export function arange(start: number, end: number, step?: number, options?: TensorOptions): Tensor;
export function arange(a: number, b?: number | TensorOptions, c?: number, d?: TensorOptions): Tensor {
  const [start, end, step, options] = typeof b === 'number' ? [a, b, c ?? 1, d] : [0, a, 1, b];
  const s = validate.finiteNumber(start, 'arange() start');
  const e = validate.finiteNumber(end, 'arange() end');
  const st = validate.finiteNumber(step, 'arange() step');
  const opts = tensorOptions(options, 'arange()');
  const dtype = opts.dtype ?? ([s, e, st].every(Number.isInteger) ? 'int64' : 'float32');
  return native.arange(s, e, st, dtype, opts.device ?? 'cpu') as unknown as Tensor;
}
