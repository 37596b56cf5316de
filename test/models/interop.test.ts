// Checkpoints both ways with PyTorch: torch-attn's save() read back by PyTorch, PyTorch's
// safetensors read by torch-attn, torchvision backbones loaded into attention models, and
// atomic writes. The PyTorch side uses the fixtures of scripts/make-parity-fixtures.py.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CBAM, Model, ResNetCBAM, StagedFineTuner, datasets, inspectCheckpoint, randn, readStateDict, resnet, saveStateDict, tensor, transforms, vgg } from '../../lib';
import type { NativeModelSpec } from '../../lib/native';
import { readFloats, rejection, runPeerScript, sameBytes } from '../helpers';

const root = path.resolve(__dirname, '..', '..');
const dir = path.join(root, 'test', 'fixtures', 'parity');
const haveFixtures = fs.existsSync(path.join(dir, 'index.json'));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-interop-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

class SpecModel extends Model {
  constructor(spec: NativeModelSpec) {
    super(spec);
  }
}

interface Case {
  spec: NativeModelSpec;
  inputShape: number[];
  safetensors: boolean;
  layout: string;
}
const cases: [string, Case][] = haveFixtures ? Object.entries(JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'))) : [];

describe('save() and the formats, on their own', () => {
  it('round-trips every dtype through .pth and .safetensors', async () => {
    const tensors = {
      f32: tensor([1.5, -2]), f64: tensor(new Float64Array([1e-300])), f16: tensor(new Uint16Array([0x3c00]), [1], { dtype: 'float16' }),
      bf16: tensor(new Uint16Array([0x3f80]), [1], { dtype: 'bfloat16' }), i64: tensor([2n ** 62n]), i32: tensor(new Int32Array([-7])),
      i16: tensor(new Int16Array([300])), i8: tensor(new Int8Array([-128])), u8: tensor(new Uint8Array([255])), bool: tensor([true, false]),
      scalar: tensor([3], []), empty: tensor(new Float32Array(0), [0, 4]), matrix: randn([3, 5]),
    };
    for (const ext of ['pth', 'safetensors']) {
      const file = path.join(scratch, `all.${ext}`);
      await saveStateDict(tensors, file);
      const back = await readStateDict(file);
      expect(Object.keys(back)).toEqual(Object.keys(tensors));
      for (const [name, t] of Object.entries(tensors)) {
        expect(back[name].dtype).toBe(t.dtype);
        expect(back[name].shape).toEqual(t.shape);
        expect(back[name].data()).toEqual(t.data());
      }
      const info = await inspectCheckpoint(file);
      expect(info.format).toBe(ext);
      expect(info.entries.find((e) => e.name === 'matrix')).toEqual({ name: 'matrix', shape: [3, 5], dtype: 'float32' });
    }
  });

  it('a model saved and loaded again gives the same outputs', async () => {
    const a = new CBAM({ channels: 16, ratio: 4 }).eval();
    const b = new CBAM({ channels: 16, ratio: 4 }).eval();
    const x = randn([2, 16, 5, 5]);
    for (const ext of ['pth', 'safetensors']) {
      const file = path.join(scratch, `cbam.${ext}`);
      await a.save(file);
      expect(await b.loadStateDict(file)).toEqual({ missing: [], unexpected: [], mismatched: [] });
      expect(b.forward(x).data()).toEqual(a.forward(x).data());
    }
  });

  it('writes atomically: no temporary file is left and a failed write keeps the old file', async () => {
    const file = path.join(scratch, 'atomic.pth');
    await saveStateDict({ w: tensor([1, 2]) }, file);
    const before = fs.readFileSync(file);
    const err = await rejection(saveStateDict({ w: 'not a tensor' as never }, file));
    expect(err.name).toBe('TypeError');
    expect(fs.readFileSync(file)).toEqual(before);
    const missingDir = await rejection(saveStateDict({ w: tensor([1]) }, path.join(scratch, 'no', 'such', 'dir.pth')));
    expect((missingDir as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(fs.readdirSync(scratch).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('EXPECTED FAILURE - bad paths and broken safetensors files', async () => {
    expect((await rejection(new CBAM({ channels: 8, ratio: 2 }).save(path.join(scratch, 'm.onnx')))).message).toMatch(/must end in \.pth, \.pt, \.bin or \.safetensors/);
    const good = path.join(scratch, 'good.safetensors');
    await saveStateDict({ w: randn([4, 4]) }, good);
    const bytes = fs.readFileSync(good);
    const cases: [string, Buffer, RegExp][] = [
      ['truncated data', bytes.subarray(0, bytes.length - 8), /runs past the end of the file/],
      ['truncated header', bytes.subarray(0, 20), /header length .* runs past the end/],
      ['no header', bytes.subarray(0, 5), /shorter than the 8-byte header length/],
      ['a zip', fs.readFileSync(path.join(root, 'test/fixtures/pth/cbam64.pth')), /header length|not valid JSON/],
      ['bad JSON', Buffer.concat([bytes.subarray(0, 8), Buffer.from('{'.padEnd(Number(bytes.readBigUInt64LE(0)), 'x')), bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)))]), /not valid JSON/],
    ];
    for (const [name, content, message] of cases) {
      const file = path.join(scratch, `${name.replace(/ /g, '_')}.safetensors`);
      fs.writeFileSync(file, content);
      const before = fs.readFileSync(file);
      const err = await rejection(readStateDict(file));
      expect(err.message, name).toMatch(message);
      expect((err as { code?: string }).code).toBe('ERR_TORCH_ATTN_CHECKPOINT');
      expect(fs.readFileSync(file)).toEqual(before); // a load never modifies the file
    }
    const header = (h: object) => {
      const json = Buffer.from(JSON.stringify(h));
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(json.length));
      return Buffer.concat([length, json, Buffer.alloc(16)]);
    };
    const file = path.join(scratch, 'crafted.safetensors');
    fs.writeFileSync(file, header({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }));
    expect((await rejection(readStateDict(file))).message).toMatch(/dtype "F8_E4M3"; readable are F64, F32/);
    fs.writeFileSync(file, header({ w: { dtype: 'F32', shape: [4, 4], data_offsets: [0, 16] } }));
    expect((await rejection(readStateDict(file))).message).toMatch(/holds 16 bytes but its shape \[4, 4\] of float32 needs 64/);
  });
});

function maxRelativeDifference(got: Float32Array, want: Float32Array): number {
  const scale = Math.max(1e-6, ...Array.from(want, Math.abs));
  return Math.max(...Array.from(want, (w, i) => Math.abs(got[i] - w) / scale));
}

describe.runIf(haveFixtures)('with PyTorch (fixtures from scripts/make-parity-fixtures.py)', () => {
  it('every architecture: save() as .pth and .safetensors, PyTorch loads strictly and gives the same logits', async () => {
    const jobs: { case: string; checkpoint: string; input: string; inputShape: number[]; output: string }[] = [];
    const ours = new Map<string, Float32Array>();
    // Cases in another CBAM layout are imported, not written back in it: their peers use other names.
    for (const [name, c] of cases.filter(([, c]) => c.layout === 'torch-attn')) {
      const model = new SpecModel(c.spec).eval();
      await model.loadStateDict(path.join(dir, `${name}.pth`));
      const input = path.join(dir, `${name}.input.f32`);
      ours.set(name, model.forward(tensor(readFloats(input), c.inputShape)).data() as Float32Array);
      for (const ext of ['pth', 'safetensors']) {
        const checkpoint = path.join(scratch, `${name}.${ext}`);
        await model.save(checkpoint);
        jobs.push({ case: name, checkpoint, input, inputShape: c.inputShape, output: path.join(scratch, `${name}.${ext}.logits.f32`) });
      }
    }
    runPeerScript('peer-logits.py', path.join(scratch, 'jobs.json'), jobs);
    for (const job of jobs) {
      expect(maxRelativeDifference(readFloats(job.output), ours.get(job.case)!), job.checkpoint).toBeLessThanOrEqual(1e-4);
    }
  }, 180_000);

  it("a fine-tuner's training checkpoint: PyTorch loads its model_state_dict strictly and gives the same logits", async () => {
    const [name, c] = cases.find(([n]) => n === 'cbamcnn')!;
    const model = new SpecModel(c.spec);
    const images = new Uint8Array(16 * 3072).map((_, i) => (i * 37) % 256);
    const data = datasets.fromArrays({ images, shape: [16, 3, 32, 32], labels: Array.from({ length: 16 }, (_, i) => i % 10), classes: [...'0123456789'], transform: transforms.toTensor() });
    const ckdir = path.join(scratch, 'fit');
    await new StagedFineTuner(model, { stages: [{ name: 'all', epochs: 1, train: 'all', lr: 1e-3 }], checkpointDir: ckdir, logEvery: 0 }).fit(data, null, { batchSize: 8 });
    model.eval();
    const input = path.join(dir, `${name}.input.f32`);
    const ours = model.forward(tensor(readFloats(input), c.inputShape)).data() as Float32Array;
    const job = { case: name, checkpoint: path.join(ckdir, 'last.pth'), input, inputShape: c.inputShape, output: path.join(scratch, 'fit.logits.f32') };
    runPeerScript('peer-logits.py', path.join(scratch, 'fit-jobs.json'), [job]);
    expect(maxRelativeDifference(readFloats(job.output), ours)).toBeLessThanOrEqual(1e-4);
  }, 60_000);

  it("PyTorch's safetensors files load and give PyTorch's logits", async () => {
    for (const [name, c] of cases.filter(([, c]) => c.safetensors)) {
      const model = new SpecModel(c.spec).eval();
      expect(await model.loadStateDict(path.join(dir, `${name}.safetensors`))).toEqual({ missing: [], unexpected: [], mismatched: [] });
      const logits = model.forward(tensor(readFloats(path.join(dir, `${name}.input.f32`)), c.inputShape)).data() as Float32Array;
      expect(maxRelativeDifference(logits, readFloats(path.join(dir, `${name}.eval.f32`)))).toBeLessThanOrEqual(1e-4);
    }
  });

  it('loadBackbone: torchvision resnet18 into ResNetCBAM (CIFAR stem, 10 classes)', async () => {
    const file = path.join(dir, 'tv_resnet18.pth');
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
    const attentionBefore = model.stateDict()['cbam_layer2.channel_attn.fc.0.weight'].data();
    const report = await model.loadBackbone(file);
    expect(report.skipped.map((s) => s.name)).toEqual(['conv1.weight', 'fc.weight', 'fc.bias']);
    expect(report.skipped[0].reason).toMatch(/cifar stem's conv1 is \[64,3,3,3\], the file's is \[64,3,7,7\]/);
    expect(report.skipped[1].reason).toMatch(/class count differs/);
    expect(report.missing).toEqual(['backbone.conv1.weight', 'backbone.fc.weight', 'backbone.fc.bias']);
    const fileTensors = await readStateDict(file);
    expect(report.loaded).toHaveLength(Object.keys(fileTensors).length - 3);
    const mine = model.stateDict();
    for (const name of report.loaded) expect(sameBytes(mine[name].data(), fileTensors[name.slice('backbone.'.length)].data()), name).toBe(true);
    expect(mine['cbam_layer2.channel_attn.fc.0.weight'].data()).toEqual(attentionBefore);
  });

  it('loadBackbone: torchvision resnet50 into an ImageNet-stem NAM ResNet loads everything but NAM', async () => {
    const model = resnet({ depth: 50, attention: 'nam', placement: 'block', stem: 'imagenet', numClasses: 1000 });
    const report = await model.loadBackbone(path.join(dir, 'tv_resnet50.pth'));
    expect(report.skipped).toEqual([]);
    expect(report.missing).toEqual([]);
    expect(report.loaded).toHaveLength(320);
  });

  it('loadBackbone with passthrough CBAM gives exactly torchvision\'s outputs', async () => {
    const file = path.join(dir, 'tv_resnet18.pth');
    const plain = resnet({ depth: 18, attention: 'none', stem: 'imagenet', numClasses: 1000 }).eval();
    await plain.loadStateDict(file);
    const gated = new ResNetCBAM({ depth: 18, stem: 'imagenet', numClasses: 1000, attentionOptions: { init: 'passthrough' } }).eval();
    const report = await gated.loadBackbone(file);
    expect(report.skipped).toEqual([]);
    const x = randn([2, 3, 64, 64]);
    expect(gated.forward(x).data()).toEqual(plain.forward(x).data());
  });

  it('EXPECTED FAILURE - loadBackbone on a model without a torchvision backbone', async () => {
    const err = await rejection(new CBAM({ channels: 8, ratio: 2 }).loadBackbone(path.join(dir, 'tv_resnet18.pth')));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toMatch(/loads torchvision ResNet and VGG weights; this model is CBAM/);
  });
});

describe('loadBackbone for VGG', () => {
  it('keeps features and attention, skips the classifier layer whose class count differs', async () => {
    const source = vgg({ depth: 11, batchNorm: true, attention: 'none', numClasses: 10 });
    const file = path.join(scratch, 'vgg11.safetensors');
    await source.save(file);
    const target = vgg({ depth: 11, batchNorm: true, attention: 'cbam', numClasses: 5 });
    const report = await target.loadBackbone(file);
    expect(report.skipped.map((s) => s.name)).toEqual(['classifier.6.weight', 'classifier.6.bias']);
    expect(report.skipped[0].reason).toMatch(/class count differs: \[5,512\] in the model, \[10,512\] in the file/);
    expect(report.missing).toEqual(['classifier.6.weight', 'classifier.6.bias']);
    const a = source.stateDict();
    const b = target.stateDict();
    expect(b['features.0.weight'].data()).toEqual(a['features.0.weight'].data());
    expect(b['features.26.running_var'].data()).toEqual(a['features.26.running_var'].data());
    expect(Object.keys(b).some((n) => n.startsWith('cbam_stage5.'))).toBe(true);
  });
});

describe.runIf(haveFixtures)('VGG names', () => {
  it("vgg16 with batch norm and no attention has torchvision's state-dict names and shapes", () => {
    const want = JSON.parse(fs.readFileSync(path.join(dir, 'tv_vgg16_bn.keys.json'), 'utf8'));
    const model = vgg({ depth: 16, batchNorm: true, attention: 'none', stem: 'imagenet', numClasses: 1000 });
    const have: Record<string, number[]> = {};
    for (const p of model.namedParameters()) have[p.name] = p.shape;
    for (const b of model.namedBuffers()) have[b.name] = b.shape;
    expect(have).toEqual(want);
  });
});
