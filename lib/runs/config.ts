// Run configurations: what `torch-attn train --config run.yaml` and the experiment scripts take,
// checked field by field (messages name the field and what is allowed), and turned into a model,
// datasets and a fine-tuner.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { type ImageDataset, datasets } from '../data/datasets';
import { type TransformStep, transformFromSpec, transforms } from '../data/transforms';
import { CBAMCNN, type Network, resnet, vgg } from '../models/builders';
import type { Model } from '../models/model';
import { ATTENTION_KINDS, type AttentionOptions, attentionSpec } from '../modules/attention';
import type { FineTunerOptions, SchedulerSpec, StageSpec } from '../training/finetune';
import { readJsonObject, readRegularTextFile } from '../files';
import { ErrorCode, codedError } from '../errors';
import { RUN_CONFIG } from './report';
import * as validate from '../validate';
import { MEMORY_FORMATS, PRECISIONS, type MemoryFormat, type Precision } from '../precision';

import { ARCHS, type Arch } from './archs';
import { deviceOption } from '../tensor/tensor';

export { ARCHS, type Arch } from './archs';
export const DATASETS = ['cifar10', 'cifar100', 'imageFolder'] as const;
export const AUGMENTS = ['cifar', 'imagenet', 'none'] as const;
/** Per-channel mean and std of each dataset's training images, as the field uses them. */
export const NORMALIZATION = {
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
} as const;
const NORMALIZE_NAMES = Object.keys(NORMALIZATION) as (keyof typeof NORMALIZATION)[];
/** A transform as a run config writes it (see transformFromSpec). */
export type TransformSpec = string | Record<string, unknown>;

export interface RunConfig {
  /** The run's name (default `<arch>-<attention>-<dataset>`); the run directory is runs/<name> unless `out` says otherwise. */
  name: string;
  /** The model: architecture, attention and where it goes, backbone weights. */
  model: {
    /** The architecture: resnet18-152 (torchvision's), vgg11-19 (torchvision's), or the small CBAM-CNN (32 x 32 inputs). */
    arch: Arch;
    /** The attention kind (default cbam); 'none' is the plain torchvision model. */
    attention: 'cbam' | 'nam' | 'se' | 'eca' | 'none';
    /** ResNet: 'stage' (after each stage) or 'block' (inside every residual block); default: CBAM after stages, NAM / SE / ECA in blocks. */
    placement?: 'stage' | 'block';
    /** Stages (1-4) with attention; default all. */
    attentionStages?: number[];
    /** 'cifar': a 3x3 stride-1 first convolution, no max-pool (32 x 32 inputs); 'imagenet': torchvision's 7x7/2 + max-pool. Default: cifar for CIFAR, imagenet for image folders. */
    stem?: 'cifar' | 'imagenet';
    /** VGG: with BatchNorm (vgg16_bn, default) or without (vgg16). */
    batchNorm?: boolean;
    /** The attention modules' options (CBAM: ratio, kernelSize, init 'passthrough', ...; see attentionSpec). */
    attentionOptions?: AttentionOptions;
    /** The backbone's weights: 'imagenet' / 'imagenet-v2' (torchvision's, from PyTorch's cache) or a checkpoint file. */
    weights?: string;
  };
  /** The data: which dataset, where, and its transforms. */
  data: {
    /** cifar10 / cifar100 (the binary or python batches, or image files under train/ and test/), or imageFolder (one sub-folder per class). */
    dataset: (typeof DATASETS)[number];
    /** The dataset's folder; for image folders, one holding train/ and val/ (or test/), or the training folder itself. */
    path: string;
    /** The test images' folder (default: <path>/../val for image folders, <path>/test for CIFAR
     *  as image files). */
    testPath?: string;
    /** CIFAR-100: the 100 fine classes (default) or the 20 coarse ones. */
    label?: 'fine' | 'coarse';
    /** imageFolder: the side images are cropped to (default 224). */
    imageSize?: number;
    /** A preset, or the training transforms before toTensor/normalize as data
     *  (`[{ randomCrop: { size: 32, padding: 4 } }, 'randomHorizontalFlip', ...]`). */
    augment?: (typeof AUGMENTS)[number] | TransformSpec[];
    /** The test transforms before toTensor/normalize (default: resize and center crop to imageSize). */
    testTransform?: TransformSpec[];
    /** Normalisation statistics: a dataset's name or { mean, std } (default: the dataset's own;
     *  ImageNet's for image folders). */
    normalize?: keyof typeof NORMALIZATION | { mean: number[]; std: number[] };
  };
  /** The fine-tuning stages in order, each naming what trains and at which rate; default: the architecture's schedule (three stages for ResNets and VGGs, one for the CBAM-CNN). */
  stages: StageSpec[];
  /** The optimizer: { type: sgd | adam | adamw, momentum, weightDecay, betas, ... } (default Adam). */
  optimizer: NonNullable<FineTunerOptions['optimizer']>;
  /** A learning-rate schedule over the whole run, for stages without their own. */
  scheduler?: SchedulerSpec;
  /** The loss: cross-entropy, with optional label smoothing. */
  loss?: FineTunerOptions['loss'];
  /** λ of NAM's sparsity penalty on its scaling factors (0: none). */
  namSparsity?: number;
  /** Clip the global gradient norm to this. */
  gradClip?: number;
  /** BatchNorms of frozen groups: 'eval' keeps their statistics (default), 'train' updates them
   *  (what a PyTorch script that only sets requires_grad=False does). */
  batchNorm: 'eval' | 'train';
  /** Data-parallel runs: BatchNorms take their statistics over the batches of all ranks
   *  (PyTorch's SyncBatchNorm); default false. In one process it changes nothing. */
  syncBatchNorm: boolean;
  /** 'fp32' (default), 'bf16' or 'fp16' (CUDA). */
  precision: Precision;
  /** 3 x 3, stride-1 convolutions' forward pass and input gradient by Winograd: float32 training
   *  steps ~1.2x as fast on AVX-512 CPUs, results no longer bit-identical to PyTorch's (default
   *  false). */
  winograd: boolean;
  /** 'channels-last' weights and inputs (default 'contiguous'). */
  memoryFormat: MemoryFormat;
  /** Where the model trains: 'cpu' (default), 'cuda' or 'cuda:N'. */
  device: string;
  /** Images per training batch (default 64; per rank in data-parallel runs). */
  batchSize: number;
  /** Loader threads decoding and augmenting images (default 2). */
  workers: number;
  /** Seeds the initialisation, the shuffle and the augmentation (default 0). */
  seed: number;
  /** Batch records in metrics.jsonl, and plain batch lines in logs, every this many batches (default 100; 0: none). */
  logEvery: number;
  /** The run directory. */
  out: string;
}

