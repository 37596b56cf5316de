// What torch-attn writes, read back by PyTorch's safe loader: torch.load(f, weights_only=True),
// the default from PyTorch 2.6 (and available since 1.13). A state dict from save() and a
// fine-tuner's training checkpoint; every tensor must come back with the same name, dtype,
// shape and values. Needs Debian's PyTorch (/usr/bin/python3 with torch); skipped without it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CBAMCNN, StagedFineTuner, manualSeed, readStateDict } from '../../lib/index';
import { colourData } from '../helpers';

const python = '/usr/bin/python3';
const havePyTorch = fs.existsSync(python) && spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-safe-load-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** torch.load(file, weights_only=True), flattened: name -> [dtype, shape, sum of values as float64]. */
const LOAD = `
import json, sys, torch
obj = torch.load(sys.argv[1], weights_only=True)
out = {}
def walk(prefix, value):
    if isinstance(value, torch.Tensor):
        out[prefix] = [str(value.dtype).replace('torch.', ''), list(value.shape), float(value.double().sum())]
    else:
        assert isinstance(value, dict), type(value)
        for k, v in value.items():
            walk(prefix + ('.' if prefix else '') + k, v)
walk('', obj)
print(json.dumps({'torch': torch.__version__, 'type': type(obj).__name__, 'tensors': out}))
`;

function safeLoad(file: string): { torch: string; type: string; tensors: Record<string, [string, number[], number]> } {
  const run = spawnSync(python, ['-c', LOAD, file], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout);
}

async function expectSame(file: string, loaded: ReturnType<typeof safeLoad>, prefix = '') {
  const ours = await readStateDict(file);
  const names = Object.keys(ours);
  for (const name of names) {
    const [dtype, shape, sum] = loaded.tensors[prefix + name];
    const t = ours[name];
    expect([dtype, shape], name).toEqual([t.dtype, t.shape]);
    const mine = Array.from(t.toFloat32Array()).reduce((a, b) => a + b, 0);
    expect(Math.abs(mine - sum), name).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(sum)));
  }
  return names.length;
}

describe.skipIf(!havePyTorch)("PyTorch's safe loader (weights_only=True)", () => {
  it('loads a state dict written by save(): an OrderedDict with every tensor', async () => {
    manualSeed(3);
    const model = new CBAMCNN({ numClasses: 3 });
    const file = path.join(tmp, 'model.pth');
    await model.save(file);
    const loaded = safeLoad(file);
    expect(loaded.type).toBe('OrderedDict');
    expect(Object.keys(loaded.tensors)).toEqual(Object.keys(model.stateDict()));
    expect(await expectSame(file, loaded)).toBe(Object.keys(loaded.tensors).length);
  });

  it("loads a fine-tuner's training checkpoint: model, optimizer state by name, progress and RNG state", async () => {
    const model = new CBAMCNN({ numClasses: 3 });
    const dir = path.join(tmp, 'fit');
    await new StagedFineTuner(model, { stages: [{ name: 'all', epochs: 1, train: 'all', lr: 1e-3 }], checkpointDir: dir, logEvery: 0 }).fit(colourData(32), null, { batchSize: 16 });
    const loaded = safeLoad(path.join(dir, 'last.pth'));
    expect(loaded.type).toBe('dict');
    const sections = new Set(Object.keys(loaded.tensors).map((k) => k.split('.')[0]));
    expect([...sections]).toEqual(['model_state_dict', 'optimizer_state', 'training']);
    expect(loaded.tensors['training.progress'][0]).toBe('uint8');
    expect(loaded.tensors['optimizer_state.fc2.weight.step'][0]).toBe('int64');
    // model_state_dict is the model's state dict, value for value.
    expect(await expectSame(path.join(dir, 'last.pth'), loaded, 'model_state_dict.')).toBe(Object.keys(model.stateDict()).length);
  }, 60_000);
});
