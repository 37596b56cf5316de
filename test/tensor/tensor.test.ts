import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { arange, cuda, DTYPES, manualSeed, ones, randn, Tensor, tensor, zeros } from '../../lib';
import type { DType } from '../../lib';

// One TypedArray per dtype with values that survive the round trip exactly.
const samples: Record<DType, ArrayBufferView> = {
  float32: new Float32Array([1.5, -2.25, 0, 3e38, -1e-30, 7]),
  float64: new Float64Array([1.5, -2.25, 0, 1e300, -1e-300, Math.PI]),
  float16: new Uint16Array([0x3c00, 0xc000, 0x0000, 0x7bff, 0x0001, 0x3555]),
  bfloat16: new Uint16Array([0x3f80, 0xc000, 0x0000, 0x7f7f, 0x0001, 0x4049]),
  int64: new BigInt64Array([1n, -2n, 0n, 9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n]),
  int32: new Int32Array([1, -2, 0, 2147483647, -2147483648, 7]),
  int16: new Int16Array([1, -2, 0, 32767, -32768, 7]),
  int8: new Int8Array([1, -2, 0, 127, -128, 7]),
  uint8: new Uint8Array([1, 2, 0, 255, 128, 7]),
  bool: new Uint8Array([1, 0, 0, 1, 1, 0]),
};

