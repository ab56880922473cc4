/** FLOP counts of the model's math, against numbers worked out by hand (docs/engine.md#flops). */
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model/config';
import { attentionFlopsPerToken, decodeFlops, forwardFlops, matmulFlopsPerToken, trainFlops } from '../../src/core/model/flops';

// hidden 8, 2 heads of 4 (1 key/value head), MLP 16, 2 layers, vocabulary 10.
const cfg = parseModelConfig({ model_type: 'llama', hidden_size: 8, intermediate_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 10, max_position_embeddings: 64 });

describe('FLOPs from shapes', () => {
  it('counts the weight matrices a token goes through', () => {
    // per layer: q 8·8 + k 8·4 + v 8·4 + o 8·8 + MLP 3·8·16 = 64 + 32 + 32 + 64 + 384 = 576; two layers 1152; head 8·10 = 80.
    expect(matmulFlopsPerToken(cfg)).toBe(2 * (1152 + 80));
  });

  it('counts attention by the positions a token attends to', () => {
    // scores and weighted sum: 2 products × 2 FLOPs × 2 layers × 2 heads × 4 dims × 5 positions
    expect(attentionFlopsPerToken(cfg, 5)).toBe(2 * 2 * 2 * 2 * 4 * 5);
  });

  it('adds them up for a causal forward, a training step and decoding', () => {
    // 3 rows of 4 tokens: 12 tokens of 2464, and 1 + 2 + 3 + 4 = 10 attended positions a row of 64 each.
    expect(forwardFlops(cfg, 3, 4)).toBe(3 * (4 * 2464 + 10 * 64));
    expect(trainFlops(cfg, 3, 4)).toBe(3 * forwardFlops(cfg, 3, 4));
    // after a prompt of 5: new tokens attend to 6, 7 and 8 positions.
    expect(decodeFlops(cfg, 2, 5, 3)).toBe(2 * (3 * 2464 + 21 * 64));
  });
});
