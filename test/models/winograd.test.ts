// The plans' Winograd kernel (native/models/winograd.cc) on single convolutions: F(2x2, 3x3)
// against the same arithmetic written out here, F(4x4, 3x3) (float32 only) against the direct
// convolution in float64.
// bf16: the inputs and weights rounded to bfloat16, the weights transformed (G g G^T) and the input
// tiles (B^T d B) rounded once to bfloat16, products and the inverse transform (A^T m A) exact,
// bias, residual and ReLU, the result rounded to bfloat16. The kernel sums its products in float32
// where this sums in float64, so a value may land one bfloat16 step away where it sat on a
// rounding boundary; nothing may be further, and few may differ at all.
// fp32: the same with float32 roundings: within 1e-5 of the largest output (float32's own error
// over the sums of a few hundred products).
// fp32 F(4x4, 3x3): within 2e-5 of the largest output (its transforms' coefficients, up to 8 and
// down to 1/24, cost float32 roundings F(2x2)'s do not: 1.1e-5 measured with 512 input channels,
// under 1e-5 with fewer).
// A tile read from the wrong place, a transform's wrong sign, a block of output channels given
// another's weights or bias: each moves most values by far more. (The whole plans' distance to
// the eager modules is inference-plan.test.ts's.)
import { describe, expect, it } from 'vitest';
import { buildInfo, getNumThreads, setNumThreads } from '../../lib';
import { native } from '../../lib/native';
import { cpuHasAvx512BwVl } from '../helpers';

const bf16Native = buildInfo().nativePrecisions.cpu.includes('bf16');
const avx512 = cpuHasAvx512BwVl(); // undefined off Linux: neither branch below runs
const zeros = (shape: number[]) => native.zeros(shape, 'float32');

/** float32 values rounded to the nearest bfloat16 (ties to even), as LibTorch's .to(bf16). */
function bf16(values: Float32Array): Float32Array {
  const out = Float32Array.from(values);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) & 0xffff0000) >>> 0;
  return out;
}

/** One bfloat16 step at v's magnitude (8 significant bits). */
function step(v: number): number {
  return v === 0 ? 0 : 2 ** (Math.floor(Math.log2(Math.abs(v))) - 7);
}

/** Deterministic values in [-scale, scale). */
function values(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

interface Case {
  n: number;
  ic: number;
  oc: number;
  h: number;
  w: number;
  relu: boolean;
  residual: boolean;
}

/** relu?(conv3x3(x, weight, padding 1) + bias (+ residual)) by F(2x2, 3x3) with the kernel's
 *  roundings (`round`: to bfloat16, or to float32); x, weight and residual already so rounded;
 *  NCHW. */
function reference(
  c: Case,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  residual: Float32Array | null,
  round: (v: Float32Array) => Float32Array,
): Float32Array {
  const { n, ic, oc, h, w } = c;
  // U = G g G^T per (out, in), rounded to bfloat16: u[(o * ic + i) * 16 + xi].
  const g = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
  const at = [[1, 1, 1, 0], [0, 1, -1, -1]]; // A^T, for A^T m A
  const u = new Float32Array(oc * ic * 16);
  for (let o = 0; o < oc; o++) {
    for (let i = 0; i < ic; i++) {
      const k = (r: number, s: number) => weight[((o * ic + i) * 3 + r) * 3 + s];
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          let sum = 0;
          for (let r = 0; r < 3; r++) for (let s = 0; s < 3; s++) sum += g[a][r] * k(r, s) * g[b][s];
          u[(o * ic + i) * 16 + 4 * a + b] = sum;
        }
      }
    }
  }
  const ub = round(u);
  const out = new Float32Array(n * oc * h * w);
  const tile = new Float64Array(16 * ic);
  for (let img = 0; img < n; img++) {
    for (let ty = 0; ty < h; ty += 2) {
      for (let tx = 0; tx < w; tx += 2) {
        // V = B^T d B per input channel (bfloat16: exact, sums of four bfloat16 values), rounded once.
        for (let i = 0; i < ic; i++) {
          const d = (r: number, s: number) => {
            const y = ty - 1 + r, xx = tx - 1 + s;
            return y >= 0 && y < h && xx >= 0 && xx < w ? x[((img * ic + i) * h + y) * w + xx] : 0;
          };
          const t = [0, 1, 2, 3].map((s) => [d(0, s) - d(2, s), d(1, s) + d(2, s), d(2, s) - d(1, s), d(1, s) - d(3, s)]);
          for (let a = 0; a < 4; a++) {
            const row = [t[0][a] - t[2][a], t[1][a] + t[2][a], t[2][a] - t[1][a], t[1][a] - t[3][a]];
            for (let b = 0; b < 4; b++) tile[(4 * a + b) * ic + i] = row[b];
          }
        }
        const v = round(Float32Array.from(tile));
        for (let o = 0; o < oc; o++) {
          const m = new Float64Array(16);
          for (let xi = 0; xi < 16; xi++) {
            let sum = 0;
            for (let i = 0; i < ic; i++) sum += v[xi * ic + i] * ub[(o * ic + i) * 16 + xi];
            m[xi] = sum;
          }
          for (let a = 0; a < 2; a++) {
            for (let b = 0; b < 2; b++) {
              const y = ty + a, xx = tx + b;
              if (y >= h || xx >= w) continue;
              let sum = bias[o];
              for (let p = 0; p < 4; p++) for (let q = 0; q < 4; q++) sum += at[a][p] * m[4 * p + q] * at[b][q];
              const index = ((img * oc + o) * h + y) * w + xx;
              if (residual) sum += residual[index];
              out[index] = c.relu ? Math.max(0, sum) : sum;
            }
          }
        }
      }
    }
  }
  return round(out);
}

