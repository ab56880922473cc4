/**
 * config.json of the supported architectures (real published configs of Qwen2.5, Qwen3 and SmolLM2,
 * and the shipped tiny models), their parameters, and the refusal of every field that would make
 * transformers compute something the lab does not (docs/models.md, "Architectures").
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { MemoryFiles } from '../../src/core/files';
import { loadWeights } from '../../src/core/model/checkpoint';
import { countParameters, parameterShapes, parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { writeSafetensors } from '../../src/core/model/safetensors';
import type { WeightMap } from '../../src/core/model/weights';

/** config.json of Qwen/Qwen2.5-0.5B as published on the Hugging Face hub. */
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** config.json of Qwen/Qwen3-0.6B. */
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** config.json of HuggingFaceTB/SmolLM2-135M. */
const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  is_llama_config: true,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 49152,
};

const embedding = (c: { vocab_size: number; hidden_size: number }) => c.vocab_size * c.hidden_size;

describe('supported architectures', () => {
  it('Qwen2.5-0.5B: q/k/v biases without an attention_bias field, no o_proj bias, tied; 0.49B parameters, 0.36B outside the embedding (model card)', () => {
    const cfg = parseModelConfig(QWEN25_05B);
    expect(cfg).toMatchObject({ model_type: 'qwen2', head_dim: 64, attention_bias: true, tie_word_embeddings: true, rope_theta: 1e6 });
    const shapes = parameterShapes(cfg);
    expect(shapes.get('model.layers.23.self_attn.k_proj.bias')).toEqual([128]);
    expect(shapes.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
    expect(shapes.has('model.layers.0.self_attn.q_norm.weight')).toBe(false);
    expect(shapes.has('lm_head.weight')).toBe(false);
    expect(countParameters(cfg)).toBe(494032768); // the sum of its shapes; the card rounds it to 0.49B
    expect((countParameters(cfg) - embedding(cfg)) / 1e9).toBeCloseTo(0.36, 2);
  });

  it('Qwen3-0.6B: head_dim 128 (not 1024 / 16), q/k norms of [head_dim], no biases; 0.6B parameters, 0.44B outside the embedding (model card)', () => {
    const cfg = parseModelConfig(QWEN3_06B);
    expect(cfg).toMatchObject({ model_type: 'qwen3', head_dim: 128, attention_bias: false });
    const shapes = parameterShapes(cfg);
    expect(shapes.get('model.layers.27.self_attn.q_norm.weight')).toEqual([128]);
    expect(shapes.get('model.layers.27.self_attn.k_norm.weight')).toEqual([128]);
    expect(shapes.get('model.layers.0.self_attn.q_proj.weight')).toEqual([16 * 128, 1024]);
    expect(shapes.get('model.layers.0.self_attn.o_proj.weight')).toEqual([1024, 16 * 128]);
    expect(shapes.has('model.layers.0.self_attn.q_proj.bias')).toBe(false);
    expect(countParameters(cfg)).toBe(596049920); // the card: 0.6B
    expect((countParameters(cfg) - embedding(cfg)) / 1e9).toBeCloseTo(0.44, 2);
    // Qwen3Config's head_dim defaults to 128 when config.json leaves it out.
    const { head_dim: _, ...noHeadDim } = QWEN3_06B;
    expect(parseModelConfig({ ...noHeadDim, hidden_size: 512 }).head_dim).toBe(128);
  });

  it('SmolLM2-135M: Llama, tied, 9 heads on 3 key/value heads; 134.5M parameters', () => {
    const cfg = parseModelConfig(SMOLLM2_135M);
    expect(cfg).toMatchObject({ model_type: 'llama', head_dim: 64, rope_theta: 100000, rms_norm_eps: 1e-5, tie_word_embeddings: true });
    expect(countParameters(cfg)).toBe(134515008);
  });

  it('Llama and Qwen3 with attention_bias carry q/k/v and o_proj biases; a separate lm_head when not tied', () => {
    for (const model_type of ['llama', 'qwen3']) {
      const cfg = parseModelConfig({ ...SMOLLM2_135M, model_type, attention_bias: true, tie_word_embeddings: false, head_dim: 64 });
      const shapes = parameterShapes(cfg);
      expect(shapes.get('model.layers.0.self_attn.o_proj.bias')).toEqual([576]);
      expect(shapes.get('model.layers.0.self_attn.v_proj.bias')).toEqual([192]);
      expect(shapes.get('lm_head.weight')).toEqual([49152, 576]);
    }
  });

  it('the shipped tiny models keep their config (Llama, tied, head_dim 32) and parameters', () => {
    // Both grew from four layers to six (docs/evaluation.md#code-that-computes-the-question).
    for (const [name, layers] of [['thor-tiny', 6], ['thor-tiny-cot', 6]] as const) {
      const raw = JSON.parse(readFileSync(`public/models/${name}/config.json`, 'utf8'));
      const cfg = parseModelConfig(raw);
      expect(cfg).toMatchObject({ model_type: 'llama', hidden_size: 128, head_dim: 32, num_key_value_heads: 2, num_hidden_layers: layers, attention_bias: false, tie_word_embeddings: true, rope_theta: 10000 });
      expect([...parameterShapes(cfg).keys()].filter((n) => /norm|bias/.test(n) && !/layernorm|model\.norm/.test(n))).toEqual([]);
      // 104·128 embedding + each layer's attention 128·128·2 + 128·64·2, MLP 3·128·352 and two norms + final norm
      expect(countParameters(cfg)).toBe(104 * 128 + layers * (2 * 128 * 128 + 2 * 128 * 64 + 3 * 128 * 352 + 2 * 128) + 128);
    }
  });

  it('accepted without effect on the math: attention_dropout (inference), rope_scaling of type "default", transformers 5 rope_parameters', () => {
    expect(parseModelConfig({ ...QWEN3_06B, attention_dropout: 0.1 }).head_dim).toBe(128);
    expect(parseModelConfig({ ...SMOLLM2_135M, rope_scaling: { rope_type: 'default' } }).rope_theta).toBe(100000);
    const { rope_theta: _, ...v5 } = QWEN3_06B;
    expect(parseModelConfig({ ...v5, rope_scaling: undefined, rope_parameters: { rope_type: 'default', rope_theta: 5000000 } }).rope_theta).toBe(5000000);
  });
});

/** The LabError parseModelConfig throws for `raw`. */
function refusal(raw: Record<string, unknown>): LabError {
  try {
    parseModelConfig(raw, 'my-model/config.json');
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    const err = e as LabError;
    expect(err.message).toContain('my-model/config.json');
    return err;
  }
  throw new Error('the config was accepted');
}

describe('refused configs name the field, what the lab runs and what was found', () => {
  it('model_type other than llama, qwen2, qwen3, or none', () => {
    for (const type of ['mistral', 'qwen2_moe', 'qwen3_moe', 'gemma2', 'thor-tiny']) {
      const e = refusal({ ...SMOLLM2_135M, model_type: type });
      expect(e.details).toMatchObject({ field: 'model_type', expected: 'llama, qwen2, qwen3', found: type });
      expect(e.message).toMatch(/unsupported architecture/);
    }
    const { model_type: _, ...none } = SMOLLM2_135M;
    expect(refusal(none).details).toMatchObject({ field: 'model_type', found: 'nothing' });
  });

  it('RoPE scaling of any type, named (linear, dynamic, yarn, llama3, longrope), in rope_scaling or rope_parameters', () => {
    const scalings: Record<string, unknown>[] = [
      { type: 'linear', factor: 2.0 },
      { type: 'dynamic', factor: 4.0 },
      { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 32768 },
      { rope_type: 'llama3', factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
      { rope_type: 'longrope', long_factor: [1], short_factor: [1] },
    ];
    for (const s of scalings) {
      const kind = String(s.rope_type ?? s.type);
      const e = refusal({ ...QWEN25_05B, rope_scaling: s });
      expect(e.details.field).toBe('rope_scaling');
      expect(e.message).toContain(`RoPE scaling "${kind}" is not supported`);
      expect(e.details.expected).toMatch(/null/);
      expect(e.details.found).toContain(kind);
    }
    const v5 = refusal({ ...QWEN3_06B, rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } });
    expect(v5.details.field).toBe('rope_parameters');
    expect(v5.message).toContain('"yarn"');
    expect(refusal({ ...QWEN3_06B, rope_parameters: { rope_type: 'default', rope_theta: 1e4 } }).details).toMatchObject({ field: 'rope_theta', expected: '10000', found: '1000000' });
    expect(refusal({ ...QWEN3_06B, partial_rotary_factor: 0.5 }).details).toMatchObject({ field: 'partial_rotary_factor', found: '0.5' });
  });

  it('sliding-window attention', () => {
    const e = refusal({ ...QWEN25_05B, use_sliding_window: true });
    expect(e.details).toMatchObject({ field: 'use_sliding_window', expected: 'false or absent', found: 'true' });
    const layers = refusal({ ...QWEN3_06B, layer_types: ['full_attention', 'sliding_attention'] });
    expect(layers.details).toMatchObject({ field: 'layer_types', found: 'sliding_attention' });
    expect(parseModelConfig({ ...QWEN3_06B, layer_types: Array(28).fill('full_attention') }).num_hidden_layers).toBe(28);
  });

  it('another activation, MLP biases, Qwen2 without its q/k/v biases, quantized weights, an odd head_dim', () => {
    expect(refusal({ ...SMOLLM2_135M, hidden_act: 'gelu_pytorch_tanh' }).details).toMatchObject({ field: 'hidden_act', expected: 'silu', found: 'gelu_pytorch_tanh' });
    expect(refusal({ ...SMOLLM2_135M, mlp_bias: true }).details).toMatchObject({ field: 'mlp_bias', expected: 'false or absent', found: 'true' });
    expect(refusal({ ...QWEN25_05B, attention_bias: false }).details).toMatchObject({ field: 'attention_bias', expected: 'true or absent', found: 'false' });
    const q = refusal({ ...QWEN3_06B, quantization_config: { quant_method: 'awq', bits: 4 } });
    expect(q.details).toMatchObject({ field: 'quantization_config', found: 'awq' });
    expect(refusal({ ...SMOLLM2_135M, head_dim: 63 }).details).toMatchObject({ field: 'head_dim', expected: 'an even number', found: '63' });
  });
});

describe('weights that disagree with config.json', () => {
  const tinyQwen3 = (overrides: Record<string, unknown> = {}): ModelConfig =>
    parseModelConfig({ ...QWEN3_06B, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, vocab_size: 300, ...overrides });
  const zeros = (cfg: ModelConfig): WeightMap => new Map([...parameterShapes(cfg)].map(([n, shape]) => [n, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }]));
  const loadError = async (cfg: ModelConfig, weights: WeightMap): Promise<LabError> => {
    const e = await loadWeights(new MemoryFiles('ckpt', { 'model.safetensors': writeSafetensors(weights) }), cfg).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(LabError);
    return e as LabError;
  };

  it('a head_dim other than the checkpoint\'s: the first tensor off names itself and both shapes', async () => {
    const e = await loadError(tinyQwen3(), zeros(tinyQwen3({ head_dim: 16 })));
    expect(e.details.field).toBe('model.layers.0.self_attn.q_proj.weight');
    expect(e.message).toContain('expected [128, 64] from config.json, found [64, 64]');
    expect(e.message).toContain('ckpt/model.safetensors');
  });

  it('q_norm of the hidden size instead of head_dim', async () => {
    const cfg = tinyQwen3();
    const w = zeros(cfg);
    w.set('model.layers.0.self_attn.q_norm.weight', { shape: [64], data: new Float32Array(64) });
    const e = await loadError(cfg, w);
    expect(e.details.field).toBe('model.layers.0.self_attn.q_norm.weight');
    expect(e.message).toContain('expected [32] from config.json, found [64]');
  });

  it('a Qwen3 checkpoint read with a Qwen2 config, and the reverse: the tensors one has and the other lacks', async () => {
    const qwen3 = tinyQwen3();
    const qwen2 = parseModelConfig({ ...QWEN25_05B, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, vocab_size: 300 });
    const asQwen2 = await loadError(qwen2, zeros(qwen3));
    expect(asQwen2.message).toMatch(/q_norm\.weight/);
    const asQwen3 = await loadError(qwen3, zeros(qwen2));
    expect(asQwen3.message).toMatch(/q_proj\.bias/);
  });
});
