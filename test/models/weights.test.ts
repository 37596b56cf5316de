// Pretrained weights: the registry (torchvision's names, files, hashes, transforms), PyTorch's
// cache folder, and downloads against a local HTTP server on 127.0.0.1 (success, wrong hash,
// truncated body, 404, a server that stalls, an interrupted transfer that is continued, a proxy).
// Nothing here reaches the network.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli';
import { ErrorCode } from '../../lib/errors';
import { StagedFineTuner, resnet, tensor } from '../../lib/index';
import { IMAGENET_CATEGORIES, cachedWeights, downloadVerified, findWeights, listWeights, pullWeights, weightsCacheDir, weightsPath } from '../../lib/models/weights';
import { colourData, readFloats, rejection } from '../helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-weights-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function withEnv<T>(env: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

async function withEnvAsync<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

describe('the weights registry', () => {
  it('holds torchvision\'s ImageNet weights for every ResNet and VGG torch-attn builds', () => {
    const all = listWeights();
    expect(all.map((w) => `${w.arch}.${w.version}`).sort()).toEqual(
      ['resnet18.v1', 'resnet34.v1', 'resnet50.v1', 'resnet50.v2', 'resnet101.v1', 'resnet101.v2', 'resnet152.v1', 'resnet152.v2',
        'vgg11.v1', 'vgg11_bn.v1', 'vgg13.v1', 'vgg13_bn.v1', 'vgg16.v1', 'vgg16_bn.v1', 'vgg19.v1', 'vgg19_bn.v1'].sort(),
    );
    const r18 = findWeights('resnet18');
    expect(r18).toMatchObject({ name: 'ResNet18_Weights.IMAGENET1K_V1', url: 'https://download.pytorch.org/models/resnet18-f37072fd.pth', file: 'resnet18-f37072fd.pth', sha256Prefix: 'f37072fd', numParams: 11689512, numClasses: 1000 });
    expect(r18.transform).toEqual({ resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], interpolation: 'bilinear' });
    expect(findWeights('resnet50.v2')).toMatchObject({ file: 'resnet50-11ad3fa6.pth', transform: { resize: 232, crop: 224 } });
    expect(findWeights('ResNet50_Weights.IMAGENET1K_V2').file).toBe('resnet50-11ad3fa6.pth');
    expect(findWeights('vgg16_bn').file).toBe('vgg16_bn-6c64b313.pth');
    for (const w of all) expect(w.file).toContain(`-${w.sha256Prefix}.`);
    expect(IMAGENET_CATEGORIES).toHaveLength(1000);
    expect([IMAGENET_CATEGORIES[0], IMAGENET_CATEGORIES[207], IMAGENET_CATEGORIES[999]]).toEqual(['tench', 'golden retriever', 'toilet tissue']);
  });

  it('names what is wrong with a name', () => {
    expect(() => findWeights('resnt18')).toThrow(/no pretrained weights named 'resnt18' \(did you mean 'resnet18'\?\)/);
    expect(() => findWeights('resnet18.v2')).toThrow(/resnet18 has no ImageNet weights 'v2'; it has resnet18.v1/);
  });

  it('pull() checks its options before anything else, whether or not the file is cached already', async () => {
    const home = path.join(tmp, 'cached-home');
    const file = withEnv({ TORCH_HOME: home }, () => weightsPath('resnet18'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'cached');
    for (const [options, message] of [
      [{ timeoutMs: -1 }, /pull\(\) options.timeoutMs must be from 1 to 2147483647, got -1/],
      [{ timeoutMs: 2 ** 31 }, /pull\(\) options.timeoutMs must be from 1 to 2147483647/],
      [{ mirror: 5 }, /Expected a URL \(a string\) for pull\(\) options.mirror but received/],
      [{ signal: 'stop' }, /Expected an AbortSignal .* for pull\(\) options.signal/],
      [{ onProgress: true }, /Expected a function for pull\(\) options.onProgress/],
    ] as const) {
      expect((await withEnvAsync({ TORCH_HOME: home }, () => rejection(pullWeights('resnet18', options as never)))).message).toMatch(message);
    }
    expect(await withEnvAsync({ TORCH_HOME: home }, () => pullWeights('resnet18', { timeoutMs: 1000 }))).toBe(file);
  });

  it('lives where PyTorch caches hub checkpoints: TORCH_HOME, XDG_CACHE_HOME, ~/.cache/torch', () => {
    expect(withEnv({ TORCH_HOME: '/x/torch', XDG_CACHE_HOME: '/y' }, weightsCacheDir)).toBe('/x/torch/hub/checkpoints');
    expect(withEnv({ TORCH_HOME: undefined, XDG_CACHE_HOME: '/y' }, weightsCacheDir)).toBe('/y/torch/hub/checkpoints');
    expect(withEnv({ TORCH_HOME: undefined, XDG_CACHE_HOME: undefined }, weightsCacheDir)).toBe(path.join(os.homedir(), '.cache', 'torch', 'hub', 'checkpoints'));
    expect(withEnv({ TORCH_HOME: '/x/torch' }, () => weightsPath('resnet34'))).toBe('/x/torch/hub/checkpoints/resnet34-b627a593.pth');
  });

  it('a missing file is an error with the command, the URL, the file name and the folder, never a download', () => {
    const home = path.join(tmp, 'empty-home');
    const err = withEnv({ TORCH_HOME: home }, () => {
      try {
        cachedWeights('resnet18');
      } catch (e) {
        return e as Error & { code: string };
      }
      throw new Error('expected a throw');
    });
    expect(err.code).toBe(ErrorCode.WEIGHTS);
    expect(err.message).toContain('npx torch-attn weights pull resnet18');
    expect(err.message).toContain('https://download.pytorch.org/models/resnet18-f37072fd.pth');
    expect(err.message).toContain(`named resnet18-f37072fd.pth, in ${path.join(home, 'hub', 'checkpoints')}`);
    expect(fs.existsSync(home)).toBe(false);
  });
});