/** relu?(conv3x3(x, weight, padding 1) + bias (+ residual)) directly, in float64; NCHW. */
function direct(c: Case, x: Float32Array, weight: Float32Array, bias: Float32Array, residual: Float32Array | null): Float64Array {
  const { n, ic, oc, h, w } = c;
  const out = new Float64Array(n * oc * h * w);
  for (let img = 0; img < n; img++) {
    for (let o = 0; o < oc; o++) {
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < w; xx++) {
          let sum = bias[o];
          for (let i = 0; i < ic; i++) {
            for (let r = 0; r < 3; r++) {
              const yy = y - 1 + r;
              if (yy < 0 || yy >= h) continue;
              for (let s = 0; s < 3; s++) {
                const xs = xx - 1 + s;
                if (xs >= 0 && xs < w) sum += x[((img * ic + i) * h + yy) * w + xs] * weight[((o * ic + i) * 3 + r) * 3 + s];
              }
            }
          }
          const index = ((img * oc + o) * h + y) * w + xx;
          if (residual) sum += residual[index];
          out[index] = c.relu ? Math.max(0, sum) : sum;
        }
      }
    }
  }
  return out;
}

const CASES: Case[] = [
  { n: 2, ic: 32, oc: 64, h: 9, w: 9, relu: true, residual: false }, // odd edges; 50 tiles in two chunks
  { n: 1, ic: 16, oc: 128, h: 7, w: 6, relu: true, residual: true }, // two blocks of output channels; a residual
  { n: 3, ic: 48, oc: 64, h: 1, w: 1, relu: false, residual: false }, // one pixel: a tile all padding but one
  { n: 5, ic: 512, oc: 128, h: 5, w: 5, relu: true, residual: true }, // small chunks (45 tiles, the last partial)
  { n: 4, ic: 64, oc: 64, h: 16, w: 16, relu: false, residual: true }, // 256 tiles: rows of a chunk past its count
];

const t = (data: Float32Array, shape: number[]) => native.tensor(data, shape, 'float32');

/** Case c's inputs (x, weight and residual rounded by `round`) and the kernel's output for them
 *  (F(tile x tile, 3 x 3)). */
