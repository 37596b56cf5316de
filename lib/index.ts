// torch-attn's public API. Exports only: each area lives in its own file.
export { buildInfo, cuda, setNumThreads, getNumThreads, manualSeed } from './runtime';
export type { BuildInfo } from './runtime';
export { Tensor, DTYPES, tensor, zeros, ones, randn, arange } from './tensor/tensor';
export type { DType, DTypeOfData, Device, TypedArrayOf, ItemOf, TensorData, TensorOptions } from './tensor/tensor';
