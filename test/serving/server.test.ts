// `torch-attn serve` over real loopback HTTP: predictions (raw body and multipart), per-request
// errors, back-pressure, health, readiness, Prometheus metrics, and a graceful SIGTERM.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { maxHeaderSize } from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { buildInfo, cuda, predictorFromRun, type Predictor } from '../../lib/index';
import { createServer, serve } from '../../lib/serving/server';
import { CLASSES, makeRun } from './helpers';

const FOLDER = path.resolve(__dirname, '..', 'fixtures', 'data', 'folder');
const JPEG = fs.readFileSync(path.join(FOLDER, 'cat', 'b.jpg'));
const PNG = fs.readFileSync(path.join(FOLDER, 'cat', 'a.png'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-serve-'));
let checkpoint = '';
let app: FastifyInstance;
let predictor: Predictor;
let base = '';

beforeAll(async () => {
  checkpoint = await makeRun(path.join(tmp, 'run'));
  ({ predictor } = await predictorFromRun(checkpoint, { maxBatch: 8, maxDelayMs: 10 }));
  app = createServer(predictor, { topK: 3, maxBodyBytes: 64 << 10 });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `fn` against an app of its own over `p` on a free loopback port, then closes it. */
async function served(p: Predictor, fn: (url: string) => Promise<void>): Promise<void> {
  const other = createServer(p, {});
  const url = await other.listen({ host: '127.0.0.1', port: 0 });
  try {
    await fn(url);
  } finally {
    await other.close();
  }
}

const post = (body: Uint8Array | string, type = 'image/jpeg', query = '') =>
  fetch(`${base}/predictions${query}`, { method: 'POST', body, headers: type ? { 'content-type': type } : {} });

describe('torch-attn serve over HTTP', () => {
  it('answers a posted JPEG or PNG with the top-k classes of the run', async () => {
    for (const [bytes, type] of [[JPEG, 'image/jpeg'], [PNG, 'image/png'], [JPEG, 'application/octet-stream']] as const) {
      const res = await post(bytes, type);
      expect(res.status).toBe(200);
      const { predictions } = (await res.json()) as { predictions: { label: string; index: number; probability: number }[] };
      expect(predictions.length).toBe(3);
      expect(predictions[0].label).toBe(CLASSES[predictions[0].index]);
      expect(predictions[0].probability).toBeGreaterThanOrEqual(predictions[1].probability);
    }
    const res = await post(JPEG, 'image/jpeg', '?topk=10');
    const { predictions } = (await res.json()) as { predictions: { probability: number }[] };
    expect(predictions.length).toBe(10);
    expect(predictions.reduce((a, p) => a + p.probability, 0)).toBeCloseTo(1, 5);
  });

  it('a corrupt image gets 400 for its own request while concurrent ones succeed, batched', async () => {
    const before = predictor.stats().batches;
    const bodies = Array.from({ length: 16 }, (_, i) => (i === 5 ? JPEG.subarray(0, 60) : i === 9 ? Buffer.from('not an image at all') : JPEG));
    const answers = await Promise.all(bodies.map((b) => post(b)));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBe(14);
    expect(statuses[5]).toBe(400);
    expect(statuses[9]).toBe(400);
    const bad = (await answers[5].json()) as { error: string; message: string };
    expect(bad.error).toBe('bad_image');
    expect(bad.message).toMatch(/image/);
    expect(predictor.stats().batches - before).toBeLessThan(14);
  });

  it('multipart uploads: one answer per file', async () => {
    const form = new FormData();
    form.append('a', new Blob([JPEG], { type: 'image/jpeg' }), 'b.jpg');
    form.append('b', new Blob([PNG], { type: 'image/png' }), 'a.png');
    const res = await fetch(`${base}/predictions`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: { name: string; predictions: unknown[] }[] };
    expect(results.map((r) => r.name)).toEqual(['b.jpg', 'a.png']);
    expect(results.every((r) => r.predictions.length === 3)).toBe(true);
  });

  it('multipart: the files together are held to the request size limit (413), not only each one', async () => {
    const form = new FormData();
    for (const name of ['a', 'b', 'c']) form.append(name, new Blob([new Uint8Array(30 << 10)], { type: 'image/jpeg' }), `${name}.jpg`);
    const res = await fetch(`${base}/predictions`, { method: 'POST', body: form });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).toBe('too_large');
    expect(body.message).toMatch(/more than this server's limit of 65536 bytes/);
    expect((await post(JPEG)).status).toBe(200);
  });

  it('multipart: a corrupt file that fails while a later one is still arriving gets 400 naming it; the server lives on', async () => {
    // The first file's decoding fails while the server still reads the second, sent a second
    // later: its error must wait for the body's end (unhandled, it would end the process).
    const boundary = 'torchattnboundary';
    const head = (name: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
    const port = Number(new URL(base).port);
    const socket = net.connect(port, '127.0.0.1');
    const answer = new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (d) => {
        text += d;
        if (/\r\n\r\n[\s\S]*\}$/.test(text)) resolve(text);
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
    });
    const chunk = (data: string | Buffer) => socket.write(`${Buffer.byteLength(data).toString(16)}\r\n`) && socket.write(data) && socket.write('\r\n');
    socket.write(`POST /predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    chunk(`${head('broken')}not an image at all\r\n`);
    chunk(Buffer.concat([Buffer.from(head('good')), JPEG.subarray(0, 100)]));
    await new Promise((r) => setTimeout(r, 1000));
    chunk(Buffer.concat([JPEG.subarray(100), Buffer.from(`\r\n--${boundary}--\r\n`)]));
    socket.write('0\r\n\r\n');
    const text = await answer;
    socket.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    const body = JSON.parse(text.slice(text.indexOf('{'))) as { error: string; message: string };
    expect(body.error).toBe('bad_image');
    expect(body.message).toMatch(/^broken\.jpg: not a JPEG or PNG file/);
    expect((await post(JPEG)).status).toBe(200);
  });

  it('a client that sends its request too slowly gets 408 and its connection closed (it held it for ever)', async () => {
    const slow = createServer(predictor, { requestTimeoutMs: 500 });
    const url = await slow.listen({ host: '127.0.0.1', port: 0 });
    try {
      const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
      const started = Date.now();
      const answer = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('error', () => resolve(text));
        socket.on('close', () => resolve(text));
      });
      socket.write(`POST /predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: ${JPEG.length}\r\n\r\n`);
      socket.write(JPEG.subarray(0, 10));  // and nothing more
      const text = await answer;
      expect(text).toMatch(/^HTTP\/1\.1 408/);
      expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('{"error":"timeout","message":"the request was not received within 0.5 s"}');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await fetch(`${url}/predictions`, { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } })).status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('createServer checks its options, naming the one that is wrong', () => {
    expect(() => createServer(predictor, { requestTimeoutMs: -5 })).toThrow(/createServer\(\) options\.requestTimeoutMs/);
    expect(() => createServer(predictor, { requestTimeoutMs: NaN })).toThrow(/requestTimeoutMs/);
    expect(() => createServer(predictor, { maxBodyBytes: 0 })).toThrow(/createServer\(\) options\.maxBodyBytes/);
    expect(() => createServer(predictor, { topK: 1.5 })).toThrow(/createServer\(\) options\.topK/);
    expect(() => createServer(predictor, { topk: 3 } as never)).toThrow(/topk/);
  });

  it('clear 4xx JSON errors: empty body, wrong media type, too large, wrong method or route, bad topk', async () => {
    let res = await post(new Uint8Array(0));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/send an image as the body/);
    res = await post('hello', 'text/plain');
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({ error: 'unsupported_media_type', message: expect.stringMatching(/^Content-Type text\/plain is not accepted: send an image as the body/) });
    res = await post(new Uint8Array(100 << 10));
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'too_large', message: `the request is larger than this server's limit of ${64 << 10} bytes` });
    const many = new FormData();
    for (let i = 0; i < 65; i++) many.append(`f${i}`, new Blob([new Uint8Array(8)], { type: 'image/jpeg' }), `${i}.jpg`); // 65 x 8 bytes: within the byte limit
    res = await fetch(`${base}/predictions`, { method: 'POST', body: many });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'too_large', message: 'a multipart body takes at most 64 files' }); // was 'reach files limit'
    // A malformed multipart body is the client's mistake (it answered 500 'internal')
    for (const [type, body] of [['multipart/form-data', 'abc'], ['multipart/form-data; boundary=xyz', 'garbage--xyz--'], ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="a"; filename="a.jpg"\r\n\r\nhalf']]) {
      res = await post(body, type);
      expect(res.status, body).toBe(400);
      expect(await res.json(), body).toEqual({ error: 'bad_request', message: expect.stringMatching(/^the multipart body is malformed: /) });
    }
    res = await fetch(`${base}/predictions?topk=2`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await res.json()).toEqual({ error: 'method_not_allowed', message: expect.stringMatching(/^GET \/predictions: predictions are POSTed \(send an image/) });
    res = await fetch(`${base}/predict`, { method: 'POST', body: JPEG });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not_found', message: 'no route POST /predict; this server answers POST /predictions, GET /health /ready /metrics' });
    res = await post(JPEG, 'image/jpeg', '?topk=abc');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/topk must be a positive integer/);
    // A media type with parameters is the same type (it answered 415).
    expect((await post(JPEG, 'image/jpeg; charset=binary')).status).toBe(200);
    // Not HTTP at all, or headers over Node's limit: the same JSON shape, from before any route.
    const port = Number(new URL(base).port);
    for (const [request, head, body] of [
      ['GARBAGE\r\n\r\n', 'HTTP/1.1 400 Bad Request', { error: 'bad_request', message: 'the request is not valid HTTP/1.1 (HPE_INVALID_METHOD)' }],
      [`GET /health HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 'HTTP/1.1 431 Request Header Fields Too Large', { error: 'too_large', message: `the request line and headers are larger than this server takes (${maxHeaderSize} bytes)` }],
      ['POST /predictions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', 'HTTP/1.1 400 Bad Request', { error: 'bad_request', message: 'the request is not valid HTTP/1.1 (HPE_INVALID_CONTENT_LENGTH)' }],
    ] as const) {
      const text = await new Promise<string>((resolve) => {
        let got = '';
        const socket = net.connect(port, '127.0.0.1', () => socket.end(request));
        socket.on('data', (d) => (got += d));
        socket.on('close', () => resolve(got));
        socket.on('error', () => resolve(got));
      });
      expect(text.split('\r\n')[0]).toBe(head);
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual(body);
    }
  });

  it('predictorFromRun names a missing checkpoint before looking for its config.json', async () => {
    const missing = path.join(tmp, 'run', 'gone.pth'); // a config.json is beside it
    await expect(predictorFromRun(missing)).rejects.toThrow(`${missing}: file not found`);
    await expect(predictorFromRun(path.join(tmp, 'nowhere', 'best.pth'))).rejects.toThrow(/nowhere.best\.pth: file not found/);
  });

  it('predictorFromRun takes the device the model computes on, its name checked before anything is read', async () => {
    const cpu = await predictorFromRun(checkpoint, { device: 'cpu', maxBatch: 2 });
    try {
      expect(cpu.model.device).toBe('cpu');
      expect(await cpu.predictor.classify(JPEG)).toEqual(await predictor.classify(JPEG));
    } finally {
      await cpu.predictor.close();
    }
    const missing = path.join(tmp, 'nowhere', 'best.pth');
    await expect(predictorFromRun(missing, { device: 'gpu' as never })).rejects.toThrow("predictorFromRun() options.device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'");
    await expect(predictorFromRun(missing, { device: 0 as never })).rejects.toThrow(/predictorFromRun\(\) options.device/);
  });

  it.skipIf(cuda.isAvailable())('predictorFromRun and serve on a GPU this build or machine lacks: the device named, nothing listening', async () => {
    await expect(predictorFromRun(checkpoint, { device: 'cuda' })).rejects.toThrow(/device 'cuda' is not available/);
    await expect(serve({ checkpoint, port: 0, device: 'cuda:1' })).rejects.toThrow(/device 'cuda:1' is not available/);
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });

  it('serve names why it cannot listen and what to change (a port in use, an address not of this machine)', async () => {
    const port = Number(new URL(base).port);
    await expect(serve({ checkpoint, port })).rejects.toMatchObject({
      code: 'EADDRINUSE',
      message: `port ${port} on 127.0.0.1 is already in use (another server?): choose another port, or 0 for any free one`,
    });
    await expect(serve({ checkpoint, host: '192.0.2.1', port: 0 })).rejects.toMatchObject({ code: 'EADDRNOTAVAIL', message: /^192\.0\.2\.1 is not an address of this machine: listen on 127\.0\.0\.1/ });
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });

  it('health, readiness and Prometheus metrics', async () => {
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/torch_attn_requests_total\{route="\/predictions",status="200"\} \d+/);
    expect(text).toMatch(/torch_attn_requests_total\{route="\/predictions",status="400"\} \d+/);
    expect(text).toMatch(/torch_attn_request_duration_seconds_bucket/);
    expect(text).toMatch(/torch_attn_batch_size_mean \d/);
    expect(text).toMatch(/torch_attn_queue_length 0/);
    const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1]);
    // Every answered /predictions request timed once, each taking some time.
    const predictions = [...text.matchAll(/^torch_attn_requests_total\{route="\/predictions",status="\d+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(value('torch_attn_request_duration_seconds_count\\{route="/predictions"\\}')).toBe(predictions);
    expect(value('torch_attn_request_duration_seconds_sum\\{route="/predictions"\\}')).toBeGreaterThan(0);
    expect(value('torch_attn_images_total')).toBeGreaterThanOrEqual(value('torch_attn_batches_total'));
    expect(value('torch_attn_batches_total')).toBeGreaterThan(0);
    for (const name of ['torch_attn_rejected_total', 'torch_attn_aborted_total', 'torch_attn_failed_total']) expect(value(name)).toBe(0);
    // The distributions, batch by batch: every batch's size, every request's wait (one image each here).
    expect([value('torch_attn_batch_size_count'), value('torch_attn_batch_size_sum')]).toEqual([value('torch_attn_batches_total'), value('torch_attn_images_total')]);
    expect(value('torch_attn_queue_wait_seconds_count')).toBe(value('torch_attn_images_total'));
    expect(value('torch_attn_queue_wait_seconds_sum')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^torch_attn_batch_size_bucket\{le="8"\} \d+$/m); // maxBatch 8: buckets 1, 2, 4, 8
    expect(text).toMatch(/^# TYPE torch_attn_queue_wait_seconds histogram$/m);
    // Totals are counters (rate() over them), and only totals are (Prometheus' naming rules).
    const types = [...text.matchAll(/^# TYPE (torch_attn_\w+) (\w+)$/gm)].map(([, name, type]) => [name, type]);
    expect(types.length).toBeGreaterThan(8);
    for (const [name, type] of types) expect([name, type === 'counter']).toEqual([name, name.endsWith('_total')]);
    expect(Number(/^torch_attn_compute_seconds_total ([0-9.e+-]+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    expect(text).toMatch(/nodejs_eventloop_lag_p99_seconds/);
  });

  it('a closed app stops observing its predictor\'s batches; another app on the same predictor counts its own', async () => {
    const count = async (registry: Registry) => Number(/^torch_attn_batch_size_count (\d+)$/m.exec(await registry.getSingleMetricAsString('torch_attn_batch_size'))?.[1]);
    const first = new Registry();
    const other = createServer(predictor, { registry: first });
    const url = await other.listen({ host: '127.0.0.1', port: 0 });
    expect((await fetch(`${url}/predictions`, { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } })).status).toBe(200);
    const counted = await count(first);
    expect(counted).toBeGreaterThanOrEqual(1);
    await other.close();
    expect((await post(JPEG)).status).toBe(200); // through the suite's app, on the same predictor
    expect(await count(first)).toBe(counted);
  });

  it('a run whose eval transform keeps any size: an image of another size than the run\'s gets 400 before the model (it would compute on every pixel)', async () => {
    const run = await makeRun(path.join(tmp, 'no-resize'), 'resnet18', { testTransform: [] });
    const { predictor: p } = await predictorFromRun(run, { maxBatch: 2 });
    expect(p.imageSize).toEqual([32, 32]);
    await served(p, async (url) => {
      const res = await fetch(`${url}/predictions`, { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } }); // 36 x 24
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: 'bad_image', message: 'image: this predictor takes 32 x 32 images, got 24 x 36 after the transform (resize and centerCrop in the transform bring any image to its size)' });
      expect(p.stats().requests).toBe(0);
    });
    // A transform that makes its own size (here smaller than the model's usual 32) is what is served.
    const cropped = await makeRun(path.join(tmp, 'crop-24'), 'resnet18', { testTransform: [{ centerCrop: 24 }] });
    const { predictor: q, model } = await predictorFromRun(cropped, { maxBatch: 2 });
    expect(q.imageSize).toEqual([24, 24]);
    // Its plans are prepared at that size (where this build has plans: not with oneDNN 3.x).
    expect(model.inferencePlan().map((plan) => plan.shape.slice(2))).toEqual(buildInfo().inferencePlans ? [[24, 24], [24, 24]] : []);
    expect((await q.classify(JPEG)).length).toBe(5);
    await q.close();
  });

  it('an upload of more pixels than the server takes gets 400 from its header, before the queue (default 4096 x 4096)', async () => {
    expect(predictor.maxPixels).toBe(4096 * 4096);
    const { predictor: p } = await predictorFromRun(checkpoint, { maxBatch: 2, maxPixels: 500 });
    await served(p, async (url) => {
      const res = await fetch(`${url}/predictions`, { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } }); // 36 x 24
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: 'bad_image', message: 'image: 36 x 24 is 864 pixels, more than the 500 this decoder takes (maxPixels)' });
      expect(p.stats().requests).toBe(0);
      expect((await fetch(`${url}/predictions`, { method: 'POST', body: PNG, headers: { 'content-type': 'image/png' } })).status).toBe(200); // 17 x 13
    });
    await p.close();
  });

  it('a full queue answers 503 with Retry-After', async () => {
    const { predictor: slow } = await predictorFromRun(checkpoint, { maxBatch: 64, maxDelayMs: 300, maxQueue: 2 });
    await served(slow, async (url) => {
      const answers = await Promise.all(Array.from({ length: 4 }, () => fetch(`${url}/predictions`, { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } })));
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 200, 503, 503]);
      const refused = answers.find((r) => r.status === 503)!;
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { error: string }).error).toBe('overloaded');
    });
  });

  it('a multipart request whose body fails part-way takes its queued images out of the queue', async () => {
    const { predictor: slow } = await predictorFromRun(checkpoint, { maxBatch: 64, maxDelayMs: 2_000 });
    const small = createServer(slow, {});
    const url = await small.listen({ host: '127.0.0.1', port: 0 });
    const queued = async (n: number) => {
      for (let waited = 0; slow.stats().queueLength !== n; waited += 5) {
        if (waited > 10_000) throw new Error(`the queue never held ${n} (it holds ${slow.stats().queueLength})`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    try {
      // A good file queued, then the body ends part-way through the next: the good file leaves
      // with the failed request.
      const part = `--xyz\r\nContent-Disposition: form-data; name="a"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
      const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
      const client = net.connect(Number(new URL(url).port), '127.0.0.1');
      const answer = new Promise<string>((resolve) => {
        let text = '';
        client.on('data', (d) => (text += d));
        client.on('end', () => resolve(text));
        client.on('error', () => resolve(text));
      });
      client.write('POST /predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n');
      client.write(chunk(Buffer.concat([Buffer.from(part), JPEG, Buffer.from(`\r\n${part}half`)])));
      await queued(1);
      client.write('0\r\n\r\n');
      expect(await answer).toMatch(/^HTTP\/1\.1 400[^]*the multipart body is malformed/);
      expect(slow.stats()).toMatchObject({ aborted: 1, batches: 0, queueLength: 0 });
    } finally {
      await small.close();
    }
  });

  it('the CLI server finishes requests in flight on SIGTERM and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'serve-child.ts'), 'serve', '--checkpoint', checkpoint, '--port', '0', '--max-delay-ms', '500', '--max-pixels', '1000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // What it serves, --max-pixels taken (the JPEG below has 864).
    expect(stderr).toMatch(/\(max batch 32, max delay 500 ms, fp32, images 32 x 32, uploads up to 1,000 pixels\)/);
    const inFlight = Array.from({ length: 6 }, () => fetch(`${url}/predictions`, { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } }));
    // SIGTERM once all six wait in the batcher (they wait up to 500 ms for more): a request that
    // had not yet arrived would rightly be refused (503), which is not what this test is about.
    for (let waited = 0; !/torch_attn_queue_length 6\b/.test(await (await fetch(`${url}/metrics`)).text()); waited += 10) {
      if (waited > 20_000) throw new Error('the six requests never reached the batcher');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGTERM');
    const statuses = (await Promise.all(inFlight)).map((r) => r.status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM: finishing requests in flight/);
  });
});
