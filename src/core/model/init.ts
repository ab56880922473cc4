/**
 * Seeded initial weights, in Hugging Face names and layout, so a fresh model is reproducible from
 * (config, seed) on every backend: the numbers are drawn in JS, not by a backend's generator.
 */
import { createRng, type Rng } from '../rng';
import { parameterShapes, type ModelConfig } from './config';
import type { WeightMap } from './weights';

export interface InitOptions {
  seed?: number;
  /** Standard deviation of matrices and embeddings (HF initializer_range; Llama and Qwen2 use 0.02). */
  std?: number;
}

/** Standard normal draw (Box–Muller transform). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng.next(); // in (0, 1]: log(u) is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/**
 * HF's _init_weights for Llama / Qwen2: normal(0, std) for Linear and Embedding weights, zeros for
 * biases, ones for RMSNorm weights. Each tensor draws from its own stream (seeded by name), so
 * adding a layer does not change the others.
 */
export function initWeights(cfg: ModelConfig, options: InitOptions = {}): WeightMap {
  const seed = options.seed ?? 0;
  const std = options.std ?? 0.02;
  const root = createRng(seed);
  const weights: WeightMap = new Map();
  for (const [name, shape] of parameterShapes(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith('norm.weight')) data.fill(1);
    else if (!name.endsWith('.bias')) {
      const rng = root.fork(name);
      for (let i = 0; i < size; i++) data[i] = std * gaussian(rng);
    }
    weights.set(name, { shape: [...shape], data });
  }
  return weights;
}
