// Pictures of a run's data and of what its attention modules look at: test images with their
// true and predicted labels, the most confidently wrong ones, and each stage's spatial attention
// map upsampled over the image. Written as SVG (the images inlined as PNG data) beside the plots;
// report.html inlines them.
import { PNG } from 'pngjs';
import type { ImageDataset } from '../data/datasets';
import type { Network } from '../models/builders';
import type { AttentionMaps } from '../modules/attention';
import { tensor } from '../tensor/tensor';
import { escapeHtml } from './report';

export interface PictureSource {
  model: Network;
  /** The test set as the model sees it (normalised). */
  test: ImageDataset;
  /** The same images as people see them: the test transform without normalisation, [0, 1]. */
  display: ImageDataset;
  classes: readonly string[];
  /** Softmax outputs for every test image in order, [count x classes] row-major. */
  probabilities: Float32Array;
  labels: Int32Array;
}

const CELL = 96;
const LABEL = 30;

/** An RGB(A) image as a PNG data URL. `rgba`: height x width x 4 bytes. */
function pngDataUrl(rgba: Uint8Array, width: number, height: number): string {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;
}

/** A [C, H, W] float image in [0, 1] (C = 1 or 3) as RGBA bytes. */
function imageRgba(chw: Float32Array, shape: readonly number[]): Uint8Array {
  const [c, h, w] = shape;
  const out = new Uint8Array(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) out[p * 4 + k] = Math.round(255 * Math.min(1, Math.max(0, chw[(c === 1 ? 0 : k) * h * w + p])));
    out[p * 4 + 3] = 255;
  }
  return out;
}

// Viridis at five stops, interpolated.
const STOPS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

function colour(v: number): number[] {
  const x = Math.min(1, Math.max(0, v)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((a, k) => Math.round(a + f * (STOPS[i + 1][k] - a)));
}

/** One h x w map as a heat map, scaled min-max over the map (so its shape shows). */
function heatRgba(map: Float32Array): Uint8Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const out = new Uint8Array(map.length * 4);
  map.forEach((v, p) => {
    const [r, g, b] = colour(hi > lo ? (v - lo) / (hi - lo) : 0.5);
    out.set([r, g, b, 255], p * 4);
  });
  return out;
}


