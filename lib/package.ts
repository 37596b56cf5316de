// The package's own folder and version, found from this file (no addon involved, so the CLI can
// name its version when the addon cannot load).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The package root: the nearest folder above this file whose package.json names torch-attn. */
function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'torch-attn') return dir;
    if (path.dirname(dir) === dir) throw new Error(`torch-attn: cannot find the package root above ${start}`);
  }
}

export const packageRoot = findPackageRoot(__dirname);
export const packageVersion: string = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version;