function run(c: Case, precision: 'fp32' | 'bf16', round: (v: Float32Array) => Float32Array, tile: 2 | 4 = 2) {
  const { n, ic, oc, h, w } = c;
  const x = round(values(n * ic * h * w, 1));
  const weight = round(values(oc * ic * 9, 2, 1 / Math.sqrt(9 * ic)));
  const bias = values(oc, 3, 0.3);
  const residual = c.residual ? round(values(n * oc * h * w, 4)) : null;
  const got = native
    .winogradConv2d(t(x, [n, ic, h, w]), t(weight, [oc, ic, 3, 3]), t(bias, [oc]), c.relu, precision, residual ? t(residual, [n, oc, h, w]) : null, tile)
    .toFloat32Array();
  return { x, weight, bias, residual, got };
}

/** The kernel's F(2x2, 3x3) output and the reference's for case c, inputs rounded by `round`. */
function compute(c: Case, precision: 'fp32' | 'bf16', round: (v: Float32Array) => Float32Array) {
  const { x, weight, bias, residual, got } = run(c, precision, round);
  return { got, want: reference(c, x, weight, bias, residual, round) };
}

/** The largest distance between got and want, relative to want's largest magnitude. */
function relativeWorst(got: Float32Array, want: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  return worst / scale;
}

describe('bf16 Winograd kernel', () => {
  it.runIf(bf16Native).each<Case>(CASES)('$n x $ic x $h x $w -> $oc channels (relu $relu, residual $residual): as the arithmetic written out', (c) => {
    const { got, want } = compute(c, 'bf16', bf16);
    expect(got.length).toBe(want.length);
    let differ = 0;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      if (got[i] === want[i]) continue;
      differ++;
      worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(step(want[i]), 2 ** -20));
    }
    expect(worst).toBeLessThanOrEqual(1); // at most one bfloat16 step
    expect(differ).toBeLessThanOrEqual(Math.max(2, want.length / 100));
    if (c.relu) expect(got.every((v) => v >= 0)).toBe(true);
  });

  it.runIf(bf16Native)('refuses shapes it cannot run, naming what it takes', () => {
    expect(() => native.winogradConv2d(zeros([1, 24, 4, 4]), zeros([64, 24, 3, 3]), zeros([64]), true, 'bf16')).toThrow(/IC in multiples of 16, OC in multiples of 64/);
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([48, 16, 3, 3]), zeros([48]), true, 'bf16')).toThrow(/OC in multiples of 64/);
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([64, 16, 5, 5]), zeros([64]), true, 'bf16')).toThrow(/OC x IC x 3 x 3/);
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([64, 16, 3, 3]), zeros([64]), true, 'bf16', zeros([1, 64, 4, 5]))).toThrow(/residual float32 on the CPU, N x OC x H x W/);
  });

  it.runIf(bf16Native)('an empty batch or image gives an empty output', () => {
    for (const shape of [[0, 16, 4, 4], [1, 16, 0, 4], [2, 16, 3, 0]]) {
      const out = native.winogradConv2d(zeros(shape), zeros([64, 16, 3, 3]), zeros([64]), true, 'bf16');
      expect(out.shape).toEqual([shape[0], 64, shape[2], shape[3]]);
    }
  });

  it.runIf(!bf16Native)('says so on a CPU without AVX-512 BF16', () => {
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([64, 16, 3, 3]), zeros([64]), true, 'bf16')).toThrow(/no AVX-512 BF16/);
  });
});

