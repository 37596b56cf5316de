// `torch-attn serve`: a run's checkpoint behind HTTP (fastify), predictions through the dynamic
// batcher, Prometheus metrics (prom-client), health and readiness, graceful shutdown.
import { STATUS_CODES, maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCode } from '../errors';
import * as validate from '../validate';
import type { Precision } from '../precision';
import type { Device } from '../tensor/tensor';
import { observeBatches, type Classification, type Predictor } from './predictor';
import { predictorFromRun, preparedBatchSizes } from './run';

export interface ServeOptions {
  checkpoint: string;
  config?: string;
  host?: string;
  port?: number;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  precision?: Precision;
  /** Where the model computes: 'cpu' (default), 'cuda' or 'cuda:N' (RunPredictorOptions.device). */
  device?: Device;
  /** Classes per image in answers unless the request asks (?topk=N); default 5. */
  topK?: number;
  /** Largest request body; default 10 MiB. */
  maxBodyBytes?: number;
  /** Most pixels of an uploaded image, refused from its header (400); default 4096 x 4096. */
  maxPixels?: number;
  /** Longest a client may take to send a whole request (headers and body), in ms; then 408 and
   *  the connection closes. Default 30 s (0: no limit, for a server behind a proxy that has one). */
  requestTimeoutMs?: number;
  log?: (line: string) => void;
}

/** How often Node's event-loop delay sampler (behind prom-client's `nodejs_eventloop_lag_*`
 *  gauges) fires, in ms. The sampler is a timer: what it records is the time between its ticks, so
 *  an idle loop reads about this much (nodejs/node#62935: "an implicit floor of resolution ms") and
 *  the delay itself is a reading less this. */
export const EVENT_LOOP_SAMPLE_MS = 10;

/** The media types of an image body, with any parameters (`image/jpeg; charset=binary`, as some
 *  clients send: they answered 415). */
const IMAGE_TYPES = /^(image\/[a-z0-9.+-]+|application\/octet-stream)\s*(;.*)?$/i;
/** What a request may send, and where: named by every error that turns one away. */
const SEND_AN_IMAGE = 'send an image as the body (Content-Type image/jpeg, image/png or application/octet-stream) or as multipart/form-data';
const ROUTES = 'POST /predictions, GET /health /ready /metrics';
const MULTIPART_FILES = 64;
const MULTIPART_FIELDS = 16;

