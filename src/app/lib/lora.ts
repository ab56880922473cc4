/**
 * The Train panel's LoRA settings (docs/lora.md): on by default for Hugging Face models, off for the
 * lab's own character-level models, target modules as a set of checkboxes over the run config's list.
 */
import { LORA_TARGET_MODULES, type LoraTargetModule, type ModelConfig, type ModelSummary } from '../../core/lab/index';
import type { SettingValues } from './runsettings';

export const LORA_PATHS = { enabled: 'lora.enabled', rank: 'lora.rank', alpha: 'lora.alpha', dropout: 'lora.dropout', targetModules: 'lora.targetModules' } as const;

/**
 * An adapter by default for a Hugging Face model: training all of its weights needs their gradients
 * and two AdamW moments, three more copies of the model, which a browser rarely holds. The tiny
 * models (a few million parameters) train every weight, as their published runs did.
 */
export function loraOnByDefault(model: Pick<ModelSummary, 'tokenizer'> | null | undefined): boolean {
  return model?.tokenizer === 'hf';
}

/** The modules a list field's text names, in the run config's order (unknown names are dropped here; the schema names them when typed elsewhere). */
export function modulesOf(text: unknown): LoraTargetModule[] {
  const named = new Set(String(text ?? '').split(',').map((s) => s.trim()));
  return LORA_TARGET_MODULES.filter((m) => named.has(m));
}

/** The list text with one module switched on or off. */
export function toggleModule(text: unknown, module: LoraTargetModule, on: boolean): string {
  const set = new Set(modulesOf(text));
  if (on) set.add(module);
  else set.delete(module);
  return LORA_TARGET_MODULES.filter((m) => set.has(m)).join(', ');
}

/** The form's values with LoRA switched to the model's default. */
export function withLoraDefault(values: SettingValues, model: Pick<ModelSummary, 'tokenizer'> | null | undefined): SettingValues {
  return { ...values, [LORA_PATHS.enabled]: loraOnByDefault(model) };
}

/** Adapter parameters: r × (in + out) for each target module in each layer (Hu et al. 2021: A is r × in, B is out × r). */
export function adapterParameters(cfg: ModelConfig, rank: number, modules: readonly LoraTargetModule[]): number {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  const i = cfg.intermediate_size;
  const dims: Record<LoraTargetModule, number> = { q_proj: h + q, k_proj: h + kv, v_proj: h + kv, o_proj: q + h, gate_proj: h + i, up_proj: h + i, down_proj: i + h };
  return cfg.num_hidden_layers * modules.reduce((sum, m) => sum + rank * dims[m], 0);
}
