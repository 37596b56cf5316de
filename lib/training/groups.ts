// Named parameter groups over a model's parameter names, as plain data: which parameters are
// the stem, each stage, the attention modules, the head. Freezing and optimizer groups are
// resolved here, in TypeScript, and sent to the addon as lists of names.
import type { Model } from '../models/model';

/** Group names every model has: 'attention', 'head', 'backbone', 'all'; ResNets add 'stem' and
 *  'layer1'..'layer4', VGG 'stage1'..'stage5', CBAMCNN 'block1'..'block3'. */
export type GroupName = string;

const VGG_CONFIGS: Record<number, number[]> = {
  11: [1, 1, 2, 2, 2],
  13: [2, 2, 2, 2, 2],
  16: [2, 2, 3, 3, 3],
  19: [2, 2, 4, 4, 4],
};

/** Stage (1-5) of each `features.N` index of a VGG. */
function vggStages(depth: number, batchNorm: boolean): Map<number, number> {
  const stages = new Map<number, number>();
  let index = 0;
  VGG_CONFIGS[depth].forEach((convs, s) => {
    for (let c = 0; c < convs; c++) {
      const layers = batchNorm ? 3 : 2; // conv, [bn], relu
      for (let l = 0; l < layers; l++) stages.set(index++, s + 1);
    }
    stages.set(index++, s + 1); // max-pool
  });
  return stages;
}

/** Whether a parameter name belongs to an attention module. */
export function isAttentionName(model: Model, name: string): boolean {
  const kind = model.spec.attention?.kind ?? 'none';
  if (model.spec.arch === 'attention') return true;
  if (model.spec.arch === 'cbamcnn') return /^cbam\d\./.test(name);
  if (kind === 'none') return false;
  return name.startsWith(`${kind}_layer`) || name.startsWith(`${kind}_stage`) || name.includes(`.${kind}.`);
}

/** The groups of `model`: group name -> parameter names, in model order. */
export function parameterGroups(model: Model): Map<GroupName, string[]> {
  const names = model.namedParameters().map((p) => p.name);
  const groups = new Map<GroupName, string[]>();
  const add = (group: string, name: string) => {
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group)!.push(name);
  };
  const spec = model.spec;
  const stages = spec.arch === 'vgg' ? vggStages(spec.depth ?? 16, spec.batchNorm ?? true) : undefined;
  for (const name of names) {
    add('all', name);
    if (isAttentionName(model, name)) {
      add('attention', name);
      continue;
    }
    const bare = name.startsWith('backbone.') ? name.slice('backbone.'.length) : name;
    let group: string | undefined;
    if (spec.arch === 'resnet') {
      if (/^(conv1|bn1)\./.test(bare)) group = 'stem';
      else if (/^layer[1-4]\./.test(bare)) group = bare.slice(0, 6);
      else if (bare.startsWith('fc.')) group = 'head';
    } else if (spec.arch === 'vgg') {
      const match = /^features\.(\d+)\./.exec(bare);
      if (match) group = `stage${stages!.get(Number(match[1]))}`;
      else if (bare.startsWith('classifier.')) group = 'head';
    } else if (spec.arch === 'cbamcnn') {
      const match = /^(conv|bn)([1-3])\./.exec(bare);
      if (match) group = `block${match[2]}`;
      else if (/^fc[12]\./.test(bare)) group = 'head';
    }
    if (!group) continue;
    add(group, name);
    if (group !== 'head') add('backbone', name);
  }
  for (const g of ['attention', 'head', 'backbone']) if (!groups.has(g)) groups.set(g, []);
  return groups;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/**
 * Parameter names for a list of group names and glob patterns over parameter names ('*' matches
 * any characters, dots included: 'layer4.*.conv2.*'). An entry that is neither a group nor a
 * pattern matching something is a RangeError listing the groups.
 */
export function resolveParameters(model: Model, selectors: string | readonly string[], what: string): string[] {
  const list = typeof selectors === 'string' ? [selectors] : selectors;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) {
    throw new TypeError(`Expected a group name, a pattern or an Array of them for ${what}`);
  }
  const groups = parameterGroups(model);
  const all = groups.get('all')!;
  const picked = new Set<string>();
  for (const selector of list) {
    const group = groups.get(selector);
    if (group) {
      for (const n of group) picked.add(n);
      continue;
    }
    if (selector.includes('*') || selector.includes('?') || all.includes(selector)) {
      const re = globToRegExp(selector);
      const hits = all.filter((n) => re.test(n));
      if (hits.length > 0) {
        for (const n of hits) picked.add(n);
        continue;
      }
    }
    throw new RangeError(
      `${what}: '${selector}' is neither a group of ${model.description} (${[...groups.keys()].join(', ')}) nor a pattern matching any of its parameters`,
    );
  }
  return all.filter((n) => picked.has(n));
}
