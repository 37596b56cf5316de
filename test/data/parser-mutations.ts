// Mutation testing of the parsers of outside bytes as users reach them (the public loaders): a
// valid file is damaged by fast-check (bits flipped, truncated, bytes inserted, lengths and counts
// overwritten with edge values, a span repeated) and loaded. The only acceptable outcomes are a
// result or an error with a torch-attn code and the file's name, within seconds. Used by
// test/data/parsers-mutation.test.ts (fixed seed, a few hundred cases) and scripts/fuzz-ts.ts (a
// long, random-seeded run). The native .pth reader also has a libFuzzer target (fuzz/).
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { datasets, readStateDict, saveStateDict, tensor, type Tensor } from '../../lib/index';

const fixtures = path.join(__dirname, '../fixtures');

export interface ParserTarget {
  name: string;
  /** The file the mutations start from. */
  seed: Buffer;
  /** Writes `bytes` (the damaged file) into `dir` with what else the loader needs, and loads it. */
  load(dir: string, bytes: Buffer): Promise<unknown>;
  /** The file name errors must mention. */
  file: string;
}

const EDGE_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/** One damage to a file. */
export const mutation = (length: number) => {
  const at = fc.nat({ max: Math.max(0, length - 1) });
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant('byte' as const), at, value: fc.nat({ max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('u32' as const), at, value: fc.constantFrom(...EDGE_U32), little: fc.boolean() }),
    fc.record({ kind: fc.constant('repeat' as const), at, span: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 2, max: 8 }) }),
  );
};
export type Mutation = ReturnType<typeof mutation> extends fc.Arbitrary<infer M> ? M : never;

export function applyMutations(seed: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of mutations) {
    const at = Math.min(m.at, Math.max(0, b.length - 1));
    if (b.length === 0) break;
    switch (m.kind) {
      case 'flip':
        b[at] ^= 1 << m.bit;
        break;
      case 'byte':
        b[at] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'u32':
        if (at + 4 <= b.length) (m.little ? b.writeUInt32LE(m.value, at) : b.writeUInt32BE(m.value, at));
        break;
      case 'repeat': {
        const span = b.subarray(at, at + m.span);
        b = Buffer.concat([b.subarray(0, at), ...Array(m.times).fill(span), b.subarray(at + span.length)]);
        break;
      }
    }
  }
  return b;
}

/** The damaged files of the property: up to 4 mutations of a target's seed. */
export const damaged = (target: ParserTarget) => fc.array(mutation(target.seed.length), { minLength: 1, maxLength: 4 });

function copyDir(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
}

function touch(ds: { length: number; get(i: number): { image: Tensor } }): void {
  for (let i = 0; i < Math.min(ds.length, 3); i++) ds.get(i).image.data();
}

const CIFAR10_NAMES = 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n';

export const TARGET_NAMES = ['safetensors', 'pth', 'cifar-binary', 'cifar10-python batch', 'cifar10-python meta', 'cifar100-python batch'] as const;

/** A file of a CIFAR python folder (copied whole, then `file` replaced), loaded with `open`. */
function pickled(name: string, folder: string, file: string, open: (dir: string) => Promise<{ length: number; get(i: number): { image: Tensor } }>): ParserTarget {
  return {
    name,
    seed: fs.readFileSync(path.join(folder, file)),
    file,
    load: async (dir, bytes) => {
      const d = path.join(dir, path.basename(folder));
      copyDir(folder, d);
      fs.writeFileSync(path.join(d, file), bytes);
      touch(await open(d));
    },
  };
}

/** The targets (named as TARGET_NAMES), with seed files built from the committed fixtures and in `work`. */
export async function parserTargets(work: string): Promise<ParserTarget[]> {
  fs.mkdirSync(work, { recursive: true });
  const py10 = path.join(fixtures, 'data');
  const py100 = path.join(fixtures, 'data', 'cifar-100-python');
  const record = Buffer.alloc(2 * 3073);
  for (let i = 0; i < record.length; i++) record[i] = (i * 37) % 256;
  record[0] = 3;
  record[3073] = 9;
  const safetensorsFile = path.join(work, 'seed.safetensors');
  await saveStateDict(
    {
      'layer.weight': tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
      'layer.bias': tensor(new Float64Array([0.5, -1]), [2], { dtype: 'float64' }),
      'bn.num_batches_tracked': tensor(new BigInt64Array([7n]), [], { dtype: 'int64' }),
      'mask': tensor(new Uint8Array([1, 0, 1]), [3], { dtype: 'bool' }),
    },
    safetensorsFile,
  );
  return [
    {
      name: 'safetensors',
      seed: fs.readFileSync(safetensorsFile),
      file: 'x.safetensors',
      load: async (dir, bytes) => {
        fs.writeFileSync(path.join(dir, 'x.safetensors'), bytes);
        return readStateDict(path.join(dir, 'x.safetensors'));
      },
    },
    {
      name: 'pth',
      seed: fs.readFileSync(path.join(fixtures, 'pth', 'dtypes.pth')),
      file: 'x.pth',
      load: async (dir, bytes) => {
        fs.writeFileSync(path.join(dir, 'x.pth'), bytes);
        return readStateDict(path.join(dir, 'x.pth'));
      },
    },
    {
      name: 'cifar-binary',
      seed: record,
      file: 'data_batch_1.bin',
      load: async (dir, bytes) => {
        const d = path.join(dir, 'cifar-10-batches-bin');
        fs.mkdirSync(d, { recursive: true });
        fs.writeFileSync(path.join(d, 'data_batch_1.bin'), bytes);
        fs.writeFileSync(path.join(d, 'test_batch.bin'), record);
        fs.writeFileSync(path.join(d, 'batches.meta.txt'), CIFAR10_NAMES);
        touch(await datasets.cifar10(d));
      },
    },
    pickled('cifar10-python batch', path.join(py10, 'cifar-10-batches-py'), 'data_batch_1', (d) => datasets.cifar10(d)),
    pickled('cifar10-python meta', path.join(py10, 'cifar-10-batches-py'), 'batches.meta', (d) => datasets.cifar10(d, { train: false })),
    pickled('cifar100-python batch', py100, 'train', (d) => datasets.cifar100(d, { label: 'coarse' })),
  ];
}

/** What went wrong with one damaged file, or null when the outcome is acceptable. */
export async function misbehaviour(target: ParserTarget, dir: string, bytes: Buffer, timeoutMs = 10_000): Promise<string | null> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const outcome = await Promise.race([target.load(dir, bytes).then(() => 'ok' as const), timeout]);
    return outcome === 'timeout' ? `no answer within ${timeoutMs} ms` : null;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (typeof e.code !== 'string' || !e.code.startsWith('ERR_TORCH_ATTN_')) return `uncoded ${e.name}: ${e.message}`;
    if (!e.message.includes(target.file)) return `an error that does not name ${target.file}: ${e.message}`;
    return null;
  } finally {
    clearTimeout(timer);
  }
}
