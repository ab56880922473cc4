/**
 * Growing a model deeper (src/core/model/grow.ts): the grown model computes what the old one did,
 * its new layers are really there (they change the logits once their output matrices are not zero),
 * and configs that differ in anything but depth are refused.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { growLayers } from '../../src/core/model/grow';
import { initWeights } from '../../src/core/model/init';
import { Transformer } from '../../src/core/model/transformer';
import type { WeightMap } from '../../src/core/model/weights';
import { selectNodeBackend } from '../../src/node/backend';

const base = { model_type: 'llama', hidden_size: 32, intermediate_size: 48, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 40, max_position_embeddings: 64, tie_word_embeddings: true };
const shallow = parseModelConfig({ ...base, num_hidden_layers: 2 });
const deep = parseModelConfig({ ...base, num_hidden_layers: 4 });

async function logits(cfg: ModelConfig, w: WeightMap): Promise<Float32Array> {
  const model = Transformer.fromWeights(cfg, w);
  const ids = tf.tensor2d([[1, 5, 9, 3, 7, 22, 30, 2]], undefined, 'int32');
  const out = model.logits(ids);
  const data = (await out.data()) as Float32Array;
  tf.dispose([ids, out]);
  model.dispose();
  return data;
}

const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('growLayers', () => {
  it('keeps the logits of the trained model, and its new layers train', async () => {
    await selectNodeBackend(['cpu']);
    const trained = initWeights(shallow, { seed: 3, std: 0.3 });
    const fresh = initWeights(deep, { seed: 4, std: 0.3 });
    const grown = growLayers(shallow, trained, deep, fresh);
    const before = await logits(shallow, trained);
    expect(Math.max(...before.map(Math.abs))).toBeGreaterThan(0.5);
    expect(maxDiff(await logits(deep, grown), before)).toBeLessThan(1e-5);
    // The new layers are the fresh ones (not zeros) except the matrices that write the residual stream.
    expect(grown.get('model.layers.3.self_attn.q_proj.weight')!.data).toEqual(fresh.get('model.layers.3.self_attn.q_proj.weight')!.data);
    expect(grown.get('model.layers.2.mlp.down_proj.weight')!.data.every((v) => v === 0)).toBe(true);
    // Once a new layer's output matrix moves, the logits move: the layer is in the forward pass.
    const moved = new Map(grown);
    moved.set('model.layers.3.mlp.down_proj.weight', fresh.get('model.layers.3.mlp.down_proj.weight')!);
    expect(maxDiff(await logits(deep, moved), before)).toBeGreaterThan(1e-3);
  });

  it('refuses a grown config that differs in width, or is not deeper', () => {
    const trained = initWeights(shallow, { seed: 3 });
    const wide = parseModelConfig({ ...base, hidden_size: 64, num_hidden_layers: 4 });
    expect(() => growLayers(shallow, trained, wide, initWeights(wide, { seed: 1 }))).toThrow(/hidden_size differs/);
    expect(() => growLayers(deep, initWeights(deep, { seed: 1 }), shallow, trained)).toThrow(/more layers/);
  });
});
