// Learning-rate schedules that scale each optimizer group's own base lr, so differential rates
// survive scheduling. step() advances one unit of whatever the caller counts (epochs or steps);
// the sequences match torch.optim.lr_scheduler's for the same settings.
import * as validate from '../validate';
import type { Optimizer } from './optim';

/** A schedule: the lr at step t of a group whose base lr is `base`. */
export interface Schedule {
  readonly name: string;
  lr(base: number, t: number): number;
}

/** StepLR: base * gamma^floor(t / stepSize). */
export function stepLR(stepSize: number, gamma = 0.1): Schedule {
  validate.integer(stepSize, 'stepLR(stepSize)', 1);
  validate.finiteNumber(gamma, 'stepLR(gamma)');
  return { name: 'stepLR', lr: (base, t) => base * gamma ** Math.floor(t / stepSize) };
}

/** MultiStepLR: base * gamma^(number of milestones reached). */
export function multiStepLR(milestones: readonly number[], gamma = 0.1): Schedule {
  if (!Array.isArray(milestones)) throw validate.typeError('multiStepLR(milestones)', 'an Array of step numbers', milestones);
  const sorted = milestones.map((m, i) => validate.integer(m, `multiStepLR(milestones)[${i}]`, 1)).sort((a, b) => a - b);
  validate.finiteNumber(gamma, 'multiStepLR(gamma)');
  return { name: 'multiStepLR', lr: (base, t) => base * gamma ** sorted.filter((m) => m <= t).length };
}

/** CosineAnnealingLR: etaMin + (base - etaMin) * (1 + cos(pi * t / tMax)) / 2. */
export function cosineAnnealing(tMax: number, etaMin = 0): Schedule {
  validate.integer(tMax, 'cosineAnnealing(tMax)', 1);
  if (validate.finiteNumber(etaMin, 'cosineAnnealing(etaMin)') < 0) throw new RangeError(`cosineAnnealing(etaMin) must be at least 0, got ${etaMin}`);
  return { name: 'cosineAnnealing', lr: (base, t) => etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2 };
}

/** Linear warm-up from startFactor * base (0 allowed: the first step's lr is 0, as Paddle's
 *  LinearWarmup from 0) to base over `steps`, then `then` (counted from 0 at
 *  the end of the warm-up, as SequentialLR does), or constant. */
export function linearWarmup(steps: number, startFactor = 0.1, then?: Schedule): Schedule {
  validate.integer(steps, 'linearWarmup(steps)', 1);
  const start = validate.finiteNumber(startFactor, 'linearWarmup(startFactor)');
  if (start < 0 || start > 1) throw new RangeError(`linearWarmup(startFactor) must be in [0, 1], got ${start}`);
  return {
    name: then ? `linearWarmup+${then.name}` : 'linearWarmup',
    lr: (base, t) => (t < steps ? base * (start + ((1 - start) * t) / steps) : then ? then.lr(base, t - steps) : base),
  };
}

/** Applies a Schedule to an optimizer: base lrs are the groups' lrs when it is created. */
export class LRScheduler {
  readonly #optimizer: Optimizer;
  readonly #schedule: Schedule;
  readonly #base: number[];
  #t = 0;

  constructor(optimizer: Optimizer, schedule: Schedule) {
    this.#optimizer = optimizer;
    this.#schedule = schedule;
    this.#base = Array.from({ length: optimizer.groupCount }, (_, i) => optimizer.getLr(i));
    this.#apply();
  }

  /** Advances one step (or epoch) and sets every group's lr. */
  step(): void {
    this.#t += 1;
    this.#apply();
  }

  /** How many times step() ran (restore with `resume`). */
  get stepCount(): number {
    return this.#t;
  }

  /** Continues a schedule after a restart at `stepCount`. */
  resume(stepCount: number): void {
    this.#t = validate.integer(stepCount, 'resume(stepCount)', 0);
    this.#apply();
  }

