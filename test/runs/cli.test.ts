// The command line: argument errors (exit code 2 with usage), help, summary, doctor, and a whole
// train -> eval -> predict round on the committed CIFAR fixtures (tiny, fast).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli';
import { epochProgress, trainConfig } from '../../lib/cli/commands';
import { buildInfo } from '../../lib/index';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), isTTY: false });
  return { code, out, err };
}

describe('torch-attn CLI', () => {
  it('usage errors: exit code 2, a message naming the problem, the usage', async () => {
    let r = await run('trian');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command 'trian' \(did you mean 'train'\?\) \(commands: train, eval, predict, serve, summary, compare, weights, doctor, launch\)/);
    r = await run('train', '--epochs', '1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/train needs a dataset: --data DIR/);
    expect(r.err).toMatch(/usage: torch-attn train/);
    r = await run('train', '--data', 'x', '--epochs', 'two');
    expect(r.err).toMatch(/--epochs takes an integer of at least 1, got 'two'/);
    r = await run('train', '--data', 'x', '--learning-rate', '1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Unknown option '--learning-rate'/);
    r = await run('train', '--data', 'x', '--model', 'resnet19');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/config.model.arch must be one of/);
    r = await run('train', '--data', 'x', '--precision', 'half');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/config.precision must be one of 'fp32', 'bf16', 'fp16', got 'half'/);
    r = await run('predict', '--checkpoint', 'x.pth');
    expect(r.err).toMatch(/predict needs image files or a folder/);
    r = await run('predict', '--checkpoint', path.join(tmp, 'missing.pth'), path.join(__dirname, '..', 'fixtures', 'data', 'folder'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--checkpoint .*missing.pth: file not found/);
    for (const command of ['eval', 'serve']) {
      r = await run(command, '--checkpoint', path.join(tmp, 'missing.pth')); // said 'no config.json beside' it
      expect(r.code, command).toBe(2);
      expect(r.err, command).toMatch(/--checkpoint .*missing.pth: file not found/);
    }
    r = await run('serve', '--checkpoint', 'x.pth', '--max-pixels', '0');
    expect(r.err).toMatch(/--max-pixels/);
    r = await run('serve', '--checkpoint', 'x.pth', '--device', 'gpu');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'/);
    r = await run('summary', '--input', '3,32');
    expect(r.err).toMatch(/--input takes C,H,W/);
  });

  it('--set overrides config fields by dotted path (values as YAML); --version; train --dry-run trains nothing', async () => {
    const c = trainConfig({ data: 'x', set: ['optimizer.weightDecay=5e-4', 'stages.0.lr=0.01', 'data.augment=[randomHorizontalFlip]', 'batchSize=16'] });
    expect(c.optimizer).toEqual({ weightDecay: 5e-4 });
    expect(c.stages[0].lr).toBe(0.01);
    expect(c.stages[1].lr).toBe(1e-4); // the rest of the default recipe stays
    expect(c.data.augment).toEqual(['randomHorizontalFlip']);
    expect(c.batchSize).toBe(16);
    expect(() => trainConfig({ data: 'x', set: ['optimizer'] })).toThrow(/--set takes key=value/);
    expect(() => trainConfig({ data: 'x', set: ['batchSize=16', 'batchSize.x=1'] })).toThrow(/--set batchSize.x=1: 'batchSize' holds 16, not a section/);
    expect(() => trainConfig({ data: 'x', set: ['__proto__.x=1'] })).toThrow(/is not a config key/);
    expect(() => trainConfig({ data: 'x', set: ['optimzer.lr=1'] })).toThrow(/Unknown option 'optimzer' in config \(did you mean 'optimizer'\?\)/);
    const v = await run('--version');
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^torch-attn \d+\.\d+\.\d+ \(LibTorch \d+\.\d+/);
    const out = path.join(tmp, 'dry');
    const d = await run('train', '--model', 'cbamcnn', '--data', path.join(__dirname, '..', 'fixtures', 'data'), '--epochs', '3', '--set', 'stages=[{name: all, epochs: 3, train: all, lr: 0.001}]', '--set', 'scheduler={type: step, stepSize: 1, gamma: 0.5}', '--out', out, '--dry-run');
    expect(d.err).toBe('');
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/"arch": "cbamcnn"/);
    expect(d.out).toMatch(/total parameters: /);
    expect(d.out).toMatch(/stage 'all': 3 epochs; lr first .*1\.00e-3.*; last .*2\.50e-4/);
    expect(d.out).toMatch(/dry run: nothing trained, nothing written/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a closed pipe (torch-attn ... | head) ends the command quietly', async () => {
    const bin = path.join(__dirname, '..', '..', 'bin', 'torch-attn.js');
    const child = spawn(process.execPath, [bin, 'weights', 'list'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader went away before the command wrote
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  }, 60_000);

  it('the progress bar\'s rate and ETA are timed from the first batch seen, not from before it', () => {
    expect(epochProgress({ batch: 1, at: 1000 }, { batch: 1, batches: 10, at: 1000.01 }, 64)).toEqual({ rate: null, eta: null });
    expect(epochProgress({ batch: 1, at: 1000 }, { batch: 3, batches: 10, at: 3000 }, 64)).toEqual({ rate: 64, eta: 7 });
  });

  it('--precision and --channels-last reach the run configuration', () => {
    const c = trainConfig({ data: 'x', precision: 'bf16', 'channels-last': true });
    expect([c.precision, c.memoryFormat]).toEqual(['bf16', 'channels-last']);
    expect([trainConfig({ data: 'x' }).precision, trainConfig({ data: 'x' }).memoryFormat]).toEqual(['fp32', 'contiguous']);
  });

  it('help, summary and doctor', async () => {
    expect((await run()).out).toMatch(/commands:\n {2}train/);
    expect((await run('help', 'predict')).out).toMatch(/--top-k N/);
    expect((await run('eval', '--help')).out).toMatch(/usage: torch-attn eval/);
    const s = await run('summary', '--model', 'cbamcnn', '--classes', '4');
    expect(s.code).toBe(0);
    expect(s.out).toMatch(/fc2\s+Linear\s+\[1, 4\]/);
    expect(await run('doctor', '--json')).toMatchObject({ code: 2, err: expect.stringMatching(/doctor takes no options or arguments, got '--json'/) });
    const d = await run('doctor');
    expect(d.code).toBe(0);
    // The package's version where Debian's libtorch-dev provides LibTorch (1.13.1; its headers say 1.13.0).
    expect(d.out).toMatch(new RegExp(`LibTorch ${buildInfo().libtorchVersion.split('.').slice(0, 2).join('\\.')}\\.\\d`));
    expect(d.out).not.toMatch(/parity/);
    expect(d.out).toMatch(/CUDA: /);
    expect(d.out).toMatch(/precisions in hardware: CPU fp32/);
    expect((await run('help', 'train')).out).toMatch(/--precision P\s+fp32 \| bf16 \| fp16[\s\S]*--channels-last/);
  });

  it('train -> eval -> predict on a tiny CIFAR-10 folder writes the run directory and reads it back', async () => {
    const out = path.join(tmp, 'run');
    const data = path.join(__dirname, '..', 'fixtures', 'data');
    const config = path.join(tmp, 'run.yaml');
    fs.writeFileSync(config, `model: { arch: cbamcnn }\ndata: { dataset: cifar10, path: ${data} }\nstages:\n  - { name: all, epochs: 2, train: all, lr: 0.001 }\nbatchSize: 2\nworkers: 1\nlogEvery: 1\n`);
    const t = await run('train', '--config', config, '--out', out);
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/epoch {3}2 \[all\] train loss/);
    // Not a TTY: the seed documents' batch lines instead of a progress bar.
    expect(t.out).toMatch(/^Epoch 1\/2 \| Batch 1\/\d+ \| loss \d+\.\d{4} \| mean \d+\.\d{4}$/m);
    for (const f of ['config.json', 'metrics.jsonl', 'last.pth', 'best.pth', 'evaluation.json', 'report.html', 'plots/loss.svg', 'plots/confusion.svg', 'plots/pr.svg']) {
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
    const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'epoch').map((l) => l.epoch)).toEqual([1, 2]);
    const evaluation = JSON.parse(fs.readFileSync(path.join(out, 'evaluation.json'), 'utf8'));
    expect(evaluation.count).toBe(2);
    expect(evaluation.prCurves).toHaveLength(10);
    // The final evaluation is the best epoch's weights, the last epoch's figures beside them.
    const best = Math.max(...lines.filter((l) => l.type === 'epoch').map((l) => l.testTop1));
    const bestEpoch = lines.find((l) => l.type === 'epoch' && l.testTop1 === best).epoch;
    expect(evaluation.epoch).toBe(bestEpoch);
    expect(evaluation.checkpoint).toBe('best.pth');
    if (bestEpoch !== 2) expect(evaluation.last.epoch).toBe(2);
    expect(evaluation.prCurves[0].rocAuc === null || (evaluation.prCurves[0].rocAuc >= 0 && evaluation.prCurves[0].rocAuc <= 1)).toBe(true);

    // The run directory is not overwritten by a second run; --resume alone finds the run's config.
    const again = await run('train', '--config', config, '--out', out, '--epochs', '1');
    expect(again.code).toBe(0);
    expect(again.out).toContain(`${out} holds a run already: writing to ${out}-2 (--exist-ok writes into it)`);
    expect(fs.existsSync(path.join(`${out}-2`, 'best.pth'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)!).epoch).toBe(2);
    // A line the killed run left cut short is dropped before the resumed run appends (it failed
    // the report at the end of the resumed run, or ran on into the next record).
    const metricsFile = path.join(out, 'metrics.jsonl');
    const whole = fs.readFileSync(metricsFile, 'utf8');
    fs.appendFileSync(metricsFile, '{"type":"batch","epo');
    const resumed = await run('train', '--resume', path.join(out, 'last.pth'));
    expect(resumed.err).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.out).toMatch(/final evaluation/);
    expect(fs.readFileSync(metricsFile, 'utf8')).toBe(whole);
    expect(fs.existsSync(`${out}-3`)).toBe(false);
    expect((await run('train', '--resume', path.join(tmp, 'nowhere', 'last.pth'))).err).toMatch(/no config.json beside it/);

    const e = await run('eval', '--checkpoint', path.join(out, 'best.pth'), '--data', data, '--json');
    expect(e.code).toBe(0);
    expect(JSON.parse(e.out).count).toBe(2);

    const folder = path.join(data, 'folder');
    const p = await run('predict', '--checkpoint', path.join(out, 'best.pth'), '--format', 'csv', '--top-k', '2', folder);
    expect(p.code).toBe(0);
    const rows = p.out.trim().split('\n');
    expect(rows[0]).toBe('file,class_1,probability_1,class_2,probability_2,error');
    expect(rows).toHaveLength(1 + 6);
    const j = await run('predict', '--checkpoint', path.join(out, 'best.pth'), '--format', 'json', path.join(folder, 'cat', 'a.png'));
    const [only] = JSON.parse(j.out);
    expect(only.top).toHaveLength(3);
    expect(only.top[0].probability).toBeGreaterThanOrEqual(only.top[1].probability);
    expect(await run('predict', '--checkpoint', path.join(out, 'best.pth'), '--format', 'xml', folder)).toMatchObject({ code: 2 });
    // Special files named on the command line: an error row each, the others predicted (a FIFO
    // blocked the command for ever, /dev/zero was read until memory ran out).
    const special = path.join(tmp, 'special');
    fs.mkdirSync(special, { recursive: true });
    fs.symlinkSync('/dev/zero', path.join(special, 'zero.jpg'));
    execFileSync('mkfifo', [path.join(special, 'pipe.jpg')]);
    const sp = await run('predict', '--checkpoint', path.join(out, 'best.pth'), '--format', 'json', path.join(special, 'zero.jpg'), path.join(special, 'pipe.jpg'), path.join(folder, 'cat', 'a.png'));
    const rowsOf = JSON.parse(sp.out) as { file: string; error?: string; top?: unknown[] }[];
    expect(rowsOf.find((r) => r.file.endsWith('zero.jpg'))?.error).toMatch(/is not a regular file \(a device\)/);
    expect(rowsOf.find((r) => r.file.endsWith('pipe.jpg'))?.error).toMatch(/is not a regular file \(a FIFO\)/);
    expect(rowsOf.find((r) => r.file.endsWith('a.png'))?.top).toHaveLength(3);
    // A run's config.json that is not JSON, or not an object: named, for every command that reads it.
    const configFile = path.join(out, 'config.json');
    const saved = fs.readFileSync(configFile);
    try {
      for (const [text, message] of [['{"model": {"arch"', /config\.json is not valid JSON \(.*\): was it cut short or edited by hand\?/], ['null', /config\.json is not a torch-attn run config \(not a JSON object\)/]] as const) {
        fs.writeFileSync(configFile, text);
        expect((await run('eval', '--checkpoint', path.join(out, 'best.pth'), '--data', data)).err).toMatch(message);
        expect((await run('predict', '--checkpoint', path.join(out, 'best.pth'), folder)).err).toMatch(message);
      }
    } finally {
      fs.writeFileSync(configFile, saved);
    }
  }, 60_000);
});