describe('fp32 Winograd kernel', () => {
  it.runIf(avx512 === true).each<Case>(CASES)('$n x $ic x $h x $w -> $oc channels (relu $relu, residual $residual): as the arithmetic written out', (c) => {
    const { got, want } = compute(c, 'fp32', (v) => Float32Array.from(v));
    expect(got.length).toBe(want.length);
    expect(relativeWorst(got, want)).toBeLessThan(1e-5);
    if (c.relu) expect(got.every((v) => v >= 0)).toBe(true);
  });

  it.runIf(avx512 === true).each<Case>(CASES)('F(4x4, 3x3): $n x $ic x $h x $w -> $oc channels (relu $relu, residual $residual): as the direct convolution', (c) => {
    const { x, weight, bias, residual, got } = run(c, 'fp32', (v) => Float32Array.from(v), 4);
    const want = direct(c, x, weight, bias, residual);
    expect(got.length).toBe(want.length);
    expect(relativeWorst(got, want)).toBeLessThan(2e-5);
    if (c.relu) expect(got.every((v) => v >= 0)).toBe(true);
  });

  // F(4x4) weights larger than 36 x 256 x 256 floats run weights-stationary (winograd.h,
  // WinogradF4Stationary): every tile's transformed input first, then each block of weights once.
  // 256 -> 320 channels (11.8 MB) over 30 tiles, three blocks; 16 -> 4160 channels (9.6 MB) over
  // 36 tiles, more than a group holds (16 MB of transformed input and products: 24 tiles).
  it.runIf(avx512 === true).each<Case>([
    { n: 3, ic: 256, oc: 320, h: 5, w: 6, relu: true, residual: true },
    { n: 1, ic: 16, oc: 4160, h: 21, w: 23, relu: false, residual: false },
  ])('F(4x4, 3x3) weights-stationary: $n x $ic x $h x $w -> $oc channels (relu $relu, residual $residual): as the direct convolution', (c) => {
    const { x, weight, bias, residual, got } = run(c, 'fp32', (v) => Float32Array.from(v), 4);
    const want = direct(c, x, weight, bias, residual);
    expect(got.length).toBe(want.length);
    expect(relativeWorst(got, want)).toBeLessThan(2e-5);
    if (c.relu) expect(got.every((v) => v >= 0)).toBe(true);
  });

  it.runIf(avx512 === true)('refuses shapes it cannot run and empty inputs give empty outputs, as in bf16', () => {
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([48, 16, 3, 3]), zeros([48]), true, 'fp32')).toThrow(/OC in multiples of 64/);
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([64, 16, 3, 3]), zeros([64]), true, 'fp16' as 'fp32')).toThrow(/'fp32' or 'bf16'/);
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([64, 16, 3, 3]), zeros([64]), true, 'bf16', null, 4)).toThrow(/4 \(F\(4x4, 3x3\)\) runs in 'fp32' only/);
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([64, 16, 3, 3]), zeros([64]), true, 'fp32', null, 3 as 4)).toThrow(/tile\): 2 or 4/);
    for (const tile of [2, 4] as const) {
      for (const shape of [[0, 16, 4, 4], [1, 16, 0, 4], [2, 16, 3, 0]]) {
        const out = native.winogradConv2d(zeros(shape), zeros([64, 16, 3, 3]), zeros([64]), true, 'fp32', null, tile);
        expect(out.shape).toEqual([shape[0], 64, shape[2], shape[3]]);
      }
    }
  });

  it.runIf(avx512 === false)('says so on a CPU without AVX-512', () => {
    expect(() => native.winogradConv2d(zeros([1, 16, 4, 4]), zeros([64, 16, 3, 3]), zeros([64]), true, 'fp32')).toThrow(/no AVX-512/);
  });
});

/** The weight's gradient of conv3x3(x, weight, padding 1) for gradOutput `grad` (NCHW), written
 *  out in float64: per (out, in, r, s) the sum over images and pixels of grad x the input under it. */
function weightGradient(c: { n: number; ic: number; oc: number; h: number; w: number }, x: Float32Array, grad: Float32Array): Float64Array {
  const { n, ic, oc, h, w } = c;
  const want = new Float64Array(oc * ic * 9);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < oc; o++) {
      for (let ch = 0; ch < ic; ch++) {
        for (let r = 0; r < 3; r++) {
          for (let s = 0; s < 3; s++) {
            let dw = 0;
            for (let i = Math.max(0, 1 - r); i < Math.min(h, h + 1 - r); i++) {
              const xr = ((b * ic + ch) * h + i + r - 1) * w - 1 + s;
              const gr = ((b * oc + o) * h + i) * w;
              for (let j = Math.max(0, 1 - s); j < Math.min(w, w + 1 - s); j++) dw += grad[gr + j] * x[xr + j];
            }
            want[((o * ic + ch) * 3 + r) * 3 + s] += dw;
          }
        }
      }
    }
  }
  return want;
}

