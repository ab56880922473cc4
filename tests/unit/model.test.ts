/**
 * The transformer against a plain-JS reference of HF's Llama / Qwen2 forward, the same logits on
 * cpu, wasm and webgpu (Dawn + SwiftShader), weights in and out, and bad weights.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { parameterShapes, parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { initWeights } from '../../src/core/model/init';
import { ropeTables, rotateHalf, rotateHalfMatrix } from '../../src/core/model/rope';
import { Transformer } from '../../src/core/model/transformer';
import type { WeightMap } from '../../src/core/model/weights';
import { releaseNodeWebGPU, selectNodeBackend } from '../../src/node/backend';
import { referenceLogits } from './model-reference';

afterAll(() => releaseNodeWebGPU());

const qwen2 = parseModelConfig({
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 50,
  max_position_embeddings: 128,
  rope_theta: 1000,
  tie_word_embeddings: false,
});
const llamaTied = parseModelConfig({
  model_type: 'llama',
  hidden_size: 24,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 3,
  num_key_value_heads: 3,
  vocab_size: 37,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
});

/** Qwen3: q/k norms, head_dim 12 independent of hidden 32 / 4 heads, and (unlike the published models) attention_bias for the o_proj bias. */
const qwen3 = parseModelConfig({
  model_type: 'qwen3',
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 12,
  vocab_size: 50,
  max_position_embeddings: 128,
  rope_theta: 1000000,
  attention_bias: true,
  tie_word_embeddings: true,
});

/** Seeded weights with a large spread (logits far apart) and non-zero biases. */
function weightsFor(cfg: ModelConfig, seed = 1): WeightMap {
  const w = initWeights(cfg, { seed, std: 0.3 });
  for (const [name, t] of w) if (name.endsWith('.bias')) t.data.forEach((_, i) => (t.data[i] = 0.1 * Math.sin(i + name.length)));
  for (const [name, t] of w) if (name.endsWith('norm.weight')) t.data.forEach((_, i) => (t.data[i] = 1 + 0.2 * Math.cos(i)));
  return w;
}

