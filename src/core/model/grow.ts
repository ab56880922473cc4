/**
 * Growing a trained model deeper without changing what it computes (docs/models.md#growing-a-model).
 *
 * The new decoder layers go on top of the old ones. Each starts from the fresh model's seeded
 * weights, except the two matrices that write into the residual stream (the attention's o_proj and
 * the MLP's down_proj), which start at zero: a new layer then adds nothing to the stream, so the grown
 * model's logits equal the old model's until training moves them. The same idea as Net2Net's
 * function-preserving deepening (Chen et al. 2016, arXiv 1511.05641), with identity residual blocks.
 */
import type { ModelConfig } from './config';
import { parameterShapes } from './config';
import { LabError } from '../errors';
import type { WeightMap } from './weights';

/**
 * The weights of `grown` (a config with more layers than `old`, otherwise the same) made from the
 * trained weights of `old` and the seeded weights `fresh` of the grown architecture.
 */
export function growLayers(old: ModelConfig, trained: WeightMap, grown: ModelConfig, fresh: WeightMap): WeightMap {
  for (const field of ['hidden_size', 'intermediate_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'vocab_size', 'tie_word_embeddings', 'attention_bias'] as const) {
    if (old[field] !== grown[field]) {
      throw new LabError('model', `a model grows by layers only: ${field} differs`, { field, expected: String(old[field]), found: String(grown[field]) });
    }
  }
  if (grown.num_hidden_layers <= old.num_hidden_layers) {
    throw new LabError('model', 'the grown model must have more layers than the trained one', {
      field: 'num_hidden_layers',
      expected: `more than ${old.num_hidden_layers}`,
      found: String(grown.num_hidden_layers),
    });
  }
  const oldNames = parameterShapes(old);
  const out: WeightMap = new Map();
  for (const [name, shape] of parameterShapes(grown)) {
    if (oldNames.has(name)) {
      const t = trained.get(name);
      if (!t) throw new LabError('weights', `tensor "${name}" is missing from the trained weights`, { field: name });
      out.set(name, { shape: [...t.shape], data: Float32Array.from(t.data) });
      continue;
    }
    const f = fresh.get(name);
    if (!f) throw new LabError('weights', `tensor "${name}" is missing from the fresh weights`, { field: name });
    const writesResidual = name.endsWith('.self_attn.o_proj.weight') || name.endsWith('.self_attn.o_proj.bias') || name.endsWith('.mlp.down_proj.weight');
    out.set(name, { shape: [...shape], data: writesResidual ? new Float32Array(f.data.length) : Float32Array.from(f.data) });
  }
  return out;
}
