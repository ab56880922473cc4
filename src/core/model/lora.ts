/**
 * LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), docs/lora.md:
 * a Linear layer y = x·W keeps W frozen and learns a low-rank update,
 *
 *   y = x·W + (alpha / r) · dropout(x)·A·B        A [in, r], B [r, out]
 *
 * A starts uniform in ±1/sqrt(in) (PEFT's kaiming_uniform_ with a = sqrt(5)), B at zero, so an
 * untrained adapter leaves the model unchanged. Files follow PEFT's layout (docs/lora.md#files):
 * adapter_config.json and adapter_model.safetensors with tensors named
 * base_model.model.<module>.lora_A.weight [r, in] and ...lora_B.weight [out, r].
 */
import * as tf from '@tensorflow/tfjs';
import { LORA_TARGET_MODULES, type LoraTargetModule } from '../config/schema';
import { LabError } from '../errors';
import { bytesToText, textToBytes, type FileSink, type FileSource } from '../files';
import { createRng, type Rng } from '../rng';
import type { Tokenizer } from '../tokenizer/types';
import { saveModelFolder } from './checkpoint';
import { parameterShapes, type ModelConfig } from './config';
import { linear } from './ops';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors';
import type { LinearAdapter, Transformer } from './transformer';
import { transposeData, type WeightMap } from './weights';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PEFT's prefix of every tensor name: PeftModel.base_model (the LoRA tuner) .model (the HF model). */
const PEFT_PREFIX = 'base_model.model.';

export interface LoraSettings {
  /** r: the rank of A and B. */
  rank: number;
  /** lora_alpha: the update is scaled by alpha / r. */
  alpha: number;
  /** Dropout on the adapter's input, in training only. */
  dropout: number;
  targetModules: readonly LoraTargetModule[];
  /** rsLoRA (Kalajdzievski 2023) scales by alpha / sqrt(r); only read from PEFT files that ask for it. */
  useRslora?: boolean;
}

