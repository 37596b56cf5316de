// Timing for the benchmark scripts: bench.py's timeit (the mean over n calls), repeated.

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The median of each key over several runs' (or rounds') figures. */
export function medians(all: Record<string, number>[]): Record<string, number> {
  return Object.fromEntries(Object.keys(all[0]).map((k) => [k, median(all.map((r) => r[k]))]));
}

/** Seconds per call, one figure a run: the mean over n calls, `count` runs after `warm` calls. */
export async function runs(fn: () => unknown, n: number, warm: number, count: number): Promise<number[]> {
  for (let i = 0; i < warm; i++) await fn();
  const out: number[] = [];
  for (let r = 0; r < count; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    out.push(Number(process.hrtime.bigint() - start) / 1e9 / n);
  }
  return out;
}

/** Milliseconds of each of n calls, after `warm` calls: ort_bench.mjs's way (it reports the median
 *  of these), for latency figures compared with it. */
export async function callTimes(fn: () => unknown, n: number, warm: number): Promise<number[]> {
  for (let i = 0; i < warm; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return out;
}

/** Milliseconds of each call of each of `calls`, after `warm` calls each, the calls taking turns
 *  `n` times (the order reversed every other turn, so none always follows another): the machine's
 *  drift over minutes lands on all of them alike, where figures taken one after another carry it
 *  whole into their ratio. */
export async function turnTimes(calls: (() => unknown)[], n: number, warm: number): Promise<number[][]> {
  for (const call of calls) await callTimes(call, 0, warm);
  const out = calls.map(() => [] as number[]);
  for (let i = 0; i < n; i++) {
    const order = calls.map((_, k) => k);
    if (i % 2 === 1) order.reverse();
    for (const k of order) out[k].push(...(await callTimes(calls[k], 1, 0)));
  }
  return out;
}

/** Event-loop delay in ms from a reading of Node's timer-based sampler (monitorEventLoopDelay, or
 *  prom-client's gauges over it): the sampler records the time between its ticks, `intervalMs`
 *  apart when nothing delays the loop (an idle loop reads p50 ~ intervalMs), so the delay is the
 *  reading less the interval. */
export function loopDelayMs(readingMs: number, intervalMs: number): number {
  return Math.max(0, readingMs - intervalMs);
}
