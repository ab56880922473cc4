/**
 * 2-D products on wasm (src/core/model/ops.ts): a·bᵀ as (b·aᵀ)ᵀ when b is the large operand, and a
 * plain a·b with a right operand over WASM_PACK_LIMIT summed over blocks of b's rows, against
 * float64 sums computed here; the linear op's gradients through the same paths; no tensor left over.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { linear, matMul, WASM_PACK_LIMIT } from '../../src/core/model/ops';
import { createRng } from '../../src/core/rng';
import { selectNodeBackend } from '../../src/node/backend';

beforeAll(async () => {
  await selectNodeBackend(['wasm']);
});

function random(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

/** C[i, j] = Σ_k A[i, k]·B[k, j] in float64, with either operand given transposed. */
function reference(a: Float32Array, b: Float32Array, m: number, k: number, n: number, bTransposed: boolean): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let kk = 0; kk < k; kk++) {
      const x = a[i * k + kk];
      if (bTransposed) for (let j = 0; j < n; j++) out[i * n + j] += x * b[j * k + kk];
      else for (let j = 0; j < n; j++) out[i * n + j] += x * b[kk * n + j];
    }
  return out;
}

function maxDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  expect(x.length).toBe(y.length);
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d;
}

describe('wasm 2-D products', () => {
  it('multiplies by a transposed large operand (the tied LM head) without transposing it', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const before = tf.memory().numTensors;
    const [m, k, n] = [3, 64, 5000];
    const a = random(m * k, 1);
    const b = random(n * k, 2);
    const at = tf.tensor2d(a, [m, k]);
    const bt = tf.tensor2d(b, [n, k]);
    const out = matMul(at, bt, false, true);
    expect(out.shape).toEqual([m, n]);
    expect(maxDiff(await out.data(), reference(a, b, m, k, n, true))).toBeLessThan(1e-4);
    tf.dispose([at, bt, out]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sums a plain product over blocks of rows when the right operand is over the packing limit', async () => {
    const before = tf.memory().numTensors;
    const [m, k, n] = [2, 300, Math.ceil(WASM_PACK_LIMIT / 256)];
    expect(k * n).toBeGreaterThan(WASM_PACK_LIMIT); // 65536 × 300: five blocks of 256 rows
    const a = random(m * k, 3);
    const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 7919) % 2001) / 1000 - 1);
    const at = tf.tensor2d(a, [m, k]);
    const bt = tf.tensor2d(b, [k, n]);
    const out = matMul(at, bt);
    expect(out.shape).toEqual([m, n]);
    expect(maxDiff(await out.data(), reference(a, b, m, k, n, false))).toBeLessThan(1e-3);
    tf.dispose([at, bt, out]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("gives the tied head's gradients: dx = dy·W and dW = dyᵀ·x", async () => {
    const before = tf.memory().numTensors;
    const [m, h, v] = [4, 16, 700];
    const xs = random(m * h, 5);
    const ws = random(v * h, 6);
    const x = tf.tensor2d(xs, [m, h]);
    const w = tf.tensor2d(ws, [v, h]);
    // loss = Σ y·c with c[i, j] = j mod 3 - 1: dy = c.
    const c = tf.tensor2d(Float32Array.from({ length: m * v }, (_, i) => ((i % v) % 3) - 1), [m, v]);
    const [dx, dw] = tf.grads((xi: tf.Tensor, wi: tf.Tensor) => tf.sum(tf.mul(linear(xi as tf.Tensor2D, wi as tf.Tensor2D, true), c)))([x, w]);
    const dy = await c.data();
    // dx[i, k] = Σ_j dy[i, j]·w[j, k]; dw[j, k] = Σ_i dy[i, j]·x[i, k]
    const wantDx = reference(dy as Float32Array, ws, m, v, h, false);
    const dyT = new Float32Array(v * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < v; j++) dyT[j * m + i] = dy[i * v + j];
    const wantDw = reference(dyT, xs, v, m, h, false);
    expect(maxDiff(await dx.data(), wantDx)).toBeLessThan(1e-3);
    expect(maxDiff(await dw.data(), wantDw)).toBeLessThan(1e-4);
    tf.dispose([x, w, c, dx, dw]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
