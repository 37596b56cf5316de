// Learning-rate schedules scale each group's own base lr and follow torch.optim.lr_scheduler.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CBAM, StagedFineTuner, cosineAnnealing, linearWarmup, multiStepLR, optim, schedulers, stepLR } from '../../lib';
import type { Schedule } from '../../lib';

const file = path.resolve(__dirname, '..', 'fixtures', 'parity', 'schedulers.json');
const haveFixtures = fs.existsSync(file);

function twoGroups() {
  const model = new CBAM({ channels: 16, ratio: 4 });
  return optim.sgd(model, [{ params: 'channel_attn.*', lr: 1e-3 }, { params: 'spatial_attn.*', lr: 1e-5 }]);
}

function expectClose(got: number[][], want: number[][]) {
  expect(got.length).toBe(want.length);
  // Relative 1e-9, with an absolute floor for lrs that reach 0.
  got.forEach((row, t) => row.forEach((lr, g) => expect(Math.abs(lr - want[t][g]), `step ${t} group ${g}`).toBeLessThanOrEqual(1e-9 * Math.abs(want[t][g]) + 1e-15)));
}

describe('schedules', () => {
  it('scale each group from its own base lr (differential rates survive)', () => {
    const opt = twoGroups();
    const s = schedulers.apply(opt, stepLR(2, 0.5));
    s.step();
    s.step();
    expect(s.lastLr).toEqual([5e-4, 5e-6]);
    expect(s.stepCount).toBe(2);
  });

  it('resume continues where a run stopped', () => {
    const a = schedulers.apply(twoGroups(), cosineAnnealing(10));
    for (let i = 0; i < 6; i++) a.step();
    const b = schedulers.apply(twoGroups(), cosineAnnealing(10));
    b.resume(6);
    expect(b.lastLr).toEqual(a.lastLr);
  });

  it.each([
    ['stepLR(0)', () => stepLR(0)],
    ['multiStepLR([0])', () => multiStepLR([0])],
    ['cosineAnnealing(5, -1)', () => cosineAnnealing(5, -1)],
    ['linearWarmup(3, -0.1)', () => linearWarmup(3, -0.1)],
    ['reduceOnPlateau factor 1', () => schedulers.reduceOnPlateau(twoGroups(), { factor: 1 })],
    ['reduceOnPlateau unknown option', () => schedulers.reduceOnPlateau(twoGroups(), { patients: 3 } as never)],
  ])('EXPECTED FAILURE - %s', (_name, make) => {
    expect(make).toThrow(/must be|Unknown option/);
  });
});

describe.runIf(haveFixtures)('sequences match torch.optim.lr_scheduler', () => {
  const fixtures = haveFixtures ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  const make: Record<string, (args: never[]) => Schedule> = {
    stepLR: ([s, g]) => stepLR(s, g),
    multiStepLR: ([m, g]) => multiStepLR(m, g),
    cosineAnnealing: ([t, e]) => cosineAnnealing(t, e),
    'linearWarmup+cosineAnnealing': ([w, f, t, e]) => linearWarmup(w, f, cosineAnnealing(t, e)),
  };
  it.each(Object.keys(make))('%s', (name) => {
    const { args, lrs } = fixtures[name];
    const opt = twoGroups();
    const s = schedulers.apply(opt, make[name](args));
    const seq = [s.lastLr];
    for (let i = 1; i < lrs.length; i++) {
      s.step();
      seq.push(s.lastLr);
    }
    expectClose(seq, lrs);
  });

  it('reduceOnPlateau', () => {
    const { args, metrics, lrs } = fixtures.reduceOnPlateau;
    const opt = twoGroups();
    const s = schedulers.reduceOnPlateau(opt, args);
    const seq = [s.lastLr];
    for (const m of metrics) {
      s.step(m);
      seq.push(s.lastLr);
    }
    expectClose(seq, lrs);
  });

  it('a per-step warm-up from 0, then a cosine moved at epoch ends (the NAM recipe): the fine-tuner\'s rates equal torch\'s', () => {
    const f = fixtures['warmupFrom0+cosinePerEpoch'];
    const model = new CBAM({ channels: 16, ratio: 4 });
    const tuner = new StagedFineTuner(model, {
      optimizer: { type: 'sgd', momentum: 0.9 },
      stages: [{ name: 'all', epochs: f.epochs, train: 'all', lr: { 'channel_attn.*': f.base[0], 'spatial_attn.*': f.base[1] } }],
      scheduler: { type: 'warmup', steps: f.warmup, startFactor: 0, unit: 'step', then: { type: 'cosine', tMax: f.tMax, unit: 'epoch' } },
    });
    const { stages } = tuner.learningRates(f.batches);
    expect(stages[0].unit).toBe('step');
    expectClose(stages[0].rates, f.lrs);
  });

  it('a warm-up counted in epochs cannot hand over to a per-step schedule', () => {
    const tuner = () => new StagedFineTuner(new CBAM({ channels: 16, ratio: 4 }), {
      stages: [{ name: 'all', epochs: 3, train: 'all', lr: 1e-3 }],
      scheduler: { type: 'warmup', steps: 1, then: { type: 'cosine', unit: 'step' } },
    }).learningRates(5);
    expect(tuner).toThrow(/a warm-up counted in epochs can only be followed by a schedule counted in epochs/);
  });
});
