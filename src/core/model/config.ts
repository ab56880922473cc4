import { LabError } from '../errors';

/**
 * Model configuration, in the fields of a Hugging Face `config.json` for the Llama / Qwen2 family,
 * so a folder written here loads in transformers and an HF folder loads here.
 */
export interface ModelConfig {
  model_type: 'llama' | 'qwen2' | 'qwen3' | 'thor-tiny' | string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  rope_theta: number;
  rms_norm_eps: number;
  vocab_size: number;
  tie_word_embeddings: boolean;
  max_position_embeddings: number;
  /** q/k/v projection biases (Qwen2 has them; Llama does not). */
  attention_bias: boolean;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
}

/** Fields a model's config.json must give (a context length guessed wrong would run past the model's positions). */
const REQUIRED_NUMBERS = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'vocab_size',
  'max_position_embeddings',
] as const;

/**
 * Reads an HF config.json object. Fields HF treats as optional get HF's defaults; a missing
 * required field, or one of the wrong type, is an error naming the field.
 */
export function parseModelConfig(raw: unknown, file = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new LabError('config', 'a model config must be a JSON object', { file, expected: 'object', found: Array.isArray(raw) ? 'array' : typeof raw });
  }
  const r = raw as Record<string, unknown>;
  for (const field of REQUIRED_NUMBERS) {
    const v = r[field];
    if (v === undefined) throw new LabError('config', 'missing required field', { file, field, expected: 'a positive integer', found: 'nothing', hint: 'add it to config.json' });
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new LabError('config', 'bad value', { file, field, expected: 'a positive integer', found: JSON.stringify(v) });
  }
  const num = (field: string, dflt: number, integer = false): number => {
    const v = r[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
      throw new LabError('config', 'bad value', { file, field, expected: integer ? 'a positive integer' : 'a positive number', found: JSON.stringify(v) });
    }
    return v;
  };
  const bool = (field: string, dflt: boolean): boolean => {
    const v = r[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw new LabError('config', 'bad value', { file, field, expected: 'true or false', found: JSON.stringify(v) });
    return v;
  };
  const hidden = r.hidden_size as number;
  const heads = r.num_attention_heads as number;
  const modelType = typeof r.model_type === 'string' ? r.model_type : 'llama';
  const cfg: ModelConfig = {
    model_type: modelType,
    hidden_size: hidden,
    intermediate_size: r.intermediate_size as number,
    num_hidden_layers: r.num_hidden_layers as number,
    num_attention_heads: heads,
    num_key_value_heads: num('num_key_value_heads', heads, true),
    head_dim: num('head_dim', hidden / heads, true),
    rope_theta: num('rope_theta', 10000),
    rms_norm_eps: num('rms_norm_eps', 1e-6),
    vocab_size: r.vocab_size as number,
    tie_word_embeddings: bool('tie_word_embeddings', false),
    max_position_embeddings: r.max_position_embeddings as number,
    // Qwen2 always has q/k/v biases and its config.json has no attention_bias field.
    attention_bias: bool('attention_bias', modelType === 'qwen2'),
    bos_token_id: (r.bos_token_id as number | null | undefined) ?? null,
    eos_token_id: (r.eos_token_id as number | number[] | null | undefined) ?? null,
  };
  if (!Number.isInteger(cfg.head_dim)) throw new LabError('config', 'hidden_size is not a multiple of num_attention_heads and head_dim is not given', { file, field: 'head_dim', expected: 'an integer', found: String(cfg.head_dim) });
  if (cfg.num_attention_heads % cfg.num_key_value_heads !== 0) {
    throw new LabError('config', 'num_attention_heads must be a multiple of num_key_value_heads (grouped-query attention)', { file, field: 'num_key_value_heads', expected: `a divisor of ${cfg.num_attention_heads}`, found: String(cfg.num_key_value_heads) });
  }
  return cfg;
}

/** The config.json object written next to a checkpoint (HF field names; loads in transformers). */
export function configToJSON(cfg: ModelConfig): Record<string, unknown> {
  const architectures: Record<string, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' };
  return {
    architectures: [architectures[cfg.model_type] ?? 'LlamaForCausalLM'],
    ...cfg,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
}

/** Number of parameters a config implies (embedding, layers, final norm, LM head unless tied). */
export function countParameters(cfg: ModelConfig): number {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  const attn = h * q + 2 * h * kv + q * h + (cfg.attention_bias ? q + 2 * kv : 0);
  const mlp = 3 * h * cfg.intermediate_size;
  const layer = attn + mlp + 2 * h;
  const embed = cfg.vocab_size * h;
  return embed + cfg.num_hidden_layers * layer + h + (cfg.tie_word_embeddings ? 0 : embed);
}

/**
 * Every parameter the model has, by its Hugging Face name, with its shape (PyTorch layout:
 * Linear weights are [out, in]). Checkpoints are validated against this.
 */
export function parameterShapes(cfg: ModelConfig): Map<string, number[]> {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  const shapes = new Map<string, number[]>();
  shapes.set('model.embed_tokens.weight', [cfg.vocab_size, h]);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [h]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [q, h]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kv, h]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kv, h]);
    if (cfg.attention_bias) {
      shapes.set(`${p}.self_attn.q_proj.bias`, [q]);
      shapes.set(`${p}.self_attn.k_proj.bias`, [kv]);
      shapes.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [h, q]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [cfg.intermediate_size, h]);
    shapes.set(`${p}.mlp.up_proj.weight`, [cfg.intermediate_size, h]);
    shapes.set(`${p}.mlp.down_proj.weight`, [h, cfg.intermediate_size]);
  }
  shapes.set('model.norm.weight', [h]);
  if (!cfg.tie_word_embeddings) shapes.set('lm_head.weight', [cfg.vocab_size, h]);
  return shapes;
}

/** The size of a new character-level model, as the Model panel asks for it. */
export interface NewModelSize {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  context: number;
}

/** The HF config of a new Llama-style character model of that size (tied embeddings). */
export function newModelConfig(size: NewModelSize, tokenizer: { vocabSize: number; bosId?: number; eosId?: number }): ModelConfig {
  return parseModelConfig(
    {
      model_type: 'llama',
      num_hidden_layers: size.layers,
      hidden_size: size.hidden,
      num_attention_heads: size.heads,
      num_key_value_heads: size.kvHeads,
      intermediate_size: size.intermediate,
      max_position_embeddings: size.context,
      vocab_size: tokenizer.vocabSize,
      bos_token_id: tokenizer.bosId,
      eos_token_id: tokenizer.eosId,
      tie_word_embeddings: true,
    },
    'new model',
  );
}
