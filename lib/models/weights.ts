// Pretrained weights by name: torchvision's ImageNet checkpoints for the backbones torch-attn
// builds (weights-registry.json, written from Debian's python3-torchvision by
// scripts/make-weights-registry.py), kept where PyTorch keeps them ($TORCH_HOME/hub/checkpoints,
// the same file names), so a file either of them fetched serves both. Nothing is ever downloaded
// unless pull() is called (`torch-attn weights pull resnet18`).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EnvHttpProxyAgent, interceptors, request } from 'undici';
import { ErrorCode, codedError } from '../errors';
import * as validate from '../validate';
import registry from './weights-registry.json';

export interface PretrainedWeights {
  /** The backbone: resnet18 ... resnet152, vgg11 ... vgg19, vgg11_bn ... vgg19_bn. */
  arch: string;
  /** torchvision's name, e.g. 'ResNet50_Weights.IMAGENET1K_V2'. */
  name: string;
  version: 'v1' | 'v2';
  url: string;
  /** The cached file's name (torch.hub's: the URL's last part). */
  file: string;
  /** The start of the file's SHA-256, as torchvision puts it in the file name. */
  sha256Prefix: string;
  numParams: number;
  numClasses: number;
  /** ImageNet top-1 / top-5 (%) as torchvision reports them. */
  acc1: number;
  acc5: number;
  /** The eval transform: resize the shorter side, center-crop, normalise. */
  transform: { resize: number; crop: number; mean: number[]; std: number[]; interpolation: 'bilinear' };
  /** torchvision's DEFAULT for the architecture. */
  default: boolean;
}

const ENTRIES = registry.weights as PretrainedWeights[];
/** The 1000 ImageNet class names, in the order of the weights' outputs. */
export const IMAGENET_CATEGORIES: readonly string[] = Object.freeze(registry.categories);

/** Where PyTorch caches hub checkpoints: $TORCH_HOME/hub/checkpoints, TORCH_HOME defaulting to
 *  $XDG_CACHE_HOME/torch, else ~/.cache/torch (torch.hub.get_dir()). */
export function weightsCacheDir(): string {
  const torchHome = process.env.TORCH_HOME || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'torch');
  return path.join(torchHome, 'hub', 'checkpoints');
}

/**
 * The weights a name means: 'resnet18' (its ImageNet V1 weights, what torchvision's
 * `pretrained=True` loads), 'resnet50.v2', or torchvision's 'ResNet50_Weights.IMAGENET1K_V2'.
 */
export function findWeights(name: string): PretrainedWeights {
  if (typeof name !== 'string' || name === '') throw validate.typeError('weights name', `one of ${ENTRIES.map((e) => e.arch).filter((a, i, all) => all.indexOf(a) === i).join(', ')}`, name);
  const [arch, version = 'v1'] = name.toLowerCase().split('.');
  const hit = ENTRIES.find((e) => e.name.toLowerCase() === name.toLowerCase()) ?? ENTRIES.find((e) => e.arch === arch && e.version === version);
  if (hit) return hit;
  const archs = [...new Set(ENTRIES.map((e) => e.arch))];
  if (archs.includes(arch)) {
    throw new RangeError(`${arch} has no ImageNet weights '${version}'; it has ${ENTRIES.filter((e) => e.arch === arch).map((e) => `${e.arch}.${e.version}`).join(', ')}`);
  }
  throw new RangeError(`no pretrained weights named '${name}'${validate.didYouMean(arch, archs)}; known: ${archs.join(', ')} (add .v2 for the V2 weights where they exist)`);
}

/** Every registered weights file. */
export function listWeights(): PretrainedWeights[] {
  return ENTRIES.map((e) => ({ ...e }));
}

/** The path a weights file has in the cache (whether or not it is there). */
export function weightsPath(name: string): string {
  return path.join(weightsCacheDir(), findWeights(name).file);
}