/** A fastify app with the prediction routes over `predictor` (not listening yet). */
export function createServer(
  predictor: Predictor,
  options: { topK?: number; maxBodyBytes?: number; requestTimeoutMs?: number; ready?: () => boolean; registry?: Registry } = {},
): FastifyInstance {
  const o = validate.options(options, 'createServer() options', ['topK', 'maxBodyBytes', 'requestTimeoutMs', 'ready', 'registry']);
  const maxBody = o.maxBodyBytes === undefined ? 10 << 20 : validate.integer(o.maxBodyBytes, 'createServer() options.maxBodyBytes', 1);
  const defaultTopK = o.topK === undefined ? 5 : validate.integer(o.topK, 'createServer() options.topK', 1);
  // A client that sends its request slowly (a byte at a time) would otherwise hold its connection,
  // and its share of memory, for ever: fastify sets no request timeout of its own. Node checks
  // the timeout on an interval (30 s by default), here a quarter of it; its headers timeout (60 s)
  // must not exceed it (Node then takes the smaller of the two for the headers and the larger
  // for the whole request).
  const requestTimeout = o.requestTimeoutMs === undefined ? 30_000 : validate.integer(o.requestTimeoutMs, 'createServer() options.requestTimeoutMs', 0, validate.MAX_TIMER_MS);
  const app = Fastify({
    clientErrorHandler: clientError(requestTimeout),
    bodyLimit: maxBody,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestTimeout,
    http:
      requestTimeout > 0
        ? { headersTimeout: Math.min(60_000, requestTimeout), connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(requestTimeout / 4))) }
        : null,
  });
  const registry = o.registry ?? new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const requests = new Counter({ name: 'torch_attn_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'torch_attn_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const stats = () => predictor.stats();
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  // The predictor's running totals, read at each scrape: counters (TYPE counter, for rate()).
  const total = (name: string, help: string, read: () => number) =>
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  gauge('torch_attn_queue_length', 'Requests waiting for a batch', () => stats().queueLength);
  total('torch_attn_batches_total', 'Forward passes run', () => stats().batches);
  total('torch_attn_images_total', 'Images through forward passes (over torch_attn_batches_total: the mean batch over any window)', () => stats().images);
  gauge('torch_attn_batch_size_mean', 'Images per forward pass, on average since the start', () => stats().meanBatchSize);
  gauge('torch_attn_queue_wait_ms_mean', 'Wait for a batch, on average since the start (ms)', () => stats().meanQueueWaitMs);
  total(
    'torch_attn_compute_seconds_total',
    'Time batches were running (forward passes); its rate is the share of time the model computes (near 1: saturated)',
    () => stats().computeMs / 1000,
  );
  total('torch_attn_rejected_total', 'Requests refused because the queue was full', () => stats().rejected);
  total('torch_attn_aborted_total', 'Requests taken out of the queue before their batch (a multipart request that failed part-way)', () => stats().aborted);
  total('torch_attn_failed_total', 'Requests whose forward pass failed', () => stats().failed);
  // Each batch as it ends: the distributions behind the two means above (batch sizes bucketed as
  // the plans are prepared: 1, 2, 4, ... up to the largest).
  const batchSizes = new Histogram({
    name: 'torch_attn_batch_size',
    help: 'Images per forward pass',
    buckets: preparedBatchSizes(predictor.maxBatch),
    registers: [registry],
  });
  const queueWaits = new Histogram({
    name: 'torch_attn_queue_wait_seconds',
    help: "A request's wait for its batch (arrival to the batch's start)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const unobserve = observeBatches(predictor, (batch) => {
    batchSizes.observe(batch.images);
    for (const ms of batch.waitsMs) queueWaits.observe(ms / 1000);
  });

  // Closing: answers in flight end their connection (Connection: close), so that keep-alive
  // clients do not hold the server open after the last response.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onClose', async () => unobserve());
  app.addHook('onSend', async (_req, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  // A request's latency: fastify's own clock, from routing to the response's last byte (ms).
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    requests.inc({ route, status: String(reply.statusCode) });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer', bodyLimit: maxBody }, (_req, body, done) => done(null, body));
  void app.register(multipart, { limits: { fileSize: maxBody, files: MULTIPART_FILES, fields: MULTIPART_FIELDS } });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const { status, error, message } = httpError(err, maxBody, req.headers['content-type']);
    if (status === 503) void reply.header('retry-after', '1');
    void reply.status(status).send({ error, message });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    if (path === '/predictions') return reply.status(405).header('allow', 'POST').send({ error: 'method_not_allowed', message: `${req.method} ${path}: predictions are POSTed (${SEND_AN_IMAGE})` });
    return reply.status(404).send({ error: 'not_found', message: `no route ${req.method} ${path}; this server answers ${ROUTES}` });
  });

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const ok = o.ready?.() ?? true;
    return reply.status(ok ? 200 : 503).send({ ready: ok });
  });
  app.get('/metrics', async (_req, reply) => reply.header('content-type', registry.contentType).send(await registry.metrics()));

  app.post('/predictions', async (req: FastifyRequest<{ Querystring: { topk?: string } }>, reply: FastifyReply) => {
    const topK = req.query.topk === undefined ? defaultTopK : Number(req.query.topk);
    if (!Number.isInteger(topK) || topK < 1) return reply.status(400).send({ error: 'bad_request', message: `topk must be a positive integer, got '${req.query.topk}'` });
    if (req.isMultipart()) {
      // A multipart request that fails part-way (its body cut short or over a limit, one of its
      // images bad) takes its images still queued out of the queue: its answer is that error.
      // (Not done for a client that goes away: a signal and a 'close' listener on every request
      // made the server's RSS grow for 25 s instead of 5 under bench-serve's load.)
      const abandon = new AbortController();
      const signal = abandon.signal;
      // Each file is classified as soon as it has arrived, while later ones are still being read;
      // a failure is kept (every promise handled at once: one rejecting while the loop still awaits
      // a slow part must not go unhandled, which would end the process) and answered after the
      // body has been read and the others have settled.
      const results: { name: string; predictions: Classification[] }[] = [];
      const pending: Promise<void>[] = [];
      let failure: { err: unknown } | undefined;
      let received = 0;
      try {
        for await (const part of req.parts()) {
          if (part.type !== 'file') continue;
          const bytes = await part.toBuffer();
          // The request's files together within the same limit as a raw body (each is checked
          // as it arrives, so at most one more file is held).
          received += bytes.length;
          if (received > maxBody) {
            throw Object.assign(new Error(`the multipart body's files come to more than this server's limit of ${maxBody} bytes`), { statusCode: 413 });
          }
          const entry = { name: part.filename, predictions: [] as Classification[] };
          results.push(entry);
          pending.push(
            predictor.classify(bytes, { topK, signal, name: part.filename || `file ${results.length}` }).then(
              (p) => void (entry.predictions = p),
              (err: unknown) => {
                failure ??= { err };
                abandon.abort(err); // the answer is this error: the request's other images leave the queue
              },
            ),
          );
        }
      } catch (err) {
        const answer = malformed(err);
        abandon.abort(answer);
        throw answer;
      } finally {
        // Answered only once its images have left the model or the queue.
        await Promise.all(pending);
      }
      if (failure) throw failure.err;
      if (results.length === 0) return reply.status(400).send({ error: 'bad_request', message: 'the multipart body has no file' });
      return { results };
    }
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) {
      return reply.status(400).send({ error: 'bad_request', message: SEND_AN_IMAGE });
    }
    return { predictions: await predictor.classify(body, { topK }) };
  });
  return app;
}