function svgDocument(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>${body}</svg>\n`;
}

function image(href: string, x: number, y: number, opacity = 1): string {
  return `<image href="${href}" x="${x}" y="${y}" width="${CELL}" height="${CELL}" preserveAspectRatio="none"${opacity < 1 ? ` opacity="${opacity}"` : ''}/>`;
}

interface Shown {
  index: number;
  predicted: number;
  probability: number;
}

function predictionOf(source: PictureSource, index: number): Shown {
  const k = source.classes.length;
  const row = source.probabilities.subarray(index * k, (index + 1) * k);
  let predicted = 0;
  for (let c = 1; c < k; c++) if (row[c] > row[predicted]) predicted = c;
  return { index, predicted, probability: row[predicted] };
}

/** A grid of test images, each with its true label and the prediction (green right, red wrong). */
function grid(source: PictureSource, shown: Shown[], columns: number): string {
  const rows = Math.ceil(shown.length / columns);
  const width = columns * (CELL + 8) + 8;
  const height = rows * (CELL + LABEL + 8) + 8;
  const body = shown
    .map((s, i) => {
      const x = 8 + (i % columns) * (CELL + 8);
      const y = 8 + Math.floor(i / columns) * (CELL + LABEL + 8);
      const { image: img } = source.display.get(s.index);
      const truth = source.labels[s.index];
      const ok = truth === s.predicted;
      return `${image(pngDataUrl(imageRgba(img.toFloat32Array(), img.shape), img.shape[2], img.shape[1]), x, y)}
<text x="${x}" y="${y + CELL + 12}">${escapeHtml(source.classes[truth])}</text>
<text x="${x}" y="${y + CELL + 25}" fill="${ok ? '#1a7f37' : '#cf222e'}">${ok ? '' : '\u2192 '}${escapeHtml(source.classes[s.predicted])} ${(100 * s.probability).toFixed(0)}%</text>`;
    })
    .join('\n');
  return svgDocument(width, height, body);
}

/** The module whose maps stand for each stage: the last one of each top-level name
 *  (`layer2.1.nam` for layer2; `cbam_layer2` is its own), keeping those with a spatial map. */
function stageModules(maps: Record<string, AttentionMaps>): [string, string][] {
  const byStage = new Map<string, [string, string]>();
  for (const [name, named] of Object.entries(maps)) {
    const key = Object.keys(named).find((k) => named[k].shape.length === 4);
    if (key) byStage.set(name.split('.')[0], [name, key]);
  }
  return [...byStage.values()];
}

/** Each stage's spatial attention over `indices` (B x 1 x h x w maps; a B x C x h x w gate is
 *  averaged over channels), upsampled to the image and laid over it at 55% opacity. */
async function attentionFigure(source: PictureSource, indices: number[]): Promise<string | null> {
  const inputs = indices.map((i) => source.test.get(i).image);
  const [c, h, w] = inputs[0].shape;
  const batch = new Float32Array(indices.length * c * h * w);
  inputs.forEach((t, i) => batch.set(t.toFloat32Array(), i * c * h * w));
  const maps = await source.model.attentionMaps(tensor(batch, [indices.length, c, h, w]));
  const columns = stageModules(maps);
  if (columns.length === 0) return null;
  const top = 40;
  const left = 150;
  const width = left + (columns.length + 1) * (CELL + 8);
  const height = top + indices.length * (CELL + 8);
  // Two header lines per column: the module's name, then which of its maps (a gate is averaged).
  const header = [
    `<text x="${left}" y="${top - 22}">image</text>`,
    ...columns.map(([name, key], j) => {
      const x = left + (j + 1) * (CELL + 8);
      return `<text x="${x}" y="${top - 22}" textLength="${Math.min(CELL, 6.2 * name.length)}" lengthAdjust="spacingAndGlyphs">${escapeHtml(name)}</text><text x="${x}" y="${top - 8}" fill="#555">${key === 'spatial' ? 'spatial' : `${escapeHtml(key)}, mean`}</text>`;
    }),
  ];
  const rows = indices.map((index, r) => {
    const y = top + r * (CELL + 8);
    const { image: img } = source.display.get(index);
    const base = pngDataUrl(imageRgba(img.toFloat32Array(), img.shape), img.shape[2], img.shape[1]);
    const p = predictionOf(source, index);
    const truth = source.labels[index];
    const cells = columns.map(([name, key], j) => {
      const t = maps[name][key];
      const [, mc, mh, mw] = t.shape;
      const all = t.toFloat32Array();
      const one = new Float32Array(mh * mw);
      for (let k = 0; k < mc; k++) for (let q = 0; q < mh * mw; q++) one[q] += all[((r * mc + k) * mh * mw) + q] / mc;
      const x = left + (j + 1) * (CELL + 8);
      return `${image(base, x, y)}${image(pngDataUrl(heatRgba(one), mw, mh), x, y, 0.55)}`;
    });
    return `<text x="8" y="${y + 16}">${escapeHtml(source.classes[truth])}</text><text x="8" y="${y + 30}" fill="${p.predicted === truth ? '#1a7f37' : '#cf222e'}">pred ${escapeHtml(source.classes[p.predicted])} ${(100 * p.probability).toFixed(0)}%</text>${image(base, left, y)}${cells.join('')}`;
  });
  return svgDocument(width, height, [...header, ...rows].join('\n'));
}

/** samples.svg, wrong.svg (when any test image is wrong) and attention.svg (when the model has
 *  spatial attention), by name. */
export async function pictures(source: PictureSource, options: { count?: number } = {}): Promise<Record<string, string>> {
  const n = source.labels.length;
  if (n === 0) return {};
  const count = Math.min(options.count ?? 16, n);
  const all = Array.from({ length: n }, (_, i) => predictionOf(source, i));
  const out: Record<string, string> = { samples: grid(source, all.slice(0, count), 8) };
  const wrong = all.filter((s) => s.predicted !== source.labels[s.index]).sort((a, b) => b.probability - a.probability).slice(0, count);
  if (wrong.length > 0) out.wrong = grid(source, wrong, 8);
  // One image of each of the first classes met, then the first images: varied subjects.
  const seen = new Set<number>();
  const picked: number[] = [];
  for (let i = 0; i < n && picked.length < 6; i++) {
    if (!seen.has(source.labels[i])) {
      seen.add(source.labels[i]);
      picked.push(i);
    }
  }
  const attention = await attentionFigure(source, picked);
  if (attention) out.attention = attention;
  return out;
}
