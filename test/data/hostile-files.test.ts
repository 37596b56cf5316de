// Hostile files on the data and checkpoint paths: non-regular files (a FIFO would block forever,
// /dev/zero never ends), sparse giants, and image headers that ask for gigabytes. Each must be a
// clear error, quickly, with no allocation of what the file claims.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode, datasets, readStateDict } from '../../lib/index';
import { rejection, thrown } from '../helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-attn-hostile-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const fixture = path.resolve(__dirname, '../fixtures/data/folder/cat/b.jpg');

function image(file: string): Error & { code?: string } {
  return thrown(() => datasets.fromFiles([file], ['x']).get(0));
}

describe('non-regular files (hardening classes 8 and 13)', () => {
  it('a FIFO named .png, .pth or .safetensors is refused at once, never opened for a blocking read', async () => {
    for (const name of ['x.png', 'x.pth', 'x.safetensors']) execFileSync('mkfifo', [path.join(tmp, name)]);
    const started = Date.now();
    const err = image(path.join(tmp, 'x.png'));
    expect(err.code).toBe(ErrorCode.DATA);
    expect(err.message).toMatch(/is not a regular file \(a FIFO\)/);
    for (const name of ['x.pth', 'x.safetensors']) {
      const e = await rejection(readStateDict(path.join(tmp, name)));
      expect(e.code).toBe(ErrorCode.CHECKPOINT);
      expect(e.message).toMatch(/is not a regular file \(a FIFO\)/);
    }
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('/dev/zero linked as x.jpg is a device, not an endless image', () => {
    fs.symlinkSync('/dev/zero', path.join(tmp, 'zero.jpg'));
    const err = image(path.join(tmp, 'zero.jpg'));
    expect(err.message).toMatch(/is not a regular file \(a device\)/);
  });

  it('a sparse 3 GB file named x.jpg is refused by its size, without being read', () => {
    const file = path.join(tmp, 'sparse.jpg');
    fs.closeSync(fs.openSync(file, 'w'));
    fs.truncateSync(file, 3 * 2 ** 30);
    const err = image(file);
    expect(err.message).toMatch(/is 3221225472 bytes, more than the 268435456 bytes allowed/);
    expect(datasets.imageLimits().maxFileBytes).toBe(268435456);
  });
});

describe('decompression bombs (hardening class 15)', () => {
  it("a small JPEG whose header claims 16384x16384 is refused from the header, PIL's rule", () => {
    const bytes = Buffer.from(fs.readFileSync(fixture));
    // The SOF0/SOF2 segment: FF C0|C2, length (2), precision (1), height (2), width (2).
    let sof = -1;
    for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0xff && (bytes[i + 1] === 0xc0 || bytes[i + 1] === 0xc2)) { sof = i; break; }
    expect(sof).toBeGreaterThan(0);
    bytes.writeUInt16BE(16384, sof + 5);
    bytes.writeUInt16BE(16384, sof + 7);
    const file = path.join(tmp, 'bomb.jpg');
    fs.writeFileSync(file, bytes);
    expect(bytes.length).toBeLessThan(10_000);
    const err = image(file);
    expect(err.code).toBe(ErrorCode.DATA);
    expect(err.message).toMatch(/16384x16384 is more than 178956970 pixels.*decompression bomb/);
  });

  it('the limit is configurable, as PIL.Image.MAX_IMAGE_PIXELS', () => {
    const before = datasets.imageLimits();
    try {
      datasets.imageLimits({ maxPixels: 8 }); // 16 pixels at most
      expect(image(fixture).message).toMatch(/more than 16 pixels/);
    } finally {
      datasets.imageLimits(before);
    }
    expect(datasets.fromFiles([fixture], ['x']).get(0).image.shape.length).toBe(3);
    expect(() => datasets.imageLimits({ maxPixels: 0 })).toThrow(RangeError);
  });
});

describe('slow JPEGs (hardening class 10)', () => {
  it('a progressive JPEG with thousands of scans is a data error at the 500th scan, not minutes of decoding', () => {
    // scripts/make-hostile-images.py: a 16x16 image whose last scan is repeated 2,000 times.
    const err = image(path.resolve(__dirname, '../fixtures/data/hostile/many-scans.jpg'));
    expect(err.code).toBe(ErrorCode.DATA);
    expect(err.message).toMatch(/more than 500 scans/);
  });
});
