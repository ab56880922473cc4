import { LabError } from '../errors';

/** The architectures the transformer runs (docs/models.md, "Architectures"). */
export const MODEL_TYPES = ['llama', 'qwen2', 'qwen3'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

/**
 * Model configuration, in the fields of a Hugging Face `config.json` for the Llama / Qwen2 / Qwen3
 * family, so a folder written here loads in transformers and an HF folder loads here.
 */
export interface ModelConfig {
  model_type: ModelType;
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
  /**
   * Attention projection biases: q/k/v on Qwen2 (always), q/k/v and o on Llama and Qwen3 when set
   * (transformers' attention_bias).
   */
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
  const modelType = refuseUnsupported(r, file);
  const hidden = r.hidden_size as number;
  const heads = r.num_attention_heads as number;
  const cfg: ModelConfig = {
    model_type: modelType,
    hidden_size: hidden,
    intermediate_size: r.intermediate_size as number,
    num_hidden_layers: r.num_hidden_layers as number,
    num_attention_heads: heads,
    num_key_value_heads: num('num_key_value_heads', heads, true),
    // Qwen3Config's head_dim defaults to 128, not hidden_size / num_attention_heads.
    head_dim: num('head_dim', modelType === 'qwen3' ? 128 : hidden / heads, true),
    rope_theta: ropeTheta(r, file, num('rope_theta', 10000)),
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
  if (cfg.head_dim % 2 !== 0) throw new LabError('config', 'rotary embeddings rotate the two halves of each head', { file, field: 'head_dim', expected: 'an even number', found: String(cfg.head_dim) });
  if (cfg.num_attention_heads % cfg.num_key_value_heads !== 0) {
    throw new LabError('config', 'num_attention_heads must be a multiple of num_key_value_heads (grouped-query attention)', { file, field: 'num_key_value_heads', expected: `a divisor of ${cfg.num_attention_heads}`, found: String(cfg.num_key_value_heads) });
  }
  return cfg;
}

/**
 * Refuses what would make transformers compute something other than this transformer does
 * (docs/models.md, "Architectures"), naming the field, what the lab runs and what was found.
 * Returns the model type.
 */
function refuseUnsupported(r: Record<string, unknown>, file: string): ModelType {
  const given = (v: unknown) => v !== undefined && v !== null;
  const shown = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const refuse = (field: string, message: string, expected: string, found: unknown, hint?: string): never => {
    throw new LabError('config', message, { file, field, expected, found: found === undefined ? 'nothing' : shown(found), hint });
  };
  const type = r.model_type;
  if (typeof type !== 'string' || !(MODEL_TYPES as readonly string[]).includes(type)) {
    refuse('model_type', 'unsupported architecture', MODEL_TYPES.join(', '), type, 'The lab runs dense Llama, Qwen2 / Qwen2.5 and Qwen3 decoders');
  }
  if (given(r.hidden_act) && r.hidden_act !== 'silu') refuse('hidden_act', 'unsupported activation: the MLP is SwiGLU', 'silu', r.hidden_act);
  if (given(r.mlp_bias) && r.mlp_bias !== false) refuse('mlp_bias', 'MLP biases are not supported', 'false or absent', r.mlp_bias);
  if (type === 'qwen2' && given(r.attention_bias) && r.attention_bias !== true) {
    refuse('attention_bias', 'Qwen2 always has q/k/v biases (transformers ignores this field for it)', 'true or absent', r.attention_bias);
  }
  // Scaled RoPE (linear, dynamic, yarn, llama3, longrope) changes every angle; "default" is plain RoPE.
  for (const field of ['rope_scaling', 'rope_parameters']) {
    const v = r[field];
    if (!given(v)) continue;
    const kind = typeof v === 'object' && !Array.isArray(v) ? ((v as Record<string, unknown>).rope_type ?? (v as Record<string, unknown>).type) : undefined;
    if (kind !== 'default' && !(field === 'rope_parameters' && kind === undefined)) {
      refuse(field, `RoPE scaling ${kind === undefined ? '' : `"${shown(kind)}" `}is not supported: the lab runs plain RoPE`, 'null, absent or rope_type "default"', v);
    }
  }
  if (given(r.partial_rotary_factor) && r.partial_rotary_factor !== 1) refuse('partial_rotary_factor', 'RoPE on part of each head is not supported', '1 or absent', r.partial_rotary_factor);
  if (r.use_sliding_window === true) refuse('use_sliding_window', 'sliding-window attention is not supported: every layer attends to all earlier tokens', 'false or absent', true);
  if (Array.isArray(r.layer_types)) {
    const other = r.layer_types.find((t) => t !== 'full_attention');
    if (other !== undefined) refuse('layer_types', 'only full attention is supported', 'every layer "full_attention"', other);
  }
  if (given(r.quantization_config)) {
    const method = (r.quantization_config as Record<string, unknown>).quant_method;
    refuse('quantization_config', 'quantized checkpoints are not supported', 'absent (float32, float16 or bfloat16 weights)', method ?? r.quantization_config, 'Use the unquantized checkpoint');
  }
  return type as ModelType;
}

/** rope_theta, or transformers 5's rope_parameters.rope_theta (refused when the two disagree). */
function ropeTheta(r: Record<string, unknown>, file: string, fromField: number): number {
  const params = r.rope_parameters as Record<string, unknown> | null | undefined;
  const theta = params?.rope_theta;
  if (theta === undefined || theta === null) return fromField;
  if (typeof theta !== 'number' || !Number.isFinite(theta) || theta <= 0) throw new LabError('config', 'bad value', { file, field: 'rope_parameters.rope_theta', expected: 'a positive number', found: JSON.stringify(theta) });
  if (r.rope_theta !== undefined && r.rope_theta !== null && r.rope_theta !== theta) {
    throw new LabError('config', 'rope_theta and rope_parameters.rope_theta disagree', { file, field: 'rope_theta', expected: String(theta), found: JSON.stringify(r.rope_theta) });
  }
  return theta;
}

/** Query/key RMSNorm over each head before RoPE (Qwen3's q_norm / k_norm). */
export function hasQKNorm(cfg: ModelConfig): boolean {
  return cfg.model_type === 'qwen3';
}

/** o_proj bias: Llama and Qwen3 follow attention_bias; Qwen2 never has one. */
function hasOutputBias(cfg: ModelConfig): boolean {
  return cfg.attention_bias && cfg.model_type !== 'qwen2';
}

/** The config.json object written next to a checkpoint (HF field names; loads in transformers). */
export function configToJSON(cfg: ModelConfig): Record<string, unknown> {
  const architectures: Record<ModelType, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' };
  return {
    architectures: [architectures[cfg.model_type]],
    ...cfg,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
}

/** Number of parameters a config implies (embedding, layers, final norm, LM head unless tied). */
export function countParameters(cfg: ModelConfig): number {
  let n = 0;
  for (const shape of parameterShapes(cfg).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
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
    if (hasQKNorm(cfg)) {
      shapes.set(`${p}.self_attn.q_norm.weight`, [cfg.head_dim]);
      shapes.set(`${p}.self_attn.k_norm.weight`, [cfg.head_dim]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [h, q]);
    if (hasOutputBias(cfg)) shapes.set(`${p}.self_attn.o_proj.bias`, [h]);
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
