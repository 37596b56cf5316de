// Datasets: CIFAR in both formats (python fixtures from scripts/make-data-fixtures.py, binary
// ones written here), image folders, in-memory arrays, and their errors. The real data in
// ../shared/data is checked when it is there (it is not on a fresh machine).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { datasets, ErrorCode, transforms } from '../../lib/index';
import { rejection, thrown } from '../helpers';

const fixtures = path.join(__dirname, '../fixtures/data');
const expected = JSON.parse(fs.readFileSync(path.join(fixtures, 'expected.json'), 'utf8'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-data-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
/** Planar CIFAR record -> HWC, as dataset.get() gives images. */
function toHwc(planar: Uint8Array, offset = 0): Uint8Array {
  const out = new Uint8Array(3072);
  for (let i = 0; i < 1024; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = planar[offset + c * 1024 + i];
  return out;
}

/** The python fixtures' pixels and labels re-written in the binary format. */
function writeBinaryCifar10(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of ['data_batch_1', 'data_batch_2', 'test_batch']) {
    const { labels, data } = expected[name];
    const pixels = bytes(data);
    const out = Buffer.alloc(labels.length * 3073);
    labels.forEach((label: number, i: number) => {
      out[i * 3073] = label;
      out.set(pixels.subarray(i * 3072, (i + 1) * 3072), i * 3073 + 1);
    });
    fs.writeFileSync(path.join(dir, `${name}.bin`), out);
  }
  fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n');
}

describe('CIFAR-10', () => {
  const bin = path.join(tmp, 'c10', 'cifar-10-batches-bin');
  writeBinaryCifar10(bin);

  it.each([
    ['python version (Python 2 pickles)', fixtures],
    ['binary version', path.dirname(bin)],
    ['binary version, the batches folder itself', bin],
  ])('%s: counts, labels, class names, pixels', async (_name, dir) => {
    const train = await datasets.cifar10(dir);
    const test = await datasets.cifar10(dir, { train: false });
    expect(train.length).toBe(5);
    expect(test.length).toBe(2);
    expect(train.classes).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    expect([...train.labels]).toEqual([...expected.data_batch_1.labels, ...expected.data_batch_2.labels]);
    expect([...test.labels]).toEqual(expected.test_batch.labels);
    const sample = train.get(3);
    expect(sample.label).toBe(expected.data_batch_2.labels[0]);
    expect(sample.image.shape).toEqual([32, 32, 3]);
    expect(sample.image.dtype).toBe('uint8');
    expect(Buffer.from(sample.image.data() as Uint8Array).equals(Buffer.from(toHwc(bytes(expected.data_batch_2.data))))).toBe(true);
    const t = train.withTransform(transforms.compose([transforms.toTensor()])).get(0).image;
    expect(t.shape).toEqual([3, 32, 32]);
    expect((t.data() as Float32Array)[5]).toBeCloseTo(bytes(expected.data_batch_1.data)[5] / 255, 6);
  });

  it('refuses truncated batches, missing folders and missing meta files, naming the file', async () => {
    const dir = path.join(tmp, 'truncated');
    writeBinaryCifar10(dir);
    fs.truncateSync(path.join(dir, 'data_batch_2.bin'), 3073 + 100);
    const err = await rejection(datasets.cifar10(dir));
    expect(err.code).toBe(ErrorCode.DATA);
    expect(err.message).toMatch(/data_batch_2\.bin: 3173 bytes is not a whole number of 3073-byte records \(1 records and 100 bytes left over/);
    expect((await rejection(datasets.cifar10(path.join(tmp, 'nope')))).message).toMatch(/does not exist/);
    expect((await rejection(datasets.cifar10(tmp))).message).toMatch(/holds no CIFAR-10 batches/);
    const noMeta = path.join(tmp, 'nometa');
    writeBinaryCifar10(noMeta);
    fs.rmSync(path.join(noMeta, 'batches.meta.txt'));
    expect((await rejection(datasets.cifar10(noMeta))).message).toMatch(/batches\.meta\.txt: cannot read \(ENOENT\)/);
  });

  it('refuses labels beyond the class list and corrupt pickles', async () => {
    const dir = path.join(tmp, 'badlabel');
    writeBinaryCifar10(dir);
    const file = path.join(dir, 'test_batch.bin');
    const b = fs.readFileSync(file);
    b[3073] = 12;
    fs.writeFileSync(file, b);
    expect((await rejection(datasets.cifar10(dir, { train: false }))).message).toMatch(/test_batch\.bin: record 1 has label 12, but there are 10 classes/);

    const py = path.join(tmp, 'badpickle');
    fs.cpSync(path.join(fixtures, 'cifar-10-batches-py'), py, { recursive: true });
    const batch = fs.readFileSync(path.join(py, 'test_batch'));
    fs.writeFileSync(path.join(py, 'test_batch'), batch.subarray(0, 2000));
    const truncated = await rejection(datasets.cifar10(py, { train: false }));
    expect(truncated.code).toBe(ErrorCode.DATA);
    expect(truncated.message).toMatch(/test_batch: not a CIFAR python batch: the file ends early/);
    // A label of 2^32 + 3 (LONG1 in place of BININT1): refused, not wrapped into class 3 (class 20).
    const at = batch.indexOf('labels](K', 0, 'latin1') + 'labels]('.length;
    const wide = Buffer.concat([batch.subarray(0, at), Buffer.from([0x8a, 0x05, 0x03, 0x00, 0x00, 0x00, 0x01]), batch.subarray(at + 2)]);
    fs.writeFileSync(path.join(py, 'test_batch'), wide);
    expect((await rejection(datasets.cifar10(py, { train: false }))).message).toMatch(/test_batch: 'labels' is not a list of 2 class indices/);
    // A pickle that names os.system is refused before anything could run.
    fs.writeFileSync(path.join(py, 'test_batch'), Buffer.from("\x80\x02cos\nsystem\nU\x04echo\x85R.", 'latin1'));
    expect((await rejection(datasets.cifar10(py, { train: false }))).message).toMatch(/names os\.system.*refused/);
  });

  it('checks its options', async () => {
    expect((await rejection(datasets.cifar10(fixtures, { train: 'yes' as never }))).message).toMatch(/options.train/);
    expect((await rejection(datasets.cifar10(fixtures, { label: 'fine' } as never))).message).toMatch(/Unknown option 'label'/);
    expect((await rejection(datasets.cifar10(42 as never))).name).toBe('TypeError');
  });
});

describe('CIFAR-100', () => {
  it('python version (Python 3 pickles): fine and coarse labels with their names', async () => {
    const fine = await datasets.cifar100(fixtures);
    const coarse = await datasets.cifar100(fixtures, { label: 'coarse', train: false });
    expect(fine.length).toBe(4);
    expect(fine.classes).toHaveLength(100);
    expect(fine.classes[7]).toBe('fine_7');
    expect([...fine.labels]).toEqual(expected['100/train'].fine);
    expect(coarse.classes).toHaveLength(20);
    expect([...coarse.labels]).toEqual(expected['100/test'].coarse);
    expect(Buffer.from(coarse.get(1).image.data() as Uint8Array).equals(Buffer.from(toHwc(bytes(expected['100/test'].data), 3072)))).toBe(true);
  });

  it('binary version: <coarse><fine><pixels> records', async () => {
    const dir = path.join(tmp, 'cifar-100-binary');
    fs.mkdirSync(dir, { recursive: true });
    const { fine, coarse, data } = expected['100/train'];
    const pixels = bytes(data);
    const out = Buffer.alloc(fine.length * 3074);
    fine.forEach((f: number, i: number) => {
      out[i * 3074] = coarse[i];
      out[i * 3074 + 1] = f;
      out.set(pixels.subarray(i * 3072, (i + 1) * 3072), i * 3074 + 2);
    });
    fs.writeFileSync(path.join(dir, 'train.bin'), out);
    fs.writeFileSync(path.join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `f${i}`).join('\n'));
    fs.writeFileSync(path.join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `c${i}`).join('\n'));
    expect([...(await datasets.cifar100(tmp)).labels]).toEqual(fine);
    expect([...(await datasets.cifar100(tmp, { label: 'coarse' })).labels]).toEqual(coarse);
    expect((await rejection(datasets.cifar100(tmp, { label: 'middle' as never }))).message).toMatch(/'fine', 'coarse'/);
  });
});

describe('imageFolder', () => {
  const folder = path.join(fixtures, 'folder');

  it('sorted class folders, nested files, JPEG and PNG variants decoded as PIL decodes them', async () => {
    const ds = await datasets.imageFolder(folder);
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.length).toBe(6); // notes.txt is not an image
    expect([...ds.labels]).toEqual([0, 0, 0, 1, 1, 1]);
    expect(ds.classCounts()).toEqual([3, 3]);
    const order = ['cat/a.png', 'cat/b.jpg', 'cat/nested/c.png', 'dog/d.png', 'dog/e.png', 'dog/f.JPEG'];
    order.forEach((rel, i) => {
      const got = ds.get(i).image;
      const want = bytes(expected.folder[rel]);
      expect(got.numel).toBe(want.length);
      const data = got.data() as Uint8Array;
      let worst = 0;
      for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(data[k] - want[k]));
      expect(worst, rel).toBe(0);
    });
  });

  it('PNG colour types and depths as PIL converts them: 16-bit, gamma-tagged, 1/2/4-bit, palette, tRNS, interlaced', async () => {
    // 16-bit and gAMA-tagged files once came out up to 69 levels away (libpng's simplified API converts to sRGB).
    const ds = await datasets.imageFolder(path.join(fixtures, 'png-variants'));
    const order = Object.keys(expected['png-variants']).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(ds.length).toBe(order.length);
    const worst: Record<string, number> = {};
    order.forEach((rel, i) => {
      const data = ds.get(i).image.data() as Uint8Array;
      const want = bytes(expected['png-variants'][rel]);
      expect(data.length, rel).toBe(want.length);
      worst[rel] = 0;
      for (let k = 0; k < want.length; k++) worst[rel] = Math.max(worst[rel], Math.abs(data[k] - want[k]));
    });
    expect(worst).toEqual(Object.fromEntries(order.map((rel) => [rel, 0])));
  });

  it('honours extensions; refuses empty class folders and folders without classes', async () => {
    expect((await datasets.imageFolder(folder, { extensions: ['png'] })).length).toBe(4);
    const dir = path.join(tmp, 'folder-empty');
    fs.cpSync(folder, dir, { recursive: true });
    fs.mkdirSync(path.join(dir, 'zebra'));
    const err = await rejection(datasets.imageFolder(dir));
    expect(err.code).toBe(ErrorCode.DATA);
    expect(err.message).toMatch(/no images \(\.jpg, \.jpeg, \.png\) in the class folder\(s\) 'zebra'/);
    expect((await rejection(datasets.imageFolder(path.join(folder, 'cat', 'nested')))).message).toMatch(/has no class folders/);
    expect((await rejection(datasets.imageFolder(path.join(tmp, 'missing')))).message).toMatch(/cannot read .*ENOENT/);
  });

  it('links: to a folder elsewhere, followed; back to a folder it is inside, an error naming the link (it listed the images again at every level, silently); broken, not a class', async () => {
    const dir = path.join(tmp, 'folder-links');
    fs.cpSync(folder, dir, { recursive: true });
    const plain = (await datasets.imageFolder(dir)).length;
    fs.symlinkSync(path.join(folder, 'dog'), path.join(dir, 'cat', 'more'));  // elsewhere: its images count as cats
    fs.symlinkSync(path.join(tmp, 'no-such-folder'), path.join(dir, 'broken'));
    const linked = await datasets.imageFolder(dir);
    expect(linked.classes).toEqual(['cat', 'dog']);
    const dogs = (await datasets.imageFolder(folder)).labels.filter((l) => l === 1).length;
    expect(linked.length).toBe(plain + dogs);
    for (const [link, target] of [['up', '..'], ['self', '.'], ['deep', path.join(dir, 'cat')]]) {
      fs.symlinkSync(target, path.join(dir, 'cat', 'nested', link));
      const err = await rejection(datasets.imageFolder(dir));
      expect(err.code).toBe(ErrorCode.DATA);
      expect(err.message).toMatch(new RegExp(`cat/nested/${link} leads back to .*, a folder it is inside \\(a cycle of links\\)`));
      fs.unlinkSync(path.join(dir, 'cat', 'nested', link));
    }
  });

  it('an unreadable image: an error naming the file, or skipped and reported when asked', async () => {
    const dir = path.join(tmp, 'folder-bad');
    fs.cpSync(folder, dir, { recursive: true });
    const jpg = path.join(dir, 'cat', 'b.jpg');
    const whole = fs.readFileSync(jpg);
    fs.writeFileSync(jpg, whole.subarray(0, Math.floor(whole.length * 0.6)));
    fs.writeFileSync(path.join(dir, 'dog', 'zz.png'), 'definitely not a png');
    const ds = await datasets.imageFolder(dir);
    expect(ds.length).toBe(7);
    const err = thrown(() => ds.get(1));
    expect(err.code).toBe(ErrorCode.DATA);
    expect(err.message).toContain(`${jpg}: corrupt or truncated JPEG`);
    expect(thrown(() => ds.get(6)).message).toMatch(/zz\.png: not a JPEG or PNG file/);
    const skipping = await datasets.imageFolder(dir, { onInvalid: 'skip' });
    expect(skipping.length).toBe(5);
    expect(skipping.skipped.map((s) => path.basename(s.path))).toEqual(['b.jpg', 'zz.png']);
    expect(skipping.skipped[0].reason).toMatch(/truncated/);
    expect([...skipping.labels]).toEqual([0, 0, 1, 1, 1]);
  });
});