describe('training by Winograd: one convolution through autograd (winograd_training.h)', () => {
  // Forward by the given form; the input's and the weight's gradients by Winograd where they have
  // the tiles training takes (from 1024 2 x 2 tiles: the 4 x 16 x 32 x 32 cases, by F(4x4, 3x3) as
  // at most 256 channels), else LibTorch's. Each against the convolution and its two gradients
  // written out in float64.
  const TRAINING_CASES = [
    { n: 2, ic: 16, oc: 64, h: 9, w: 7, tile: 2 },
    { n: 4, ic: 16, oc: 64, h: 32, w: 32, tile: 2 },
    { n: 4, ic: 64, oc: 64, h: 32, w: 32, tile: 4 },
    { n: 1, ic: 256, oc: 256, h: 8, w: 8, tile: 4 }, // ResNet18's layer3 (F(4x4) up to 256 channels), forward only
  ] as const;
  it.runIf(avx512 === true).each(TRAINING_CASES)('$n x $ic x $h x $w -> $oc channels, F($tile x $tile): output and both gradients', (c) => {
    const { n, ic, oc, h, w } = c;
    const x = values(n * ic * h * w, 5);
    const weight = values(oc * ic * 9, 6, 1 / Math.sqrt(9 * ic));
    const grad = values(n * oc * h * w, 7);
    const [y, gx, gw] = native
      .winogradTrainingConv2d(native.tensor(x, [n, ic, h, w], 'float32'), native.tensor(weight, [oc, ic, 3, 3], 'float32'), native.tensor(grad, [n, oc, h, w], 'float32'), c.tile, 'fp32')
      .map((t) => t.toFloat32Array());
    const X = (b: number, ch: number, i: number, j: number) => (i < 0 || j < 0 || i >= h || j >= w ? 0 : x[((b * ic + ch) * h + i) * w + j]);
    const G = (b: number, o: number, i: number, j: number) => (i < 0 || j < 0 || i >= h || j >= w ? 0 : grad[((b * oc + o) * h + i) * w + j]);
    const K = (o: number, ch: number, r: number, s: number) => weight[((o * ic + ch) * 3 + r) * 3 + s];
    const wantY = new Float64Array(n * oc * h * w);
    const wantGx = new Float64Array(n * ic * h * w);
    const wantGw = weightGradient(c, x, grad);
    for (let b = 0; b < n; b++) {
      for (let o = 0; o < oc; o++) {
        for (let ch = 0; ch < ic; ch++) {
          for (let r = 0; r < 3; r++) {
            for (let s = 0; s < 3; s++) {
              const k = K(o, ch, r, s);
              for (let i = 0; i < h; i++) {
                for (let j = 0; j < w; j++) {
                  wantY[((b * oc + o) * h + i) * w + j] += X(b, ch, i + r - 1, j + s - 1) * k;
                  wantGx[((b * ic + ch) * h + i) * w + j] += G(b, o, i - r + 1, j - s + 1) * k;
                }
              }
            }
          }
        }
      }
    }
    expect(relativeWorst(y, wantY)).toBeLessThan(c.tile === 4 ? 2e-5 : 1e-5);
    expect(relativeWorst(gx, wantGx)).toBeLessThan(2e-5);
    expect(relativeWorst(gw, wantGw)).toBeLessThan(c.h === 32 ? 2e-5 : 1e-5);
  });
});

