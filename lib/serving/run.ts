// A run's checkpoint as a predictor: what `torch-attn serve` serves, and what a service that
// embeds torch-attn in its own HTTP app starts from.
import type { Network } from '../models/builders';
import { type RunConfig, buildModel, inputSize, readRunConfig, transformsFor } from '../runs/config';
import type { Predictor, PredictorOptions } from './predictor';

export interface RunPredictorOptions extends Omit<PredictorOptions, 'transform' | 'classes' | 'imageSize'> {
  /** The run's config.json, when it is not beside the checkpoint. */
  config?: string;
}

/**
 * A run's checkpoint ready to serve: the model its config.json describes, the weights loaded
 * (strictly), a predictor with the run's eval transform and class names that takes images of the
 * run's input size only (PredictorOptions.imageSize), and its inference plans
 * prepared for batches of 1, 2, 4, ... up to the predictor's maximum (each plan's choices of
 * convolution form serve the batch sizes up to the next power of two; the passes that prepare them
 * are the warm-up).
 */
export async function predictorFromRun(
  checkpoint: string,
  options: RunPredictorOptions = {},
): Promise<{ model: Network; predictor: Predictor; config: RunConfig & { classes: string[] } }> {
  const { config: configFile, ...rest } = options;
  const config = readRunConfig(checkpoint, configFile);
  const model = buildModel(config, config.classes.length);
  await model.loadStateDict(checkpoint, { strict: true });
  model.eval();
  const size = inputSize(config);
  const predictor = model.predictor({ ...rest, transform: transformsFor(config).test, classes: config.classes, imageSize: size });
  const shapes: number[][] = [];
  for (let b = 1; b < predictor.maxBatch; b *= 2) shapes.push([b, 3, size, size]);
  shapes.push([predictor.maxBatch, 3, size, size]);
  await model.prepareInference({ shapes, precision: predictor.precision });
  return { model, predictor, config };
}