/** The cached file, or an error that says how to get it (never a download). */
export function cachedWeights(name: string): string {
  const w = findWeights(name);
  const file = path.join(weightsCacheDir(), w.file);
  if (fs.existsSync(file)) return file;
  throw codedError(
    ErrorCode.WEIGHTS,
    `the ${w.name} weights (${w.arch}) are not in the cache: run \`npx torch-attn weights pull ${w.arch}${w.version === 'v1' ? '' : `.${w.version}`}\`, ` +
      `or download ${w.url} yourself and place it, named ${w.file}, in ${weightsCacheDir()} (PyTorch's cache: TORCH_HOME)`,
  );
}

export interface DownloadOptions {
  /** Bytes received so far, and the total when the server says it. One that throws stops the
   *  transfer (the partial file stays, for the next call to continue) and the call rejects with
   *  its error. */
  onProgress?: (received: number, total: number | null) => void;
  signal?: AbortSignal;
  /** Longest wait for the server's headers or between two chunks of the body; default 30 s. */
  timeoutMs?: number;
  /** A mirror to fetch from instead of download.pytorch.org: the file name is appended to it. */
  mirror?: string;
}

/** Downloads a registered weights file into the cache (a cached file is returned as it is). */
export async function pullWeights(name: string, options: DownloadOptions = {}): Promise<string> {
  const w = findWeights(name);
  // Checked first: a bad option is an error whether or not the file is cached already.
  const o = validate.options(options, 'pull() options', ['onProgress', 'signal', 'timeoutMs', 'mirror']);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw validate.typeError('pull() options.onProgress', 'a function', o.onProgress);
  validate.abortSignal(o.signal, 'pull() options.signal');
  if (o.timeoutMs !== undefined) validate.integer(o.timeoutMs, 'pull() options.timeoutMs', 1, validate.MAX_TIMER_MS);
  if (o.mirror !== undefined && typeof o.mirror !== 'string') throw validate.typeError('pull() options.mirror', 'a URL (a string)', o.mirror);
  const dest = path.join(weightsCacheDir(), w.file);
  if (fs.existsSync(dest)) return dest;
  const url = o.mirror ? `${o.mirror.replace(/\/+$/, '')}/${w.file}` : w.url;
  return downloadVerified(url, dest, w.sha256Prefix, o);
}

/**
 * Streams `url` to `<dest>.partial` while hashing it, checks the length the server announced and
 * that the SHA-256 starts with `sha256Prefix`, then renames it to `dest` (atomic: `dest` is whole
 * or absent). An interrupted transfer leaves the .partial file, and the next call continues it
 * with a Range request (or rewrites it from the start when the server ignores ranges); a wrong hash removes it.
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured.
 */
