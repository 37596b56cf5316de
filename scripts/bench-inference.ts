// Inference against the inference peer, in one run: onnxruntime-node (../shared/peer/ort_bench.mjs)
// and torch-attn on the same seeded ResNet18-CBAM weights (../shared/peer/export_onnx.py writes the
// state dict and its ONNX exports), batch 64 img/s and batch-1 latency, torch-attn with and
// without an inference plan, fp32 and bf16, and the agreement of the batch-1 logits with
// onnxruntime's; plans with their measured convolution forms (planTuning) and with the fixed rule.
// The two runtimes take turns over several rounds (below). Standalone:
// `npx tsx scripts/bench-inference.ts [--threads 2] [--reps 3] [--rounds 3]` prints one JSON
// object; `npm run bench` runs it as one of its parts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ResNetCBAM, randn, setNumThreads, tensor, type Precision } from '../lib';
import { callTimes, median, medians, runs } from './timing';

const peerDir = path.resolve(__dirname, '..', '..', 'shared', 'peer');
const seconds = async (fn: () => Promise<unknown>, n: number, warm: number, reps: number) => median(await runs(fn, n, warm, reps));

type OrtFigures = { onnxruntime: string; eval_img_per_s: number; eval_b1_ms: number; y_b1: number[] };

/**
 * The inference figures, or a string saying what is missing. onnxruntime-node and torch-attn take
 * turns, `rounds` times (onnxruntime in a process of its own each time, then torch-attn), and each
 * figure is the median over the rounds: this shared machine drifts by 10-30% within minutes, and
 * one run of each, minutes apart, compared the drift as much as the runtimes.
 */
