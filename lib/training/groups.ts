// Named parameter groups over a model's parameter names, as plain data: which parameters are
// the stem, each stage, the attention modules, the head (the model's own table, from the
// addon). Freezing and optimizer groups are resolved here, in TypeScript, over those names and
// sent to the addon as lists of names.
import type { Model } from '../models/model';
import { typeError } from '../validate';

/** Group names every model has: 'attention', 'head', 'backbone', 'all'; ResNets add 'stem' and
 *  'layer1'..'layer4', VGG 'stage1'..'stage5', CBAMCNN 'block1'..'block3'. */
export type GroupName = string;

const tables = new WeakMap<Model, Map<string, string>>();

/** The model's own group table (each architecture names its groups natively, as timm's
 *  group_matcher sits on the model): state-dict name -> group, '' for none. A model's tree
 *  never changes, so the table is read once per model. */
function groupTable(model: Model): Map<string, string> {
  let table = tables.get(model);
  if (!table) {
    table = new Map(model.native.groupTable());
    tables.set(model, table);
  }
  return table;
}

/** Whether a state-dict name (parameter or buffer) belongs to an attention module. */
export function isAttentionName(model: Model, name: string): boolean {
  return groupTable(model).get(name) === 'attention';
}

/** The groups of `model`: group name -> parameter names, in model order. */
export function parameterGroups(model: Model): Map<GroupName, string[]> {
  // Duck-typed: model.ts imports this file.
  if (typeof (model as Partial<Model> | null)?.namedParameters !== 'function') {
    throw typeError('parameterGroups(model)', 'a model (a ResNet, VGG or CBAMCNN of torch-attn)', model);
  }
  const table = groupTable(model);
  const groups = new Map<GroupName, string[]>();
  const add = (group: string, name: string) => {
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group)!.push(name);
  };
  for (const { name } of model.namedParameters()) {
    add('all', name);
    const group = table.get(name);
    if (!group) continue;
    add(group, name);
    if (group !== 'head' && group !== 'attention') add('backbone', name);
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
export function resolveParameters(model: Model, selectors: string | readonly string[], what = 'resolveParameters(selectors)'): string[] {
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
