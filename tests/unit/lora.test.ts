/**
 * LoRA (docs/lora.md): an untrained adapter leaves the model as it was; a trained one equals its
 * merge into the base weights; PEFT's names, shapes and adapter_config.json round-trip; SFT and GRPO
 * steps move the adapters only (base weights bit-identical, optimiser moments for adapters only);
 * adapters for another base or with unknown modules are refused; a LoRA run through the lab service
 * keeps only the adapter in its checkpoints and goes on from it; no tensor is left behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/core/config/schema';
import { generateTasks } from '../../src/core/data/tasks';
import { MemoryFiles, bytesToText, textToBytes } from '../../src/core/files';
import { BASE_MODEL_FILE } from '../../src/core/lab/lora-runs';
import { LabService } from '../../src/core/lab/service';
import { loadModelFolder } from '../../src/core/model/checkpoint';
import { parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { initWeights } from '../../src/core/model/init';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  LORA_DEFAULTS,
  loadAdapter,
  LoraAdapter,
  mergeWeights,
  peftTensorNames,
  saveAdapter,
  saveMergedModel,
  type LoraSettings,
} from '../../src/core/model/lora';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/core/model/safetensors';
import { Transformer } from '../../src/core/model/transformer';
import type { WeightMap } from '../../src/core/model/weights';
import { AdamW } from '../../src/core/optim/adamw';
import { policyUpdate, sftUpdate, type PolicySample } from '../../src/core/rl/update';
import { OPTIMIZER_FILE, REFERENCE_FILE } from '../../src/core/run/runfile';
import { CharTokenizer } from '../../src/core/tokenizer/char';
import { selectNodeBackend } from '../../src/node/backend';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';

const cfg: ModelConfig = parseModelConfig({
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 128,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
});
const ALL: LoraSettings = { rank: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
const ids = [
  [1, 5, 9, 13, 2, 7, 30, 4],
  [3, 3, 8, 21, 11, 0, 17, 25],
];

beforeAll(async () => {
  expect((await selectNodeBackend(['wasm'])).name).toBe('wasm');
});

/** Seeded non-zero values for every B (a trained adapter), in PEFT layout. */
async function trainedAdapterWeights(settings: LoraSettings, seed: number): Promise<WeightMap> {
  const fresh = LoraAdapter.create(cfg, settings, seed);
  const weights = await fresh.exportWeights();
  fresh.dispose();
  let k = 0;
  for (const [name, t] of weights) if (name.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.05 * Math.sin(++k * 0.7 + i)));
  return weights;
}