export async function inferenceFigures(threads: number, reps: number, rounds = 3): Promise<Record<string, unknown> | string> {
  if (!fs.existsSync(path.join(peerDir, 'export_onnx.py'))) return 'missing: ../shared/peer/export_onnx.py';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-ort-'));
  try {
    const exported = spawnSync('/usr/bin/python3', [path.join(peerDir, 'export_onnx.py'), dir], { encoding: 'utf8' });
    if (exported.status !== 0) return `missing: export_onnx.py failed (${exported.stderr.trim().split('\n').pop()})`;
    const ortOnce = (): OrtFigures | string => {
      const run = spawnSync(process.execPath, [path.join(peerDir, 'ort_bench.mjs'), dir, '--threads', String(threads)], { encoding: 'utf8' });
      if (run.status !== 0) return `missing: ort_bench.mjs failed (${run.stderr.trim().split('\n').pop()})`;
      return JSON.parse(run.stdout.trim().split('\n').pop()!) as OrtFigures;
    };

    setNumThreads(threads);
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 }).eval();
    await model.loadStateDict(path.join(dir, 'resnet18_cbam.pth'), { strict: true });
    const x64 = randn([64, 3, 32, 32]);
    const perRound: Record<string, number>[] = [];
    let ort: OrtFigures | undefined;
    let x1: ReturnType<typeof tensor> | undefined;
    const other: Record<string, number> = {};
    for (let round = 0; round < rounds; round++) {
      const o = ortOnce();
      if (typeof o === 'string') return o;
      ort = o;
      if (x1 === undefined) {
        // ort_bench.mjs writes the (fixed) batch-1 input it used.
        const bytes = fs.readFileSync(path.join(dir, 'x_b1.f32'));
        x1 = tensor(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), [1, 3, 32, 32]);
      }
      const input1 = x1;
      const figures: Record<string, number> = { ort_eval_img_per_s: o.eval_img_per_s, ort_eval_b1_ms: o.eval_b1_ms };
      // Plans off and on alternate per precision, so that drift hits both alike.
      for (const precision of ['fp32', 'bf16'] as Precision[]) {
        for (const plans of [false, true]) {
          model.inferencePlans = plans;
          const key = `${plans ? 'plan' : 'eager'}${precision === 'bf16' ? '_bf16' : ''}`;
          const b64 = await seconds(async () => (await model.predict(x64, { precision })).dispose(), 5, 2, reps);
          // Batch-1 latency as ort_bench.mjs measures it: the median of single calls (50 a round
          // there; 30 per repetition here), and, for the record, the mean.
          const b1 = await callTimes(async () => (await model.predict(input1, { precision })).dispose(), 30 * reps, 5);
          figures[`${key}_eval_img_per_s`] = +(64 / b64).toFixed(2);
          figures[`${key}_eval_b1_ms`] = +median(b1).toFixed(3);
          figures[`${key}_eval_b1_mean_ms`] = +(b1.reduce((a, b) => a + b, 0) / b1.length).toFixed(3);
          const y = (await model.predict(input1, { precision })).toFloat32Array();
          other[`${key}_max_abs_diff_vs_ort`] = Math.max(...Array.from(y, (v, i) => Math.abs(v - o.y_b1[i])));
          if (plans) {
            // Which candidates took the matrix-product form at batch 64 (measured: planTuning), and
            // the fixed rule (every candidate the product) for comparison, batch 64.
            other[`${key}_b64_gemm_convolutions`] = model.inferencePlan().find((p) => p.shape[0] === 64 && p.precision === precision)?.gemmConvolutions ?? -1;
            model.planTuning = false;
            const fixed = await seconds(async () => (await model.predict(x64, { precision })).dispose(), 5, 2, reps);
            figures[`${key}_fixed_eval_img_per_s`] = +(64 / fixed).toFixed(2);
            model.planTuning = true;
          }
        }
      }
      perRound.push(figures);
    }
    const out: Record<string, number | string | unknown> = { onnxruntime: ort!.onnxruntime, rounds };
    Object.assign(out, medians(perRound));
    Object.assign(out, other);
    const r = (a: unknown, b: unknown) => +((a as number) / (b as number)).toFixed(3);
    // The ratio of the medians, and each round's own ratio (the two runtimes measured minutes apart
    // at most).
    const perRoundRatio = (a: string, b: string) => perRound.map((f) => r(f[a], f[b]));
    return {
      ...out,
      ratios: {
        plan_vs_ort_b64: r(out.plan_eval_img_per_s, out.ort_eval_img_per_s),
        plan_vs_ort_b1_latency: r(out.plan_eval_b1_ms, out.ort_eval_b1_ms),
        plan_bf16_vs_ort_fp32_b64: r(out.plan_bf16_eval_img_per_s, out.ort_eval_img_per_s),
        plan_bf16_vs_ort_b1_latency: r(out.plan_bf16_eval_b1_ms, out.ort_eval_b1_ms),
        plan_vs_eager_b64: r(out.plan_eval_img_per_s, out.eager_eval_img_per_s),
        plan_vs_fixed_b64: r(out.plan_eval_img_per_s, out.plan_fixed_eval_img_per_s),
        plan_bf16_vs_fixed_b64: r(out.plan_bf16_eval_img_per_s, out.plan_bf16_fixed_eval_img_per_s),
        plan_vs_eager_b1_latency: r(out.plan_eval_b1_ms, out.eager_eval_b1_ms),
        plan_bf16_vs_eager_bf16_b64: r(out.plan_bf16_eval_img_per_s, out.eager_bf16_eval_img_per_s),
      },
      ratios_per_round: {
        plan_vs_ort_b64: perRoundRatio('plan_eval_img_per_s', 'ort_eval_img_per_s'),
        plan_vs_ort_b1_latency: perRoundRatio('plan_eval_b1_ms', 'ort_eval_b1_ms'),
        plan_bf16_vs_ort_fp32_b64: perRoundRatio('plan_bf16_eval_img_per_s', 'ort_eval_img_per_s'),
        plan_bf16_over_plan_fp32_b64: perRoundRatio('plan_bf16_eval_img_per_s', 'plan_eval_img_per_s'),
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' }, reps: { type: 'string', default: '3' }, rounds: { type: 'string', default: '3' } } });
  inferenceFigures(Number(values.threads), Number(values.reps), Number(values.rounds)).then((r) => console.log(JSON.stringify(typeof r === 'string' ? { skipped: r } : { threads: Number(values.threads), ...r })));
}