/** PEFT LoraConfig's defaults (r = 8, lora_alpha = 8, lora_dropout = 0.0; q_proj and v_proj for llama / qwen2 / qwen3). */
export const LORA_DEFAULTS: LoraSettings = { rank: 8, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'] };

const ATTENTION_MODULES: readonly string[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

/** The Hugging Face module name of a target in layer i, e.g. model.layers.3.self_attn.q_proj. */
export function loraModuleName(layer: number, target: LoraTargetModule): string {
  return `model.layers.${layer}.${ATTENTION_MODULES.includes(target) ? 'self_attn' : 'mlp'}.${target}`;
}

/** PEFT's tensor names for a module's A and B. */
export function peftTensorNames(module: string): { a: string; b: string } {
  return { a: `${PEFT_PREFIX}${module}.lora_A.weight`, b: `${PEFT_PREFIX}${module}.lora_B.weight` };
}

/** The scale the update is multiplied by: alpha / r (alpha / sqrt(r) with rsLoRA). */
export function loraScale(s: Pick<LoraSettings, 'rank' | 'alpha' | 'useRslora'>): number {
  return s.useRslora ? s.alpha / Math.sqrt(s.rank) : s.alpha / s.rank;
}

/** Every adapted module with its Linear's [in, out], from the base config. */
function adaptedModules(cfg: ModelConfig, targets: readonly LoraTargetModule[]): Map<string, { inFeatures: number; outFeatures: number }> {
  const shapes = parameterShapes(cfg);
  const out = new Map<string, { inFeatures: number; outFeatures: number }>();
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    for (const t of LORA_TARGET_MODULES) {
      if (!targets.includes(t)) continue;
      const module = loraModuleName(i, t);
      const [outFeatures, inFeatures] = shapes.get(`${module}.weight`)!;
      out.set(module, { inFeatures, outFeatures });
    }
  }
  return out;
}

function checkSettings(s: LoraSettings, file: string): void {
  const bad = (field: string, expected: string, found: unknown) => new LabError('lora', 'invalid LoRA setting', { file, field, expected, found: JSON.stringify(found) });
  if (!Number.isInteger(s.rank) || s.rank < 1) throw bad('r', 'a whole number >= 1', s.rank);
  if (!(typeof s.alpha === 'number' && s.alpha > 0)) throw bad('lora_alpha', 'a number > 0', s.alpha);
  if (!(typeof s.dropout === 'number' && s.dropout >= 0 && s.dropout < 1)) throw bad('lora_dropout', 'a number in [0, 1)', s.dropout);
  if (s.targetModules.length === 0) throw bad('target_modules', `some of ${LORA_TARGET_MODULES.join(', ')}`, s.targetModules);
  const unknown = s.targetModules.filter((t) => !(LORA_TARGET_MODULES as readonly string[]).includes(t));
  if (unknown.length > 0) {
    throw new LabError('lora', `unknown target module(s): ${unknown.join(', ')}`, { file, field: 'target_modules', expected: `some of ${LORA_TARGET_MODULES.join(', ')}`, found: JSON.stringify(s.targetModules), hint: 'the lab adapts the Linear layers of Llama / Qwen decoders only' });
  }
}

/** Transpose of a row-major [rows, cols] matrix. */

interface Pair {
  /** [in, r] on the device (PEFT stores its transpose). */
  a: tf.Variable;
  /** [r, out] on the device (PEFT stores its transpose). */
  b: tf.Variable;
}

/**
 * Checks PEFT-layout adapter weights against a base config and settings: every A [r, in] and B [out, r]
 * present with its shape (an adapter for another base names the tensor and both shapes), nothing else.
 */
export function checkAdapterWeights(cfg: ModelConfig, settings: LoraSettings, weights: WeightMap, source = ADAPTER_WEIGHTS_FILE): void {
  checkSettings(settings, source);
  const expected = new Map<string, number[]>();
  for (const [module, { inFeatures, outFeatures }] of adaptedModules(cfg, settings.targetModules)) {
    const names = peftTensorNames(module);
    expected.set(names.a, [settings.rank, inFeatures]);
    expected.set(names.b, [outFeatures, settings.rank]);
  }
  const hint = 'The adapter was trained on another base model (or another rank): load it onto the base named in its adapter_config.json';
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (!t) throw new LabError('lora', `adapter tensor "${name}" is missing`, { file: source, field: name, expected: `[${shape.join(', ')}]`, found: 'nothing', hint });
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) || t.data.length !== shape[0] * shape[1]) {
      throw new LabError('lora', `adapter tensor "${name}" does not fit the base model`, { file: source, field: name, expected: `[${shape.join(', ')}] (from the base config and r = ${settings.rank})`, found: `[${t.shape.join(', ')}]`, hint });
    }
  }
  const extra = [...weights.keys()].filter((n) => !expected.has(n));
  if (extra.length > 0) {
    throw new LabError('lora', `${extra.length} tensor(s) that this adapter's settings and base model do not have: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`, {
      file: source,
      field: extra[0],
      expected: `lora_A / lora_B of ${settings.targetModules.join(', ')} in ${cfg.num_hidden_layers} layers`,
      hint: 'target_modules in adapter_config.json disagrees with the tensors, or the adapter belongs to a deeper model',
    });
  }
}

export class LoraAdapter implements LinearAdapter {
  readonly settings: LoraSettings;
  readonly scale: number;
  /** The adapters by HF module name (model.layers.0.self_attn.q_proj). */
  readonly modules = new Map<string, Pair>();
  /** Dropout applies while this is set (the loss of a training step: withAdapterDropout). */
  training = false;
  private readonly names = new Map<tf.Variable, string>();
  /** Seeds the dropout masks, with the optimiser step (beginStep): a resumed run draws the masks an unbroken one would. */
  readonly seed: number;
  private dropoutRng: Rng;

  /** From PEFT-layout weights (names and shapes checked against the base config). */
  private constructor(cfg: ModelConfig, settings: LoraSettings, weights: WeightMap, seed: number) {
    this.settings = { ...settings, targetModules: [...settings.targetModules] };
    this.scale = loraScale(settings);
    this.seed = seed;
    this.dropoutRng = createRng(seed).fork('lora dropout');
    for (const [module, { inFeatures, outFeatures }] of adaptedModules(cfg, settings.targetModules)) {
      const names = peftTensorNames(module);
      const a = weights.get(names.a)!;
      const b = weights.get(names.b)!;
      const pair = tf.tidy(() => ({
        a: tf.variable(tf.tensor2d(transposeData(a.data, settings.rank, inFeatures), [inFeatures, settings.rank]), true),
        b: tf.variable(tf.tensor2d(transposeData(b.data, outFeatures, settings.rank), [settings.rank, outFeatures]), true),
      }));
      this.modules.set(module, pair);
      this.names.set(pair.a, names.a);
      this.names.set(pair.b, names.b);
    }
  }

