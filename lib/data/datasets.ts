// Datasets: CIFAR-10/100 (binary and python versions), image folders, and images already in
// memory. Files are found and parsed here; pixels go to the native side once, where loader
// threads decode, transform and batch them.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, codedError } from '../errors';
import { readRegularFile } from '../files';
import { native, type NativeDataset } from '../native';
import { Tensor } from '../tensor/tensor';
import { integer, isPlainObject, oneOf, options, typeError } from '../validate';
import { type PickleValue, type NdArray, unpickle } from './pickle';
import { type TransformLike, toSteps } from './transforms';

export interface Sample {
  /** uint8 [H, W, C] without a transform (or one that stops before toTensor), else float32 [C, H, W]. */
  image: Tensor;
  label: number;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

const NATIVE = Symbol('native');

/** An indexable image dataset; the transform runs natively, per sample. */
export class ImageDataset {
  /** @internal */
  readonly [NATIVE]: NativeDataset;
  readonly classes: readonly string[];
  /** The label of every sample, in order. */
  readonly labels: Int32Array;
  /** Files left out because they could not be decoded (imageFolder with onInvalid: 'skip'). */
  readonly skipped: readonly SkippedFile[];
  readonly transform: TransformLike | undefined;

  /** @internal */
  constructor(handle: NativeDataset, classes: readonly string[], labels: Int32Array, skipped: readonly SkippedFile[], transform?: TransformLike) {
    this[NATIVE] = transform === undefined ? handle : handle.withTransform(toSteps(transform));
    this.classes = Object.freeze([...classes]);
    this.labels = labels;
    this.skipped = Object.freeze([...skipped]);
    this.transform = transform;
  }

  get length(): number {
    return this[NATIVE].length;
  }

  /** Sample i through the transform. Random steps use `seed` (default: drawn from manualSeed's generator). */
  get(index: number, seed?: number | bigint): Sample {
    integer(index, 'dataset.get(index)', 0, Math.max(this.length - 1, 0));
    const { image, label } = this[NATIVE].get(index, seed);
    return { image: image as unknown as Tensor, label };
  }

  /** The same samples through another transform (the pixels are shared, not copied). */
  withTransform(transform: TransformLike | undefined): ImageDataset {
    return new ImageDataset(this[NATIVE], this.classes, this.labels, this.skipped, transform);
  }

  /** Number of samples per class, indexed like `classes`. */
  classCounts(): number[] {
    const counts = new Array<number>(this.classes.length).fill(0);
    for (const label of this.labels) counts[label]++;
    return counts;
  }

