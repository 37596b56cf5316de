// Precision and memory format: the names (the core owns the precision table,
// native/models/precision.h; test/models/precision.test.ts checks these against it), their
// validation, and the one-time warning for bf16 on a CPU without bf16 arithmetic.
import { native } from './native';
import * as validate from './validate';

/** 'fp32' (exact, the default), 'bf16' (autocast to bfloat16: CPU and CUDA), 'fp16' (autocast to
 *  float16 with dynamic loss scaling: CUDA only). Parameters, optimizer state and checkpoints
 *  stay float32 in every precision. */
export const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** How a model keeps its 4-D weights and takes its inputs: 'channels-last' (NHWC) lets oneDNN
 *  run convolutions without reorders. State dicts are written in the standard layout either way. */
export const MEMORY_FORMATS = ['contiguous', 'channels-last'] as const;
export type MemoryFormat = (typeof MEMORY_FORMATS)[number];

let warnedSlowBf16 = false;

/** A validated precision (undefined: 'fp32'); warns once when bf16 will run emulated on this CPU. */
export function precisionOption(value: unknown, where: string, device: string): Precision {
  if (value === undefined) return 'fp32';
  const p = validate.oneOf(value, where, PRECISIONS);
  if (p === 'bf16' && device === 'cpu' && !warnedSlowBf16 && !native.buildInfo().nativePrecisions.cpu.includes('bf16')) {
    warnedSlowBf16 = true;
    process.emitWarning('this CPU has no bfloat16 arithmetic (avx512_bf16 or AMX): bf16 runs emulated and is likely slower than fp32', {
      code: 'TORCH_ATTN_SLOW_BF16',
    });
  }
  return p;
}