describe('fromArrays', () => {
  it('wraps planar images and checks what it is given', () => {
    const images = new Uint8Array(2 * 3 * 2 * 2).map((_, i) => i);
    const ds = datasets.fromArrays({ images, shape: [2, 3, 2, 2], labels: [1, 0], classes: ['a', 'b'] });
    expect(ds.length).toBe(2);
    expect([...(ds.get(1).image.data() as Uint8Array)]).toEqual([12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23]);
    expect(thrown(() => datasets.fromArrays({ images, shape: [3, 3, 2, 2], labels: [1, 0], classes: ['a'] })).message).toMatch(/needs 36/);
    expect(thrown(() => datasets.fromArrays({ images, shape: [2, 3, 2, 2], labels: [1, 2], classes: ['a', 'b'] })).message).toMatch(/labels\[1\] must be from 0 to 1/);
    expect(thrown(() => ds.get(2)).message).toMatch(/from 0 to 1/);
    expect(thrown(() => ds.get(-1)).name).toBe('RangeError');
  });
});

const shared = path.resolve(__dirname, '../../../shared/data');
describe.runIf(fs.existsSync(shared))('real data in ../shared/data', () => {
  it('cifar10-subset-bin: 5,085 training and 1,017 test images with the documented class counts', async () => {
    const train = await datasets.cifar10(path.join(shared, 'cifar10-subset-bin'));
    const test = await datasets.cifar10(path.join(shared, 'cifar10-subset-bin'), { train: false });
    expect(train.length).toBe(5085);
    expect(test.length).toBe(1017);
    expect(test.classCounts()).toEqual([105, 93, 100, 104, 92, 87, 114, 102, 110, 110]);
    expect(train.classes[6]).toBe('frog');
    // The canonical test labels, from the CSV beside the batches.
    const csv = fs.readFileSync(path.join(shared, 'cifar10-subset-bin', 'test_batch_labels_all10000.csv'), 'utf8').trim().split('\n').slice(1);
    const labels = csv.slice(0, 1017).map((line) => Number(line.split(',')[1]));
    expect([...test.labels]).toEqual(labels);
  });

  it('cifar10-jpg: the unpacked 10,000 test images as an image folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-cifar-jpg-'));
    try {
      execFileSync('tar', ['-xzf', path.join(shared, 'cifar10-jpg', 'test_10000.tar.gz'), '-C', dir]);
      const ds = await datasets.imageFolder(path.join(dir, 'test'), { onInvalid: 'skip' });
      expect(ds.length).toBe(10000);
      expect(ds.skipped).toEqual([]);
      expect(ds.classes).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
      expect(ds.classCounts()).toEqual(new Array(10).fill(1000));
      expect(ds.get(0).image.shape).toEqual([32, 32, 3]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('trashnet: an image folder of 384x512 photos', async () => {
    const ds = await datasets.imageFolder(path.join(shared, 'trashnet', 'train'));
    expect(ds.classes).toEqual(['cardboard', 'glass', 'metal', 'paper', 'plastic', 'trash']);
    expect(ds.length).toBeGreaterThan(0);
    expect(ds.get(0).image.shape).toEqual([512, 384, 3]); // 384 wide, 512 high (PIL: size (384, 512))
  });
});

describe('hostile CIFAR python pickles (hardening class 6)', () => {
  it('tens of MB of container opcodes are refused quickly, without filling the heap or blocking for long', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-pickle-'));
    try {
      const py = path.join(dir, 'cifar-10-batches-py');
      fs.cpSync(path.join(fixtures, 'cifar-10-batches-py'), py, { recursive: true });
      for (const filler of [0x5d /* EMPTY_LIST */, 0x28 /* MARK */]) {
        const body = Buffer.alloc(30 * 2 ** 20, filler);
        fs.writeFileSync(path.join(py, 'test_batch'), Buffer.concat([Buffer.from([0x80, 0x02]), body, Buffer.from('.')]));
        const started = Date.now();
        const err = await rejection(datasets.cifar10(py, { train: false }));
        expect(err.code).toBe(ErrorCode.DATA);
        expect(err.message).toMatch(/more than 2000000 pickle opcodes/);
        expect(Date.now() - started).toBeLessThan(5000);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