  toString(): string {
    return `ImageDataset(${this[NATIVE].describe()}, ${this.classes.length} classes)`;
  }
}

/** @internal The native handle behind a dataset, checked. */
export function nativeDataset(value: unknown, name: string): NativeDataset {
  if (!(value instanceof ImageDataset)) throw typeError(name, 'a dataset (from datasets.*)', value);
  return value[NATIVE];
}

function dataError(message: string): Error {
  return codedError(ErrorCode.DATA, message);
}

async function exists(file: string): Promise<boolean> {
  return fsp.stat(file).then(
    () => true,
    () => false,
  );
}

/** CIFAR batch files are ~30 MB (the python pickles ~160 MB); nothing larger is read. */
const MAX_DATA_FILE_BYTES = 1 << 30;

function readData(file: string): Promise<Buffer> {
  return readRegularFile(file, MAX_DATA_FILE_BYTES, dataError);
}

function checkLabels(labels: Int32Array, classes: readonly string[], file: string, namesFile: string, from = 0): void {
  for (let i = from; i < labels.length; i++) {
    if (labels[i] >= classes.length) {
      throw dataError(`${file}: record ${i - from} has label ${labels[i]}, but there are ${classes.length} classes (named in ${namesFile})`);
    }
  }
}

// ---- CIFAR ---------------------------------------------------------------------------------

const CIFAR_PIXELS = 3072;

interface CifarLayout {
  format: 'binary' | 'python';
  dir: string;
}

export interface CifarOptions {
  /** Training split (default) or test split. */
  train?: boolean;
  transform?: TransformLike;
}

export interface Cifar100Options extends CifarOptions {
  /** Which labels: the 100 fine classes (default) or the 20 coarse superclasses. */
  label?: 'fine' | 'coarse';
}

/** Finds the batches folder: `dir` itself or the folder the official archive unpacks to. */
async function findCifar(dir: string, kind: 10 | 100): Promise<CifarLayout> {
  if (typeof dir !== 'string' || dir === '') throw typeError(`datasets.cifar${kind}(dir)`, 'a folder path', dir);
  const markers =
    kind === 10
      ? { binary: ['test_batch.bin', 'data_batch_1.bin'], python: ['test_batch', 'data_batch_1'], folders: ['cifar-10-batches-bin', 'cifar-10-batches-py'] }
      : { binary: ['train.bin', 'test.bin'], python: ['train', 'test'], folders: ['cifar-100-binary', 'cifar-100-python'] };
  for (const candidate of [dir, ...markers.folders.map((f) => path.join(dir, f))]) {
    for (const format of ['binary', 'python'] as const) {
      for (const marker of markers[format]) {
        if (await exists(path.join(candidate, marker))) return { format, dir: candidate };
      }
    }
  }
  if (!(await exists(dir))) throw dataError(`datasets.cifar${kind}: ${dir} does not exist`);
  throw dataError(
    `datasets.cifar${kind}: ${dir} holds no CIFAR-${kind} batches (looked for ${markers.binary.join(', ')} or ${markers.python.join(', ')}, ` +
      `there or in ${markers.folders.join(' / ')})`,
  );
}

async function readNames(file: string): Promise<string[]> {
  const text = (await readData(file)).toString('utf8');
  const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw dataError(`${file}: no class names`);
  return names;
}

/** Splits binary records (labelBytes label bytes, then 3072 pixels) into pixels and labels. */
function splitRecords(bytes: Buffer, file: string, labelBytes: number, labelAt: number) {
  const record = labelBytes + CIFAR_PIXELS;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    throw dataError(
      `${file}: ${bytes.length} bytes is not a whole number of ${record}-byte records ` +
        `(${Math.floor(bytes.length / record)} records and ${bytes.length % record} bytes left over: truncated or not a CIFAR-${labelBytes === 1 ? 10 : 100} binary batch)`,
    );
  }
  const n = bytes.length / record;
  const pixels = Buffer.allocUnsafe(n * CIFAR_PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = bytes[i * record + labelAt];
    bytes.copy(pixels, i * CIFAR_PIXELS, i * record + labelBytes, (i + 1) * record);
  }
  return { pixels, labels };
}

function field(dict: PickleValue, key: string, file: string): PickleValue {
  if (!(dict instanceof Map)) throw dataError(`${file}: not a CIFAR python batch (the pickle is not a dict)`);
  if (!dict.has(key)) throw dataError(`${file}: not a CIFAR python batch (no '${key}' entry; it has ${[...dict.keys()].join(', ')})`);
  return dict.get(key)!;
}

function pickledNames(dict: PickleValue, key: string, file: string): string[] {
  const list = field(dict, key, file);
  if (!Array.isArray(list)) throw dataError(`${file}: '${key}' is not a list`);
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
}

