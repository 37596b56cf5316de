// The restricted .pth reader against files PyTorch wrote (scripts/make-pth-fixtures.py), and
// against every way a file can be broken: each gives an Error that says what is wrong, never a
// crash, and a pickle that asks for code is refused without running it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CBAM, ErrorCode, readStateDict, tensor } from '../../lib';
import { readFloats, rejection, sanitized } from '../helpers';

const fixtures = path.resolve(__dirname, '..', 'fixtures', 'pth');
const fixture = (name: string) => path.join(fixtures, name);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-pth-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const floats = (name: string) => readFloats(fixture(name));

describe('readStateDict()', () => {
  it('reads every dtype, views and 0-d / empty tensors exactly', async () => {
    const sd = await readStateDict(fixture('dtypes.pth'));
    expect(Array.from(sd.f32.data() as Float32Array)).toEqual([1.5, -2.25, Math.fround(3e38)]);
    expect(Array.from(sd.f64.data() as Float64Array)).toEqual([1e-300, -0.5]);
    expect(Array.from(sd.f16.toFloat32Array())).toEqual([1, -2, 0.5]);
    expect(Array.from(sd.bf16.toFloat32Array())).toEqual([1, -2]);
    expect(sd.i64.data()).toEqual(new BigInt64Array([2n ** 62n, -3n]));
    expect(Array.from(sd.i32.data() as Int32Array)).toEqual([7, -8]);
    expect(Array.from(sd.i16.data() as Int16Array)).toEqual([300, -300]);
    expect(Array.from(sd.i8.data() as Int8Array)).toEqual([-128, 127]);
    expect(Array.from(sd.u8.data() as Uint8Array)).toEqual([0, 255]);
    expect(sd.bool.dtype).toBe('bool');
    expect(Array.from(sd.bool.data() as Uint8Array)).toEqual([1, 0, 1]);
    expect(sd.scalar.shape).toEqual([]);
    expect(sd.scalar.item()).toBe(42);
    expect(sd.empty.shape).toEqual([0, 3]);
    expect(sd.transposed.shape).toEqual([4, 3]);
    expect(Array.from(sd.transposed.data() as Float32Array)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(Array.from(sd.row.data() as Float32Array)).toEqual([4, 5, 6, 7]);
  });

  it('takes the state dict out of a training checkpoint', async () => {
    const sd = await readStateDict(fixture('nested.pth'));
    expect(Object.keys(sd).sort()).toEqual(['channel_attn.fc.0.weight', 'channel_attn.fc.2.weight', 'spatial_attn.conv.weight']);
  });

  it('EXPECTED FAILURE - a pickle that asks for os.system is refused and nothing runs', async () => {
    const marker = '/tmp/torch-attn-pwned';
    fs.rmSync(marker, { force: true });
    const err = await rejection(readStateDict(fixture('evil.pth')));
    expect(err.code).toBe('ERR_TORCH_ATTN_CHECKPOINT');
    expect(err.message).toMatch(/asks for (posix|os)\.system, which a state dict never needs; refusing to load it/);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('EXPECTED FAILURE - the legacy non-zip format is refused with how to re-save it', async () => {
    const err = await rejection(readStateDict(fixture('legacy.pth')));
    expect(err.message).toMatch(/legacy \(pre-1\.6, non-zip\) format.*torch\.save\(torch\.load\(path\), path\)/);
  });

  it('EXPECTED FAILURE - a TorchScript archive is refused with what to save instead', async () => {
    const err = await rejection(readStateDict(fixture('script.pt')));
    expect(err.message).toMatch(/TorchScript archive.*state_dict\(\)/);
  });

  it('EXPECTED FAILURE - a missing file, a directory, a text file', async () => {
    expect((await rejection(readStateDict(path.join(scratch, 'nope.pth')))).message).toMatch(/cannot open .*nope\.pth/);
    fs.writeFileSync(path.join(scratch, 'notes.txt'), 'hello');
    expect((await rejection(readStateDict(path.join(scratch, 'notes.txt')))).message).toMatch(/not a PyTorch checkpoint/);
    expect((await rejection(readStateDict(42 as never))).name).toBe('TypeError');
  });

  it('EXPECTED FAILURE - every truncation of a real file is an error, never a crash', async () => {
    const bytes = fs.readFileSync(fixture('cbam64.pth'));
    const file = path.join(scratch, 'truncated.pth');
    for (let length = 0; length < bytes.length; length += 37) {
      fs.writeFileSync(file, bytes.subarray(0, length));
      const err = await rejection(readStateDict(file));
      expect(err.message).toMatch(/not a (readable )?PyTorch checkpoint|legacy/);
    }
  });

  it('EXPECTED FAILURE - corrupted bytes give an error or a well-formed result, never a crash', async () => {
    const bytes = fs.readFileSync(fixture('cbam64.pth'));
    const file = path.join(scratch, 'corrupt.pth');
    let state = 12345;
    const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 300; trial++) {
      const copy = Buffer.from(bytes);
      for (let k = 0; k < 4; k++) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      fs.writeFileSync(file, copy);
      try {
        const sd = await readStateDict(file);
        for (const t of Object.values(sd)) expect(t.numel).toBeGreaterThanOrEqual(0);
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
      }
    }
  });
});

describe('loadStateDict() from PyTorch', () => {
  it('a CBAM state dict loads strictly and the module matches PyTorch output and maps', async () => {
    const cbam = new CBAM({ channels: 64 });
    expect(await cbam.loadStateDict(fixture('cbam64.pth'))).toEqual({ missing: [], unexpected: [], mismatched: [] });
    const x = tensor(floats('cbam64.input.f32'), [2, 64, 8, 8]);
    const close = (got: Float32Array, want: Float32Array) => {
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5);
    };
    close(cbam.forward(x).data() as Float32Array, floats('cbam64.output.f32'));
    const maps = cbam.attentionMaps(x);
    expect(maps.channel.shape).toEqual([2, 64]);
    expect(maps.spatial.shape).toEqual([2, 1, 8, 8]);
    close(maps.channel.data() as Float32Array, floats('cbam64.channel.f32'));
    close(maps.spatial.data() as Float32Array, floats('cbam64.spatial.f32'));
  });

  it('EXPECTED FAILURE - strict load of a file for another model lists what does not fit and loads nothing', async () => {
    const cbam = new CBAM({ channels: 32 });
    const before = cbam.stateDict()['spatial_attn.conv.weight'].data();
    const err = await rejection(cbam.loadStateDict(fixture('cbam64.pth')));
    expect(err.code).toBe('ERR_TORCH_ATTN_CHECKPOINT');
    expect(err.message).toMatch(/nothing was loaded/);
    expect(err.message).toMatch(/shape mismatch: channel_attn\.fc\.0\.weight is \[2, 32\] in the model, \[4, 64\] in the file/);
    expect(cbam.stateDict()['spatial_attn.conv.weight'].data()).toEqual(before);
  });

  it('non-strict load reports mismatches and loads what fits', async () => {
    const cbam = new CBAM({ channels: 32 });
    const report = await cbam.loadStateDict(fixture('cbam64.pth'), { strict: false });
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.mismatched.map((m) => m.name).sort()).toEqual(['channel_attn.fc.0.weight', 'channel_attn.fc.2.weight']);
    const sd = await readStateDict(fixture('cbam64.pth'));
    expect(cbam.stateDict()['spatial_attn.conv.weight'].data()).toEqual(sd['spatial_attn.conv.weight'].data());
  });

  it('loads an object of tensors and round-trips stateDict()', async () => {
    const a = new CBAM({ channels: 16, ratio: 4 });
    const b = new CBAM({ channels: 16, ratio: 4 });
    expect(await b.loadStateDict(a.stateDict())).toEqual({ missing: [], unexpected: [], mismatched: [] });
    for (const [name, t] of Object.entries(a.stateDict())) expect(b.stateDict()[name].data()).toEqual(t.data());
    const err = await rejection(b.loadStateDict({ 'spatial_attn.conv.weight': 'x' as never }));
    expect(err.name).toBe('TypeError');
  });
});

