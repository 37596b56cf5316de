// A run directory to serve: config.json as `torch-attn train` writes it, and a checkpoint of a
// seeded model built from it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { manualSeed, saveStateDict } from '../../lib/index';
import { buildModel, checkConfig } from '../../lib/runs/config';

export const CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export async function makeRun(dir: string, arch = 'resnet18', data: Record<string, unknown> = {}): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const config = checkConfig({ model: { arch, attention: 'cbam' }, data: { dataset: 'cifar10', path: '.', ...data } }, 'test run');
  manualSeed(0);
  const model = buildModel(config, CLASSES.length);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, classes: CLASSES }));
  const checkpoint = path.join(dir, 'best.pth');
  await saveStateDict(model.stateDict(), checkpoint);
  return checkpoint;
}
