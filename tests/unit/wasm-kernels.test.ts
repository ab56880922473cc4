/**
 * The engine's fused wasm kernels (src/core/model/wasm-kernels.ts) against tfjs's ops, forward and
 * backward; the model with them generates what it generates without them and trains with the same
 * loss and gradients, leaving no tensor behind.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/core/engine/generation';
import { parseModelConfig } from '../../src/core/model/config';
import { applyRope, ropeTables, rotateHalfMatrix } from '../../src/core/model/rope';
import { Transformer } from '../../src/core/model/transformer';
import { rmsNormWasm, ropeWasm, setWasmKernels, wasmKernels } from '../../src/core/model/wasm-kernels';
import { selectNodeBackend } from '../../src/node/backend';
import { expectSameAsReference, maxDiff } from '../fixtures/tensors';

/** HF LlamaRMSNorm in tfjs ops, as the transformer computes it without the kernels. */
const reference = (x: tf.Tensor, w: tf.Tensor, eps: number) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);

beforeAll(async () => {
  expect((await selectNodeBackend(['wasm'])).name).toBe('wasm');
});

describe('the fused wasm kernels', () => {
  it('run on the wasm backend, and can be turned off', () => {
    expect(wasmKernels()).toBe(true);
    setWasmKernels(false);
    expect(wasmKernels()).toBe(false);
    setWasmKernels(true);
    expect(wasmKernels()).toBe(true);
  });
});

describe('RMSNorm kernel', () => {
  // One vector of 4 and many, a row per call and many rows, 3-D and 4-D inputs (Qwen3's per-head norms).
  const shapes: number[][] = [[3, 4], [5, 64], [7, 100], [2, 3, 384], [2, 5, 3, 32], [1, 1000]];
  for (const shape of shapes) {
    it(`equals the reference on [${shape.join(', ')}], value and both gradients`, async () => {
      const cols = shape[shape.length - 1];
      const x = tf.randomNormal(shape, 0, 2, 'float32', 7);
      const w = tf.randomUniform([cols], 0.5, 1.5, 'float32', 8);
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 9);
      await expectSameAsReference((a, b) => rmsNormWasm(a, b, 1e-5), (a, b) => reference(a, b, 1e-5), [x, w], dy, ['value', 'dx', 'dw']);
      tf.dispose([x, w, dy]);
    });
  }

  it('keeps a large eps and tiny inputs finite, as the reference does', async () => {
    const x = tf.tensor2d([[1e-20, -1e-20, 0, 0], [3, -4, 0, 0]]);
    const w = tf.ones([4]);
    const dy = tf.ones([2, 4]);
    await expectSameAsReference((a, b) => rmsNormWasm(a, b, 0.5), (a, b) => reference(a, b, 0.5), [x, w], dy, ['value', 'dx', 'dw']);
    tf.dispose([x, w, dy]);
  });
});

describe('RoPE kernel', () => {
  // One table for every row (a forward over whole sequences), and a table per row (decoding at
  // different positions); heads of 8 (one vector per half) up to 128.
  const cases: { x: number[]; rows: number }[] = [
    { x: [2, 5, 3, 8], rows: 1 },
    { x: [3, 1, 4, 64], rows: 3 },
    { x: [2, 4, 2, 16], rows: 2 },
    { x: [1, 7, 2, 128], rows: 1 },
  ];
  for (const { x: shape, rows } of cases) {
    it(`equals HF's rotate_half form on x [${shape.join(', ')}] with ${rows} table row(s), value and gradient`, async () => {
      const [, length, , d] = shape;
      const { cos, sin } = ropeTables(d, 10000, length * rows + 3);
      // Each row's positions start somewhere else, as in batched decoding.
      const pick = (table: Float32Array) => tf.tensor4d(Array.from({ length: rows * length }, (_, i) => Array.from(table.subarray((i + (i % 3)) * d, (i + (i % 3) + 1) * d))).flat(), [rows, length, 1, d]);
      const c = pick(cos);
      const s = pick(sin);
      const r = tf.tensor2d(rotateHalfMatrix(d), [d, d]);
      const x = tf.randomNormal(shape, 0, 1, 'float32', 11);
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 12);
      await expectSameAsReference((a) => ropeWasm(a, c, s), (a) => applyRope(a, c, s, r as tf.Tensor2D), [x], dy, ['value', 'dx']);
      tf.dispose([c, s, r, x, dy]);
    });
  }
});

describe('the model with the fused kernels', () => {
  it('generates the same tokens as without them at temperature 0, and leaves no tensor behind', async () => {
    const cfg = parseModelConfig({ model_type: 'llama', hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 97, max_position_embeddings: 64 });
    const model = Transformer.create(cfg, { seed: 3 });
    const prompts = [[1, 5, 9, 13], [2, 4, 8, 16, 32, 64]];
    const run = async (on: boolean) => {
      setWasmKernels(on);
      try {
        return (await generate(model, prompts, { maxNewTokens: 12, temperature: 0 })).map((r) => r.tokens);
      } finally {
        setWasmKernels(true);
      }
    };
    await run(true); // the model's RoPE tables are made once and kept
    const before = tf.memory().numTensors;
    const withKernels = await run(true);
    expect(tf.memory().numTensors).toBe(before);
    const without = await run(false);
    expect(withKernels).toEqual(without);
    expect(withKernels.every((t) => t.length === 12)).toBe(true);
    model.dispose();
  });

  it('gives the same loss and gradients as tfjs ops on a Qwen3-shaped model, and leaves no tensor behind', async () => {
    // q/k norms over heads of 16, grouped heads, a 2-row batch: both kernels on the path, forward and backward.
    const cfg = parseModelConfig({ model_type: 'qwen3', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 61, max_position_embeddings: 64 });
    const model = Transformer.create(cfg, { seed: 8 });
    const ids = tf.tensor2d([[1, 5, 9, 13, 2, 40, 7, 3], [2, 4, 8, 16, 32, 60, 11, 0]], undefined, 'int32');
    const mask = tf.tensor2d([[0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]]);
    const step = (on: boolean) => {
      setWasmKernels(on);
      try {
        return tf.variableGrads(() => model.loss(ids, mask), model.trainableVariables());
      } finally {
        setWasmKernels(true);
      }
    };
    const warm = step(true);
    tf.dispose([warm.value, ...Object.values(warm.grads)]);
    const before = tf.memory().numTensors;
    const a = step(true);
    const b = step(false);
    const { diff } = await maxDiff(a.value, b.value);
    expect(diff).toBeLessThanOrEqual(1e-5);
    for (const name of Object.keys(b.grads)) {
      const { diff: d, scale } = await maxDiff(a.grads[name], b.grads[name]);
      expect(d, name).toBeLessThanOrEqual(1e-4 * Math.max(1e-2, scale));
    }
    tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ids, mask]);
    model.dispose();
  });
});