/** A torch-attn run configuration (.yaml / .json): `model` and `data` are required, everything
 *  else has a default. (`npm run build:schema` writes schema/run-config.schema.json from this type.) */
export type RunConfigFile = Partial<Omit<RunConfig, 'model' | 'data'>> & {
  /** The model: architecture, attention and where it goes, backbone weights. */
  model: Omit<RunConfig['model'], 'attention'> & Partial<Pick<RunConfig['model'], 'attention'>>;
  /** The data: which dataset, where, and its transforms. */
  data: RunConfig['data'];
  /** Epochs per stage ([5, 15, 30]), or one number for every stage: rescales the stages. */
  epochs?: number | number[];
};

export const THREE_STAGE: StageSpec[] = [
  { name: 'head', epochs: 5, train: ['head', 'attention'], lr: 1e-3 },
  { name: 'high', epochs: 15, train: ['head', 'attention', 'layer3', 'layer4'], lr: 1e-4 },
  { name: 'full', epochs: 30, train: 'all', lr: 1e-5 },
];

/** The schedule a run gets without `stages`: the staged fine-tune for ResNets and VGGs (their own
 *  high groups: layer3-4, stage4-5), one stage training everything for the CBAM-CNN (its
 *  document trains it from scratch: Adam 1e-3, 50 epochs). */
export function defaultStages(arch: string): { stages: StageSpec[]; description: string } {
  if (arch === 'cbamcnn') return { stages: [{ name: 'all', epochs: 50, train: 'all', lr: 1e-3 }], description: 'one stage training everything, the CBAM-CNN trained from scratch' };
  if (arch.startsWith('vgg')) {
    return {
      stages: THREE_STAGE.map((s) => (s.name === 'high' ? { ...s, train: ['head', 'attention', 'stage4', 'stage5'] } : { ...s })),
      description: 'the staged fine-tune: head + attention, then stage4-5, then everything',
    };
  }
  return { stages: structuredClone(THREE_STAGE), description: 'the staged fine-tune: head + attention, then layer3-4, then everything' };
}

