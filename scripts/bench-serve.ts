// Load test of `torch-attn serve` on 127.0.0.1 with autocannon: CIFAR-10 test JPEGs (from
// ../shared/data/cifar10-jpg) posted by `--connections` concurrent clients, with dynamic batching
// (--max-batch 32) against none (--max-batch 1), in one run. The two take turns, `--rounds` times,
// each round a fresh server of each, one at a time (with both up, the unbatched one served 286-320
// requests/s where alone it had served 353-388 in runs of the same hour): the batched one loaded
// for `--duration` seconds in the first round (its memory over a whole minute),
// `--baseline-duration` in the others, the unbatched one `--baseline-duration`: this
// machine drifts by 10-30% within minutes, and one batched minute against one unbatched 20 s,
// minutes apart, compared the drift as much as the batching. Prints one JSON object: per server,
// each round's requests/s, p50/p99 latency, errors, the event-loop lag p99 (its /metrics, scraped
// every 5 s; the delay beyond the sampler's 10-ms interval, and the gauge's reading), resident
// memory every 5 s and the share of the time a batch was running (and that time per image), and
// the medians over the rounds; the ratio of requests/s per round and its
// median. Then the model alone in this process (no HTTP, no decoding), batch 1 and the batched
// server's batch sizes, blocks of consecutive calls taking turns: what batching itself gives on
// this machine; and each server's requests/s over the model's own images/s at its batch size
// (server_over_model).
//   npx tsx scripts/bench-serve.ts [--duration 60] [--baseline-duration 20] [--rounds 3]
//                                  [--connections 32] [--precision fp32] [--threads 2]
//                                  [--max-delay-ms MS] (serve's window; default serve's own)
//                                  [--arch resnet18] (any run architecture: cbamcnn, vgg11, ...)
//                                  [--device cpu] (cuda, cuda:N: the model on a GPU, where batch 1
//                                  leaves most of it idle; images decoded on the CPU as ever)
//                                  [--data test_10000.tar.gz] (CIFAR-10 test JPEGs, class folders)
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { randn, setNumThreads, type Device } from '../lib';
import { predictorFromRun } from '../lib/serving/run';
import { EVENT_LOOP_SAMPLE_MS } from '../lib/serving/server';
import { CLASSES, makeRun } from '../test/serving/helpers';
import { loopDelayMs, median, turnTimes } from './timing';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    'baseline-duration': { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    precision: { type: 'string', default: 'fp32' },
    threads: { type: 'string', default: '2' },
    arch: { type: 'string', default: 'resnet18' },
    device: { type: 'string', default: 'cpu' },
    'max-delay-ms': { type: 'string' },
    data: { type: 'string', default: path.resolve(__dirname, '..', '..', 'shared', 'data', 'cifar10-jpg', 'test_10000.tar.gz') },
  },
});
const root = path.resolve(__dirname, '..');

/** The test JPEGs, unpacked once into a temp folder of that tarball's own (named by its path,
 *  size and time: another `--data` does not reuse the first one's files). */
function images(): Buffer[] {
  const tarball = path.resolve(values.data!);
  const { size, mtimeMs } = fs.statSync(tarball);
  const key = createHash('sha256').update(`${tarball}\0${size}\0${mtimeMs}`).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `torch-attn-cifar10-jpg-${key}`);
  if (!fs.existsSync(path.join(dir, 'test', 'truck'))) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  }
  const out: Buffer[] = [];
  for (const c of CLASSES) {
    const files = fs.readdirSync(path.join(dir, 'test', c)).sort().slice(0, 100);
    for (const f of files) out.push(fs.readFileSync(path.join(dir, 'test', c, f)));
  }
  return out;
}

interface Server {
  url: string;
  /** The window its batches wait for more requests (its start-up line's `max delay`). */
  maxDelayMs: number;
  pid: number;
  stop: () => Promise<number | null>;
}