function pickledBatch(bytes: Buffer, file: string, labelKey: string) {
  const dict = unpickle(bytes, file);
  const data = field(dict, 'data', file) as NdArray;
  if (data?.kind !== 'ndarray' || data.dtype !== 'u1' || data.shape.length !== 2 || data.shape[1] !== CIFAR_PIXELS) {
    throw dataError(`${file}: 'data' is not a uint8 array of shape [N, 3072]`);
  }
  const n = data.shape[0];
  if (data.data.length !== n * CIFAR_PIXELS) throw dataError(`${file}: 'data' holds ${data.data.length} bytes, expected ${n * CIFAR_PIXELS}`);
  const list = field(dict, labelKey, file);
  // Below 2^31: an Int32Array would wrap a larger index into another, valid-looking class.
  if (!Array.isArray(list) || list.length !== n || !list.every((v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 31)) {
    throw dataError(`${file}: '${labelKey}' is not a list of ${n} class indices`);
  }
  return { pixels: data.data, labels: Int32Array.from(list as number[]) };
}

async function loadCifar(kind: 10 | 100, dir: string, opts: Cifar100Options | undefined): Promise<ImageDataset> {
  const name = `datasets.cifar${kind}`;
  const o = options(opts, `${name} options`, kind === 10 ? ['train', 'transform'] : ['train', 'transform', 'label']);
  const train = o.train === undefined ? true : o.train;
  if (typeof train !== 'boolean') throw typeError(`${name} options.train`, 'a boolean', train);
  const label = kind === 100 ? (o.label === undefined ? 'fine' : oneOf(o.label, `${name} options.label`, ['fine', 'coarse'] as const)) : 'fine';
  const layout = await findCifar(dir, kind);
  const at = (f: string) => path.join(layout.dir, f);

  let files: string[];
  if (kind === 10) {
    const names = await fsp.readdir(layout.dir);
    const pattern = layout.format === 'binary' ? /^data_batch_(\d+)\.bin$/ : /^data_batch_(\d+)$/;
    const trainFiles = names.filter((f) => pattern.test(f)).sort((a, b) => Number(pattern.exec(a)![1]) - Number(pattern.exec(b)![1]));
    files = train ? trainFiles : [layout.format === 'binary' ? 'test_batch.bin' : 'test_batch'];
    if (files.length === 0) throw dataError(`${name}: no training batches (data_batch_*${layout.format === 'binary' ? '.bin' : ''}) in ${layout.dir}`);
  } else {
    files = [(train ? 'train' : 'test') + (layout.format === 'binary' ? '.bin' : '')];
  }

  let classes: string[];
  let metaFile: string;
  if (layout.format === 'binary') {
    metaFile = at(kind === 10 ? 'batches.meta.txt' : `${label}_label_names.txt`);
    classes = await readNames(metaFile);
  } else {
    metaFile = at(kind === 10 ? 'batches.meta' : 'meta');
    classes = pickledNames(unpickle(await readData(metaFile), metaFile), kind === 10 ? 'label_names' : `${label}_label_names`, metaFile);
  }

  const parts: { pixels: Buffer; labels: Int32Array }[] = [];
  for (const f of files) {
    const file = at(f);
    const bytes = await readData(file);
    const part =
      layout.format === 'binary'
        ? splitRecords(bytes, file, kind === 10 ? 1 : 2, kind === 100 && label === 'fine' ? 1 : 0)
        : pickledBatch(bytes, file, kind === 10 ? 'labels' : `${label}_labels`);
    checkLabels(part.labels, classes, file, metaFile);
    parts.push(part);
  }
  const pixels = parts.length === 1 ? parts[0].pixels : Buffer.concat(parts.map((p) => p.pixels));
  const labels = new Int32Array(parts.reduce((n, p) => n + p.labels.length, 0));
  let offset = 0;
  for (const p of parts) {
    labels.set(p.labels, offset);
    offset += p.labels.length;
  }
  const handle = native.createMemoryDataset(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length), labels, [3, 32, 32]);
  return new ImageDataset(handle, classes, labels, [], o.transform);
}

// ---- image folders -------------------------------------------------------------------------

export interface ImageFolderOptions {
  transform?: TransformLike;
  /** File extensions to read, case-insensitive. Default ['.jpg', '.jpeg', '.png']. */
  extensions?: string[];
  /** 'error' (default): an undecodable image fails when it is loaded, naming the file.
   *  'skip': every image is decoded once now; those that fail are left out and listed in `skipped`. */
  onInvalid?: 'error' | 'skip';
}

/** Whether `full` is a folder, or a link to one (a broken or looping link is neither). */
async function isFolder(entry: { isDirectory(): boolean; isSymbolicLink(): boolean }, full: string): Promise<boolean> {
  return entry.isDirectory() || (entry.isSymbolicLink() && (await fsp.stat(full).then((s) => s.isDirectory(), () => false)));
}

