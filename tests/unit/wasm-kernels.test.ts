/**
 * The engine's fused wasm kernels (src/core/model/wasm-kernels.ts) against tfjs's ops, forward and
 * backward; the model with them generates what it generates without them and trains with the same
 * loss and gradients, leaving no tensor behind.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { MASKED } from '../../src/core/model/transformer';
import { attendWasm, gatherRows, kvWriteWasm, rmsNormWasm, ropeWasm, setWasmKernels, swigluWasm, wasmKernels } from '../../src/core/model/wasm-kernels';
import { selectNodeBackend } from '../../src/node/backend';
import { checkRmsNorm, checkRope, generationWithAndWithout, rmsNormReference, trainingWithAndWithout } from '../fixtures/kernels';
import { expectSameAsReference, maxDiff } from '../fixtures/tensors';

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
      await checkRmsNorm(rmsNormWasm, shape);
    });
  }

  it('keeps a large eps and tiny inputs finite, as the reference does', async () => {
    const x = tf.tensor2d([[1e-20, -1e-20, 0, 0], [3, -4, 0, 0]]);
    const w = tf.ones([4]);
    const dy = tf.ones([2, 4]);
    await expectSameAsReference((a, b) => rmsNormWasm(a, b, 0.5), (a, b) => rmsNormReference(a, b, 0.5), [x, w], dy, ['value', 'dx', 'dw']);
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
      await checkRope(ropeWasm, shape, rows);
    });
  }
});

describe('SwiGLU kernel', () => {
  const reference = (a: tf.Tensor, b: tf.Tensor) => tf.mul(tf.mul(a, tf.sigmoid(a)), b);
  for (const shape of [[4], [3, 8], [16, 352], [2, 5, 64]]) {
    it(`equals silu(g)·u on [${shape.join(', ')}], value and both gradients`, async () => {
      const g = tf.randomNormal(shape, 0, 3, 'float32', 21);
      const u = tf.randomNormal(shape, 0, 1, 'float32', 22);
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 23);
      await expectSameAsReference((a, b) => swigluWasm(a, b), reference, [g, u], dy, ['value', 'dg', 'du']);
      tf.dispose([g, u, dy]);
    });
  }

  it('stays finite and exact far out on both sides, where e^−g leaves its table range', async () => {
    const g = tf.tensor1d([-1e38, -1e20, -1e4, -200, -88.5, -87, -30, -1e-3, 0, 1e-3, 30, 87, 88.5, 200, 1e20, 1e30]);
    const u = tf.tensor1d([1, 1, 1, 2, -3, 4, 0.5, 5, 6, -7, 8, 0.25, -1, 2, 1e-20, 1e-10]);
    const dy = tf.ones([16]);
    await expectSameAsReference((a, b) => swigluWasm(a, b), reference, [g, u], dy, ['value', 'dg', 'du']);
    // silu(g) · u is (next to) 0 for a very negative g, even against a large u (g · u alone would overflow).
    const far = tf.tidy(() => swigluWasm(tf.tensor1d([-1e20, -1e38, -100, -90]), tf.tensor1d([1e20, 1e30, 3, 3])));
    for (const x of far.dataSync()) expect(Math.abs(x)).toBeLessThan(1e-30);
    tf.dispose([g, u, dy, far]);
  });
});

describe('KV cache write', () => {
  it('writes what tensorScatterUpdate writes, in place, and frees the buffer once both handles are gone', async () => {
    const before = tf.memory();
    const cache = tf.randomNormal([2, 3, 10, 8], 0, 1, 'float32', 31) as tf.Tensor4D;
    // Rows at different slots, one of them the last (the spare slot padding writes), one written twice.
    const slots = tf.tensor2d([[0, 0, 0], [0, 2, 9], [1, 1, 4], [1, 0, 7], [1, 0, 7]], undefined, 'int32');
    const values = tf.randomNormal([5, 8], 0, 1, 'float32', 32) as tf.Tensor2D;
    const expected = tf.tensorScatterUpdate(cache, slots, values);
    const written = kvWriteWasm(cache, slots, values);
    expect(written.shape).toEqual([2, 3, 10, 8]);
    expect((await maxDiff(written, expected)).diff).toBe(0);
    // In place: the tensor passed in holds the write too.
    expect((await maxDiff(cache, expected)).diff).toBe(0);
    cache.dispose();
    expect((await maxDiff(written, expected)).diff).toBe(0);
    tf.dispose([written, expected, slots, values]);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });
});

describe('row gather', () => {
  it('takes the rows tf.gather takes, of float32 and int32 tables, repeated, in any order, or none', () => {
    const table = tf.randomNormal([9, 12], 0, 1, 'float32', 3) as tf.Tensor2D;
    const ints = tf.tensor2d(Array.from({ length: 27 }, (_, i) => i * 7 - 50), [9, 3], 'int32');
    for (const ids of [[0], [8, 0, 8, 3], [4, 4, 4], []]) {
      const idx = tf.tensor1d(ids, 'int32');
      for (const t of [table, ints]) {
        const got = gatherRows(t, idx);
        const want = tf.gather(t, idx);
        expect(got.shape).toEqual(want.shape);
        expect(got.dtype).toBe(t.dtype);
        expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
        tf.dispose([got, want]);
      }
      idx.dispose();
    }
    tf.dispose([table, ints]);
  });

  it('refuses an index out of range by its value and the range, and leaves no tensor behind', () => {
    const table = tf.zeros([5, 4]) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    for (const bad of [5, -1, 1000]) {
      const idx = tf.tensor1d([0, bad], 'int32');
      expect(() => gatherRows(table, idx)).toThrow(`the index value ${bad} is not in [0, 4]`);
      idx.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    table.dispose();
  });
});

describe('attention of a cached step', () => {
  /** softmax(q·kᵀ + bias)·v with tfjs's ops, q's rows grouped as the model groups them. */
  function reference(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, group: number): tf.Tensor4D {
    return tf.tidy(() => {
      const [B, nKV, R, d] = q.shape;
      const T = R / group;
      const C = k.shape[2];
      const scores = tf.reshape(tf.matMul(q, k, false, true), [B, nKV, group, T, C]);
      const probs = tf.softmax(tf.add(scores, tf.reshape(bias, [B, 1, 1, T, C])));
      return tf.matMul(tf.reshape(probs, [B, nKV, R, C]), v) as tf.Tensor4D;
    });
  }

  // Decoding (T = 1) and a prefill chunk (T > 1, causal); slots in use fewer than the cache holds,
  // and a number of them that is not a multiple of 4; heads of 8 to 128; one query row a kv head to 20
  // (blocks of 4 and what is left); one kv head and several.
  const cases = [
    { B: 3, nKV: 2, group: 3, T: 1, C: 40, attended: 29, d: 64 },
    { B: 2, nKV: 1, group: 4, T: 5, C: 37, attended: 37, d: 16 },
    { B: 1, nKV: 2, group: 1, T: 3, C: 12, attended: 7, d: 128 },
    { B: 4, nKV: 2, group: 2, T: 1, C: 257, attended: 200, d: 32 },
    { B: 2, nKV: 2, group: 5, T: 4, C: 30, attended: 23, d: 8 },
    { B: 1, nKV: 1, group: 1, T: 1, C: 5, attended: 1, d: 24 },
  ];
  for (const { B, nKV, group, T, C, attended, d } of cases) {
    it(`equals tfjs's ops for B ${B}, ${nKV} kv head(s) of ${group}, T ${T}, ${attended} of ${C} slots, d ${d}`, async () => {
      const before = tf.memory().numTensors;
      const q = tf.tidy(() => tf.mul(tf.randomNormal([B, nKV, group * T, d], 0, 1, 'float32', 41), 1 / Math.sqrt(d))) as tf.Tensor4D;
      const k = tf.randomNormal([B, nKV, C, d], 0, 2, 'float32', 42) as tf.Tensor4D;
      const v = tf.randomNormal([B, nKV, C, d], 0, 1, 'float32', 43) as tf.Tensor4D;
      // Each row's token t at its own position: it sees slots up to it, the last row's last token sees all `attended`.
      const values = new Float32Array(B * T * C);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          const seen = b === B - 1 ? attended - (T - 1 - t) : Math.max(1, attended - 3 * b - (T - 1 - t));
          values.fill(MASKED, (b * T + t) * C + seen, (b * T + t + 1) * C);
        }
      const bias = tf.tensor4d(values, [B, 1, T, C]);
      const got = attendWasm(q, k, v, bias, attended);
      const want = reference(q, k, v, bias, group);
      expect(got.shape).toEqual(want.shape);
      const { diff, scale } = await maxDiff(got, want);
      expect(diff).toBeLessThanOrEqual(2e-6 * Math.max(1, scale));
      tf.dispose([q, k, v, bias, got, want]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('keeps a large spread of scores exact, and takes no slot past the ones in use', async () => {
    // Scores from -80 to +80 apart: the softmax is a few slots; the slots past `attended` hold NaN, unread.
    const [B, nKV, R, C, d] = [1, 1, 2, 8, 16];
    const q = tf.tensor4d(Array.from({ length: R * d }, (_, i) => (i < d ? 1 : -1)), [B, nKV, R, d]);
    const kv = Array.from({ length: C * d }, (_, i) => (Math.floor(i / d) < 6 ? (Math.floor(i / d) - 3) * (10 / 16) * 8 : NaN));
    const k = tf.tensor4d(kv, [B, nKV, C, d]);
    const v = tf.tensor4d(kv.map((x, i) => (Number.isNaN(x) ? NaN : i % 7)), [B, nKV, C, d]);
    const bias = tf.zeros([B, 1, 1, C]) as tf.Tensor4D;
    const got = attendWasm(q, k, v, bias, 6);
    const want = reference(tf.slice(q, 0, [B, nKV, R, d]) as tf.Tensor4D, tf.slice(k, 0, [B, nKV, 6, d]) as tf.Tensor4D, tf.slice(v, 0, [B, nKV, 6, d]) as tf.Tensor4D, tf.zeros([B, 1, 1, 6]) as tf.Tensor4D, R);
    const out = await got.data();
    expect(out.every(Number.isFinite)).toBe(true);
    const { diff } = await maxDiff(got, want);
    expect(diff).toBeLessThanOrEqual(1e-5);
    tf.dispose([q, k, v, bias, got, want]);
  });
});

describe('the model with the fused kernels', () => {
  it('generates the same tokens as without them at temperature 0, and leaves no tensor behind', async () => {
    const { before, after } = await generationWithAndWithout(setWasmKernels);
    expect(after.numTensors).toBe(before.numTensors);
  });

  it('generates the same tokens with one kv head, one row (the cache written by copy) and two (in place)', async () => {
    for (const prompts of [[[3, 1, 4, 1, 5]], [[3, 1, 4, 1, 5], [9, 2, 6]]]) {
      const { before, after } = await generationWithAndWithout(setWasmKernels, { kvHeads: 1, prompts });
      expect(after.numTensors).toBe(before.numTensors);
    }
  });

  it('generates the same tokens as without them on a Qwen3-shaped model (per-head norms before RoPE), and leaves no tensor behind', async () => {
    const { before, after } = await generationWithAndWithout(setWasmKernels, { qwen3: true });
    expect(after.numTensors).toBe(before.numTensors);
  });

  it('gives the same loss and gradients as tfjs ops on a Qwen3-shaped model, and leaves no tensor behind', async () => {
    await trainingWithAndWithout(setWasmKernels);
  });
});