  /** A fresh adapter for a base config: A uniform in ±1/sqrt(in) (PEFT's kaiming_uniform_, a = sqrt(5)), B zeros, seeded by module name. */
  static create(cfg: ModelConfig, settings: LoraSettings, seed = 0): LoraAdapter {
    checkSettings(settings, 'lora settings');
    const root = createRng(seed).fork('lora init');
    const weights: WeightMap = new Map();
    for (const [module, { inFeatures, outFeatures }] of adaptedModules(cfg, settings.targetModules)) {
      const names = peftTensorNames(module);
      // kaiming_uniform_(a) bound: gain·sqrt(3 / fan_in), gain = sqrt(2 / (1 + a²)) = sqrt(1/3) for a = sqrt(5).
      const bound = 1 / Math.sqrt(inFeatures);
      const rng = root.fork(names.a);
      const a = new Float32Array(settings.rank * inFeatures);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
      weights.set(names.a, { shape: [settings.rank, inFeatures], data: a });
      weights.set(names.b, { shape: [outFeatures, settings.rank], data: new Float32Array(outFeatures * settings.rank) });
    }
    return new LoraAdapter(cfg, settings, weights, seed);
  }

  /**
   * An adapter from PEFT-layout weights for a base config. An adapter made for another base is
   * refused (the tensor and both shapes named), as are tensors that are not the settings' A and B.
   */
  static fromWeights(cfg: ModelConfig, settings: LoraSettings, weights: WeightMap, source = ADAPTER_WEIGHTS_FILE, seed = 0): LoraAdapter {
    checkAdapterWeights(cfg, settings, weights, source);
    return new LoraAdapter(cfg, settings, weights, seed);
  }

  /** y + (alpha/r)·dropout(x)·A·B for module `name`; y unchanged where the module has no adapter. */
  apply(x: tf.Tensor2D, name: string, y: tf.Tensor2D): tf.Tensor2D {
    const pair = this.modules.get(name);
    if (!pair) return y;
    const input = this.training && this.settings.dropout > 0 ? (tf.dropout(x, this.settings.dropout, undefined, this.dropoutRng.int(0, 2 ** 31 - 1)) as tf.Tensor2D) : x;
    // The scale multiplies the narrow [N, r] product, not the [N, out] one.
    return tf.add(y, linear(tf.mul(linear(input, pair.a as tf.Tensor2D), this.scale) as tf.Tensor2D, pair.b as tf.Tensor2D));
  }

  /** Starts the dropout masks of optimiser step `step` (see withAdapterDropout). */
  beginStep(step: number): void {
    this.dropoutRng = createRng(this.seed).fork(`lora dropout ${step}`);
  }

  /** A and B of every module, in module order. */
  variables(): tf.Variable[] {
    return [...this.modules.values()].flatMap((p) => [p.a, p.b]);
  }

  /** PEFT's name of an adapter variable. */
  nameOf(variable: tf.Variable): string | undefined {
    return this.names.get(variable);
  }

  numParameters(): number {
    return this.variables().reduce((n, v) => n + v.size, 0);
  }

  /** The adapter's tensors in PEFT's names and layout (A [r, in], B [out, r]). */
  async exportWeights(): Promise<WeightMap> {
    const out: WeightMap = new Map();
    const r = this.settings.rank;
    for (const [module, { a, b }] of this.modules) {
      const names = peftTensorNames(module);
      const inFeatures = a.shape[0] as number;
      const outFeatures = b.shape[1] as number;
      out.set(names.a, { shape: [r, inFeatures], data: transposeData((await a.data()) as Float32Array, inFeatures, r) });
      out.set(names.b, { shape: [outFeatures, r], data: transposeData((await b.data()) as Float32Array, r, outFeatures) });
    }
    return out;
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
    this.modules.clear();
    this.names.clear();
  }
}

/** Where an adapter file keeps the seed of its dropout masks (safetensors metadata). */
const SEED_KEY = 'thor_lab_lora_seed';

/** Starts a training step's dropout masks from the adapter's seed and the optimiser's step count. */
export function beginAdapterStep(model: Transformer, step: number): void {
  if (model.adapter instanceof LoraAdapter) model.adapter.beginStep(step);
}

