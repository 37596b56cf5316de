// loadBackbone(): maps a torchvision ImageNet state dict onto an attention model's names, as
// plain data over parameter names, then loads what fits through the native loader.
import { ErrorCode, codedError } from '../errors';
import type { Tensor } from '../tensor/tensor';
import { isAttentionName } from '../training/groups';
import { readStateDict } from './checkpoint';
import { type PretrainedWeights, cachedWeights, findWeights } from './weights';
import type { BackboneReport, Model } from './model';

/** The registered weights a model's backbone takes: 'resnet50', 'vgg16_bn', ... */
export function backboneWeightsName(model: Model): string {
  const { arch, depth, batchNorm } = model.spec;
  if (arch === 'resnet') return `resnet${depth}`;
  if (arch === 'vgg') return `vgg${depth}${batchNorm === false ? '' : '_bn'}`;
  throw new TypeError(`loadBackbone() loads torchvision ResNet and VGG weights; this model is ${model.description}`);
}

/** The registered weights 'imagenet' (torchvision's V1, what `pretrained=True` loads) or
 *  'imagenet-v2' name for the model's backbone; null for anything else (a file). */
export function backboneWeights(model: Model, source: string): PretrainedWeights | null {
  if (source !== 'imagenet' && source !== 'imagenet-v2') return null;
  return findWeights(`${backboneWeightsName(model)}${source === 'imagenet' ? '' : '.v2'}`);
}

/** The file a loadBackbone() source names: the cached weights for 'imagenet' / 'imagenet-v2'. */
export function resolveBackboneSource(model: Model, source: string): string {
  const weights = backboneWeights(model, source);
  return weights ? cachedWeights(weights.name) : source;
}

export async function loadBackbone(model: Model, source: string): Promise<BackboneReport> {
  const { arch, stem, placement, attention } = model.spec;
  if (arch !== 'resnet' && arch !== 'vgg') {
    throw new TypeError(`loadBackbone() loads torchvision ResNet and VGG weights; this model is ${model.description}`);
  }
  const file = resolveBackboneSource(model, source);
  const prefix = arch === 'resnet' && placement !== 'block' && (attention?.kind ?? 'none') !== 'none' ? 'backbone.' : '';
  const head = arch === 'resnet' ? 'fc.' : 'classifier.';
  // Attention modules are never loaded from a backbone file.
  const isAttention = (name: string) => isAttentionName(model, name);
  const shapes = new Map<string, number[]>();
  for (const p of model.namedParameters()) shapes.set(p.name, p.shape);
  for (const b of model.namedBuffers()) shapes.set(b.name, b.shape);

  const fileTensors = await readStateDict(file);
  try {
    // DataParallel checkpoints prefix every name with `module.`.
    const entries = new Map<string, Tensor>();
    for (const [raw, t] of Object.entries(fileTensors)) {
      const key = raw.startsWith('module.') ? raw.slice('module.'.length) : raw;
      if (entries.has(key)) throw codedError(ErrorCode.CHECKPOINT, `${file}: '${raw}' and another entry both become '${key}' once the 'module.' prefix is removed`);
      entries.set(key, t);
    }
    const report: BackboneReport = { loaded: [], skipped: [], missing: [] };
    const selected: Record<string, Tensor> = {};
    for (const [key, t] of entries) {
      const target = prefix + key;
      const want = shapes.get(target);
      const same = want !== undefined && want.length === t.shape.length && want.every((d, i) => d === t.shape[i]);
      let reason: string | undefined;
      if (want === undefined) reason = 'not in the model';
      else if (isAttention(target)) reason = 'attention modules keep their own initialisation';
      else if (key === 'conv1.weight' && stem === 'cifar' && !same) reason = `the cifar stem's conv1 is [${want}], the file's is [${t.shape}]`;
      else if (key.startsWith(head) && !same) reason = `the class count differs: [${want}] in the model, [${t.shape}] in the file`;
      else if (!same) reason = `shape [${want}] in the model, [${t.shape}] in the file`;
      if (reason) report.skipped.push({ name: key, reason });
      else selected[target] = t;
    }
    const result = await model.native.loadStateDict(selected as never, false);
    report.loaded = Object.keys(selected);
    report.missing = result.missing.filter((name) => !isAttention(name));
    return report;
  } finally {
    for (const t of Object.values(fileTensors)) t.dispose();
  }
}
