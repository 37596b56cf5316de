// The JSON Schema of run configurations (schema/run-config.schema.json, shipped): derived from the
// RunConfigFile type (npm run build:schema), every field documented, and agreeing with
// checkConfig() on the recipes and on broken configs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { checkConfig } from '../../lib/runs/config';

const root = path.join(__dirname, '..', '..');
const file = path.join(root, 'schema', 'run-config.schema.json');
const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

describe('run configuration schema', () => {
  it('is what the RunConfigFile type gives today (npm run build:schema after changing it)', () => {
    const fresh = createGenerator({ path: path.join(root, 'lib', 'runs', 'config.ts'), type: 'RunConfigFile', tsconfig: path.join(root, 'tsconfig.json'), skipTypeCheck: true }).createSchema('RunConfigFile');
    expect(JSON.parse(JSON.stringify(fresh))).toEqual(schema);
  }, 60_000);

  it('documents every field of the configuration, its model and its data', () => {
    const top = schema.definitions.RunConfigFile;
    const undocumented: string[] = [];
    for (const [where, node] of [['', top], ['model.', top.properties.model], ['data.', top.properties.data]] as const) {
      for (const [key, value] of Object.entries(node.properties as Record<string, { description?: string }>)) if (!value.description) undocumented.push(where + key);
    }
    expect(undocumented).toEqual([]);
    expect(top.required).toEqual(['data', 'model']);
  });

  it('accepts every recipe, which checkConfig accepts too', () => {
    const recipes = fs.readdirSync(path.join(root, 'recipes')).filter((f) => f.endsWith('.yaml'));
    expect(recipes.length).toBeGreaterThanOrEqual(6);
    for (const recipe of recipes) {
      const raw = YAML.parse(fs.readFileSync(path.join(root, 'recipes', recipe), 'utf8'));
      expect(validate(raw), `${recipe}: ${JSON.stringify(validate.errors)}`).toBe(true);
      expect(() => checkConfig({ ...raw, data: { path: '.', ...raw.data } }, recipe)).not.toThrow();
    }
  });

  it('refuses what checkConfig refuses: unknown keys, wrong kinds, values outside the lists', () => {
    const good = { model: { arch: 'resnet18' }, data: { dataset: 'cifar10', path: 'x' } };
    expect(validate(good)).toBe(true);
    for (const bad of [
      { ...good, optimzer: { type: 'adam' } },
      { ...good, model: { arch: 'resnet19' } },
      { ...good, data: { dataset: 'mnist', path: 'x' } },
      { ...good, precision: 'half' },
      { ...good, batchSize: 'many' },
      { ...good, stages: 'all' },
      { ...good, data: { ...good.data, augment: 'heavy' } },
      { data: good.data },
    ]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
      expect(() => checkConfig(bad, 'config'), JSON.stringify(bad)).toThrow();
    }
  });
});