async function logitsOn(backend: 'cpu' | 'wasm' | 'webgpu', cfg: ModelConfig, w: WeightMap, rows: number[][]): Promise<Float32Array> {
  const info = await selectNodeBackend([backend]);
  expect(info.name).toBe(backend);
  const model = Transformer.fromWeights(cfg, w);
  const ids = tf.tensor2d(rows, undefined, 'int32');
  const logits = model.logits(ids);
  const data = (await logits.data()) as Float32Array;
  tf.dispose([ids, logits]);
  model.dispose();
  return data;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const ids = [3, 7, 1, 44, 20, 9, 9, 2, 31, 0];

describe('forward pass', () => {
  it('matches the plain-JS reference of HF Qwen2 (GQA, q/k/v biases, separate lm_head)', async () => {
    const w = weightsFor(qwen2);
    const got = await logitsOn('cpu', qwen2, w, [ids]);
    const want = referenceLogits(qwen2, w, ids).flat();
    expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(1); // logits are not all near zero
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });

  it('matches the reference for a Llama with tied embeddings and no GQA', async () => {
    const w = weightsFor(llamaTied, 2);
    const rows = [ids.map((i) => i % 37)];
    const got = await logitsOn('cpu', llamaTied, w, rows);
    expect(maxAbsDiff(got, referenceLogits(llamaTied, w, rows[0]).flat())).toBeLessThan(1e-4);
  });

  it('matches the reference for Qwen3 (q/k norms, head_dim apart from hidden / heads, q/k/v/o biases, tied)', async () => {
    const w = weightsFor(qwen3, 3);
    expect(w.get('model.layers.1.self_attn.k_norm.weight')!.shape).toEqual([12]);
    const got = await logitsOn('cpu', qwen3, w, [ids]);
    const want = referenceLogits(qwen3, w, ids).flat();
    expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(1);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });

  it('gives the same logits on cpu, wasm and webgpu (Dawn + SwiftShader)', async () => {
    for (const cfg of [qwen2, qwen3]) {
      const w = weightsFor(cfg, 5);
      const rows = [ids, ids.map((i) => (i * 3 + 1) % 50)];
      const cpu = await logitsOn('cpu', cfg, w, rows);
      const wasm = await logitsOn('wasm', cfg, w, rows);
      const webgpu = await logitsOn('webgpu', cfg, w, rows);
      expect(maxAbsDiff(wasm, cpu)).toBeLessThan(1e-4);
      expect(maxAbsDiff(webgpu, cpu)).toBeLessThan(1e-4);
    }
  });

  it('trains the q/k norms: their gradient equals a finite difference of the loss, and no tensor is left behind', async () => {
    await selectNodeBackend(['cpu']);
    const w = weightsFor(qwen3, 7);
    const model = Transformer.fromWeights(qwen3, w);
    const x = tf.tensor2d([ids], undefined, 'int32');
    const mask = tf.ones([1, ids.length - 1]) as tf.Tensor2D;
    model.loss(x, mask).dispose(); // builds the RoPE tables the model keeps
    const baseline = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => model.loss(x, mask));
    const gradOf = async (name: string) => (await grads[model.params.get(name)!.name].data()) as Float32Array;
    const lossWith = async (name: string, i: number, delta: number) => {
      const changed = new Map(w);
      const data = Float32Array.from(w.get(name)!.data);
      data[i] += delta;
      changed.set(name, { shape: w.get(name)!.shape, data });
      model.loadWeights(changed);
      const loss = model.loss(x, mask);
      const value = (await loss.data())[0];
      loss.dispose();
      return value;
    };
    for (const name of ['model.layers.0.self_attn.q_norm.weight', 'model.layers.1.self_attn.k_norm.weight']) {
      const g = await gradOf(name);
      for (const i of [0, 7]) {
        const h = 1e-2;
        const numeric = ((await lossWith(name, i, h)) - (await lossWith(name, i, -h))) / (2 * h);
        expect(Math.abs(g[i])).toBeGreaterThan(1e-4);
        expect(Math.abs(g[i] - numeric)).toBeLessThan(2e-3 + 0.02 * Math.abs(numeric));
      }
    }
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([x, mask]);
    model.dispose();
  });

  it('scores next tokens: tokenLogprobs equals log_softmax of the logits at the target ids', async () => {
    await selectNodeBackend(['wasm']);
    const model = Transformer.fromWeights(qwen2, weightsFor(qwen2));
    const x = tf.tensor2d([ids], undefined, 'int32');
    const [logits, lp, lpHot] = [model.logits(x), model.tokenLogprobs(x), model.tokenLogprobs(x, { temperature: 2 })];
    const [l, got, hot] = [await logits.data(), await lp.data(), await lpHot.data()];
    const V = qwen2.vocab_size;
    for (let t = 0; t < ids.length - 1; t++) {
      const row = Array.from(l.subarray(t * V, (t + 1) * V));
      const lse = (xs: number[]) => Math.log(xs.reduce((a, v) => a + Math.exp(v), 0));
      expect(got[t]).toBeCloseTo(row[ids[t + 1]] - lse(row), 4);
      expect(hot[t]).toBeCloseTo(row[ids[t + 1]] / 2 - lse(row.map((v) => v / 2)), 4);
    }
    tf.dispose([x, logits, lp, lpHot]);
    model.dispose();
  });
});

describe('rotary embeddings', () => {
  it('rotate_half as a matrix equals cat(-x2, x1), and the tables follow HF (cos(p·θ^(-2i/d)))', async () => {
    await selectNodeBackend(['cpu']);
    const x = tf.tensor2d([[1, 2, 3, 4, 5, 6]]);
    const r = tf.tensor2d(rotateHalfMatrix(6), [6, 6]);
    expect(Array.from(await rotateHalf(x, r).data())).toEqual([-4, -5, -6, 1, 2, 3]);
    const { cos, sin } = ropeTables(4, 100, 3);
    expect(cos[2 * 4 + 1]).toBeCloseTo(Math.cos(2 / 10), 6); // position 2, frequency 100^(-2/4)
    expect(sin[2 * 4 + 3]).toBeCloseTo(Math.sin(2 / 10), 6); // halves repeat
    tf.dispose([x, r]);
  });
});

