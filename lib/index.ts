// torch-attn's public API. Exports only: each area lives in its own file.
export { buildInfo, cuda, setNumThreads, getNumThreads, manualSeed } from './runtime';
export type { BuildInfo } from './runtime';
export { Tensor, DTYPES, tensor, zeros, ones, randn, arange } from './tensor/tensor';
export type { DType, DTypeOfData, Device, TypedArrayOf, ItemOf, TensorData, TensorOptions } from './tensor/tensor';
export { Model } from './models/model';
export { readStateDict, saveStateDict, inspectCheckpoint } from './models/checkpoint';
export type { CheckpointFormat, CheckpointEntry, CheckpointInfo } from './models/checkpoint';
export { ErrorCode } from './errors';
export { CHECKPOINT_LAYOUTS } from './models/layouts';
export type { CheckpointLayout } from './models/layouts';
export type { NamedParameter, NamedBuffer, SummaryRow, LoadResult, LoadOptions, PredictOptions, BackboneReport } from './models/model';
export { resnet, vgg, ResNetCBAM, ResNetNAM, CBAMCNN } from './models/builders';
export type { ResNetOptions, VGGOptions, ResNetDepth, VGGDepth, Stem, Placement } from './models/builders';
export { AttentionModule, CBAM, NAM, SE, ECA, ATTENTION_KINDS, CBAM_LAYOUTS } from './modules/attention';
export type { AttentionKind, AttentionInit, AttentionOptions, AttentionMaps, CBAMOptions, CBAMPoolType, NAMOptions, SEOptions, ECAOptions } from './modules/attention';
export { optim, Optimizer } from './training/optim';
export type { OptimizerType, ParamGroup, SGDGroupOptions, AdamGroupOptions, OptimizerSettings } from './training/optim';
export { parameterGroups, resolveParameters } from './training/groups';