/**
 * The image files under `dir`, in name order, following links to folders. `inside`: the real
 * paths of the folders it is in. A link back to one of them (a cycle) is an error: followed, it
 * lists the same images again at every level until the path grows too long, silently.
 */
async function listFiles(dir: string, extensions: readonly string[], inside: readonly string[]): Promise<string[]> {
  let real: string;
  let entries;
  try {
    real = await fsp.realpath(dir);
    entries = (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    throw dataError(`datasets.imageFolder: cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (inside.includes(real)) {
    throw dataError(`datasets.imageFolder: ${dir} leads back to ${real}, a folder it is inside (a cycle of links); remove the link or point it elsewhere`);
  }
  const within = [...inside, real];
  const out: string[] = [];
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (await isFolder(e, full)) out.push(...(await listFiles(full, extensions, within)));
    else if (extensions.some((ext) => e.name.toLowerCase().endsWith(ext))) out.push(full);
  }
  return out;
}

async function imageFolder(dir: string, opts?: ImageFolderOptions): Promise<ImageDataset> {
  const name = 'datasets.imageFolder';
  if (typeof dir !== 'string' || dir === '') throw typeError(`${name}(dir)`, 'a folder path', dir);
  const o = options(opts, `${name} options`, ['transform', 'extensions', 'onInvalid']);
  const onInvalid = o.onInvalid === undefined ? 'error' : oneOf(o.onInvalid, `${name} options.onInvalid`, ['error', 'skip'] as const);
  const extensions = (o.extensions ?? ['.jpg', '.jpeg', '.png']).map((ext, i) => {
    if (typeof ext !== 'string' || ext === '') throw typeError(`${name} options.extensions[${i}]`, 'a file extension', ext);
    return (ext.startsWith('.') ? ext : `.${ext}`).toLowerCase();
  });
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw dataError(`${name}: cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const classes: string[] = [];
  for (const e of entries) {
    if (await isFolder(e, path.join(dir, e.name))) classes.push(e.name);
  }
  classes.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (classes.length === 0) throw dataError(`${name}: ${dir} has no class folders (expected one sub-folder of images per class)`);
  let paths: string[] = [];
  const labelList: number[] = [];
  const empty: string[] = [];
  const root = [await fsp.realpath(dir)];
  for (const [label, cls] of classes.entries()) {
    const files = await listFiles(path.join(dir, cls), extensions, root);
    if (files.length === 0) empty.push(cls);
    paths.push(...files);
    for (let i = 0; i < files.length; i++) labelList.push(label);
  }
  if (empty.length > 0) {
    throw dataError(`${name}: no images (${extensions.join(', ')}) in the class folder(s) ${empty.map((c) => `'${c}'`).join(', ')} of ${dir}`);
  }
  let labels = Int32Array.from(labelList);
  let handle = native.createFileDataset(paths, labels);
  const skipped: SkippedFile[] = [];
  if (onInvalid === 'skip') {
    const failures = await handle.verify();
    if (failures.length > 0) {
      const bad = new Set(failures.map((f) => f.index));
      for (const f of failures) skipped.push({ path: paths[f.index], reason: f.message });
      const keep = paths.map((_, i) => i).filter((i) => !bad.has(i));
      paths = keep.map((i) => paths[i]);
      labels = Int32Array.from(keep.map((i) => labels[i]));
      if (paths.length === 0) throw dataError(`${name}: none of the images in ${dir} could be decoded`);
      handle = native.createFileDataset(paths, labels);
    }
  }
  return new ImageDataset(handle, classes, labels, skipped, o.transform);
}

// ---- in memory -----------------------------------------------------------------------------

export interface ArrayDatasetSource {
  /** uint8 pixels, N planar images: for each image C planes of H x W (CIFAR's own layout). */
  images: Uint8Array;
  /** [N, C, H, W]. */
  shape: [number, number, number, number];
  labels: ArrayLike<number>;
  classes: readonly string[];
  transform?: TransformLike;
}

function fromArrays(source: ArrayDatasetSource): ImageDataset {
  const name = 'datasets.fromArrays';
  if (!isPlainObject(source)) throw typeError(`${name}(source)`, 'an object { images, shape, labels, classes }', source);
  options(source, `${name}(source)`, ['images', 'shape', 'labels', 'classes', 'transform']);
  if (!(source.images instanceof Uint8Array)) throw typeError(`${name} images`, 'a Uint8Array', source.images);
  if (!Array.isArray(source.shape) || source.shape.length !== 4) throw typeError(`${name} shape`, '[N, C, H, W]', source.shape);
  const [n, c, h, w] = source.shape.map((d, i) => integer(d, `${name} shape[${i}]`, i === 0 ? 0 : 1));
  if (source.images.length !== n * c * h * w) {
    throw new RangeError(`${name}: images holds ${source.images.length} bytes, shape [${n}, ${c}, ${h}, ${w}] needs ${n * c * h * w}`);
  }
  if (!Array.isArray(source.classes) || source.classes.length === 0 || !source.classes.every((s) => typeof s === 'string')) {
    throw typeError(`${name} classes`, 'a non-empty Array of class names', source.classes);
  }
  if (source.labels?.length !== n) throw new RangeError(`${name}: labels must have ${n} entries (one per image)`);
  const labels = Int32Array.from(source.labels, (v, i) => integer(v, `${name} labels[${i}]`, 0, source.classes.length - 1));
  return new ImageDataset(native.createMemoryDataset(source.images, labels, [c, h, w]), source.classes, labels, [], source.transform);
}

/** Image files as a dataset (labels default to 0: for prediction). */
function fromFiles(files: readonly string[], classes: readonly string[], transform?: TransformLike, labels?: ArrayLike<number>): ImageDataset {
  const name = 'datasets.fromFiles';
  if (!Array.isArray(files) || files.some((f) => typeof f !== 'string' || f === '')) throw typeError(`${name}(files)`, 'an Array of file paths', files);
  if (!Array.isArray(classes) || classes.length === 0) throw typeError(`${name}(classes)`, 'a non-empty Array of class names', classes);
  if (labels !== undefined && labels.length !== files.length) throw new RangeError(`${name}: labels must have ${files.length} entries (one per file)`);
  const list = Int32Array.from(labels ?? new Array<number>(files.length).fill(0), (v, i) => integer(v, `${name} labels[${i}]`, 0, classes.length - 1));
  return new ImageDataset(native.createFileDataset([...files], list), classes, list, [], transform);
}

export const datasets = {
  /** CIFAR-10 from `cifar-10-batches-bin` or `cifar-10-batches-py` (or the folder holding either). */
  cifar10: (dir: string, opts?: CifarOptions): Promise<ImageDataset> => loadCifar(10, dir, opts),
  /** CIFAR-100 from `cifar-100-binary` or `cifar-100-python` (or the folder holding either). */
  cifar100: (dir: string, opts?: Cifar100Options): Promise<ImageDataset> => loadCifar(100, dir, opts),
  /** One sub-folder per class (sorted names give the class indices, as torchvision's ImageFolder). */
  imageFolder,
  /** Images already in memory. */
  fromArrays,
  fromFiles,
  /**
   * Limits on image files, checked before anything is allocated: `maxPixels` is PIL's
   * `Image.MAX_IMAGE_PIXELS` (89,478,485 by default; larger images are an error above twice it,
   * as PIL's DecompressionBombError), `maxFileBytes` the largest image file read (256 MiB).
   * Process-wide; returns the limits now in force.
   */
  imageLimits(limits?: { maxPixels?: number; maxFileBytes?: number }): { maxPixels: number; maxFileBytes: number } {
    if (limits !== undefined) {
      const o = options(limits, 'datasets.imageLimits(limits)', ['maxPixels', 'maxFileBytes']);
      if (o.maxPixels !== undefined) integer(o.maxPixels, 'datasets.imageLimits maxPixels', 1);
      if (o.maxFileBytes !== undefined) integer(o.maxFileBytes, 'datasets.imageLimits maxFileBytes', 1);
    }
    return native.imageLimits(limits);
  },
};