async function startServer(checkpoint: string, maxBatch: number): Promise<Server> {
  const code = `require(${JSON.stringify(path.join(root, 'lib', 'cli'))}).main(process.argv.slice(1)).then((c) => { process.exitCode = c; })`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '-e', code, 'serve', '--checkpoint', checkpoint, '--port', '0', '--max-batch', String(maxBatch), '--precision', values.precision!, '--device', values.device!, '--max-queue', '4096', ...(values['max-delay-ms'] === undefined ? [] : ['--max-delay-ms', values['max-delay-ms']])],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: root, env: { ...process.env, OMP_NUM_THREADS: values.threads } },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const [url, maxDelayMs] = await new Promise<[string, number]>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+) \(max batch \d+, max delay ([0-9.e+-]+) ms/.exec(stderr);
      if (m) resolve([m[1], Number(m[2])]);
    });
    void exited.then((c) => reject(new Error(`serve exited ${c}: ${stderr}`)));
  });
  return {
    url,
    maxDelayMs,
    pid: child.pid!,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function load(server: Server, bodies: Buffer[], seconds: number) {
  let next = 0;
  const lag: number[] = [];
  const rss: number[] = [];
  const scrape = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    lag.push(metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000);  // the sampler's reading
    rss.push(metric(text, 'process_resident_memory_bytes') / 2 ** 20);
    return text;
  };
  // Warm-up: a few seconds of the same load, not counted; then one scrape resets the lag histogram.
  await autocannon({ url: `${server.url}/predictions`, connections: Number(values.connections), duration: 3, method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: bodies[0] });
  const before = metric(await scrape(), 'torch_attn_compute_seconds_total');
  lag.length = 0;
  const timer = setInterval(() => void scrape(), 5000);
  const started = performance.now();
  const result = await autocannon({
    url: `${server.url}/predictions`,
    connections: Number(values.connections),
    duration: seconds,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'image/jpeg' },
        setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
      },
    ],
  });
  const wall = (performance.now() - started) / 1000;
  clearInterval(timer);
  const text = await scrape();
  const compute = metric(text, 'torch_attn_compute_seconds_total') - before;
  return {
    requests_per_s: +result.requests.average.toFixed(1),
    latency_p50_ms: result.latency.p50,
    latency_p99_ms: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.non2xx + result.timeouts,
    mean_batch: +metric(text, 'torch_attn_batch_size_mean').toFixed(2),
    // The share of the load's wall time a batch was running (within a batch at either end: a
    // batch running at a scrape counts when it ends), and its running time per image answered:
    // near 1, the server waits on the model, and requests/s is the model's own speed at the
    // batches formed, under the load's competition for the cores.
    compute_busy: +(compute / wall).toFixed(3),
    compute_ms_per_image: +((1000 * compute) / result.requests.total).toFixed(2),
    // The largest p99 of the 5-s windows: the delay beyond the sampler's interval, and the reading.
    loop_lag_p99_ms_max: +loopDelayMs(Math.max(...lag), EVENT_LOOP_SAMPLE_MS).toFixed(2),
    loop_lag_p99_ms_max_reading: +Math.max(...lag).toFixed(2),
    rss_mb_first: Math.round(rss[1] ?? rss[0]),
    rss_mb_last: Math.round(rss[rss.length - 1]),
    rss_mb_max: Math.round(Math.max(...rss)),
    rss_mb_every_5s: rss.map(Math.round),
  };
}

/** Images/s of the served model's own `predict` at batch 1 and at `batches`, calls taking turns
 *  (so the machine's drift lands on all alike), and each batch's gain over batch 1: the ceiling of
 *  batched over unbatched requests/s, which also pay for HTTP, decoding and the load generator. */
async function modelAlone(checkpoint: string, batches: number[]) {
  setNumThreads(Number(values.threads));
  const precision = values.precision as 'fp32' | 'bf16';
  const { model, predictor } = await predictorFromRun(checkpoint, { maxBatch: Math.max(...batches), precision, device: values.device as Device });
  const sizes = [1, ...batches];
  const [h, w] = predictor.imageSize!;
  // Each size in a block of consecutive calls (about 64 images), the blocks taking turns: a server
  // runs its passes back to back, and a batch-1 call timed alone after a batch-32 one ran up to
  // 40% slower (bf16: 213.8 img/s against an unbatched server's 302.9 requests/s).
  const block = sizes.map((b) => Math.max(1, Math.round(64 / b)));
  const calls = sizes.map((b, k) => {
    const input = randn([b, 3, h, w]);
    return async () => {
      for (let i = 0; i < block[k]; i++) (await model.predict(input, { precision })).dispose();
    };
  });
  const ms = await turnTimes(calls, 15, 2);
  const rate = sizes.map((b, k) => (1000 * b * block[k]) / median(ms[k]));
  return {
    images_per_s: Object.fromEntries(sizes.map((b, k) => [`batch_${b}`, +rate[k].toFixed(1)])),
    gain_over_batch_1: Object.fromEntries(batches.map((b, k) => [`batch_${b}`, +(rate[k + 1] / rate[0]).toFixed(2)])),
  };
}

