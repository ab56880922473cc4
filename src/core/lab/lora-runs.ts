/**
 * Runs that train a LoRA adapter (docs/lora.md#runs): the base model stays frozen, and a checkpoint
 * holds the adapter in PEFT's layout, the base model's config.json and base_model.json, a
 * reference to where the base weights come from; going on loads the base, then the adapter.
 */
import type { RunConfig } from '../config/schema';
import { LabError } from '../errors';
import { bytesToText, MemoryFiles, textToBytes } from '../files';
import { CONFIG_FILE } from '../model/checkpoint';
import { configToJSON, type NewModelSize } from '../model/config';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadAdapter, LoraAdapter, saveAdapter } from '../model/lora';
import { readSafetensorsHeader } from '../model/safetensors';
import type { Transformer } from '../model/transformer';
import type { CheckpointFiles } from '../run/runfile';
import type { ShippedModelName } from './models';

export const BASE_MODEL_FILE = 'base_model.json';

/** Where base weights can be loaded from again (a model picked from files in a browser cannot). */
export type BaseModelSource =
  | { kind: 'shipped'; name?: ShippedModelName }
  | { kind: 'path'; path: string }
  | { kind: 'hub'; repo: string; revision?: string; baseUrl?: string }
  | { kind: 'stored'; runId: string }
  | { kind: 'new'; size: NewModelSize; seed: number };

/** The base model of an adapter: its label (adapter_config.json's base_model_name_or_path) and its source. */
export interface BaseModelRef {
  label: string;
  source?: BaseModelSource;
}

/** Whether stored checkpoint files are an adapter on a base model rather than full weights. */
export function isAdapterCheckpoint(files: CheckpointFiles): boolean {
  return files[ADAPTER_CONFIG_FILE] !== undefined;
}

/** The adapter files of a run's checkpoint (optimiser moments are added by the caller). */
export async function adapterCheckpointFiles(model: Transformer, base: BaseModelRef, metadata: Record<string, string>): Promise<CheckpointFiles> {
  const adapter = model.adapter;
  if (!(adapter instanceof LoraAdapter)) throw new LabError('lora', 'the model carries no LoRA adapter');
  const sink = new MemoryFiles('checkpoint');
  await saveAdapter(sink, adapter, { baseModel: base.label, metadata });
  await sink.write(BASE_MODEL_FILE, textToBytes(JSON.stringify(base, null, 2) + '\n'));
  // The base's architecture, so a run file is complete without the base weights and shapes can be checked first.
  await sink.write(CONFIG_FILE, textToBytes(JSON.stringify(configToJSON(model.cfg), null, 2) + '\n'));
  return Object.fromEntries(sink.files);
}

/** The base model reference of an adapter checkpoint. */
export function readBaseRef(files: CheckpointFiles, label: string): BaseModelRef {
  const bytes = files[BASE_MODEL_FILE];
  const file = `${label}/${BASE_MODEL_FILE}`;
  if (!bytes) throw new LabError('lora', 'the adapter checkpoint does not say which base model it belongs to', { file, expected: BASE_MODEL_FILE, found: Object.keys(files).join(', ') });
  let ref: unknown;
  try {
    ref = JSON.parse(bytesToText(bytes));
  } catch (e) {
    throw new LabError('lora', `not valid JSON: ${(e as Error).message}`, { file });
  }
  if (typeof ref !== 'object' || ref === null || typeof (ref as BaseModelRef).label !== 'string') throw new LabError('lora', 'the base model reference has no label', { file, field: 'label', expected: 'the base model\'s name', found: JSON.stringify(ref) });
  return ref as BaseModelRef;
}

/** Attaches a checkpoint's adapter to its base model (shapes checked against the base). */
export async function attachCheckpointAdapter(model: Transformer, files: CheckpointFiles, label: string, seed = 0): Promise<void> {
  const src = new MemoryFiles(label, Object.fromEntries([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE].filter((n) => files[n]).map((n) => [n, files[n]])));
  const { adapter } = await loadAdapter(src, model.cfg, seed);
  model.attachAdapter(adapter);
}

/** The run step an adapter checkpoint was taken after (its safetensors metadata under `key`). */
export function adapterCheckpointStep(files: CheckpointFiles, key: string): number | undefined {
  const bytes = files[ADAPTER_WEIGHTS_FILE];
  const step = bytes && Number(readSafetensorsHeader(bytes, ADAPTER_WEIGHTS_FILE).metadata[key]);
  return Number.isInteger(step) && (step as number) >= 0 ? (step as number) : undefined;
}

/**
 * Makes the model fit a run's lora settings: a new run with lora.enabled gets a fresh adapter
 * (seeded by the run's seed); a model that carries an adapter already is only trained by the run
 * that made it (resumed), and a resumed run keeps whether it trains an adapter.
 */
export function prepareAdapter(model: Transformer, config: RunConfig, resumed: boolean): void {
  const carries = model.adapter !== undefined;
  if (resumed) {
    if (carries !== config.lora.enabled) {
      throw new LabError('BAD_RUN_CONFIG', carries ? 'this run trains a LoRA adapter' : 'this run trains every weight, not an adapter', { field: 'lora.enabled', expected: String(carries), found: String(config.lora.enabled), hint: 'a run keeps what it trains: start a new run to change it' });
    }
    return;
  }
  if (carries) {
    throw new LabError('lora', 'the loaded model carries a LoRA adapter', {
      field: 'lora.enabled',
      hint: 'go on with the run that trained it (resume), or save the model (the adapter merged in) and train that',
    });
  }
  if (!config.lora.enabled && model.weightFormat === 'f16') {
    throw new LabError('BAD_RUN_CONFIG', "the model's matrices are packed as float16, which do not train: this run would train every weight", {
      field: 'lora.enabled',
      expected: 'true (a LoRA adapter on the packed base)',
      found: 'false',
      hint: 'turn LoRA on, or load the model with float32 weights to train every weight',
    });
  }
  if (config.lora.enabled) {
    const { rank, alpha, dropout, targetModules } = config.lora;
    model.attachAdapter(LoraAdapter.create(model.cfg, { rank, alpha, dropout, targetModules }, config.seed));
  }
}