describe('tensor() round trips', () => {
  it.each(DTYPES)('%s: data() returns exactly what went in', (dtype) => {
    const t = tensor(samples[dtype] as Float32Array, [2, 3], { dtype });
    expect(t).toBeInstanceOf(Tensor);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe(dtype);
    expect(t.device).toBe('cpu');
    expect(t.numel).toBe(6);
    const out = t.data();
    expect(out.constructor).toBe(samples[dtype].constructor);
    expect(Array.from(out as Float32Array)).toEqual(Array.from(samples[dtype] as Float32Array));
    t.dispose();
  });

  it('infers the dtype from the TypedArray', () => {
    expect(tensor(new Float64Array(2)).dtype).toBe('float64');
    expect(tensor(new BigInt64Array(2)).dtype).toBe('int64');
    expect(tensor(new Int32Array(2)).dtype).toBe('int32');
    expect(tensor(new Uint8Array(2)).dtype).toBe('uint8');
    expect(tensor(new Uint8ClampedArray(2)).dtype).toBe('uint8');
  });

  it('takes number, bigint and boolean arrays (number[] is float32, as in torch)', () => {
    const f = tensor([1, 2.5, -3]);
    expect(f.dtype).toBe('float32');
    expect(Array.from(f.data())).toEqual([1, 2.5, -3]);
    expect(tensor([1n, -5n]).data()).toEqual(new BigInt64Array([1n, -5n]));
    const b = tensor([true, false, true]);
    expect(b.dtype).toBe('bool');
    expect(Array.from(b.data())).toEqual([1, 0, 1]);
    expect(tensor([1, 2, 3], [3], { dtype: 'int64' }).data()).toEqual(new BigInt64Array([1n, 2n, 3n]));
  });

  it('converts between dtypes as torch does (truncation toward zero, nonzero is true)', () => {
    expect(Array.from(tensor(new Float32Array([1.7, -1.7, 2.5]), [3], { dtype: 'int32' }).data())).toEqual([1, -1, 2]);
    expect(Array.from(tensor(new Uint8Array([0, 2, 255]), [3], { dtype: 'bool' }).data())).toEqual([0, 1, 1]);
  });

  it('refuses values an integer dtype cannot hold, as torch.tensor does (the cast made 300 into 44 as uint8)', () => {
    for (const [data, dtype, message] of [
      [[300], 'uint8', 'tensor() data[0] is 300, which uint8 cannot hold (integers from 0 to 255)'],
      [[1, NaN], 'int32', 'tensor() data[1] is NaN, which int32 cannot hold (integers from -2147483648 to 2147483647)'],
      [[Infinity], 'int64', 'tensor() data[0] is Infinity, which int64 cannot hold (integers from -9223372036854775808 to 9223372036854775807)'],
      [[2 ** 63], 'int64', 'tensor() data[0] is 9223372036854776000, which int64 cannot hold (integers from -9223372036854775808 to 9223372036854775807)'],
      [[-1], 'uint8', 'tensor() data[0] is -1, which uint8 cannot hold (integers from 0 to 255)'],  // PyTorch wraps it to 255
      [new Float32Array([3e9]), 'int32', 'tensor() data[0] is 3000000000, which int32 cannot hold (integers from -2147483648 to 2147483647)'],
      [new Int32Array([0, 128]), 'int8', 'tensor() data[1] is 128, which int8 cannot hold (integers from -128 to 127)'],
      [new BigInt64Array([2n ** 40n]), 'int32', 'tensor() data[0] is 1099511627776, which int32 cannot hold (integers from -2147483648 to 2147483647)'],
    ] as const) {
      expect(() => tensor(data as never, [data.length], { dtype })).toThrow(new RangeError(message));
    }
    // The edges hold, fractions truncate toward zero, floating dtypes take infinities (as torch).
    expect(Array.from(tensor([255, 0, 255.9], [3], { dtype: 'uint8' }).data())).toEqual([255, 0, 255]);
    expect(Array.from(tensor([-(2 ** 31), 2 ** 31 - 1], [2], { dtype: 'int32' }).data())).toEqual([-(2 ** 31), 2 ** 31 - 1]);
    expect(Array.from(tensor([-(2 ** 63)], [1], { dtype: 'int64' }).data())).toEqual([-(2n ** 63n)]);
    expect(Array.from(tensor([Infinity, NaN], [2], { dtype: 'float16' }).toFloat32Array())).toEqual([Infinity, NaN]);
  });

  it('copies memory shared with other threads (a SharedArrayBuffer) like any other', () => {
    const shared = new Float32Array(new SharedArrayBuffer(16)).fill(1.5);
    expect(Array.from(tensor(shared, [2, 2]).data())).toEqual([1.5, 1.5, 1.5, 1.5]);
  });

  it('reads 16-bit floats through toFloat32Array()', () => {
    expect(Array.from(tensor(samples.float16 as Uint16Array, [6], { dtype: 'float16' }).toFloat32Array().slice(0, 3))).toEqual([1, -2, 0]);
    expect(Array.from(tensor(samples.bfloat16 as Uint16Array, [6], { dtype: 'bfloat16' }).toFloat32Array().slice(0, 3))).toEqual([1, -2, 0]);
    expect(Array.from(tensor(new BigInt64Array([3n, -4n])).toFloat32Array())).toEqual([3, -4]);
  });

  it('handles 0-d tensors', () => {
    const s = tensor([42], []);
    expect(s.shape).toEqual([]);
    expect(s.numel).toBe(1);
    expect(s.item()).toBe(42);
    expect(tensor([7n], []).item()).toBe(7n);
    expect(tensor([true], []).item()).toBe(true);
  });

  it.each([[[0]], [[2, 0, 3]], [[0, 0]]])('handles empty shape %j', (shape) => {
    const t = tensor(new Float32Array(0), shape);
    expect(t.shape).toEqual(shape);
    expect(t.numel).toBe(0);
    expect(t.data()).toEqual(new Float32Array(0));
    expect(zeros(shape, { dtype: 'int64' }).data()).toEqual(new BigInt64Array(0));
  });

  it('copies: the tensor does not see later writes to the source array', () => {
    const src = new Float32Array([1, 2, 3]);
    const t = tensor(src);
    src[0] = 99;
    expect(t.data()[0]).toBe(1);
    const out = t.data();
    out[1] = 99;
    expect(t.data()[1]).toBe(2);
  });

  it('reads a TypedArray that is a view into a larger buffer', () => {
    const buffer = new Float32Array([0, 1, 2, 3, 4, 5]);
    expect(Array.from(tensor(buffer.subarray(2, 5)).data())).toEqual([2, 3, 4]);
  });
});