const TOP_KEYS = ['name', 'model', 'data', 'stages', 'epochs', 'optimizer', 'scheduler', 'loss', 'namSparsity', 'gradClip', 'batchNorm', 'syncBatchNorm', 'precision', 'winograd', 'memoryFormat', 'device', 'batchSize', 'workers', 'seed', 'logEvery', 'out'];

/** Checks a parsed config and fills its defaults. `epochs` (one number per stage) rescales the stages. */
export function checkConfig(raw: unknown, where = 'config'): RunConfig {
  if (!validate.isPlainObject(raw)) throw validate.typeError(where, 'an object (the run configuration)', raw);
  const c = validate.options(raw as Record<string, unknown>, where, TOP_KEYS) as Record<string, unknown>;
  const m = validate.options((c.model ?? {}) as Record<string, unknown>, `${where}.model`, ['arch', 'attention', 'attentionOptions', 'placement', 'attentionStages', 'stem', 'batchNorm', 'weights']);
  if (c.model === undefined) throw new TypeError(`${where}.model is required: { arch: ${ARCHS.map((a) => `'${a}'`).join(' | ')}, attention }`);
  const arch = validate.oneOf(m.arch, `${where}.model.arch`, ARCHS);
  const attention = validate.oneOf(m.attention ?? 'cbam', `${where}.model.attention`, ATTENTION_KINDS) as RunConfig['model']['attention'];
  if (arch === 'cbamcnn' && attention !== 'cbam') throw new RangeError(`${where}.model.attention must be 'cbam' for cbamcnn`);
  const model: RunConfig['model'] = { arch, attention };
  if (m.attentionOptions !== undefined) {
    attentionSpec(attention, m.attentionOptions, `${where}.model.attentionOptions`);
    model.attentionOptions = m.attentionOptions as AttentionOptions;
  }
  if (m.placement !== undefined) model.placement = validate.oneOf(m.placement, `${where}.model.placement`, ['stage', 'block'] as const);
  if (m.attentionStages !== undefined) {
    if (!Array.isArray(m.attentionStages)) throw validate.typeError(`${where}.model.attentionStages`, 'an Array of stage numbers (1-4)', m.attentionStages);
    model.attentionStages = m.attentionStages.map((s, i) => validate.integer(s, `${where}.model.attentionStages[${i}]`, 1, 4));
  }
  for (const [key, only] of [['placement', 'resnet'], ['attentionStages', 'resnet'], ['batchNorm', 'vgg'], ['stem', 'resnet and vgg']] as const) {
    if (m[key] !== undefined && !only.split(' and ').some((a) => arch.startsWith(a))) throw new RangeError(`${where}.model.${key} applies to ${only} models only, not ${arch}`);
  }
  if (m.stem !== undefined) model.stem = validate.oneOf(m.stem, `${where}.model.stem`, ['cifar', 'imagenet'] as const);
  if (m.batchNorm !== undefined) model.batchNorm = validate.flag(m.batchNorm, `${where}.model.batchNorm`);
  if (m.weights !== undefined) model.weights = filePath(m.weights, `${where}.model.weights`);

  if (c.data === undefined) throw new TypeError(`${where}.data is required: { dataset: ${DATASETS.map((d) => `'${d}'`).join(' | ')}, path }`);
  const d = validate.options(c.data as Record<string, unknown>, `${where}.data`, ['dataset', 'path', 'testPath', 'label', 'imageSize', 'augment', 'testTransform', 'normalize']);
  const data: RunConfig['data'] = { dataset: validate.oneOf(d.dataset, `${where}.data.dataset`, DATASETS), path: filePath(d.path, `${where}.data.path`) };
  if (d.testPath !== undefined) data.testPath = filePath(d.testPath, `${where}.data.testPath`);
  if (d.label !== undefined) data.label = validate.oneOf(d.label, `${where}.data.label`, ['fine', 'coarse'] as const);
  if (d.imageSize !== undefined) data.imageSize = validate.integer(d.imageSize, `${where}.data.imageSize`, 8, 4096);
  data.augment = Array.isArray(d.augment) ? specList(d.augment, `${where}.data.augment`) : validate.oneOf(d.augment ?? (data.dataset === 'imageFolder' ? 'imagenet' : 'cifar'), `${where}.data.augment`, AUGMENTS);
  if (d.testTransform !== undefined) data.testTransform = specList(d.testTransform, `${where}.data.testTransform`);
  if (d.normalize !== undefined) data.normalize = normalization(d.normalize, `${where}.data.normalize`);

  let stages = (c.stages ?? defaultStages(arch).stages) as StageSpec[];
  if (!Array.isArray(stages) || stages.length === 0) throw validate.typeError(`${where}.stages`, 'a non-empty Array of stages { name, epochs, train, lr }', stages);
  if (c.epochs !== undefined) {
    const epochs = typeof c.epochs === 'number' ? stages.map(() => c.epochs as number) : c.epochs;
    if (!Array.isArray(epochs) || epochs.length !== stages.length) throw validate.typeError(`${where}.epochs`, `a number or an Array of ${stages.length} numbers (one per stage)`, c.epochs);
    stages = stages.map((s, i) => ({ ...s, epochs: validate.integer(epochs[i], `${where}.epochs[${i}]`, 1) }));
  }
  const name = c.name === undefined ? `${arch}-${attention}-${data.dataset}` : nonEmpty(c.name, `${where}.name`);
  return {
    name,
    model,
    data,
    stages,
    optimizer: (c.optimizer ?? { type: 'adam' }) as RunConfig['optimizer'],
    scheduler: c.scheduler as SchedulerSpec | undefined,
    loss: c.loss as RunConfig['loss'],
    namSparsity: c.namSparsity as number | undefined,
    gradClip: c.gradClip as number | undefined,
    batchNorm: validate.oneOf(c.batchNorm ?? 'eval', `${where}.batchNorm`, ['eval', 'train'] as const),
    syncBatchNorm: c.syncBatchNorm === undefined ? false : validate.flag(c.syncBatchNorm, `${where}.syncBatchNorm`),
    precision: validate.oneOf(c.precision ?? 'fp32', `${where}.precision`, PRECISIONS),
    winograd: c.winograd === undefined ? false : validate.flag(c.winograd, `${where}.winograd`),
    memoryFormat: validate.oneOf(c.memoryFormat ?? 'contiguous', `${where}.memoryFormat`, MEMORY_FORMATS),
    device: deviceOption(c.device ?? 'cpu', `${where}.device`)!,
    batchSize: c.batchSize === undefined ? 64 : validate.integer(c.batchSize, `${where}.batchSize`, 1),
    workers: c.workers === undefined ? 2 : validate.integer(c.workers, `${where}.workers`, 0, 256),
    seed: c.seed === undefined ? 0 : validate.integer(c.seed, `${where}.seed`, 0),
    logEvery: c.logEvery === undefined ? 100 : validate.integer(c.logEvery, `${where}.logEvery`, 0),
    out: c.out === undefined ? path.join('runs', name) : filePath(c.out, `${where}.out`),
  };
}

