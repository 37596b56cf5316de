// A run's checkpoint as a predictor: what `torch-attn serve` serves, and what a service that
// embeds torch-attn in its own HTTP app starts from.
import { type TransformStep, transforms } from '../data/transforms';
import type { Network } from '../models/builders';
import { type Device, deviceOption, zeros } from '../tensor/tensor';
import { type RunConfig, buildModel, inputSize, readRunConfig, transformsFor } from '../runs/config';
import type { Predictor, PredictorOptions } from './predictor';

export interface RunPredictorOptions extends Omit<PredictorOptions, 'transform' | 'classes' | 'imageSize'> {
  /** The run's config.json, when it is not beside the checkpoint. */
  config?: string;
  /** Where the model computes: 'cpu' (the default, whatever device the run trained on), 'cuda' or
   *  'cuda:N'. Images are decoded and transformed on the CPU either way; each batch goes to the
   *  device as one tensor and its outputs come back. */
  device?: Device;
}

/** The most pixels an upload to a served run may have unless its options say
 *  (RunPredictorOptions.maxPixels): 4096 x 4096, 48 MB decoded. A request body holds 10 MiB by
 *  default, which a JPEG of ten times these pixels fits in; PIL's own limit (the process-wide one,
 *  `datasets.imageLimits()`) lets it declare 179 M. */
const DEFAULT_SERVED_MAX_PIXELS = 4096 * 4096;

/**
 * A run's checkpoint ready to serve: the model its config.json describes, the weights loaded
 * (strictly), a predictor with the run's eval transform and class names that takes only images the
 * size that transform makes (PredictorOptions.imageSize; the model's input size if the transform
 * keeps any size), uploads of at most 4096 x 4096 pixels unless `maxPixels` says, and its inference plans
 * prepared for batches of 1, 2, 4, ... up to the predictor's maximum (each plan's choices of
 * convolution form serve the batch sizes up to the next power of two; the passes that prepare them
 * are the warm-up).
 */
export async function predictorFromRun(
  checkpoint: string,
  options: RunPredictorOptions = {},
): Promise<{ model: Network; predictor: Predictor; config: RunConfig & { classes: string[] } }> {
  const { config: configFile, device: deviceGiven, ...rest } = options;
  const device = deviceOption(deviceGiven, 'predictorFromRun() options.device');
  const config = readRunConfig(checkpoint, configFile);
  const model = buildModel(config, config.classes.length);
  // Moved before loading, so that a device this build or machine lacks is named before the
  // weights are read (they are copied onto the device as they load).
  if (device !== undefined) model.to(device);
  await model.loadStateDict(checkpoint, { strict: true });
  model.eval();
  const test = transformsFor(config).test;
  const [h, w] = servedSize(test, config);
  const predictor = model.predictor({ ...rest, maxPixels: rest.maxPixels ?? DEFAULT_SERVED_MAX_PIXELS, transform: test, classes: config.classes, imageSize: [h, w] });
  const shapes = preparedBatchSizes(predictor.maxBatch).map((b) => [b, 3, h, w]);
  await model.prepareInference({ shapes, precision: predictor.precision });
  return { model, predictor, config };
}

/** The batch sizes a served predictor's plans are prepared for: 1, 2, 4, ... and maxBatch. */
export function preparedBatchSizes(maxBatch: number): number[] {
  const sizes: number[] = [];
  for (let b = 1; b < maxBatch; b *= 2) sizes.push(b);
  sizes.push(maxBatch);
  return sizes;
}

/** The H x W the run's eval transform gives every image, found by running it on two blank images
 *  of other sizes and aspects; the model's input size where it gives each its own (a transform
 *  with no resize or crop), so that the model never computes on an upload's own size. */
function servedSize(test: TransformStep[], config: RunConfig): [number, number] {
  const [a, b] = [[61, 97], [97, 61]].map(([height, width]) => {
    const blank = zeros([height, width, 3], { dtype: 'uint8' });
    const out = transforms.apply(test, blank, 0);
    const hw = out.shape.slice(-2);
    blank.dispose();
    out.dispose();
    return hw;
  });
  const size = inputSize(config);
  return a[0] === b[0] && a[1] === b[1] ? [a[0], a[1]] : [size, size];
}