describe('factories', () => {
  it('zeros, ones', () => {
    expect(Array.from(zeros([2, 2]).data())).toEqual([0, 0, 0, 0]);
    expect(zeros([3]).dtype).toBe('float32');
    expect(Array.from(ones([3], { dtype: 'int32' }).data())).toEqual([1, 1, 1]);
    expect(Array.from(ones([2], { dtype: 'bool' }).data())).toEqual([1, 1]);
  });

  it('randn repeats under manualSeed and has unit variance', () => {
    manualSeed(1234);
    const a = randn([10_000]).data();
    manualSeed(1234);
    const b = randn([10_000]).data();
    expect(a).toEqual(b);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    manualSeed(2n ** 63n);
  });

  it('randn refuses integer dtypes', () => {
    expect(() => randn([2], { dtype: 'int64' })).toThrow(RangeError);
    expect(() => randn([2], { dtype: 'int64' })).toThrow('randn() needs a floating dtype (float32, float64, float16, bfloat16), got int64');
  });

  it('arange follows torch.arange', () => {
    const ints = arange(5);
    expect(ints.dtype).toBe('int64');
    expect(ints.data()).toEqual(new BigInt64Array([0n, 1n, 2n, 3n, 4n]));
    expect(arange(0, 1, 0.25).data()).toEqual(new Float32Array([0, 0.25, 0.5, 0.75]));
    expect(arange(5, 0, -2).data()).toEqual(new BigInt64Array([5n, 3n, 1n]));
    expect(arange(2, 2).numel).toBe(0);
    expect(arange(3, { dtype: 'float64' }).dtype).toBe('float64');
    expect(() => arange(0, 5, 0)).toThrow(/step must not be 0/);
    expect(() => arange(0, 5, -1)).toThrow(RangeError);
  });
});

describe('to() and dispose()', () => {
  it('to("cpu") returns an independent copy', () => {
    const a = tensor([1, 2, 3]);
    const b = a.to('cpu');
    a.dispose();
    expect(Array.from(b.data())).toEqual([1, 2, 3]);
    expect(b.device).toBe('cpu');
  });

  it('dispose() is idempotent and any later use is a clear error', () => {
    const t = zeros([2]);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(inspect(t)).toBe('Tensor(disposed)');
    for (const use of [() => t.data(), () => t.shape, () => t.dtype, () => t.to('cpu'), () => t.item(), () => t.toFloat32Array()]) {
      expect(use).toThrow(/this Tensor was disposed/);
      try {
        use();
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ERR_TORCH_ATTN_DISPOSED');
      }
    }
  });

  it.runIf(typeof Symbol.dispose === 'symbol')('supports `using` through Symbol.dispose', () => {
    const t = zeros([1]);
    (t as unknown as Record<symbol, () => void>)[Symbol.dispose]();
    expect(t.disposed).toBe(true);
  });

  it('prints shape, dtype and device', () => {
    expect(inspect(zeros([2, 3], { dtype: 'uint8' }))).toBe('Tensor(shape=[2, 3], dtype=uint8, device=cpu)');
    expect(String(ones([1]))).toBe('Tensor(shape=[1], dtype=float32, device=cpu)');
  });

  it.runIf(cuda.isAvailable())('CUDA: to("cuda") and back keeps the values', () => {
    const g = tensor([1, 2, 3]).to('cuda');
    expect(g.device).toBe('cuda:0');
    expect(Array.from(g.to('cpu').data())).toEqual([1, 2, 3]);
  });

  it.runIf(!cuda.isAvailable())('without CUDA, a cuda device is a RangeError that says why', () => {
    expect(() => tensor([1]).to('cuda')).toThrow(RangeError);
    expect(() => zeros([1], { device: 'cuda:0' })).toThrow(/device 'cuda:0' is not available/);
  });
});