// A zip of stored entries as torch.save writes them (CRCs left 0: the reader does not check them).
function storedZip(entries: Record<string, Buffer>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

describe('EXPECTED FAILURE - hostile pickles', () => {
  it('lists nested 200,000 deep are refused without exhausting the stack', async () => {
    const depth = 200_000;
    const parts: Buffer[] = [Buffer.from([0x80, 0x02, 0x5d, 0x72, 0, 0, 0, 0])]; // PROTO 2, EMPTY_LIST, LONG_BINPUT 0
    for (let i = 0; i < depth; i++) {
      const step = Buffer.alloc(12);
      step[0] = 0x5d; // EMPTY_LIST
      step[1] = 0x6a; // LONG_BINGET i (the previous list)
      step.writeUInt32LE(i, 2);
      step[6] = 0x61; // APPEND: new.append(previous)
      step[7] = 0x72; // LONG_BINPUT i + 1
      step.writeUInt32LE(i + 1, 8);
      parts.push(step);
    }
    parts.push(Buffer.from([0x2e])); // STOP
    const file = path.join(scratch, 'deep.pth');
    fs.writeFileSync(file, storedZip({ 'deep/data.pkl': Buffer.concat(parts) }));
    const err = await rejection(readStateDict(file));
    expect(err.message).toMatch(/top-level object is not a dict/);
  });

  it('a tensor record that reaches past its storage is refused', async () => {
    // {'w': _rebuild_tensor_v2(storage of 2 floats, offset 0, size (4,), stride (1,), False, OrderedDict())}
    const pickle = Buffer.concat([
      Buffer.from([0x80, 0x02, 0x7d, 0x28]), // PROTO 2, EMPTY_DICT, MARK
      Buffer.from([0x8c, 1]), Buffer.from('w'),
      Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n'),
      Buffer.from([0x28]), // MARK (args)
      Buffer.from([0x28, 0x8c, 7]), Buffer.from('storage'),
      Buffer.from('ctorch\nFloatStorage\n'),
      Buffer.from([0x8c, 1]), Buffer.from('0'),
      Buffer.from([0x8c, 3]), Buffer.from('cpu'),
      Buffer.from([0x4b, 2, 0x74, 0x51]), // BININT1 2, TUPLE, BINPERSID
      Buffer.from([0x4b, 0, 0x4b, 4, 0x85, 0x4b, 1, 0x85, 0x89]), // 0, (4,), (1,), False
      Buffer.from('ccollections\nOrderedDict\n'), Buffer.from([0x29, 0x52]), // OrderedDict()
      Buffer.from([0x74, 0x52, 0x75, 0x2e]), // TUPLE, REDUCE, SETITEMS, STOP
    ]);
    const file = path.join(scratch, 'overreach.pth');
    fs.writeFileSync(file, storedZip({ 'a/data.pkl': pickle, 'a/data/0': Buffer.alloc(8) }));
    const err = await rejection(readStateDict(file));
    expect(err.message).toMatch(/reaches past its storage \(2 elements\)/);
    // The same record with size (2,) fits and reads.
    const fits = Buffer.from(pickle);
    fits[fits.indexOf(Buffer.from([0x4b, 4, 0x85])) + 1] = 2;
    fs.writeFileSync(file, storedZip({ 'a/data.pkl': fits, 'a/data/0': Buffer.alloc(8) }));
    expect((await readStateDict(file)).w.shape).toEqual([2]);
    // A storage type torch-attn has no dtype for.
    const complex = Buffer.from(pickle.toString('latin1').replace('FloatStorage', 'ComplexFloatStorage'), 'latin1');
    fs.writeFileSync(file, storedZip({ 'a/data.pkl': complex, 'a/data/0': Buffer.alloc(16) }));
    expect((await rejection(readStateDict(file))).message).toMatch(/tensors of type torch\.ComplexFloatStorage, which torch-attn does not read/);
  });
});

describe('layouts', () => {
  it('EXPECTED FAILURE - an unknown layout, and keys that collide once module. is removed', async () => {
    const cbam = new CBAM({ channels: 64 });
    expect((await rejection(cbam.loadStateDict(fixture('cbam64.pth'), { layout: 'keras' as never }))).name).toBe('RangeError');
    const sd = cbam.stateDict();
    const doubled = { ...sd, 'module.spatial_attn.conv.weight': sd['spatial_attn.conv.weight'] };
    const err = await rejection(cbam.loadStateDict(doubled, { layout: 'cbam-original' }));
    expect(err.code).toBe('ERR_TORCH_ATTN_CHECKPOINT');
    expect(err.message).toMatch(/'module\.spatial_attn\.conv\.weight' and another entry both become 'spatial_attn\.conv\.weight'/);
  });
});

describe('hostile .pth files (hardening classes 12, 16, 17; scripts/make-hostile-pth.py)', () => {
  const hostile = (name: string) => path.resolve(__dirname, '../fixtures/pth/hostile', name);

  it('a key with a NUL byte is refused, never cut short into another key (class 16)', async () => {
    const err = await rejection(readStateDict(hostile('nul_key.pth')));
    expect(err.code).toBe(ErrorCode.CHECKPOINT);
    expect(err.message).toMatch(/a state dict key that is empty or holds a NUL byte/);
  });

  it("a '__proto__' key is an entry like any other, not the object's prototype (class 16)", async () => {
    const tensors = await readStateDict(hostile('proto_key.pth'));
    expect(Object.getPrototypeOf(tensors)).toBeNull();
    expect(Object.keys(tensors)).toEqual(['__proto__', 'weight']);
    expect(Array.from(tensors['__proto__'].toFloat32Array())).toEqual([1, 1, 1]);
  });

  it('a broadcast view of a few stored bytes is not expanded into megabytes (class 12)', async () => {
    const err = await rejection(readStateDict(hostile('stride0.pth')));
    expect(err.code).toBe(ErrorCode.CHECKPOINT);
    expect(err.message).toMatch(/expands 1 stored elements to 2097152 \(a broadcast view\)/);
  });

  it('an archive naming an entry twice, or with two top-level folders, is refused (class 17)', async () => {
    const dup = await rejection(readStateDict(hostile('duplicate_entry.pth')));
    expect(dup.message).toMatch(/names the entry 'base\/data\/0' twice/);
    const two = await rejection(readStateDict(hostile('two_prefixes.pth')));
    expect(two.message).toMatch(/more than one top-level folder/);
  });
});

describe('reference cycles in a pickle (hardening class 11)', () => {
  it.skipIf(sanitized)('a list that holds itself, beside the state dict, leaks nothing read after read', async () => {
    const file = path.resolve(__dirname, '../fixtures/pth/hostile/cycle.pth');
    const read = async () => {
      const err = await rejection(readStateDict(file)); // 'junk' is not a tensor: refused
      expect(err.code).toBe(ErrorCode.CHECKPOINT);
    };
    for (let i = 0; i < 3; i++) await read();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 40; i++) await read(); // each read materialises a 4 MiB tensor inside the cycle
    expect(process.memoryUsage().rss - before).toBeLessThan(60 * 2 ** 20); // reference counting kept 160 MiB
  });
});
