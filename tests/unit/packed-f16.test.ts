/**
 * Weights packed as float16 pairs on WebGPU (src/core/model/packed-f16.ts), on Dawn (SwiftShader
 * here: correctness, not speed): the pairs hold each value's float16 rounding; the products and the
 * lookup equal tfjs's on the unpacked weights, forward and backward; a packed model holds half the
 * bytes, its logits stay within float16's tolerance of the float32 model, and a LoRA adapter trains
 * on the packed base; no tensor is left behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabEvent } from '../../src/core/lab/api';
import { LabService } from '../../src/core/lab/service';
import { saveModelFolder } from '../../src/core/model/checkpoint';
import { weightBytes } from '../../src/core/model/memory';
import { CharTokenizer } from '../../src/core/tokenizer/char';
import { folderSink } from '../../src/node/files';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';
import { parseModelConfig } from '../../src/core/model/config';
import { LoraAdapter } from '../../src/core/model/lora';
import { packedEmbedding, packedLinear, packF16, unpackF16 } from '../../src/core/model/packed-f16';
import { Transformer } from '../../src/core/model/transformer';
import { releaseNodeWebGPU, selectNodeBackend } from '../../src/node/backend';
import { maxDiff } from '../fixtures/tensors';

/** The distance between adjacent float16 values around x (normal range; subnormals step by 2^-24). */
function f16Ulp(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -14) return 2 ** -24;
  return 2 ** (Math.floor(Math.log2(a)) - 10);
}

/** Whether x is exactly a float16 value. */
function isF16(x: number): boolean {
  if (x === 0) return true;
  const q = x / f16Ulp(x);
  return Number.isInteger(q) && Math.abs(x) <= 65504;
}

function seeded(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.randomUniform(shape, -1, 1, 'float32', seed), scale));
}

beforeAll(async () => {
  expect((await selectNodeBackend(['webgpu'])).name).toBe('webgpu');
});

const dir = mkdtempSync(join(os.tmpdir(), 'packed-f16-'));
afterAll(() => {
  releaseNodeWebGPU();
  rmSync(dir, { recursive: true, force: true });
});