export async function downloadVerified(url: string, dest: string, sha256Prefix: string, options: DownloadOptions = {}): Promise<string> {
  const timeout = options.timeoutMs ?? 30_000;
  const partial = `${dest}.partial`;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  let hash = createHash('sha256');
  let have = 0;
  const where = `download ${url}`;
  if (fs.existsSync(partial)) {
    // Continue an interrupted transfer: the bytes already there count towards the hash.
    if (!fs.statSync(partial).isFile()) {
      throw codedError(ErrorCode.WEIGHTS, `${where}: the earlier partial download ${partial} is not a file; remove it and run again`);
    }
    try {
      for await (const chunk of fs.createReadStream(partial)) {
        hash.update(chunk as Buffer);
        have += (chunk as Buffer).length;
      }
    } catch (err) {
      throw codedError(ErrorCode.WEIGHTS, `${where}: cannot read the earlier partial download ${partial} (${(err as Error).message}); remove it and run again`);
    }
  }
  const manual = `download it yourself and place it, named ${path.basename(dest)}, in ${path.dirname(dest)}`;
  const agent = new EnvHttpProxyAgent({ headersTimeout: timeout, bodyTimeout: timeout, connectTimeout: timeout });
  const dispatcher = agent.compose(interceptors.redirect({ maxRedirections: 5 }));
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, { dispatcher, signal: options.signal, headers: have > 0 ? { range: `bytes=${have}-` } : {} });
  } catch (err) {
    await agent.close().catch(() => {});
    if ((err as Error).name === 'AbortError') throw err;
    throw codedError(ErrorCode.WEIGHTS, `${where} failed (${describeNetworkError(err)}): offline, blocked or behind a proxy (set HTTPS_PROXY)? ${manual}`);
  }
  try {
    if (res.statusCode === 416 && have > 0) {
      // The partial file is already complete (or longer than the file): check it as it is.
      await res.body.dump();
    } else if (res.statusCode !== 200 && res.statusCode !== 206) {
      await res.body.dump();
      throw codedError(ErrorCode.WEIGHTS, `${where}: the server answered ${res.statusCode}; ${manual}`);
    } else {
      if (res.statusCode === 200 && have > 0) {
        // The server ignored the range: this body is the whole file, written from the start.
        hash = createHash('sha256');
        have = 0;
      }
      const length = Number(res.headers['content-length']);
      const total = res.statusCode === 206 ? Number(/\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))?.[1]) : length;
      // The file's own errors (a full disk, a folder that cannot be written) are listened for:
      // a write stream's 'error' event, unheard, would end the process. Either side failing
      // stops the transfer, and the file is closed before anything is said about it.
      const out = fs.createWriteStream(partial, { flags: have > 0 ? 'a' : 'w' });
      let fileError: Error | undefined;
      out.on('error', (err) => (fileError ??= err));
      const drainedOrFailed = () =>
        new Promise<void>((resolve) => {
          const done = () => {
            out.off('drain', done);
            out.off('error', done);
            resolve();
          };
          out.on('drain', done);
          out.on('error', done);
        });
      let networkError: unknown;
      let listenerError: { err: unknown } | undefined;  // onProgress threw: the transfer stops, and the call rejects with it
      try {
        for await (const chunk of res.body) {
          if (fileError) break;
          hash.update(chunk as Buffer);
          have += (chunk as Buffer).length;
          if (!out.write(chunk) && !fileError) await drainedOrFailed();
          try {
            options.onProgress?.(have, Number.isFinite(total) ? total : null);
          } catch (err) {
            listenerError = { err };
            break;
          }
        }
      } catch (err) {
        networkError = err;
      }
      if (!out.destroyed) await new Promise<void>((resolve) => out.end(() => resolve()));
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      if (listenerError) throw listenerError.err;
      if (fileError || networkError !== undefined) {
        // What the next call continues from: the bytes that reached the file.
        const st = fs.statSync(partial, { throwIfNoEntry: false });
        const kept = st?.isFile() ? st.size : 0;
        if (fileError) {
          throw codedError(ErrorCode.WEIGHTS, `${where}: writing ${partial} failed after ${kept} bytes (${fileError.message}); free some space or make the folder writable, then run it again`);
        }
        if ((networkError as Error).name === 'AbortError') throw networkError;
        throw codedError(ErrorCode.WEIGHTS, `${where} was interrupted after ${kept} bytes (${describeNetworkError(networkError)}); run it again to continue`);
      }
      if (Number.isFinite(total) && have !== total) {
        throw codedError(ErrorCode.WEIGHTS, `${where} ended after ${have} of ${total} bytes; run it again to continue`);
      }
    }
  } finally {
    await agent.close().catch(() => {});
  }
  const digest = hash.digest('hex');
  if (!digest.startsWith(sha256Prefix)) {
    fs.rmSync(partial, { force: true });
    throw codedError(ErrorCode.WEIGHTS, `${where}: the file's SHA-256 is ${digest}, which does not start with ${sha256Prefix} as its name says; it was removed (a corrupted transfer or a different file)`);
  }
  fs.renameSync(partial, dest);
  return dest;
}

function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** Pretrained weights by name, in PyTorch's cache: `pretrained.pull('resnet18')` (the only call
 *  that downloads), `pretrained.cached('resnet18')`, `model.loadBackbone('imagenet')`. */
export const pretrained = {
  list: listWeights,
  find: findWeights,
  cacheDir: weightsCacheDir,
  path: weightsPath,
  cached: cachedWeights,
  pull: pullWeights,
  /** The 1000 ImageNet class names, in the order of the weights' outputs. */
  categories: IMAGENET_CATEGORIES,
};
