// What the experiment scripts share: their flags (--data, --epochs, --out, --batch-size,
// --workers, --seed, --weights), running a configuration with per-epoch lines, and Ctrl-C.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { checkConfig, readConfigFile } from '../../lib/runs/config';
import { type RunResult, formatEpoch, formatResult, runTraining } from '../../lib/runs/train';

export const SHARED_DATA = path.resolve(__dirname, '..', '..', '..', 'shared', 'data');
export const RECIPES = path.resolve(__dirname, '..', '..', 'recipes');

/** A recipe file (recipes/<name>.yaml) with the script's flags over it: --data, --epochs (one
 *  number per stage, or one for all), --batch-size, --workers, --seed, --weights, --out. */
export function fromRecipe(name: string, a: ExperimentArgs, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const raw = structuredClone(readConfigFile(path.join(RECIPES, `${name}.yaml`))) as Record<string, any>;
  return {
    ...raw,
    ...extra,
    model: { ...raw.model, ...(a.weights ? { weights: a.weights } : {}), ...((extra.model as object) ?? {}) },
    data: { ...raw.data, path: a.data, ...((extra.data as object) ?? {}) },
    ...(a.epochs.length > 0 ? { epochs: a.epochs.length === 1 ? a.epochs[0] : a.epochs } : {}),
    ...(a.batchSize !== undefined ? { batchSize: a.batchSize } : {}),
    ...(a.workers !== undefined ? { workers: a.workers } : {}),
    ...(a.seed !== undefined ? { seed: a.seed } : {}),
    out: a.out,
  };
}

export interface ExperimentArgs {
  data: string;
  /** One number per stage (or one for all). */
  epochs: number[];
  out: string;
  batchSize?: number;
  workers?: number;
  seed?: number;
  weights?: string;
  extra: Record<string, string | undefined>;
}

/** Parses the common flags; `extra` names flags of the script's own. */
export function experimentArgs(defaults: { data: string; epochs: string; out: string }, extra: string[] = []): ExperimentArgs {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: defaults.data },
      epochs: { type: 'string', default: defaults.epochs },
      out: { type: 'string', default: defaults.out },
      'batch-size': { type: 'string' },
      workers: { type: 'string' },
      seed: { type: 'string' },
      weights: { type: 'string' },
      ...Object.fromEntries(extra.map((e) => [e, { type: 'string' as const }])),
    },
  });
  const num = (v: string | boolean | undefined) => (v === undefined ? undefined : Number(v));
  return {
    data: String(values.data),
    epochs: String(values.epochs) === '' ? [] : String(values.epochs).split(',').map(Number),
    out: String(values.out),
    batchSize: num(values['batch-size']),
    workers: num(values.workers),
    seed: num(values.seed),
    weights: values.weights as string | undefined,
    extra: Object.fromEntries(extra.map((e) => [e, (values as Record<string, unknown>)[e] as string | undefined])),
  };
}

/** Runs one configuration (raw, checked here), printing what it does and each epoch. */
export async function experiment(raw: Record<string, unknown>): Promise<RunResult> {
  const config = checkConfig(raw);
  const controller = new AbortController();
  const stop = () => {
    console.log('\nstopping at the next batch (a resumable checkpoint is written) ...');
    controller.abort();
  };
  process.once('SIGINT', stop);
  try {
    const result = await runTraining(config, { signal: controller.signal, batchLines: true, log: (l) => console.log(l), onEpoch: (r) => console.log(formatEpoch(r)) });
    console.log(`${formatResult(result).join('\n')}\n`);
    return result;
  } finally {
    process.removeListener('SIGINT', stop);
  }
}

export function run(fn: () => Promise<void>): void {
  fn().catch((err) => {
    console.error(err?.name === 'AbortError' ? err.message : err);
    process.exit(1);
  });
}