/** Runs a training forward: the model's LoRA dropout applies inside `f` only. */
export function withAdapterDropout<T>(model: Transformer, f: () => T): T {
  const adapter = model.adapter;
  if (!(adapter instanceof LoraAdapter)) return f();
  adapter.training = true;
  try {
    return f();
  } finally {
    adapter.training = false;
  }
}

/**
 * Base weights (HF names and layout) with the adapter merged in: W[out, in] += scale · B[out, r] · A[r, in]
 * on PEFT-layout A and B. The base map is not changed.
 */
export function mergeWeights(base: WeightMap, adapter: WeightMap, settings: LoraSettings): WeightMap {
  const scale = loraScale(settings);
  const out: WeightMap = new Map(base);
  const r = settings.rank;
  for (const [name, a] of adapter) {
    if (!name.endsWith('.lora_A.weight')) continue;
    const module = name.slice(PEFT_PREFIX.length, -'.lora_A.weight'.length);
    const b = adapter.get(peftTensorNames(module).b)!;
    const w = base.get(`${module}.weight`);
    if (!w) throw new LabError('lora', `the base model has no "${module}.weight" to merge into`, { field: name, hint: 'merge the adapter into the base model it was trained on' });
    const [outFeatures, inFeatures] = w.shape;
    const data = Float32Array.from(w.data);
    for (let o = 0; o < outFeatures; o++) {
      for (let k = 0; k < r; k++) {
        const s = scale * b.data[o * r + k];
        if (s === 0) continue;
        const row = o * inFeatures;
        const aRow = k * inFeatures;
        for (let i = 0; i < inFeatures; i++) data[row + i] += s * a.data[aRow + i];
      }
    }
    out.set(`${module}.weight`, { shape: [...w.shape], data });
  }
  return out;
}

// ---------------------------------------------------------------- PEFT files

/** PEFT's adapter_config.json for these settings (the LoraConfig fields a PEFT loader reads, with PEFT's values for what the lab does not vary). */
export function adapterConfigJSON(settings: LoraSettings, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    revision: null,
    inference_mode: true,
    r: settings.rank,
    lora_alpha: settings.alpha,
    lora_dropout: settings.dropout,
    target_modules: [...settings.targetModules].sort(),
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: settings.useRslora ?? false,
    use_dora: false,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

/** Settings and base model name from an adapter_config.json; what the lab cannot apply is refused, naming the field. */
export function parseAdapterConfig(raw: unknown, file = ADAPTER_CONFIG_FILE): { settings: LoraSettings; baseModel: string | undefined } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LabError('lora', 'not a JSON object', { file, expected: "PEFT's adapter_config.json", found: JSON.stringify(raw)?.slice(0, 60) });
  const c = raw as Record<string, unknown>;
  const refuse = (field: string, expected: string, hint?: string) => new LabError('lora', 'this adapter cannot be applied', { file, field, expected, found: JSON.stringify(c[field]), hint });
  if (c.peft_type !== 'LORA') throw refuse('peft_type', '"LORA"', 'only LoRA adapters load here');
  if (c.bias !== undefined && c.bias !== 'none') throw refuse('bias', '"none"', 'adapters that train biases are not supported');
  if (c.fan_in_fan_out === true) throw refuse('fan_in_fan_out', 'false', 'Llama / Qwen Linear layers are not Conv1D');
  // Variants of PEFT's LoraConfig that change the math: each must be off.
  const switches: Record<string, string> = { use_dora: 'DoRA', lora_bias: 'a bias on lora_B', use_qalora: 'QA-LoRA', use_bdlora: 'block-diagonal LoRA' };
  for (const [field, what] of Object.entries(switches)) if (c[field] !== undefined && c[field] !== null && c[field] !== false) throw refuse(field, 'false or absent', `${what} is not supported`);
  // PiSSA, OLoRA, CorDA, LoftQ and similar initialisations change the base weights too: such an adapter needs its modified base.
  const init = c.init_lora_weights;
  if (typeof init === 'string' && init !== 'gaussian') throw refuse('init_lora_weights', 'true, false or "gaussian"', 'this initialisation changes the base weights as well: save the adapter converted to plain LoRA (PEFT: path_initial_model_for_weight_conversion)');
  const unsetFields = ['layers_to_transform', 'modules_to_save', 'layer_replication', 'target_parameters', 'trainable_token_indices', 'exclude_modules'];
  for (const field of unsetFields) {
    const v = c[field];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) throw refuse(field, 'null', 'the lab adapts the target modules of every layer, and nothing else');
  }
  for (const field of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = c[field];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0)) throw refuse(field, '{} (one rank and alpha for every module)');
  }
  const targets = c.target_modules;
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string')) throw refuse('target_modules', 'a list of module names', 'a regular expression in target_modules cannot be checked here: list the modules');
  const settings: LoraSettings = {
    rank: c.r as number,
    alpha: c.lora_alpha as number,
    dropout: (c.lora_dropout ?? 0) as number,
    targetModules: targets as LoraTargetModule[],
    useRslora: c.use_rslora === true,
  };
  checkSettings(settings, file);
  return { settings, baseModel: typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : undefined };
}