describe('downloads (a local server on 127.0.0.1)', () => {
  const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
  const sha = createHash('sha256').update(body).digest('hex').slice(0, 8);
  let server: http.Server;
  let base = '';
  const seen: { url: string; range?: string }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url!, range: req.headers.range });
      const route = req.url!.replace(/^http:\/\/[^/]+/, ''); // a proxy sees the absolute URL
      if (route === '/ok.pth' || route === '/bad-hash.pth') {
        const data = route === '/ok.pth' ? body : Buffer.concat([body.subarray(1), Buffer.from([0])]);
        const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        if (m) {
          const start = Number(m[1]);
          res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
          res.end(data.subarray(start));
        } else {
          res.writeHead(200, { 'content-length': data.length });
          res.end(data);
        }
      } else if (route === '/no-range.pth') {
        res.writeHead(200, { 'content-length': body.length }); // ignores Range
        res.end(body);
      } else if (route === '/truncated.pth') {
        // Announces the whole file, sends 100 kB, then drops the connection.
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 100_000), () => res.destroy());
      } else if (route === '/stall.pth') {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 1000)); // then nothing
      } else {
        res.writeHead(404).end('not found');
      }
    });
    server.on('connect', (req, client, head) => {
      seen.push({ url: `CONNECT ${req.url}` });
      const upstream = net.connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const dest = (name: string) => path.join(tmp, 'cache', `${name}-${sha}.pth`);

  it('streams to a temporary file, checks length and SHA-256, then renames (with progress)', async () => {
    const seenProgress: number[] = [];
    const file = await downloadVerified(`${base}/ok.pth`, dest('ok'), sha, { onProgress: (n, total) => (expect(total).toBe(body.length), seenProgress.push(n)) });
    expect(fs.readFileSync(file).equals(body)).toBe(true);
    expect(fs.existsSync(`${file}.partial`)).toBe(false);
    expect(seenProgress.at(-1)).toBe(body.length);
  });

  it('a wrong hash: an error naming both, and nothing left behind', async () => {
    const err = await rejection(downloadVerified(`${base}/bad-hash.pth`, dest('bad'), sha));
    expect((err as Error & { code: string }).code).toBe(ErrorCode.WEIGHTS);
    expect(err.message).toMatch(new RegExp(`SHA-256 is [0-9a-f]{64}, which does not start with ${sha}`));
    expect(fs.readdirSync(path.join(tmp, 'cache')).filter((f) => f.startsWith('bad'))).toEqual([]);
  });

  it('404: the status, the URL and where to place the file by hand', async () => {
    const err = await rejection(downloadVerified(`${base}/missing.pth`, dest('missing'), sha));
    expect(err.message).toMatch(new RegExp(`download ${base}/missing.pth: the server answered 404; download it yourself and place it, named missing-${sha}.pth, in `));
  });

  it('a truncated body is an error; the next call continues it with a Range request and completes', async () => {
    const target = dest('resume');
    const err = await rejection(downloadVerified(`${base}/truncated.pth`, target, sha));
    const got = Number(/(?:was interrupted after|ended after) (\d+)/.exec(err.message)?.[1]);
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThanOrEqual(100_000);
    expect(err.message).toMatch(/run it again to continue/);
    expect(fs.statSync(`${target}.partial`).size).toBe(got);
    expect(fs.existsSync(target)).toBe(false);
    seen.length = 0;
    await downloadVerified(`${base}/ok.pth`, target, sha);
    expect(seen[0].range).toBe(`bytes=${got}-`);
    expect(fs.readFileSync(target).equals(body)).toBe(true);
  });

  it('a server that ignores Range: its whole-file answer replaces the partial file', async () => {
    const target = dest('no-range');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(`${target}.partial`, Buffer.alloc(1234, 9));
    seen.length = 0;
    await downloadVerified(`${base}/no-range.pth`, target, sha);
    expect(seen.map((s) => s.range)).toEqual(['bytes=1234-']);
    expect(fs.readFileSync(target).equals(body)).toBe(true);
    expect(fs.existsSync(`${target}.partial`)).toBe(false);
  });

  it('the file cannot be written: a clear error (the write stream\'s own error, unheard, would end the process); a partial download that is not a file is named', async () => {
    // The partial file's name is a link into a folder that does not exist: opening it fails.
    const target = dest('unwritable');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.symlinkSync(path.join(tmp, 'no-such-folder', 'file'), `${target}.partial`);
    let err = await rejection(downloadVerified(`${base}/ok.pth`, target, sha));
    expect((err as Error & { code: string }).code).toBe(ErrorCode.WEIGHTS);
    expect(err.message).toMatch(/ok\.pth: writing .*unwritable-[0-9a-f]+\.pth\.partial failed after 0 bytes \(ENOENT: .*\); free some space or make the folder writable/);
    expect(fs.existsSync(target)).toBe(false);
    fs.rmSync(`${target}.partial`);
    fs.mkdirSync(`${target}.partial`);
    err = await rejection(downloadVerified(`${base}/ok.pth`, target, sha));
    expect(err.message).toMatch(/the earlier partial download .*\.partial is not a file; remove it and run again/);
  });

  it('an onProgress listener that throws stops the transfer; the call rejects with its error and the partial file stays', async () => {
    const target = dest('listener');
    const err = await rejection(downloadVerified(`${base}/ok.pth`, target, sha, { onProgress: () => { throw new Error('no terminal'); } }));
    expect(err.message).toBe('no terminal');
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.statSync(`${target}.partial`).size).toBeGreaterThan(0);
    await downloadVerified(`${base}/ok.pth`, target, sha);
    expect(fs.readFileSync(target).equals(body)).toBe(true);
  });

  it('a server that stalls times out with a clear error', async () => {
    const err = await rejection(downloadVerified(`${base}/stall.pth`, dest('stall'), sha, { timeoutMs: 500 }));
    expect(err.message).toMatch(/download .*stall.pth was interrupted after 1000 bytes \(.*\); run it again to continue/);
  });

  it('nothing listening: offline, blocked or behind a proxy, and where to place the file', async () => {
    const err = await rejection(downloadVerified('http://127.0.0.1:1/x.pth', dest('offline'), sha, { timeoutMs: 2000 }));
    expect(err.message).toMatch(/failed \(ECONNREFUSED\): offline, blocked or behind a proxy \(set HTTPS_PROXY\)\? download it yourself/);
  });

  it('HTTP_PROXY is honoured, and NO_PROXY bypasses it', async () => {
    seen.length = 0;
    // The test server doubles as the proxy: it opens the CONNECT tunnel to itself, whatever host is asked for.
    const target = 'http://example.invalid/ok.pth';
    await withEnvAsync({ HTTP_PROXY: base, http_proxy: base, NO_PROXY: undefined, no_proxy: undefined }, () => downloadVerified(target, dest('proxied'), sha));
    expect(seen[0].url).toBe('CONNECT example.invalid:80');
    expect(seen[1].url).toBe('/ok.pth');
    seen.length = 0;
    await withEnvAsync({ HTTP_PROXY: 'http://127.0.0.1:1', http_proxy: 'http://127.0.0.1:1', NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' }, () => downloadVerified(`${base}/ok.pth`, dest('direct'), sha));
    expect(seen[0].url).toBe('/ok.pth');
  });
});

// A torchvision-format resnet18-f37072fd.pth made by python3-torchvision from a random model, in a
// temporary TORCH_HOME: the "weights present" paths without a download.
const python = '/usr/bin/python3';
const haveTorchvision = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0;
if (!haveTorchvision) console.warn(`skipped: ImageNet-weights tests need ${python} with torch and torchvision (apt-get install -y python3-torch python3-torchvision)`);

describe.runIf(haveTorchvision)('ImageNet weights from the cache (a stand-in file made by torchvision)', () => {
  const home = path.join(tmp, 'torch-home');
  const root = path.resolve(__dirname, '..', '..');
  beforeAll(() => {
    const run = spawnSync(python, [path.join(root, 'scripts', 'make-imagenet-fixture.py'), home], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`make-imagenet-fixture.py failed:\n${run.stderr}`);
  }, 120_000);

  it("loadBackbone('imagenet') finds torchvision's file in TORCH_HOME; the plain model gives torchvision's logits", async () => {
    const model = resnet({ depth: 18, attention: 'none', stem: 'imagenet', numClasses: 1000 });
    expect(model.hasLearnedWeights).toBe(false);
    const report = await withEnvAsync({ TORCH_HOME: home }, () => model.loadBackbone('imagenet'));
    expect([report.skipped, report.missing]).toEqual([[], []]);
    expect(report.loaded).toHaveLength(122); // every tensor of the file, num_batches_tracked included
    expect(model.hasLearnedWeights).toBe(true);
    model.eval();
    const x = tensor(readFloats(path.join(home, 'input.f32')), [2, 3, 224, 224]);
    const got = (await model.predict(x)).toFloat32Array();
    const want = readFloats(path.join(home, 'logits.f32'));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    expect(worst).toBeLessThan(1e-3);
    // A name the model's architecture has no file for in the cache: the error says how to get it.
    const r50 = resnet({ depth: 50, attention: 'none', stem: 'imagenet', numClasses: 1000 });
    const err = await rejection(withEnvAsync({ TORCH_HOME: home }, () => r50.loadBackbone('imagenet-v2')));
    expect(err.message).toMatch(/ResNet50_Weights.IMAGENET1K_V2 weights \(resnet50\) are not in the cache: run `npx torch-attn weights pull resnet50.v2`/);
  }, 120_000);

  it('a pulled file (served on 127.0.0.1) is checked against its SHA-256 and loads into loadBackbone', async () => {
    const source = fs.readFileSync(path.join(home, 'hub', 'checkpoints', 'resnet18-f37072fd.pth'));
    const prefix = createHash('sha256').update(source).digest('hex').slice(0, 8);
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-length': source.length }).end(source));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/resnet18-${prefix}.pth`;
      const file = await downloadVerified(url, path.join(tmp, 'pulled', `resnet18-${prefix}.pth`), prefix);
      const model = resnet({ depth: 18, attention: 'cbam', stem: 'cifar', numClasses: 10 });
      const report = await model.loadBackbone(file);
      expect(report.loaded.length).toBeGreaterThan(100);
      expect(report.skipped.map((s) => s.name).sort()).toEqual(['conv1.weight', 'fc.bias', 'fc.weight']);
      // The same bytes under a name whose hash they do not have are refused and removed.
      await expect(downloadVerified(url, path.join(tmp, 'pulled', 'resnet18-00000000.pth'), '00000000')).rejects.toThrow(/does not start with 00000000/);
      expect(fs.existsSync(path.join(tmp, 'pulled', 'resnet18-00000000.pth.partial'))).toBe(false);
    } finally {
      server.close();
    }
  }, 120_000);

  it('the CLI: weights list / path, predict --weights imagenet with ImageNet class names', async () => {
    const run = async (...argv: string[]) => {
      let out = '';
      let err = '';
      const code = await withEnvAsync({ TORCH_HOME: home }, () => main(argv, { out: (t) => (out += t), err: (t) => (err += t), isTTY: false }));
      return { code, out, err };
    };
    const list = await run('weights', 'list');
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^resnet18\s+ResNet18_Weights.IMAGENET1K_V1\s+resnet18-f37072fd.pth\s+69.8%\s+cached$/m);
    expect(list.out).toMatch(/^resnet50.v2\s+ResNet50_Weights.IMAGENET1K_V2\s+resnet50-11ad3fa6.pth\s+80.9%\s+-$/m);
    expect((await run('weights', 'path', 'vgg16_bn')).out.trim()).toBe(path.join(home, 'hub', 'checkpoints', 'vgg16_bn-6c64b313.pth'));
    expect((await run('weights', 'pull', 'resnet18')).out).toMatch(/already in the cache/);
    expect((await run('weights', 'fetch', 'resnet18')).err).toMatch(/weights: unknown action 'fetch' \(list, path, pull\)/);
    const flag = await run('weights', 'pull', 'resnet18', '--mirorr', 'http://x');
    expect(flag.code).toBe(2);
    expect(flag.err).toMatch(/weights: Unknown option '--mirorr'/);
    const image = path.join(root, 'test', 'fixtures', 'data', 'folder', 'cat', 'a.png');
    const p = await run('predict', '--weights', 'imagenet', '--model', 'resnet18', '--format', 'json', '--top-k', '2', image);
    expect(p.err).toBe('');
    const [only] = JSON.parse(p.out);
    expect(only.top).toHaveLength(2);
    for (const t of only.top) expect(IMAGENET_CATEGORIES).toContain(t.class);
  }, 120_000);

  it('a stage that freezes a random backbone is warned about; loaded weights silence it', async () => {
    const warnings: string[] = [];
    const fit = (model: ReturnType<typeof resnet>) => new StagedFineTuner(model, { stages: [{ name: 'head', epochs: 1, train: ['head', 'attention'], lr: 1e-3 }], logEvery: 0 })
      .fit(colourData(8), null, { batchSize: 4, onWarning: (m) => warnings.push(m) });
    await fit(resnet({ depth: 18, numClasses: 3 }));
    expect(warnings).toEqual([`the backbone is randomly initialised and frozen in stage 'head': it cannot learn; pass weights (loadBackbone('imagenet'), --weights imagenet), or unfreeze it`]);
    const loaded = resnet({ depth: 18, numClasses: 3 });
    await withEnvAsync({ TORCH_HOME: home }, () => loaded.loadBackbone('imagenet'));
    await fit(loaded);
    expect(warnings).toHaveLength(1);
  }, 120_000);

  it('npm start: with the weights the three-stage recipe runs on them; without, the from-scratch run and the hint', () => {
    const start = (torchHome: string, out: string) =>
      spawnSync(process.execPath, [path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(root, 'scripts', 'main.ts'), '--data', path.join(root, 'test', 'fixtures', 'data'), '--epochs', '1,1,1', '--batch-size', '2', '--workers', '1', '--out', out], {
        encoding: 'utf8',
        env: { ...process.env, TORCH_HOME: torchHome },
        cwd: tmp,
      });
    const withWeights = start(home, path.join(tmp, 'start-a'));
    expect(withWeights.status, withWeights.stderr).toBe(0);
    expect(withWeights.stdout).toMatch(/ImageNet ResNet18 weights found/);
    expect(withWeights.stdout).toMatch(/backbone weights imagenet: 1\d\d tensors loaded/);
    expect(withWeights.stdout).toMatch(/stage 3\/3 'full'/);
    expect(withWeights.stdout).not.toMatch(/warning: the backbone is randomly initialised/);
    const without = spawnSync(process.execPath, [path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(root, 'scripts', 'main.ts'), '--data', path.join(root, 'test', 'fixtures', 'data'), '--epochs', '1', '--batch-size', '2', '--workers', '1', '--out', path.join(tmp, 'start-b')], {
      encoding: 'utf8',
      env: { ...process.env, TORCH_HOME: path.join(tmp, 'no-weights') },
      cwd: tmp,
    });
    expect(without.status, without.stderr).toBe(0);
    expect(without.stdout).toMatch(/no ImageNet ResNet18 weights in .*no-weights\/hub\/checkpoints; `npx torch-attn weights pull resnet18` fetches them/);
    expect(without.stdout).toMatch(/ResNet18-CBAM from scratch, every layer trainable/);
    expect(fs.existsSync(path.join(tmp, 'no-weights'))).toBe(false);
  }, 300_000);
});