describe('weights', () => {
  it('exports exactly what it loaded, in HF names and layout', async () => {
    await selectNodeBackend(['wasm']);
    const w = weightsFor(qwen2);
    const model = Transformer.fromWeights(qwen2, w);
    const out = await model.exportWeights();
    expect([...out.keys()]).toEqual([...parameterShapes(qwen2).keys()]);
    for (const [name, t] of w) {
      expect(out.get(name)!.shape).toEqual(t.shape);
      expect(out.get(name)!.data).toEqual(t.data);
    }
    const other = weightsFor(qwen2, 9);
    model.loadWeights(other);
    expect((await model.exportWeights()).get('model.layers.1.mlp.down_proj.weight')!.data).toEqual(other.get('model.layers.1.mlp.down_proj.weight')!.data);
    model.dispose();
  });

  it('seeded initialisation is reproducible and follows HF (normal matrices, unit norms, zero biases)', () => {
    const a = initWeights(qwen2, { seed: 4 });
    const b = initWeights(qwen2, { seed: 4 });
    const c = initWeights(qwen2, { seed: 5 });
    const q = 'model.layers.0.self_attn.q_proj.weight';
    expect(a.get(q)!.data).toEqual(b.get(q)!.data);
    expect(a.get(q)!.data).not.toEqual(c.get(q)!.data);
    const data = Array.from(a.get('model.embed_tokens.weight')!.data);
    const std = Math.sqrt(data.reduce((s, v) => s + v * v, 0) / data.length);
    expect(std).toBeGreaterThan(0.017);
    expect(std).toBeLessThan(0.023);
    expect(Array.from(a.get('model.norm.weight')!.data).every((v) => v === 1)).toBe(true);
    expect(Array.from(a.get('model.layers.0.self_attn.q_proj.bias')!.data).every((v) => v === 0)).toBe(true);
  });

  it('refuses weights that do not fit the config, naming the tensor and both shapes', async () => {
    await selectNodeBackend(['cpu']);
    const model = Transformer.create(qwen2, { seed: 1 });
    const before = await model.exportWeights();
    const wrong = new Map(weightsFor(qwen2));
    wrong.set('model.layers.1.self_attn.k_proj.weight', { shape: [32, 32], data: new Float32Array(32 * 32) });
    expect(() => model.loadWeights(wrong, 'ckpt/model.safetensors')).toThrow(/k_proj\.weight.*wrong shape.*expected \[16, 32\], found \[32, 32\]/);
    try {
      model.loadWeights(wrong, 'ckpt/model.safetensors');
    } catch (e) {
      expect(e).toBeInstanceOf(LabError);
      expect((e as LabError).details.file).toBe('ckpt/model.safetensors');
    }
    const missing = new Map(weightsFor(qwen2));
    missing.delete('model.norm.weight');
    expect(() => model.loadWeights(missing)).toThrow(/"model\.norm\.weight" is missing.*expected \[32\], found nothing/);
    const extra = new Map(weightsFor(qwen2));
    extra.set('model.layers.2.mlp.up_proj.weight', { shape: [48, 32], data: new Float32Array(48 * 32) });
    expect(() => model.loadWeights(extra)).toThrow(/unexpected tensor "model\.layers\.2\.mlp\.up_proj\.weight"/);
    // A failed load changes nothing.
    expect((await model.exportWeights()).get('model.norm.weight')!.data).toEqual(before.get('model.norm.weight')!.data);
    // A tied lm_head and rotary buffers in old checkpoints are skipped, not errors.
    const tied = new Map(weightsFor(llamaTied));
    tied.set('lm_head.weight', tied.get('model.embed_tokens.weight')!);
    tied.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [4], data: new Float32Array(4) });
    Transformer.fromWeights(llamaTied, tied).dispose();
    model.dispose();
  });
});