async function main() {
  if (!fs.existsSync(values.data!)) {
    console.log(JSON.stringify({ skipped: `missing: ${values.data}` }));
    return;
  }
  const bodies = images();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-bench-serve-'));
  try {
    const checkpoint = await makeRun(dir, values.arch);
    const out: Record<string, unknown> = { arch: values.arch, connections: Number(values.connections), precision: values.precision, device: values.device, threads: Number(values.threads), images: bodies.length, cpus: os.cpus().length };
    const rounds = Number(values.rounds);
    if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive integer, got '${values.rounds}'`);
    type Round = { seconds: number } & Awaited<ReturnType<typeof load>> & { exit_code: number | null };
    const results: { batched: Round[]; unbatched: Round[] } = { batched: [], unbatched: [] };
    const loaded = async (maxBatch: number, seconds: number): Promise<Round> => {
      const server = await startServer(checkpoint, maxBatch);
      if (maxBatch > 1) out.max_delay_ms = server.maxDelayMs;
      let figures: Awaited<ReturnType<typeof load>>;
      try {
        figures = await load(server, bodies, seconds);
      } catch (e) {
        await server.stop();
        throw e;
      }
      return { seconds, ...figures, exit_code: await server.stop() };
    };
    for (let r = 0; r < rounds; r++) {
      results.batched.push(await loaded(32, Number(r === 0 ? values.duration : values['baseline-duration'])));
      results.unbatched.push(await loaded(1, Number(values['baseline-duration'])));
    }
    const mid = (xs: number[]) => +median(xs).toFixed(2);
    for (const [name, maxBatch] of [['batched', 32], ['unbatched', 1]] as const) {
      const rs = results[name];
      out[name] = {
        max_batch: maxBatch,
        requests_per_s: mid(rs.map((x) => x.requests_per_s)),
        latency_p50_ms: mid(rs.map((x) => x.latency_p50_ms)),
        latency_p99_ms: mid(rs.map((x) => x.latency_p99_ms)),
        latency_p99_ms_max: Math.max(...rs.map((x) => x.latency_p99_ms)),
        errors: rs.reduce((n, x) => n + x.errors, 0),
        exit_codes: rs.map((x) => x.exit_code),
        loop_lag_p99_ms_max: Math.max(...rs.map((x) => x.loop_lag_p99_ms_max)),
        mean_batch: mid(rs.map((x) => x.mean_batch)), // each server's whole life, its warm-up included
        compute_busy: mid(rs.map((x) => x.compute_busy)),
        compute_ms_per_image: mid(rs.map((x) => x.compute_ms_per_image)),
        rounds: rs,
      };
    }
    const perRound = results.batched.map((b, r) => +(b.requests_per_s / results.unbatched[r].requests_per_s).toFixed(2));
    out.batched_over_unbatched = mid(perRound);
    out.batched_over_unbatched_per_round = perRound;
    const mean = Math.max(1, Math.round((out.batched as { mean_batch: number }).mean_batch));
    const alone = await modelAlone(checkpoint, [...new Set([mean, 32])].sort((p, q) => p - q));
    out.model_alone = alone;
    // How much of the model's own throughput each server kept (at the batches it formed, and at
    // batch 1): batched_over_unbatched is the model's gain at the mean batch times the first over
    // the second, so with both near 1 it is the model's gain, whatever the server does.
    const rate = (name: 'batched' | 'unbatched') => (out[name] as { requests_per_s: number }).requests_per_s;
    out.server_over_model = {
      batched: +(rate('batched') / alone.images_per_s[`batch_${mean}`]).toFixed(2),
      unbatched: +(rate('unbatched') / alone.images_per_s.batch_1).toFixed(2),
    };
    console.log(JSON.stringify(out));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
