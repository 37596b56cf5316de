// The command line as people use it: names, quiet runs, devices, default schedules per
// architecture, image-folder splits, predict on any checkpoint with unreadable images, compare,
// summary with MACs, colour only on a terminal, and doctor without the addon.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main, paint } from '../../lib/cli';
import { trainConfig } from '../../lib/cli/commands';
import { checkConfig } from '../../lib/runs/config';
import { runTraining } from '../../lib/runs/train';
import { cuda, getNumThreads, setNumThreads, vgg, resnet } from '../../lib/index';
import { cliBuilt, inkShare, interruptedCli } from '../helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-cli-people-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const fixtures = path.join(__dirname, '..', 'fixtures', 'data');
const root = path.join(__dirname, '..', '..');

async function run(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), isTTY: false });
  return { code, out, err };
}

/** A folder of class folders copied from the fixture images. */
function classFolders(dir: string) {
  for (const [cls, files] of [['cat', ['a.png', 'b.jpg']], ['dog', ['d.png', 'e.png']]] as const) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (const f of files) fs.copyFileSync(path.join(fixtures, 'folder', cls, f), path.join(dir, cls, f));
  }
}


describe('torch-attn CLI for people', () => {
  it('--name names the run and its folder; --quiet prints warnings and the result only; pictures and PNG copies', async () => {
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      const r = await run('train', '--model', 'cbamcnn', '--data', path.join(fixtures, 'cifar-10-batches-py'), '--epochs', '1', '--batch-size', '2', '--workers', '1', '--name', 'tiny', '--quiet', '--set', 'logEvery=1');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).not.toMatch(/epoch {3}1|Epoch 1\/1|stage 1\/1|schedule:/);
      expect(r.out).toMatch(/^best epoch 1/m);
      expect(r.out).toMatch(/report: .*runs\/tiny\/report.html/);
      const dir = path.join(tmp, 'runs', 'tiny');
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).name).toBe('tiny');
      const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
      expect(Date.parse(info.finished)).toBeGreaterThanOrEqual(Date.parse(info.started));
      expect(info.host.cores).toBeGreaterThan(0);
      // Every figure as SVG and PNG, each PNG with something drawn in it; the report inlines the
      // pictures (test images, the most confidently wrong, each CBAM's spatial map over the images).
      for (const name of ['loss', 'top1', 'lr', 'batches', 'confusion', 'pr', 'samples', 'wrong', 'attention']) {
        expect(fs.existsSync(path.join(dir, 'plots', `${name}.svg`)), name).toBe(true);
        expect(inkShare(path.join(dir, 'plots', `${name}.png`)), name).toBeGreaterThan(0.01);
      }
      const attention = fs.readFileSync(path.join(dir, 'plots', 'attention.svg'), 'utf8');
      for (const m of ['cbam1', 'cbam2', 'cbam3']) expect(attention).toContain(`>${m}<`);
      expect((attention.match(/<image /g) ?? []).length).toBe(2 * (1 + 2 * 3)); // 2 test images: the image, then image + map per module
      const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
      expect(html).toContain(attention.trim());
      expect(html).toMatch(/started \d{4}-\d\d-\d\dT/);
      expect(html).not.toMatch(/<script|<link|src="http/);
    } finally {
      process.chdir(cwd);
    }
  }, 120_000);

  it.runIf(!cuda.isAvailable())('--device cuda without a GPU: a clear error and no run directory', async () => {
    const out = path.join(tmp, 'gpu');
    const r = await run('train', '--data', path.join(fixtures, 'cifar-10-batches-py'), '--device', 'cuda', '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/device 'cuda' is not available/);
    expect(fs.existsSync(out)).toBe(false);
    expect((await run('train', '--data', 'x', '--device', 'gpu')).err).toMatch(/config.device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'/);
  });

  it('each architecture gets a default schedule that fits it, and says which', async () => {
    const data = path.join(fixtures, 'cifar-10-batches-py');
    const c = await run('train', '--model', 'cbamcnn', '--data', data, '--dry-run');
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/schedule: one stage training everything/);
    expect(c.out).toMatch(/stage 'all': 50 epochs/);
    const v = await run('train', '--model', 'vgg11', '--data', data, '--dry-run');
    expect(v.err).toBe('');
    expect(v.out).toMatch(/schedule: the staged fine-tune: head \+ attention, then stage4-5, then everything/);
    expect(v.out).toMatch(/"stage4",\s*"stage5"/);
    const r = await run('train', '--model', 'resnet18', '--data', data, '--dry-run', '--set', 'stages=[{name: all, epochs: 1, train: all, lr: 0.01}]');
    expect(r.out).not.toMatch(/schedule:/); // the config's own stages
  });

  it('image folders: train/ + val/ (or test/) are the splits; split names alone are refused; a missing test split is announced', async () => {
    const split = path.join(tmp, 'split');
    classFolders(path.join(split, 'train'));
    classFolders(path.join(split, 'val'));
    const s = await run('train', '--dataset', 'imageFolder', '--data', split, '--model', 'cbamcnn', '--set', 'data.imageSize=32', '--dry-run');
    expect(s.err).toBe('');
    expect(s.out).toMatch(/data: 4 training images, 4 test images, 2 classes/);
    const onlySplits = path.join(tmp, 'only-splits');
    classFolders(path.join(onlySplits, 'val'));
    classFolders(path.join(onlySplits, 'test'));
    const o = await run('train', '--dataset', 'imageFolder', '--data', onlySplits, '--model', 'cbamcnn', '--dry-run');
    expect(o.code).toBe(1);
    expect(o.err).toMatch(/holds only split folders \(.*\), no train\//);
    // A file where the folder goes (the downloaded archive): it said "ENOTDIR: not a directory, stat '<file>/train'".
    const archive = path.join(tmp, 'cifar-10-binary.tar.gz');
    fs.writeFileSync(archive, 'not a folder');
    for (const dataset of ['imageFolder', 'cifar10']) {
      const a = await run('train', '--dataset', dataset, '--data', archive, '--model', 'cbamcnn', '--dry-run');
      expect(a.code).toBe(1);
      expect(a.err).toMatch(/data\.path .*cifar-10-binary\.tar\.gz is a file, not a folder: unpack the archive and point data\.path at the folder it makes/);
    }
    // A folder that is not there: it said "ENOENT: no such file or directory, scandir '<dir>'" for image folders.
    for (const dataset of ['imageFolder', 'cifar10', 'cifar100']) {
      const m = await run('train', '--dataset', dataset, '--data', path.join(tmp, 'not-there'), '--model', 'cbamcnn', '--dry-run');
      expect(m.code).toBe(1);
      expect(m.err).toMatch(/data\.path .*not-there does not exist: point data\.path \(--data\) at the dataset's folder/);
    }
    const plain = path.join(tmp, 'plain', 'animals');
    classFolders(plain);
    const p = await run('train', '--dataset', 'imageFolder', '--data', plain, '--model', 'cbamcnn', '--set', 'data.imageSize=32', '--epochs', '1', '--batch-size', '2', '--workers', '1', '--out', path.join(tmp, 'no-test'));
    expect(p.code).toBe(0);
    expect(p.out).toMatch(/warning: no test split for .*animals .*best.pth is chosen by training accuracy/);
    expect(p.out).toMatch(/best epoch 1 \(train accuracy/);
  }, 60_000);

  it('predict: any state dict with flags describing the model; an unreadable image is an error row, exit 1', async () => {
    const out = path.join(tmp, 'p');
    expect((await run('train', '--model', 'cbamcnn', '--data', path.join(fixtures, 'cifar-10-batches-py'), '--epochs', '1', '--batch-size', '4', '--workers', '1', '--out', out, '--quiet')).code).toBe(0);
    const lonely = path.join(tmp, 'lonely', 'weights.pth');
    fs.mkdirSync(path.dirname(lonely));
    fs.copyFileSync(path.join(out, 'best.pth'), lonely);
    const images = path.join(tmp, 'images');
    fs.mkdirSync(images);
    fs.copyFileSync(path.join(fixtures, 'folder', 'cat', 'a.png'), path.join(images, 'a.png'));
    fs.writeFileSync(path.join(images, 'broken.jpg'), 'not an image');
    const none = await run('predict', '--checkpoint', lonely, images);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/no config.json beside .*weights.pth: describe the model with --model ARCH and --classes N or --class-names/);
    const names = 'plane,car,bird,cat,deer,dog,frog,horse,ship,truck';
    const p = await run('predict', '--checkpoint', lonely, '--model', 'cbamcnn', '--class-names', names, '--format', 'json', images);
    expect(p.code).toBe(1);
    const rows = JSON.parse(p.out);
    expect(rows.map((r: { file: string }) => path.basename(r.file))).toEqual(['a.png', 'broken.jpg']);
    expect(rows[0].top[0].class).toMatch(new RegExp(`^(${names.replace(/,/g, '|')})$`));
    expect(rows[1].error).toMatch(/broken.jpg: not a JPEG or PNG file/);
    expect(p.err).toMatch(/1 of 2 images could not be read/);
    // The same probabilities as with the run's own config.json.
    const own = JSON.parse((await run('predict', '--checkpoint', path.join(out, 'best.pth'), '--format', 'json', path.join(images, 'a.png'))).out);
    expect(own[0].top.map((t: { probability: number }) => t.probability)).toEqual(rows[0].top.map((t: { probability: number }) => t.probability));
    const t = await run('predict', '--checkpoint', lonely, '--model', 'cbamcnn', '--classes', '10', images);
    expect(t.out).toMatch(/broken.jpg\s+unreadable/);
    expect((await run('predict', '--checkpoint', lonely, '--model', 'cbamcnn', '--classes', '3', '--class-names', 'a,b', images)).err).toMatch(/--classes 3 but --class-names lists 2 names/);
  }, 60_000);

  it('compare: a table of the runs and one page with their curves', async () => {
    const a = path.join(tmp, 'cmp-a');
    const b = path.join(tmp, 'cmp-b');
    for (const [dir, name] of [[a, 'first'], [b, 'second']]) {
      expect((await run('train', '--model', 'cbamcnn', '--data', path.join(fixtures, 'cifar-10-batches-py'), '--epochs', '2', '--batch-size', '4', '--workers', '1', '--out', dir, '--name', name, '--quiet')).code).toBe(0);
    }
    const page = path.join(tmp, 'compare.html');
    const r = await run('compare', a, b, '--out', page);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^run\s+model\s+epochs\s+best test top-1 \(epoch\)/);
    expect(r.out).toMatch(/^first\s+CBAMCNN\s+2\s/m);
    expect(r.out).toMatch(/^second\s+CBAMCNN\s+2\s/m);
    const html = fs.readFileSync(page, 'utf8');
    expect((html.match(/<svg/g) ?? []).length).toBe(4);
    expect(html).toContain('Test top-1 per epoch');
    const j = JSON.parse((await run('compare', a, b, '--out', page, '--json')).out);
    expect(j.map((x: { run: string }) => x.run)).toEqual(['first', 'second']);
    expect((await run('compare', tmp, '--out', page)).err).toMatch(/is not a run directory/);
    expect((await run('compare')).code).toBe(2);
  }, 120_000);

  it('summary: every parameter in a row (VGG convolutions too), MACs, the title once', async () => {
    const model = vgg({ depth: 16, attention: 'cbam' });
    const rows = model.summary([1, 3, 32, 32]);
    expect(rows.reduce((n, r) => n + r.params, 0)).toBe(model.parameterCount());
    expect(rows.find((r) => r.name === 'features (stage 5)')!.params).toBeGreaterThan(7e6);
    // torchvision's figure for ResNet18 at 224 x 224: 1.81 GFLOPS (multiply-accumulates).
    const r18 = resnet({ depth: 18, attention: 'none', stem: 'imagenet', numClasses: 1000 });
    const macs = r18.summary([1, 3, 224, 224]).reduce((n, r) => n + r.macs, 0);
    expect(macs).toBeGreaterThan(1.80e9);
    expect(macs).toBeLessThan(1.83e9);
    expect(r18.summary([2, 3, 224, 224]).reduce((n, r) => n + r.macs, 0)).toBe(2 * macs);
    const s = await run('summary', '--model', 'vgg16');
    expect(s.code).toBe(0);
    expect(s.out.match(/VGG16-BN-cbam/g)).toHaveLength(1);
    expect(s.out).toMatch(/params\s+trainable\s+MACs/);
    expect(s.out).toMatch(/MACs for input \[1, 3, 32, 32\]: [\d.]+M/);
  });

  it('colour on a terminal only, never with NO_COLOR', () => {
    const tty = { out: () => {}, err: () => {}, isTTY: true };
    const saved = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    try {
      expect(paint(tty, 'red', 'x')).toBe('\x1b[31mx\x1b[39m');
      expect(paint({ ...tty, isTTY: false }, 'red', 'x')).toBe('x');
      process.env.NO_COLOR = '1';
      expect(paint(tty, 'red', 'x')).toBe('x');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  it.runIf(fs.existsSync(path.join(root, 'dist', 'cli', 'commands.js')))('doctor and help work when the native addon cannot load', () => {
    const bin = path.join(root, 'bin', 'torch-attn.js');
    const env = { ...process.env, TORCH_ATTN_ADDON: path.join(tmp, 'missing.node') };
    const d = spawnSync(process.execPath, [bin, 'doctor'], { env, encoding: 'utf8' });
    expect(d.status).toBe(1);
    expect(d.stdout).toMatch(/the native addon does not load: .*missing.node/);
    expect(d.stdout).toMatch(/npm rebuild torch-attn/);
    const h = spawnSync(process.execPath, [bin, 'help', 'train'], { env, encoding: 'utf8' });
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/usage: torch-attn train/);
    const t = spawnSync(process.execPath, [bin, 'summary'], { env, encoding: 'utf8' });
    expect(t.status).toBe(1);
    expect(t.stderr).toMatch(/torch-attn summary: .*failed to load/);
  });

  it('--threads sets the intra-op threads, --seed the run\'s seed; "1 loader thread"; eval\'s --data is optional in its usage', async () => {
    const before = getNumThreads();
    try {
      const r = await run('train', '--model', 'cbamcnn', '--data', path.join(fixtures, 'cifar-10-batches-py'), '--threads', '1', '--dry-run');
      expect(r.code).toBe(0);
      expect(getNumThreads()).toBe(1);
      expect((await run('train', '--data', 'x', '--threads', '0')).err).toMatch(/--threads takes an integer of at least 1, got '0'/);
    } finally {
      setNumThreads(before);
    }
    expect(trainConfig({ data: 'x', seed: '7' }).seed).toBe(7);
    expect(() => trainConfig({ data: 'x', seed: '-1' })).toThrow(/--seed takes an integer of at least 0, got '-1'/);
    const q = await run('train', '--model', 'cbamcnn', '--data', path.join(fixtures, 'cifar-10-batches-py'), '--epochs', '1', '--batch-size', '4', '--workers', '1', '--out', path.join(tmp, 'one-thread'));
    expect(q.out).toMatch(/, 1 loader thread, seed 0/);
    expect((await run('help', 'eval')).out).toMatch(/usage: torch-attn eval --checkpoint FILE \[--data DIR\]/);
  }, 60_000);

  it('a progress bar gets every batch (whatever logEvery is), metrics.jsonl every logEvery-th', async () => {
    const config = checkConfig({ model: { arch: 'cbamcnn' }, data: { dataset: 'cifar10', path: path.join(fixtures, 'cifar-10-batches-py') }, stages: [{ name: 'all', epochs: 1, train: 'all', lr: 1e-3 }], batchSize: 2, workers: 1, logEvery: 100, out: path.join(tmp, 'bar') });
    // A killed run's half-written run.json (writeFileAtomic's temporary) is removed when a run starts there.
    fs.mkdirSync(path.join(tmp, 'bar'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'bar', '.run.json.00112233445566ff.tmp'), '{"half');
    const seen: number[] = [];
    await runTraining(config, { onBatch: (b) => seen.push(b.batch) });
    expect(fs.readdirSync(path.join(tmp, 'bar')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(seen).toEqual([1, 2]); // 5 images in batches of 2: the last image, a batch of one, is dropped
    const lines = fs.readFileSync(path.join(tmp, 'bar', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'batch').map((l) => l.batch)).toEqual([2]); // the epoch's last batch only
  }, 60_000);

  it.runIf(cliBuilt)('Ctrl-C stops at the next batch and names the command that resumes', async () => {
    const out = path.join(tmp, 'interrupted');
    const { code, signal, stderr } = await interruptedCli(['train', '--model', 'cbamcnn', '--data', path.join(fixtures, 'cifar-10-batches-py'), '--epochs', '500', '--batch-size', '2', '--workers', '1', '--out', out], tmp);
    expect(code, `ended by ${signal}; stderr: ${stderr}`).toBe(130);
    expect(stderr).toMatch(/stopping at the next batch; a resumable checkpoint is being written/);
    expect(stderr).toContain(`stopped; continue with: npx torch-attn train --resume ${path.join('interrupted', 'last.pth')}`);
    expect(fs.existsSync(path.join(out, 'last.pth'))).toBe(true);
  }, 120_000);
});