/** A list of transforms as data, each checked (the list itself is kept as written). */
function specList(value: unknown, name: string): TransformSpec[] {
  if (!Array.isArray(value)) throw validate.typeError(name, 'an Array of transforms', value);
  value.forEach((t, i) => transformFromSpec(t, `${name}[${i}]`));
  return value as TransformSpec[];
}

function normalization(value: unknown, name: string): NonNullable<RunConfig['data']['normalize']> {
  if (typeof value === 'string') return validate.oneOf(value, name, NORMALIZE_NAMES);
  const o = validate.options(value as Record<string, unknown>, name, ['mean', 'std']);
  if (o.mean === undefined || o.std === undefined) throw validate.typeError(name, `one of ${NORMALIZE_NAMES.map((n) => `'${n}'`).join(', ')} or { mean: [r, g, b], std: [r, g, b] }`, value);
  transforms.normalize(o.mean as number[], o.std as number[]);
  return { mean: o.mean as number[], std: o.std as number[] };
}

function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw validate.typeError(name, 'a non-empty string', value);
  return value;
}

function filePath(value: unknown, name: string): string {
  return nonEmpty(value, name);
}

/** Reads a .json, .yaml or .yml run configuration. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readRegularTextFile(file, 16 << 20);
  } catch (err) {
    throw new Error(`cannot read the config: ${(err as Error).message}`);
  }
  const ext = path.extname(file).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(text);
    if (ext === '.yaml' || ext === '.yml') return YAML.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
  throw new RangeError(`the config file must end in .json, .yaml or .yml, got '${path.basename(file)}'`);
}

/** The model a config describes (not yet loaded with weights). */
export function buildModel(config: RunConfig, numClasses: number): Network {
  const { arch, attention, attentionOptions, placement, attentionStages, stem, batchNorm } = config.model;
  if (arch === 'cbamcnn') return new CBAMCNN({ numClasses, attentionOptions: attentionOptions as never });
  const defaultStem = config.data.dataset === 'imageFolder' ? 'imagenet' : 'cifar';
  if (arch.startsWith('resnet')) {
    return resnet({ depth: Number(arch.slice(6)) as 18, numClasses, stem: stem ?? defaultStem, attention, attentionOptions, placement, stages: attentionStages });
  }
  return vgg({ depth: Number(arch.slice(3)) as 16, numClasses, batchNorm: batchNorm ?? true, stem: stem ?? defaultStem, attention, attentionOptions });
}