describe('packing', () => {
  it('holds each value as a float16 within one float16 step of it, in half the bytes', async () => {
    const before = tf.memory().numTensors;
    // Small, large and negative values, and exact zeros.
    const w = tf.tensor2d([0, 1, -1, 0.1, 3.14159, -2.5e-3, 1e-6, 60000, 0.333333, -7.77, 1234.5, 0], [3, 4]);
    const p = packF16(w);
    expect(p.bits.dtype).toBe('int32');
    expect(p.bits.shape).toEqual([3, 2]);
    const back = unpackF16(p);
    expect(back.shape).toEqual([3, 4]);
    const [orig, got] = [await w.data(), await back.data()];
    for (let i = 0; i < orig.length; i++) {
      expect(isF16(got[i]), `value ${i}: ${got[i]}`).toBe(true);
      expect(Math.abs(got[i] - orig[i]), `value ${i}: ${orig[i]} -> ${got[i]}`).toBeLessThanOrEqual(f16Ulp(orig[i]));
    }
    expect(p.bits.size * 4).toBe((w.size * 4) / 2);
    tf.dispose([w, p.bits, back]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a matrix whose last axis cannot hold pairs, naming its length', () => {
    const w = tf.zeros([4, 5]) as tf.Tensor2D;
    expect(() => packF16(w)).toThrow(/even length.*found 5/);
    w.dispose();
  });
});

describe('products with a packed weight', () => {
  // [M, K] · [K, N]: tile edges (32 × 32 outputs, 16 of K at a time) crossed and not, one row (decoding).
  const cases: [number, number, number][] = [
    [1, 64, 96],
    [5, 24, 38],
    [33, 130, 66],
    [70, 16, 2],
    [3, 250, 128],
  ];
  for (const [m, k, n] of cases) {
    for (const transposed of [false, true]) {
      it(`x [${m}, ${k}] · ${transposed ? `Wᵀ, W [${n}, ${k}]` : `W [${k}, ${n}]`}: value and dx equal tfjs's on the unpacked weight`, async () => {
        const before = tf.memory().numTensors;
        const x = seeded([m, k], 1) as tf.Tensor2D;
        const w = seeded(transposed ? [n, k] : [k, n], 2, 0.5) as tf.Tensor2D;
        const dy = seeded([m, n], 3) as tf.Tensor2D;
        const p = packF16(w);
        const unpacked = unpackF16(p);
        const kernel = tf.tidy(() => tf.valueAndGrads((xs: tf.Tensor) => packedLinear(xs as tf.Tensor2D, p, transposed))([x], dy));
        const reference = tf.tidy(() => tf.valueAndGrads((xs: tf.Tensor) => tf.matMul(xs, unpacked, false, transposed))([x], dy));
        for (const [name, a, b] of [
          ['value', kernel.value, reference.value],
          ['dx', kernel.grads[0], reference.grads[0]],
        ] as const) {
          expect(a.shape, name).toEqual(b.shape);
          const { diff, scale } = await maxDiff(a, b);
          // The same float16 values summed in another order.
          expect(diff, name).toBeLessThanOrEqual(1e-5 * Math.max(1, scale) * Math.sqrt(Math.max(k, n)));
        }
        // Against the float32 weight: float16's relative rounding (2^-11) accumulated over K terms.
        const exact = tf.matMul(x, w, false, transposed);
        const { diff, scale } = await maxDiff(kernel.value, exact);
        expect(diff).toBeLessThanOrEqual(2 ** -11 * Math.sqrt(k) * Math.max(1, scale));
        tf.dispose([x, w, dy, p.bits, unpacked, kernel.value, ...kernel.grads, reference.value, ...reference.grads, exact]);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  }

  it('looks up rows of a packed table as tf.gather does on the unpacked one', async () => {
    const before = tf.memory().numTensors;
    const table = seeded([50, 34], 4) as tf.Tensor2D;
    const p = packF16(table);
    const unpacked = unpackF16(p);
    const ids = tf.tensor1d([0, 49, 7, 7, 23], 'int32');
    const got = packedEmbedding(ids, p);
    const want = tf.gather(unpacked, ids);
    expect(got.shape).toEqual([5, 34]);
    expect((await maxDiff(got, want)).diff).toBe(0);
    tf.dispose([table, p.bits, unpacked, ids, got, want]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('a model with packed weights', () => {
  // Qwen2-shaped (q/k/v biases), an untied head, even sizes throughout.
  const cfg = parseModelConfig({
    model_type: 'qwen2',
    hidden_size: 64,
    intermediate_size: 160,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 300,
    max_position_embeddings: 128,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
  });
  const ids = () => tf.tensor2d([[1, 5, 9, 200, 33, 7, 2, 250], [4, 4, 4, 90, 11, 12, 13, 299]], [2, 8], 'int32');

  it('holds half the bytes, and its logits stay within float16 tolerance of the float32 model', async () => {
    const before = tf.memory().numTensors;
    const full = Transformer.create(cfg, { seed: 3 });
    const half = Transformer.fromWeights(cfg, await full.exportWeights());
    const { before: bytes32, after: bytes16 } = half.packWeights();
    expect(half.weightFormat).toBe('f16');
    expect(half.numParameters()).toBe(full.numParameters());
    // Norms and biases stay float32: a little over one half.
    const ratio = bytes16 / bytes32;
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(0.51);
    const input = ids();
    const [a, b] = [full.logits(input), half.logits(input)];
    const { diff, scale } = await maxDiff(b, a);
    expect(diff).toBeLessThanOrEqual(1e-2 * Math.max(1, scale));
    // The same as the float32 model whose weights were rounded to float16 first.
    const rounded = Transformer.fromWeights(cfg, await half.exportWeights());
    const c = rounded.logits(input);
    const same = await maxDiff(b, c);
    expect(same.diff).toBeLessThanOrEqual(1e-4 * Math.max(1, same.scale));
    tf.dispose([input, a, b, c]);
    for (const m of [full, half, rounded]) m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('does not train its packed weights itself, and says so', async () => {
    const m = Transformer.create(cfg, { seed: 4 });
    m.packWeights();
    expect(() => m.trainableVariables()).toThrow(/packed as float16.*do not train/);
    m.dispose();
  });

  it('trains a LoRA adapter on the packed base: the loss falls and the base stays as it was', async () => {
    const before = tf.memory().numTensors;
    const m = Transformer.create(cfg, { seed: 5 });
    m.packWeights();
    const base = await m.exportWeights();
    m.attachAdapter(LoraAdapter.create(m.cfg, { rank: 4, alpha: 8, dropout: 0, targetModules: ["q_proj", "v_proj", "down_proj"] }, 6));
    const input = ids();
    const mask = tf.ones([2, 7]) as tf.Tensor2D;
    const optimizer = tf.train.adam(1e-2);
    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const cost = optimizer.minimize(() => m.loss(input, mask), true, m.trainableVariables());
      losses.push((await cost!.data())[0]);
      cost!.dispose();
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] - 0.05);
    const after = await m.exportWeights();
    for (const [name, t] of base) expect(after.get(name)!.data, name).toEqual(t.data);
    optimizer.dispose();
    tf.dispose([input, mask]);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the lab with float16 weights', () => {
  it('loads a folder with its matrices packed as they arrive, budgets for it, answers, and trains only a LoRA adapter', async () => {
    const tokenizer = CharTokenizer.fromCharset();
    const cfg = parseModelConfig({ model_type: 'qwen2', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: tokenizer.vocabSize, max_position_embeddings: 256, tie_word_embeddings: true, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId });
    const folder = join(dir, 'model');
    const source = Transformer.create(cfg, { seed: 9 });
    await saveModelFolder(folderSink(folder), { config: cfg, weights: await source.exportWeights(), tokenizer });
    source.dispose();
    const lab = new LabService(nodeLabEnv({ store: new DiskRunStore(join(dir, 'runs')), python: { size: 1, preload: [] } }));
    await lab.init({ order: ['webgpu'] });
    try {
      const events: LabEvent[] = [];
      const summary = await lab.loadModel({ kind: 'path', path: folder, weights: 'f16' }, (e) => events.push(e));
      expect(summary.weightFormat).toBe('f16');
      expect(summary.weightBytes).toBe(weightBytes(cfg, 'f16'));
      expect(summary.weightBytes / weightBytes(cfg, 'f32')).toBeLessThan(0.52);
      const budget = events.find((e) => e.type === 'memory-budget');
      expect(budget && budget.type === 'memory-budget' && budget.infer.weightFormat).toBe('f16');
      const answer = await lab.infer({ question: 'What is 2+3?', settings: { rollout: { maxResponseTokens: 12, temperature: 0 } } });
      expect(answer.tokens).toBeGreaterThan(0);

      const demonstrations = [{ question: 'What is 2*3?', response: 'So \\boxed{6}.' }];
      const sft = { mode: 'sft' as const, seed: 1, sft: { steps: 2, batchSize: 1, warmupSteps: 0 }, task: { trainSize: 2, testSize: 1 }, eval: { everySteps: 0 } };
      const refused = await lab.train({ config: sft, demonstrations, test: [] }).catch((e: unknown) => e);
      expect((refused as Error).message).toMatch(/packed as float16.*train every weight/);
      const done = await lab.train({ config: { ...sft, lora: { enabled: true } }, demonstrations, test: [] });
      expect(done.state).toBe('finished');
      expect(done.steps).toBe(2);
    } finally {
      await lab.close();
    }
  }, 240_000);

  it('refuses float16 weights on a backend without WebGPU before reading any weights', async () => {
    const lab = new LabService(nodeLabEnv({ store: new DiskRunStore(join(dir, 'runs-wasm')), python: { size: 1, preload: [] } }));
    await lab.init({ order: ['wasm'] });
    try {
      const refused = await lab.loadModel({ kind: 'path', path: join(dir, 'no-such-folder'), weights: 'f16' }).catch((e: unknown) => e);
      expect((refused as Error).message).toMatch(/float16 weights are not available here: .*WebGPU backend \(this one is wasm\)/);
    } finally {
      await lab.close();
      await selectNodeBackend(['webgpu']);
    }
  }, 60_000);
});