async function logitsOf(model: Transformer): Promise<Float32Array> {
  const t = tf.tidy(() => model.logits(tf.tensor2d(ids, undefined, 'int32')));
  const out = (await t.data()) as Float32Array;
  t.dispose();
  return out;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('LoRA adapters', () => {
  it('start as a no-op: B = 0 gives the base logits exactly; A is uniform in ±1/sqrt(in) (PEFT kaiming_uniform a = sqrt(5)), seeded', async () => {
    const before = tf.memory().numTensors;
    const model = Transformer.fromWeights(cfg, initWeights(cfg, { seed: 1 }));
    const base = await logitsOf(model);
    const adapter = LoraAdapter.create(cfg, ALL, 3);
    model.attachAdapter(adapter);
    expect(maxAbsDiff(await logitsOf(model), base)).toBe(0);
    expect(adapter.scale).toBe(2); // alpha / r = 8 / 4
    const w = await adapter.exportWeights();
    expect(w.size).toBe(2 * 7 * 2); // A and B, 7 modules, 2 layers
    const a = w.get('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight')!;
    expect(a.shape).toEqual([4, 48]); // [r, in] with in = intermediate_size
    const bound = 1 / Math.sqrt(48);
    expect(Math.max(...a.data.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...a.data.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(w.get('base_model.model.model.layers.0.mlp.down_proj.lora_B.weight')!.data.every((x) => x === 0)).toBe(true);
    const again = LoraAdapter.create(cfg, ALL, 3);
    expect(Array.from((await again.exportWeights()).get(peftTensorNames('model.layers.1.self_attn.q_proj').a)!.data)).toEqual(Array.from(w.get(peftTensorNames('model.layers.1.self_attn.q_proj').a)!.data));
    again.dispose();
    // Trainable: the adapters only; the base is frozen.
    expect(model.trainableVariables()).toHaveLength(28);
    expect([...model.params.values()].every((v) => !v.trainable)).toBe(true);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with non-zero B give the logits of the merged model W + (alpha/r)·B·A (every target module, q/k/v biases on)', async () => {
    const before = tf.memory().numTensors;
    const baseWeights = initWeights(cfg, { seed: 1 });
    const adapterWeights = await trainedAdapterWeights(ALL, 3);
    const model = Transformer.fromWeights(cfg, baseWeights);
    model.attachAdapter(LoraAdapter.fromWeights(cfg, ALL, adapterWeights));
    const merged = Transformer.fromWeights(cfg, mergeWeights(baseWeights, adapterWeights, ALL));
    const plain = Transformer.fromWeights(cfg, baseWeights);
    const [lora, mergedLogits, baseLogits] = [await logitsOf(model), await logitsOf(merged), await logitsOf(plain)];
    expect(maxAbsDiff(lora, baseLogits)).toBeGreaterThan(1e-2); // the adapter changes the model
    expect(maxAbsDiff(lora, mergedLogits)).toBeLessThan(1e-4);
    // mergeWeights leaves the base untouched and changes only the adapted matrices
    expect(mergeWeights(baseWeights, adapterWeights, ALL).get('model.embed_tokens.weight')).toBe(baseWeights.get('model.embed_tokens.weight'));
    // the merged folder written with saveModelFolder loads as an ordinary model with the same logits
    const sink = new MemoryFiles('merged');
    await saveMergedModel(sink, model, CharTokenizer.fromCharset());
    expect([...sink.files.keys()]).toContain('model.safetensors');
    const folder = await loadModelFolder(sink);
    const reloaded = Transformer.fromWeights(folder.config, folder.weights);
    expect(maxAbsDiff(await logitsOf(reloaded), mergedLogits)).toBe(0);
    [model, merged, plain, reloaded].forEach((m) => m.dispose());
    expect(tf.memory().numTensors).toBe(before);
  });

  it('save and load in PEFT layout: adapter_config.json fields, tensor names [r, in] / [out, r], same tensors back', async () => {
    const before = tf.memory().numTensors;
    const settings: LoraSettings = { rank: 2, alpha: 16, dropout: 0.05, targetModules: ['v_proj', 'q_proj', 'down_proj'] };
    const adapter = LoraAdapter.fromWeights(cfg, settings, await trainedAdapterWeights(settings, 4));
    const sink = new MemoryFiles('adapter');
    expect(await saveAdapter(sink, adapter, { baseModel: 'Qwen/Qwen2.5-0.5B' })).toEqual([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
    const json = JSON.parse(bytesToText(sink.files.get(ADAPTER_CONFIG_FILE)!));
    expect(json).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'Qwen/Qwen2.5-0.5B',
      r: 2,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['down_proj', 'q_proj', 'v_proj'],
      bias: 'none',
      fan_in_fan_out: false,
      use_rslora: false,
    });
    const header = readSafetensorsHeader(sink.files.get(ADAPTER_WEIGHTS_FILE)!);
    const shapes = Object.fromEntries(header.entries.map((e) => [e.name, e.shape]));
    expect(Object.keys(shapes)).toHaveLength(2 * 3 * 2);
    expect(shapes['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight']).toEqual([2, 32]);
    expect(shapes['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight']).toEqual([32, 2]);
    expect(shapes['base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight']).toEqual([16, 2]); // kv heads · head_dim
    expect(shapes['base_model.model.model.layers.1.mlp.down_proj.lora_A.weight']).toEqual([2, 48]);
    expect(header.entries.every((e) => e.dtype === 'F32')).toBe(true);
    const { adapter: loaded, baseModel } = await loadAdapter(sink, cfg);
    expect(baseModel).toBe('Qwen/Qwen2.5-0.5B');
    expect(loaded.settings).toMatchObject({ rank: 2, alpha: 16, dropout: 0.05 });
    expect(loaded.scale).toBe(8);
    const [a, b] = [await adapter.exportWeights(), await loaded.exportWeights()];
    for (const [name, t] of a) expect(Array.from(b.get(name)!.data), name).toEqual(Array.from(t.data));
    adapter.dispose();
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an adapter for another base (naming the tensor and both shapes), unknown target modules, and what it cannot apply', async () => {
    const before = tf.memory().numTensors;
    const wider = parseModelConfig({ ...JSON.parse(JSON.stringify(cfg)), hidden_size: 64, intermediate_size: 48 });
    const other = LoraAdapter.create(wider, LORA_DEFAULTS, 1);
    const sink = new MemoryFiles('other-base');
    await saveAdapter(sink, other, { baseModel: 'wider' });
    other.dispose();
    await expect(loadAdapter(sink, cfg)).rejects.toThrow(/"base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" does not fit the base model.*expected \[8, 32\].*found \[8, 64\]/);

    const config = (patch: Record<string, unknown>) => new MemoryFiles('patched', { [ADAPTER_CONFIG_FILE]: textToBytes(JSON.stringify({ ...JSON.parse(bytesToText(sink.files.get(ADAPTER_CONFIG_FILE)!)), ...patch })), [ADAPTER_WEIGHTS_FILE]: sink.files.get(ADAPTER_WEIGHTS_FILE)! });
    await expect(loadAdapter(config({ target_modules: ['q_proj', 'qkv_proj', 'fc1'] }), cfg)).rejects.toThrow(/unknown target module\(s\): qkv_proj, fc1/);
    await expect(loadAdapter(config({ target_modules: 'q_proj|v_proj' }), cfg)).rejects.toThrow(/target_modules/);
    await expect(loadAdapter(config({ peft_type: 'IA3' }), cfg)).rejects.toThrow(/peft_type.*expected "LORA"/);
    await expect(loadAdapter(config({ bias: 'all' }), cfg)).rejects.toThrow(/field "bias"/);
    await expect(loadAdapter(config({ init_lora_weights: 'pissa' }), cfg)).rejects.toThrow(/field "init_lora_weights"/);
    await expect(loadAdapter(config({ use_dora: true }), cfg)).rejects.toThrow(/field "use_dora".*DoRA is not supported/);
    await expect(loadAdapter(config({ exclude_modules: ['model.layers.0.self_attn.q_proj'] }), cfg)).rejects.toThrow(/field "exclude_modules"/);
    await expect(loadAdapter(config({ rank_pattern: { q_proj: 4 } }), cfg)).rejects.toThrow(/field "rank_pattern"/);
    // tensors for modules the config does not list
    await expect(loadAdapter(config({ target_modules: ['q_proj'] }), wider)).rejects.toThrow(/tensor\(s\) that this adapter's settings and base model do not have: .*v_proj\.lora_A\.weight/);
    expect(() => parseRunConfig({ lora: { targetModules: ['q_proj', 'qkv'] } })).toThrow(/lora\.targetModules/);
    expect(parseRunConfig({}).lora).toEqual({ enabled: false, rank: 8, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'] });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('LoRA gradients', () => {
  it('dL/dB = (alpha/r)·Aᵀ·dL/dW at B = 0, through the frozen base (no weight gradient formed for it)', async () => {
    const before = tf.memory().numTensors;
    const model = Transformer.fromWeights(cfg, initWeights(cfg, { seed: 6 }));
    const batch = tf.tensor2d(ids, undefined, 'int32');
    const mask = tf.ones([ids.length, ids[0].length - 1]) as tf.Tensor2D;
    const module = 'model.layers.0.self_attn.q_proj';
    const full = tf.variableGrads(() => model.loss(batch, mask), model.trainableVariables());
    const dW = full.grads[model.params.get(`${module}.weight`)!.name]; // [in, out] (device layout)
    const adapter = LoraAdapter.create(cfg, { rank: 4, alpha: 6, dropout: 0, targetModules: ['q_proj', 'down_proj'] }, 2);
    model.attachAdapter(adapter);
    const lora = tf.variableGrads(() => model.loss(batch, mask), model.trainableVariables());
    expect(Object.keys(lora.grads)).toHaveLength(2 * 2 * 2); // A and B of two modules in two layers, nothing of the base
    const { a, b } = adapter.modules.get(module)!;
    const expected = tf.tidy(() => tf.mul(tf.matMul(a, dW, true, false), adapter.scale)); // [r, out]
    const got = (await lora.grads[b.name].data()) as Float32Array;
    const want = (await expected.data()) as Float32Array;
    const scale = Math.max(...want.map(Math.abs));
    expect(scale).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(got, want) / scale).toBeLessThan(1e-4);
    expect(Math.abs((await full.value.data())[0] - (await lora.value.data())[0])).toBeLessThan(1e-6);
    tf.dispose([batch, mask, expected, full.value, lora.value, ...Object.values(full.grads), ...Object.values(lora.grads)]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('training with LoRA', () => {
  const seqs = [
    { promptTokens: [1, 5, 9], tokens: [13, 2, 7, 30, 4], lossMask: [1, 1, 1, 1, 1] },
    { promptTokens: [3, 3], tokens: [8, 21, 11, 0, 17, 25], lossMask: [1, 1, 0, 0, 1, 1] },
  ];

  it('an SFT step and a GRPO step change the adapters only: base weights bit-identical, AdamW moments only for A and B; dropout only in the loss', async () => {
    const before = tf.memory().numTensors;
    const model = Transformer.fromWeights(cfg, initWeights(cfg, { seed: 2 }));
    const base = await model.exportWeights();
    model.attachAdapter(LoraAdapter.create(cfg, { ...LORA_DEFAULTS, dropout: 0.1 }, 5));
    const start = await (model.adapter as LoraAdapter).exportWeights();
    // no dropout outside training: two forwards agree exactly
    expect(maxAbsDiff(await logitsOf(model), await logitsOf(model))).toBe(0);

    const optimizer = new AdamW(model.trainableVariables(), { weightDecay: 0.01 });
    const sft = await sftUpdate(model, optimizer, seqs, { lr: 1e-2, maxGradNorm: 1 });
    expect(sft.loss).toBeGreaterThan(0);
    expect(sft.gradNorm).toBeGreaterThan(0);
    const afterSft = await (model.adapter as LoraAdapter).exportWeights();

    const oldLogprobs = seqs.map((s) => s.tokens.map(() => -3.7));
    const samples: PolicySample[] = seqs.map((s, i) => ({ ...s, advantage: i === 0 ? 1 : -1, oldLogprobs: oldLogprobs[i] }));
    const grpo = await policyUpdate(model, optimizer, samples, { clip: { epsLow: 0.2, epsHigh: 0.28, dualClipC: 3 }, aggregation: 'token-mean', klCoef: 0, klEstimator: 'k3', entropyCoef: 0, nllAlpha: 0.01 }, { lr: 1e-2, maxGradNorm: 1 });
    expect(grpo.gradNorm).toBeGreaterThan(0);
    const afterGrpo = await (model.adapter as LoraAdapter).exportWeights();

    const now = await model.exportWeights();
    for (const [name, t] of base) expect(Buffer.from(now.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
    const changed = (x: WeightMap, y: WeightMap, suffix: string) => [...x].filter(([n]) => n.endsWith(suffix)).every(([n, t]) => maxAbsDiff(t.data, y.get(n)!.data) > 0);
    expect(changed(start, afterSft, 'lora_B.weight')).toBe(true);
    expect(changed(afterSft, afterGrpo, 'lora_B.weight')).toBe(true);
    expect(changed(afterSft, afterGrpo, 'lora_A.weight')).toBe(true);

    const state = await optimizer.exportState((v) => model.nameOf(v) ?? v.name);
    expect(state.step).toBe(2);
    expect(state.moments.size).toBe(2 * 2 * 2 * 2); // m and v of A and B, q_proj and v_proj, 2 layers
    expect([...state.moments.keys()].every((k) => /^[mv]\.base_model\.model\.model\.layers\.\d\.self_attn\.[qv]_proj\.lora_[AB]\.weight$/.test(k))).toBe(true);
    optimizer.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with dropout, a step after saving and loading the adapter and the moments equals the unbroken step bit for bit', async () => {
    const before = tf.memory().numTensors;
    const settings: LoraSettings = { rank: 4, alpha: 8, dropout: 0.3, targetModules: ['q_proj', 'up_proj'] };
    const baseWeights = initWeights(cfg, { seed: 2 });
    const start = (s: LoraSettings) => {
      const model = Transformer.fromWeights(cfg, baseWeights);
      model.attachAdapter(LoraAdapter.create(cfg, s, 5));
      return { model, optimizer: new AdamW(model.trainableVariables()) };
    };
    const step = (r: { model: Transformer; optimizer: AdamW }) => sftUpdate(r.model, r.optimizer, seqs, { lr: 1e-2, maxGradNorm: 1 });
    const finish = async (r: { model: Transformer; optimizer: AdamW }) => {
      const w = await (r.model.adapter as LoraAdapter).exportWeights();
      r.optimizer.dispose();
      r.model.dispose();
      return w;
    };
    const unbroken = start(settings);
    await step(unbroken);
    await step(unbroken);
    const twoSteps = await finish(unbroken);

    const first = start(settings);
    await step(first);
    const files = new MemoryFiles('adapter');
    await saveAdapter(files, first.model.adapter as LoraAdapter, { baseModel: 'base' });
    const state = await first.optimizer.exportState((v) => first.model.nameOf(v)!);
    await finish(first);
    const model = Transformer.fromWeights(cfg, baseWeights);
    model.attachAdapter((await loadAdapter(files, cfg)).adapter);
    const resumed = { model, optimizer: new AdamW(model.trainableVariables()) };
    resumed.optimizer.importState(state, (v) => model.nameOf(v)!);
    await step(resumed);
    const afterResume = await finish(resumed);
    for (const [name, t] of twoSteps) expect(Buffer.from(afterResume.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);

    const plain = start({ ...settings, dropout: 0 });
    await step(plain);
    await step(plain);
    const withoutDropout = await finish(plain);
    expect([...twoSteps].some(([name, t]) => maxAbsDiff(t.data, withoutDropout.get(name)!.data) > 1e-6)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('LoRA runs through the lab service', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'lora-runs-'));
  const store = new DiskRunStore(join(dir, 'runs'));
  const service = new LabService(nodeLabEnv({ store, python: { size: 1, preload: [] } }));
  afterAll(async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an SFT run keeps only the adapter (PEFT layout) and its base reference; resuming loads base + adapter and goes on', async () => {
    await service.init({ order: ['wasm'] });
    const size = { layers: 2, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, context: 64 };
    await service.createModel(size, 7);
    const baseFiles = await service.exportModel();
    const baseline = tf.memory().numTensors;
    const demonstrations = [
      { question: 'What is 2+3?', response: 'It is \\boxed{5}.' },
      { question: 'What is 4+4?', response: 'It is \\boxed{8}.' },
    ];
    const config = { mode: 'sft' as const, seed: 1, checkpointEvery: 1, sft: { steps: 2, batchSize: 2, warmupSteps: 0 }, eval: { everySteps: 0, samples: 1 }, lora: { enabled: true, rank: 4, alpha: 4, targetModules: ['q_proj' as const, 'o_proj' as const, 'up_proj' as const] } };
    const out = await service.train({ config, demonstrations, test: [], runId: 'lora-sft', name: 'lora sft' });
    expect(out).toMatchObject({ state: 'finished', steps: 2 });
    const files = (await store.getCheckpoint('lora-sft'))!;
    expect(Object.keys(files).sort()).toEqual([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, BASE_MODEL_FILE, 'config.json', OPTIMIZER_FILE].sort());
    expect(files['model.safetensors']).toBeUndefined();
    expect(files[REFERENCE_FILE]).toBeUndefined();
    expect(JSON.parse(bytesToText(files[BASE_MODEL_FILE]))).toEqual({ label: 'new 2×32 model (seed 7)', source: { kind: 'new', size, seed: 7 } });
    expect(JSON.parse(bytesToText(files[ADAPTER_CONFIG_FILE]))).toMatchObject({ r: 4, lora_alpha: 4, target_modules: ['o_proj', 'q_proj', 'up_proj'], base_model_name_or_path: 'new 2×32 model (seed 7)' });
    const moments = readSafetensors(files[OPTIMIZER_FILE]);
    expect([...moments.keys()].every((k) => k.includes('.lora_'))).toBe(true);
    expect(moments.size).toBe(2 * 2 * 3 * 2);
    const adapterAt2 = readSafetensors(files[ADAPTER_WEIGHTS_FILE]);
    expect([...adapterAt2].some(([n, t]) => n.endsWith('lora_B.weight') && t.data.some((x) => x !== 0))).toBe(true);

    // the saved model is the merge: its untouched tensors are the base's, its adapted ones moved
    const merged = readSafetensors((await service.exportModel())['model.safetensors']);
    const base = readSafetensors(baseFiles['model.safetensors']);
    expect(Array.from(merged.get('model.layers.0.self_attn.k_proj.weight')!.data)).toEqual(Array.from(base.get('model.layers.0.self_attn.k_proj.weight')!.data));
    expect(maxAbsDiff(merged.get('model.layers.0.self_attn.q_proj.weight')!.data, base.get('model.layers.0.self_attn.q_proj.weight')!.data)).toBeGreaterThan(0);

    // another model loaded, then the run goes on: its base is made again and its adapter attached
    await service.createModel({ ...size, hidden: 48 }, 9);
    const more = await service.train({ resume: { runId: 'lora-sft' }, config: { sft: { steps: 3 } } });
    expect(more).toMatchObject({ state: 'finished', steps: 3 });
    expect((await service.model())?.label).toBe('lora sft');
    const after = readSafetensors((await store.getCheckpoint('lora-sft'))![ADAPTER_WEIGHTS_FILE]);
    expect([...after].some(([n, t]) => maxAbsDiff(t.data, adapterAt2.get(n)!.data) > 0)).toBe(true);
    const reloadedBase = readSafetensors((await service.exportModel())['model.safetensors']);
    expect(Array.from(reloadedBase.get('model.layers.1.mlp.down_proj.weight')!.data)).toEqual(Array.from(base.get('model.layers.1.mlp.down_proj.weight')!.data));

    // a run that changes lora.enabled on resume, or a new run on a model that carries an adapter, is refused
    await expect(service.train({ resume: { runId: 'lora-sft' }, config: { lora: { enabled: false }, sft: { steps: 4 } } })).rejects.toThrow(/lora\.enabled.*expected true, found false/);
    await expect(service.train({ config, demonstrations, test: [] })).rejects.toThrow(/carries a LoRA adapter/);
    await service.createModel(size, 7);
    expect(tf.memory().numTensors).toBe(baseline);
  }, 120_000);
  it('a GRPO run with a KL term steps on the adapter only, keeps no copy of the reference (its base is the reference) and goes on', async () => {
    const size = { layers: 2, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, context: 64 };
    await service.createModel(size, 11);
    const base = readSafetensors((await service.exportModel())['model.safetensors']);
    const baseline = tf.memory().numTensors;
    const tasks = generateTasks({ seed: 5, count: 8, split: 'train', difficulties: [1] });
    const config = {
      seed: 3,
      steps: 1,
      rollout: { groupSize: 2, promptsPerStep: 1, maxResponseTokens: 24, maxToolCalls: 1 },
      grpo: { dynamicSampling: false, klCoef: 0.05, failureFilter: false },
      stepLevel: { enabled: false },
      eval: { samples: 1, everySteps: 0 },
      lora: { enabled: true, rank: 2, targetModules: ['v_proj' as const, 'down_proj' as const] },
    };
    const messages: string[] = [];
    const steps: Record<string, unknown>[] = [];
    const out = await service.train({ config, train: tasks, test: [], runId: 'lora-grpo', name: 'lora grpo' }, (e) => {
      if (e.type === 'message') messages.push(e.text);
      if (e.type === 'step') steps.push(e.metrics);
    });
    expect(out).toMatchObject({ state: 'finished', steps: 1 });
    const files = (await store.getCheckpoint('lora-grpo'))!;
    expect(files[REFERENCE_FILE]).toBeUndefined();
    expect(files['model.safetensors']).toBeUndefined();
    expect([...readSafetensors(files[OPTIMIZER_FILE]).keys()].sort()).toEqual(
      ['m', 'v'].flatMap((k) => [0, 1].flatMap((l) => ['self_attn.v_proj', 'mlp.down_proj'].flatMap((m) => ['A', 'B'].map((ab) => `${k}.base_model.model.model.layers.${l}.${m}.lora_${ab}.weight`)))).sort(),
    );
    const adapter = readSafetensors(files[ADAPTER_WEIGHTS_FILE]);
    // the optimiser stepped on the adapter (a random model's rewards are all 0, so its advantages are
    // 0 and only AdamW's decay moves A; the GRPO gradient itself is checked with policyUpdate above)
    const fresh = LoraAdapter.create(parseModelConfig(JSON.parse(bytesToText(files['config.json']))), { rank: 2, alpha: 8, dropout: 0, targetModules: ['v_proj', 'down_proj'] }, 3);
    const init = await fresh.exportWeights();
    fresh.dispose();
    expect(steps[0].samples_trained).toBe(2);
    expect([...adapter].filter(([n]) => n.endsWith('lora_A.weight')).every(([n, t]) => maxAbsDiff(t.data, init.get(n)!.data) > 0)).toBe(true);
    expect(typeof steps[0].kl === 'number' || steps[0].kl === null).toBe(true);
    const more = await service.train({ resume: { runId: 'lora-grpo' }, config: { steps: 2 } }, (e) => e.type === 'message' && messages.push(e.text));
    expect(more).toMatchObject({ state: 'finished', steps: 2 });
    expect(messages.some((m) => m.includes('kept no reference'))).toBe(false);
    expect(messages).toContain('optimizer moments restored');
    // the base under the adapter is the one the run started from, bit for bit
    const policy = (service as unknown as { policy: { model: Transformer } }).policy.model;
    const now = await policy.exportWeights();
    for (const [name, t] of base) expect(Buffer.from(now.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
    await service.createModel(size, 11);
    expect(tf.memory().numTensors).toBe(baseline);
  }, 180_000);
});

// keep writeSafetensors in use for a hand-made file: a PEFT file with an extra tensor is refused
describe('PEFT files from elsewhere', () => {
  it('refuses tensors an adapter cannot hold (e.g. an embedding adapter), naming them', async () => {
    const fresh = LoraAdapter.create(cfg, LORA_DEFAULTS, 1);
    const weights = await fresh.exportWeights();
    fresh.dispose();
    weights.set('base_model.model.model.embed_tokens.lora_embedding_A', { shape: [8, 128], data: new Float32Array(1024) });
    const files = new MemoryFiles('peft', { [ADAPTER_CONFIG_FILE]: JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }), [ADAPTER_WEIGHTS_FILE]: writeSafetensors(weights) });
    await expect(loadAdapter(files, cfg)).rejects.toThrow(/embed_tokens\.lora_embedding_A/);
  });
});