/** The side of the square images the run's model takes (after its transforms). */
export function inputSize(config: RunConfig): number {
  // The CBAM-CNN takes 32 x 32 images only; the others any size (224 for photos, 32 for CIFAR).
  return config.data.imageSize ?? (config.data.dataset === 'imageFolder' && config.model.arch !== 'cbamcnn' ? 224 : 32);
}

/** The normalisation statistics a config uses. */
export function normalizationFor(config: RunConfig): { mean: readonly number[]; std: readonly number[] } {
  const n = config.data.normalize ?? (config.data.dataset === 'imageFolder' ? 'imagenet' : config.data.dataset);
  return typeof n === 'string' ? NORMALIZATION[n] : n;
}

/** Training and evaluation transforms for a config. */
export function transformsFor(config: RunConfig): { train: TransformStep[]; test: TransformStep[] } {
  const folder = config.data.dataset === 'imageFolder';
  const size = inputSize(config);
  const { mean, std } = normalizationFor(config);
  const tail = [transforms.toTensor(), transforms.normalize(mean, std)];
  const fromSpecs = (list: TransformSpec[], name: string) => list.map((t, i) => transformFromSpec(t, `${name}[${i}]`));
  // Resized and cropped to the model's input size either way, so any image can be predicted on
  // (for CIFAR's own 32x32 images both steps leave them as they are).
  const test = config.data.testTransform
    ? [...fromSpecs(config.data.testTransform, 'data.testTransform'), ...tail]
    : [transforms.resize(folder ? Math.round((size * 256) / 224) : size), transforms.centerCrop(size), ...tail];
  const train = Array.isArray(config.data.augment)
    ? [...fromSpecs(config.data.augment, 'data.augment'), ...tail]
    : config.data.augment === 'none'
      ? test
      : config.data.augment === 'cifar'
        ? [...(folder ? [transforms.resize(size), transforms.centerCrop(size)] : []), transforms.randomCrop(size, { padding: Math.round(size / 8) }), transforms.randomHorizontalFlip(),
           transforms.colorJitter({ brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.1 }), transforms.randomRotation(15), ...tail]
        : [transforms.randomResizedCrop(size), transforms.randomHorizontalFlip(), transforms.colorJitter({ brightness: 0.2, contrast: 0.2, saturation: 0.2 }), ...tail];
  return { train, test };
}

