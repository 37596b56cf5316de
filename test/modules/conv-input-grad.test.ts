// The oneDNN work-around (native/modules/conv.cc): on a LibTorch whose oneDNN returns non-finite
// input gradients for convolutions with padded channel counts (Debian 13's LibTorch 2.6), CBAM's
// spatial conv and ECA's conv take their input gradient from ATen's im2col kernel. Forced here
// with TORCH_ATTN_CONV_INPUT_GRAD=aten on any build: a training step must match the oneDNN path
// to float rounding, and the forward pass bit for bit.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildInfo } from '../../lib/index';

const root = path.resolve(__dirname, '..', '..');

interface Outcome { workarounds: string[]; logits: number[]; params: Record<string, number[]>; losses: number[] }

function trainTwice(attention: 'cbam' | 'eca', mode: 'aten' | 'onednn'): Outcome {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-convgrad-'));
  const file = path.join(dir, 'step.ts');
  fs.writeFileSync(file, `
    import { buildInfo, manualSeed, optim, randn, resnet, setNumThreads, tensor } from ${JSON.stringify(path.join(root, 'lib', 'index.ts'))};
    (async () => {
      setNumThreads(2);
      manualSeed(7);
      const model = resnet({ depth: 18, numClasses: 4, stem: 'cifar', attention: '${attention}' });
      const opt = optim.sgd(model, undefined, { lr: 0.01, momentum: 0.9 });
      const x = randn([4, 3, 16, 16]);
      const y = tensor(new BigInt64Array([0n, 1n, 2n, 3n]), [4]);
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await model.trainStep(opt, x, y)).loss);
      const logits = Array.from((await model.predict(x)).data() as Float32Array);
      const params: Record<string, number[]> = {};
      for (const [name, t] of Object.entries(model.stateDict())) if (t.dtype === 'float32') {
        const d = t.data() as Float32Array, step = Math.max(1, Math.floor(d.length / 64));
        params[name] = Array.from(d.filter((_, i) => i % step === 0));
      }
      console.log(JSON.stringify({ workarounds: buildInfo().workarounds, logits, params, losses }));
    })();
  `);
  const run = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), [file], {
    cwd: root, encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 28, env: { ...process.env, TORCH_ATTN_CONV_INPUT_GRAD: mode },
  });
  fs.rmSync(dir, { recursive: true, force: true });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout) as Outcome;
}

describe('convolution input gradients from ATen (TORCH_ATTN_CONV_INPUT_GRAD)', () => {
  it('buildInfo() lists the work-around exactly when it is on', () => {
    const info = buildInfo();
    expect(Array.isArray(info.workarounds)).toBe(true);
    if (info.onednnVersion !== undefined) expect(info.onednnVersion).toMatch(/^\d+\.\d+\.\d+$/);
  });

  for (const attention of ['cbam', 'eca'] as const) {
    it(`a ${attention.toUpperCase()} ResNet trains the same with either kernel`, () => {
      const aten = trainTwice(attention, 'aten');
      const onednn = trainTwice(attention, 'onednn');
      expect(aten.workarounds).toHaveLength(1);
      expect(aten.workarounds[0]).toMatch(/im2col/);
      expect(onednn.workarounds).toEqual([]);
      // The first forward pass is the same computation; the steps differ only in rounding.
      expect(aten.losses[0]).toBe(onednn.losses[0]);
      for (const l of aten.losses) expect(Number.isFinite(l)).toBe(true);
      for (let i = 1; i < 3; i++) expect(Math.abs(aten.losses[i] - onednn.losses[i])).toBeLessThan(1e-3 * Math.max(1, onednn.losses[i]));
      const names = Object.keys(onednn.params);
      expect(Object.keys(aten.params)).toEqual(names);
      let worst = 0;
      for (const name of names) {
        const a = aten.params[name], b = onednn.params[name];
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      }
      expect(worst).toBeGreaterThan(0); // the two kernels did run: they round differently
      expect(worst).toBeLessThan(1e-4);
      for (let i = 0; i < aten.logits.length; i++) expect(aten.logits[i]).toBeCloseTo(onednn.logits[i], 3);
    }, 240_000);
  }
});