/** Writes adapter_config.json and adapter_model.safetensors (PEFT's layout). Returns the file names. */
export async function saveAdapter(sink: FileSink, adapter: LoraAdapter, options: { baseModel: string; metadata?: Record<string, string> }): Promise<string[]> {
  await sink.write(ADAPTER_CONFIG_FILE, textToBytes(JSON.stringify(adapterConfigJSON(adapter.settings, options.baseModel), null, 2) + '\n'));
  await sink.write(ADAPTER_WEIGHTS_FILE, writeSafetensors(await adapter.exportWeights(), { format: 'pt', [SEED_KEY]: String(adapter.seed), ...options.metadata }));
  return [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE];
}

/** An adapter folder as plain data, checked against a base config: settings, base name, PEFT-layout weights and their safetensors metadata. */
export async function readAdapter(src: FileSource, cfg: ModelConfig): Promise<{ settings: LoraSettings; baseModel: string | undefined; weights: WeightMap; metadata: Record<string, string> }> {
  const names = new Set(await src.list());
  for (const f of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]) {
    if (!names.has(f)) throw new LabError('lora', `the adapter folder has no ${f}`, { file: src.label, expected: `${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}`, found: [...names].join(', ') || 'an empty folder' });
  }
  const configFile = `${src.label}/${ADAPTER_CONFIG_FILE}`;
  let raw: unknown;
  try {
    raw = JSON.parse(bytesToText(await src.read(ADAPTER_CONFIG_FILE)));
  } catch (e) {
    throw new LabError('lora', `not valid JSON: ${(e as Error).message}`, { file: configFile });
  }
  const { settings, baseModel } = parseAdapterConfig(raw, configFile);
  const weightsFile = `${src.label}/${ADAPTER_WEIGHTS_FILE}`;
  const bytes = await src.read(ADAPTER_WEIGHTS_FILE);
  const metadata = readSafetensorsHeader(bytes, weightsFile).metadata;
  const weights = readSafetensors(bytes, weightsFile);
  checkAdapterWeights(cfg, settings, weights, weightsFile);
  return { settings, baseModel, weights, metadata };
}

/** An adapter folder loaded for a base config (see readAdapter); its dropout seed is the one it was saved with, else `seed`. */
export async function loadAdapter(src: FileSource, cfg: ModelConfig, seed = 0): Promise<{ adapter: LoraAdapter; baseModel: string | undefined; metadata: Record<string, string> }> {
  const { settings, baseModel, weights, metadata } = await readAdapter(src, cfg);
  const saved = Number(metadata[SEED_KEY]);
  if (metadata[SEED_KEY] !== undefined && Number.isInteger(saved)) seed = saved;
  return { adapter: LoraAdapter.fromWeights(cfg, settings, weights, `${src.label}/${ADAPTER_WEIGHTS_FILE}`, seed), baseModel, metadata };
}

/** The model with its adapter merged in, written as a full model folder (config.json, model.safetensors, tokenizer). */
export async function saveMergedModel(sink: FileSink, model: Transformer, tokenizer: Tokenizer): Promise<string[]> {
  const base = await model.exportWeights();
  const adapter = model.adapter;
  const weights = adapter instanceof LoraAdapter ? mergeWeights(base, await adapter.exportWeights(), adapter.settings) : base;
  return saveModelFolder(sink, { config: model.cfg, weights, tokenizer });
}