/** The training and test sets a config names. */
export async function loadData(config: RunConfig): Promise<{ train: ImageDataset; test: ImageDataset | null }> {
  const t = transformsFor(config);
  const { dataset, path: dir, label } = config.data;
  // A path that is not there, or a file where the folder should be (the downloaded archive, most
  // often): said as such, for every dataset kind, not as the ENOENT or ENOTDIR of a path inside it.
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (stat === undefined) throw codedError(ErrorCode.DATA, `data.path ${dir} does not exist: point data.path (--data) at the dataset's folder`);
  if (!stat.isDirectory()) {
    const archive = /\.(tar\.gz|tgz|tar|zip)$/i.test(dir) ? ': unpack the archive and point data.path at the folder it makes' : ': point data.path at the dataset\'s folder';
    throw codedError(ErrorCode.DATA, `data.path ${dir} is a file, not a folder${archive}`);
  }
  // CIFAR as image files: <dir>/train/<class>/*.png|jpg and <dir>/test/<class>/... (the classes
  // sort into CIFAR's own label order).
  if (dataset !== 'imageFolder' && isDirectory(path.join(dir, 'train'))) {
    return folders(path.join(dir, 'train'), config.data.testPath ?? path.join(dir, 'test'), config.data.testPath, t);
  }
  if (dataset === 'cifar10') return { train: await datasets.cifar10(dir, { transform: t.train }), test: await datasets.cifar10(dir, { train: false, transform: t.test }) };
  if (dataset === 'cifar100') {
    return { train: await datasets.cifar100(dir, { transform: t.train, label }), test: await datasets.cifar100(dir, { train: false, transform: t.test, label }) };
  }
  // A split root: <dir>/train and <dir>/val (or <dir>/test), as torchvision's ImageNet layout.
  if (isDirectory(path.join(dir, 'train'))) {
    const testDir = config.data.testPath ?? SPLIT_TEST.map((s) => path.join(dir, s)).find(isDirectory);
    return folders(path.join(dir, 'train'), testDir, config.data.testPath, t);
  }
  // Sub-folders named only like splits are not classes: a two-class dataset 'test' / 'val' is a mistake.
  const subfolders = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  if (subfolders.length > 0 && subfolders.every((name) => ['train', ...SPLIT_TEST].includes(name.toLowerCase()))) {
    throw new RangeError(`${dir} holds only split folders (${subfolders.join(', ')}), no train/: point data.path at a folder with one sub-folder per class, or at one holding train/ and val/ (or test/)`);
  }
  const sibling = path.join(path.dirname(path.resolve(dir)), 'val');
  return folders(dir, config.data.testPath ?? (path.resolve(dir) !== sibling ? sibling : undefined), config.data.testPath, t);
}

/** The folder names a split root's test split goes by, in the order they are looked for. */
const SPLIT_TEST = ['val', 'test'];

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;  // ENOTDIR (a path through a file), EACCES: not a folder this can use
  }
}

async function folders(dir: string, testDir: string | undefined, explicit: string | undefined, t: { train: TransformStep[]; test: TransformStep[] }): Promise<{ train: ImageDataset; test: ImageDataset | null }> {
  const train = await datasets.imageFolder(dir, { transform: t.train });
  // A test folder the config names must exist (imageFolder says what is wrong); a default one may not.
  const test = testDir && (testDir === explicit || isDirectory(testDir)) ? await datasets.imageFolder(testDir, { transform: t.test }) : null;
  if (test && test.classes.join('\n') !== train.classes.join('\n')) {
    throw new RangeError(`the test folder ${testDir} has other classes (${test.classes.join(', ')}) than ${dir} (${train.classes.join(', ')})`);
  }
  return { train, test };
}

/** The run configuration a run directory's config.json holds, without what the run added to it
 *  (class names, versions, the model's description and spec): what checkConfig takes. */
export function runConfigRaw(file: string): { raw: Record<string, unknown>; classes: unknown } {
  const saved = readJsonObject(file, RUN_CONFIG);
  const { classes, torchAttn: _v, libtorch: _l, ...rest } = saved as Record<string, unknown> & { model?: Record<string, unknown> };
  const { description: _d, spec: _s, ...model } = rest.model ?? {};
  return { raw: { ...rest, model }, classes };
}

/** A run's configuration for using its checkpoint (eval, predict, serve): the config.json beside
 *  the checkpoint, or the file given, with the run's class list. */
export function readRunConfig(checkpoint: string, explicit?: string): RunConfig & { classes: string[] } {
  if (!fs.existsSync(checkpoint)) throw new Error(`${checkpoint}: file not found`);
  const file = explicit ?? path.join(path.dirname(checkpoint), 'config.json');
  if (!fs.existsSync(file)) throw new Error(`no config.json beside ${checkpoint}: pass the run's config with --config`);
  const { raw, classes } = runConfigRaw(file);
  if (!Array.isArray(classes)) throw new Error(`${file} is not ${RUN_CONFIG} (it has no class list)`);
  return { ...checkConfig(raw, file), classes };
}