/** A client's malformed multipart body (busboy's errors carry no status; they answered 500):
 *  400, naming what was wrong. Errors with a status or a code (a file over the limit: 413, the
 *  body's own 413 above) pass as they are. */
function malformed(err: unknown): unknown {
  const e = err as Error & { statusCode?: number; code?: string };
  if (e instanceof Error && e.statusCode === undefined && e.code === undefined) {
    return Object.assign(new Error(`the multipart body is malformed: ${e.message}`), { statusCode: 400 });
  }
  return err;
}

/** A failed request's answer: status, error name and a message naming what was wrong, where
 *  fastify's or its multipart plugin's own say too little ('Request body is too large', 'reach
 *  files limit', 'Unsupported Media Type'). */
function httpError(err: Error & { code?: string; statusCode?: number }, maxBody: number, contentType: string | undefined): { status: number; error: string; message: string } {
  switch (err.code) {
    case ErrorCode.DATA:
      return { status: 400, error: 'bad_image', message: err.message };
    case ErrorCode.OVERLOADED:
    case ErrorCode.BUSY:
      return { status: 503, error: 'overloaded', message: err.message };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return { status: 413, error: 'too_large', message: `the request is larger than this server's limit of ${maxBody} bytes` };
    case 'FST_FILES_LIMIT':
      return { status: 413, error: 'too_large', message: `a multipart body takes at most ${MULTIPART_FILES} files` };
    case 'FST_FIELDS_LIMIT':
      return { status: 413, error: 'too_large', message: `a multipart body takes at most ${MULTIPART_FIELDS} fields besides its files` };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, error: 'unsupported_media_type', message: `Content-Type ${contentType ?? '(none)'} is not accepted: ${SEND_AN_IMAGE}` };
    default:
      if (err.statusCode === 413) return { status: 413, error: 'too_large', message: err.message };
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return { status: err.statusCode, error: 'bad_request', message: err.message };
      return { status: 500, error: 'internal', message: err.message };
  }
}

/** What a request that is not HTTP gets before any route sees it (a malformed request line or
 *  header, headers over Node's limit, a request not received in time): the routes' JSON shape
 *  `{ error, message }` instead of fastify's own ('Client Error'), then the connection closes. */
function clientError(requestTimeoutMs: number): (err: Error & { code?: string }, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, error, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'timeout', `the request was not received within ${requestTimeoutMs / 1000} s`]
      : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'too_large', `the request line and headers are larger than this server takes (${maxHeaderSize} bytes)`]
      : [400, 'bad_request', `the request is not valid HTTP/1.1 (${err.code ?? err.message})`];
    const body = JSON.stringify({ error, message });
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy();
  };
}

/** Why the server could not listen, in words that say what to change ('listen EADDRINUSE:
 *  address already in use 127.0.0.1:8080' said what, not what to do); the system's code kept. */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as { code?: string }).code;
  const message =
    code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use (another server?): choose another port, or 0 for any free one`
    : code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine: listen on 127.0.0.1 (this machine only), 0.0.0.0 (every IPv4 interface) or one of its own addresses`
    : code === 'EACCES' ? `listening on port ${port} needs privileges here: choose a port from 1024 up`
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `host '${host}' could not be resolved to an address of this machine`
    : undefined;
  return message === undefined ? err : Object.assign(new Error(message, { cause: err }), { code });
}

/**
 * Loads the run, listens, and serves until SIGTERM or SIGINT: then it stops accepting, finishes
 * the requests in flight and the batches queued, and resolves.
 */
export async function serve(options: ServeOptions): Promise<void> {
  const log = options.log ?? (() => {});
  let ready = false;
  const { model, predictor } = await predictorFromRun(options.checkpoint, {
    config: options.config,
    maxBatch: options.maxBatch,
    maxDelayMs: options.maxDelayMs,
    maxQueue: options.maxQueue,
    precision: options.precision,
    maxPixels: options.maxPixels,
    device: options.device,
  });
  const app = createServer(predictor, { topK: options.topK, maxBodyBytes: options.maxBodyBytes, requestTimeoutMs: options.requestTimeoutMs, ready: () => ready });
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (err) {
    await app.close();
    await predictor.close();
    throw listenError(err, host, port);
  }
  ready = true;
  const size = predictor.imageSize === undefined ? 'any size' : predictor.imageSize.join(' x ');
  const pixels = predictor.maxPixels === undefined ? '' : `, uploads up to ${predictor.maxPixels.toLocaleString('en-US')} pixels`;
  log(`${model.description} on ${address} (max batch ${predictor.maxBatch}, max delay ${predictor.maxDelayMs} ms, ${predictor.precision}${model.device === 'cpu' ? '' : ` on ${model.device}`}, images ${size}${pixels}): ${ROUTES}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.removeListener('SIGTERM', onTerm);
      process.removeListener('SIGINT', onInt);
      ready = false;
      log(`${signal}: finishing requests in flight`);
      void app
        .close()
        .then(() => predictor.close())
        .then(resolve);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}