  /** The lrs of the groups now. */
  get lastLr(): number[] {
    return this.#base.map((_, i) => this.#optimizer.getLr(i));
  }

  #apply(): void {
    this.#base.forEach((base, i) => this.#optimizer.setLr(i, this.#schedule.lr(base, this.#t)));
  }
}

export interface PlateauOptions {
  /** 'min' (a loss) or 'max' (an accuracy); default 'min'. */
  mode?: 'min' | 'max';
  /** Multiplies the lrs on a plateau; default 0.1. */
  factor?: number;
  /** Steps without improvement before reducing; default 10. */
  patience?: number;
  /** Relative improvement that counts; default 1e-4. */
  threshold?: number;
  /** Steps to wait after a reduction; default 0. */
  cooldown?: number;
  /** Lower bound on every group's lr; default 0. */
  minLr?: number;
}

/** ReduceLROnPlateau, as torch.optim.lr_scheduler's (relative threshold): step(metric) each epoch. */
export class ReduceOnPlateau {
  readonly #optimizer: Optimizer;
  readonly #o: Required<PlateauOptions>;
  #best: number;
  #bad = 0;
  #cooldown = 0;

  constructor(optimizer: Optimizer, options?: PlateauOptions) {
    const o = validate.options(options, 'reduceOnPlateau() options', ['mode', 'factor', 'patience', 'threshold', 'cooldown', 'minLr']);
    const factor = validate.finiteNumber(o.factor ?? 0.1, 'reduceOnPlateau() factor');
    if (factor <= 0 || factor >= 1) throw new RangeError(`reduceOnPlateau() factor must be in (0, 1), got ${factor}`);
    this.#o = {
      mode: validate.oneOf(o.mode ?? 'min', 'reduceOnPlateau() mode', ['min', 'max'] as const),
      factor,
      patience: validate.integer(o.patience ?? 10, 'reduceOnPlateau() patience', 0),
      threshold: validate.finiteNumber(o.threshold ?? 1e-4, 'reduceOnPlateau() threshold'),
      cooldown: validate.integer(o.cooldown ?? 0, 'reduceOnPlateau() cooldown', 0),
      minLr: validate.finiteNumber(o.minLr ?? 0, 'reduceOnPlateau() minLr'),
    };
    this.#optimizer = optimizer;
    this.#best = this.#o.mode === 'min' ? Infinity : -Infinity;
  }

  step(metric: number): void {
    const value = validate.finiteNumber(metric, 'reduceOnPlateau step(metric)');
    const { mode, threshold } = this.#o;
    const better = mode === 'min' ? value < this.#best * (1 - threshold) : value > this.#best * (1 + threshold);
    if (better) {
      this.#best = value;
      this.#bad = 0;
    } else {
      this.#bad += 1;
    }
    if (this.#cooldown > 0) {
      this.#cooldown -= 1;
      this.#bad = 0;
    }
    if (this.#bad > this.#o.patience) {
      for (let i = 0; i < this.#optimizer.groupCount; i++) {
        const old = this.#optimizer.getLr(i);
        const next = Math.max(old * this.#o.factor, this.#o.minLr);
        if (old - next > 1e-8) this.#optimizer.setLr(i, next);
      }
      this.#cooldown = this.#o.cooldown;
      this.#bad = 0;
    }
  }

  get lastLr(): number[] {
    return Array.from({ length: this.#optimizer.groupCount }, (_, i) => this.#optimizer.getLr(i));
  }
}

/** Scheduler constructors: `schedulers.apply(optimizer, schedule)` or `schedulers.reduceOnPlateau(optimizer, options)`. */
export const schedulers = {
  stepLR,
  multiStepLR,
  cosineAnnealing,
  linearWarmup,
  apply: (optimizer: Optimizer, schedule: Schedule) => new LRScheduler(optimizer, schedule),
  reduceOnPlateau: (optimizer: Optimizer, options?: PlateauOptions) => new ReduceOnPlateau(optimizer, options),
};
