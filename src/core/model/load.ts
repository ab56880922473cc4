/**
 * A model folder straight onto the device, in the order that keeps memory low (docs/models.md):
 * config.json first (a memory check can refuse the model there, before any weights are read or
 * downloaded), the tokenizer, then the weights tensor by tensor, each dropped once it is on the
 * device, so the peak stays near the model's own float32 size.
 */
import type { FileSource } from '../files';
import { loadTokenizer } from '../tokenizer/index';
import type { Tokenizer } from '../tokenizer/types';
import { checkTokenizer, loadConfig, streamWeights } from './checkpoint';
import type { ModelConfig } from './config';
import { Transformer, type WeightFormat } from './transformer';

export interface LoadedModel {
  config: ModelConfig;
  tokenizer: Tokenizer;
  model: Transformer;
}

export interface StreamLoadOptions {
  /** Runs after config.json is read and before any weights are: throw to refuse the model (a memory budget), or fetch them. */
  beforeWeights?: (config: ModelConfig) => void | Promise<void>;
  /** 'f16': each matrix packed as float16 pairs as it arrives (WebGPU; docs/engine.md#packed-f16-weights). */
  weights?: WeightFormat;
}

export async function loadModelStreaming(src: FileSource, options: StreamLoadOptions = {}): Promise<LoadedModel> {
  const config = await loadConfig(src);
  await options.beforeWeights?.(config);
  const tokenizer = await loadTokenizer(src);
  checkTokenizer(config, tokenizer, src.label);
  const model = await Transformer.fromStream(config, (visit) => streamWeights(src, config, visit), src.label, { weights: options.weights });
  return { config, tokenizer, model };
}