describe("training by Winograd: the weight's gradient (WinogradWeightGradient)", () => {
  // The kernel with the form given, against sum over images and pixels of gradOutput x input
  // written out in float64. Sizes that neither 2 nor 4 divides (tiles past the edges), input
  // channels that leave 4 and 2 rows after the 6-row steps (16, 32), several blocks of output
  // channels, and more tiles than a chunk holds (du summed over chunks).
  const CASES = [
    { n: 3, ic: 16, oc: 64, h: 9, w: 7, tile: 2 },
    { n: 3, ic: 16, oc: 64, h: 9, w: 7, tile: 4 },
    { n: 2, ic: 32, oc: 128, h: 14, w: 13, tile: 2 },
    { n: 2, ic: 32, oc: 128, h: 14, w: 13, tile: 4 },
    { n: 1, ic: 64, oc: 64, h: 32, w: 32, tile: 4 },
    { n: 2, ic: 256, oc: 256, h: 8, w: 8, tile: 4 }, // ResNet18's layer3: F(4x4) up to 256 channels
    // 1024 output channels: chunks of 252 (F(2x2)) and 112 (F(4x4)) tiles of the 450 and 128.
    { n: 2, ic: 16, oc: 1024, h: 30, w: 30, tile: 2 },
    { n: 2, ic: 16, oc: 1024, h: 30, w: 30, tile: 4 },
  ] as const;
  it.runIf(avx512 === true).each(CASES)('$n x $ic x $h x $w -> $oc channels, F($tile x $tile)', (c) => {
    const { n, ic, oc, h, w } = c;
    const x = values(n * ic * h * w, 11);
    const grad = values(n * oc * h * w, 12);
    const got = native.winogradWeightGradient(native.tensor(x, [n, ic, h, w], 'float32'), native.tensor(grad, [n, oc, h, w], 'float32'), c.tile).toFloat32Array();
    const want = weightGradient(c, x, grad);
    expect(relativeWorst(got, want)).toBeLessThan(c.tile === 4 ? 2e-5 : 1e-5);
  });

  it.runIf(avx512 === true)('the same bits whatever the thread count: the weight gradient (each value summed by one task, in tile order) and the forward kernel, chunked and weights-stationary (more threads than cores too, where threads take the items of preempted ones)', () => {
    const [n, ic, oc, h, w] = [4, 32, 128, 30, 30];
    const x = native.tensor(values(n * ic * h * w, 13), [n, ic, h, w], 'float32');
    const grad = native.tensor(values(n * oc * h * w, 14), [n, oc, h, w], 'float32');
    const weight = native.tensor(values(oc * ic * 9, 15, 0.1), [oc, ic, 3, 3], 'float32');
    const bias = native.tensor(values(oc, 16), [oc], 'float32');
    const threads = getNumThreads();
    try {
      const at = (count: number, tile: 2 | 4) => {
        setNumThreads(count);
        const dw = native.winogradWeightGradient(x, grad, tile).toFloat32Array();
        const y = native.winogradConv2d(x, weight, bias, true, 'fp32', null, tile).toFloat32Array();
        return { dw, y };
      };
      for (const tile of [2, 4] as const) {
        const one = at(1, tile);
        expect(at(3, tile)).toEqual(one);
        expect(at(2, tile)).toEqual(one);
        for (let k = 0; k < 3; k++) expect(at(8, tile)).toEqual(one);
      }
      // F(4x4) weights-stationary (256 -> 320 channels): each output the same sum in the same order.
      const [sn, sic, soc, sh, sw] = [5, 256, 320, 6, 7];
      const sx = native.tensor(values(sn * sic * sh * sw, 17), [sn, sic, sh, sw], 'float32');
      const sweight = native.tensor(values(soc * sic * 9, 18, 0.05), [soc, sic, 3, 3], 'float32');
      const sbias = native.tensor(values(soc, 19), [soc], 'float32');
      const stationary = (count: number) => {
        setNumThreads(count);
        return native.winogradConv2d(sx, sweight, sbias, true, 'fp32', null, 4).toFloat32Array();
      };
      const first = stationary(1);
      expect(stationary(3)).toEqual(first);
      expect(stationary(2)).toEqual(first);
      for (let k = 0; k < 3; k++) expect(stationary(8)).toEqual(first);
    } finally {
      setNumThreads(threads);
    }
  });
});
