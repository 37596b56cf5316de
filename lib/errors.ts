// Error codes torch-attn sets on the errors it raises (native and TypeScript alike), so callers
// can branch on `err.code` rather than on message text.
export const ErrorCode = {
  /** A LibTorch operation failed. */
  LIBTORCH: 'ERR_TORCH_ATTN_LIBTORCH',
  /** An allocation failed (a RangeError). */
  OOM: 'ERR_TORCH_ATTN_OOM',
  /** A file is not a readable checkpoint, or a state dict does not fit the model. */
  CHECKPOINT: 'ERR_TORCH_ATTN_CHECKPOINT',
  /** A data file or image cannot be read (missing, truncated, wrong format, undecodable). */
  DATA: 'ERR_TORCH_ATTN_DATA',
  /** A disposed tensor was used. */
  DISPOSED: 'ERR_TORCH_ATTN_DISPOSED',
  /** A model was used while async work (predict, a load) runs on it. */
  BUSY: 'ERR_TORCH_ATTN_BUSY',
  /** A predictor's queue is full (or the predictor is closed): retry later. */
  OVERLOADED: 'ERR_TORCH_ATTN_OVERLOADED',
  /** A collective failed (another rank died or timed out), a rendezvous could not happen, or a
   *  destroyed process group was used. */
  DISTRIBUTED: 'ERR_TORCH_ATTN_DISTRIBUTED',
  /** Pretrained weights are not in the cache, or fetching them failed (network, HTTP status,
   *  a truncated transfer, a SHA-256 that does not match the file name). */
  WEIGHTS: 'ERR_TORCH_ATTN_WEIGHTS',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An Error carrying one of torch-attn's codes. */
export function codedError(code: ErrorCode, message: string): Error & { code: ErrorCode } {
  return Object.assign(new Error(message), { code });
}
