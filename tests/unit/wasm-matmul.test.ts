/**
 * The engine's matrix kernel on wasm (src/core/model/wasm-matmul.ts) against tfjs's own product, for
 * every layout it takes (transposed operands, a shared operand, widths off its 8-column blocks, rows off
 * its 4-row blocks), in its builds with and without fused multiply-adds, through gradients, with no
 * tensor or wasm allocation left behind; a weight's panels kept between products and freed with it;
 * and the assembled kernel is what its source assembles to.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  fusedMultiplyAdd,
  memoryOf,
  packedWeightBytes,
  relaxedSimdAvailable,
  setRelaxedSimd,
  setWasmMatmul,
  wasmMatmulEnabled,
  type WasmBackend,
} from '../../src/core/model/wasm-matmul';
import { selectNodeBackend } from '../../src/node/backend';

beforeAll(async () => {
  await selectNodeBackend(['wasm']);
});

function both(f: () => tf.Tensor): [Float32Array, Float32Array] {
  setWasmMatmul(true);
  const mine = tf.tidy(f);
  setWasmMatmul(false);
  const ref = tf.tidy(f);
  setWasmMatmul(true);
  expect(mine.shape).toEqual(ref.shape);
  const out: [Float32Array, Float32Array] = [mine.dataSync() as Float32Array, ref.dataSync() as Float32Array];
  tf.dispose([mine, ref]);
  return out;
}

function expectClose([got, want]: [Float32Array, Float32Array]): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(1, ...Array.from(want, Math.abs));
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst / scale).toBeLessThan(1e-5);
}

describe('the wasm matrix kernel', () => {
  it('is installed on the wasm backend', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(wasmMatmulEnabled()).toBe(true);
  });

  const shapes: [number[], number[], boolean, boolean][] = [
    [[6, 13, 7], [6, 7, 16], false, false], // 4-row blocks and one-row tail, width a multiple of 8
    [[6, 13, 7], [6, 7, 11], false, false], // width off the blocks
    [[2, 3, 5, 9], [2, 3, 9, 24], false, false], // 4-D
    [[4, 10, 32], [4, 19, 32], false, true], // scores q·kᵀ
    [[4, 32, 10], [4, 32, 19], true, false], // a gradient's aᵀ·b
    [[4, 9, 5], [4, 17, 9], true, true],
    [[5, 3, 64], [1, 64, 20], false, false], // one right-hand operand for all
    [[1, 8, 12], [3, 12, 5], false, false], // one left-hand operand for all
    [[1, 1, 8, 12], [3, 12, 5], false, false], // batch axes of different ranks
    [[2, 3, 4, 8], [1, 8, 9], false, false],
    [[2, 3, 8], [2, 8, 16], false, false], // fewer than 4 rows through the blocked kernel
    [[3, 2, 9], [3, 9, 8], false, false], // two rows: one block, its last two rows repeated and not stored
    [[2, 7, 5], [2, 5, 16], false, false], // a block of 4, then 3 rows in a block
    [[2, 6, 3], [2, 6, 24], true, false], // 3 rows of a transposed A in a block
    [[3, 5, 0], [3, 0, 6], false, false], // an empty inner axis: zeros
    [[2, 6, 7], [2, 7, 1], false, false], // one column
    [[2, 1, 12], [2, 12, 8], false, false], // one row
    [[12, 7], [12, 9], true, false], // 2-D transposed: the engine's kernel
    [[7, 12], [9, 12], false, true],
    [[30, 40], [40, 24], false, false], // plain 2-D: the engine's kernel, columns first (few rows)
    [[70, 40], [40, 24], false, false], // plain 2-D of 64 rows or more: rows first (XNNPACK's without fused multiply-adds)
    [[5, 33], [33, 70], false, false], // plain 2-D, columns first, blocks of 32 and a last one of 6 (zero-padded to 8)
    [[1, 9], [9, 40], false, false], // one row, plain
    [[70, 9], [9, 3], false, false], // plain and narrower than a block of 8: XNNPACK's (a matrix-vector product)
    [[3, 1, 64], [3, 200, 64], false, true], // one query row over many keys (decoding): dot products
    [[4, 3, 8], [1, 13, 8], false, true], // three rows, keys off the 4-column blocks, one B for all
    [[2, 5, 6], [2, 7, 6], false, true], // K not a multiple of 4: copied out and multiplied as A·B
    [[2, 9, 7], [2, 7, 16], false, false], // 8 rows or more: B packed in panels though it could be read in place
    [[2, 11, 5], [2, 5, 13], false, false], // panels, the last one zero-padded past the width
    [[3, 12, 8], [1, 20, 8], false, true], // 8 rows or more of A·Bᵀ: Bᵀ packed in panels, once for all batches
    [[2, 8, 10], [2, 8, 21], true, false], // Aᵀ read where it lies, B in panels
    [[2, 7, 259], [2, 7, 9], true, false], // Aᵀ of 256 rows or more: transposed first, 4 × 4 blocks and both tails
    [[2, 12, 256], [1, 12, 16], true, false], // the same, blocks only, once for each A
  ];
  it('has relaxed SIMD in Node (the Node backend turns it on) and can be told not to use it', () => {
    expect(relaxedSimdAvailable()).toBe(true);
    const memory = memoryOf(tf.backend() as unknown as WasmBackend);
    const product = () => tf.tidy(() => tf.matMul(tf.ones([2, 3, 4]), tf.ones([2, 4, 8])).dataSync());
    setRelaxedSimd(false);
    expect(Array.from(product())).toEqual(new Array(48).fill(4));
    expect(fusedMultiplyAdd(memory)).toBe(false);
    setRelaxedSimd(true);
    product();
    expect(fusedMultiplyAdd(memory)).toBe(true);
  });

  for (const relaxed of [true, false])
    for (const [sa, sb, ta, tb] of shapes) {
      it(`multiplies [${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''} as tfjs does (${relaxed ? 'fused multiply-adds' : 'products and sums'})`, () => {
        setRelaxedSimd(relaxed);
        try {
          const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
          const b = tf.randomNormal(sb, 0, 1, 'float32', 2);
          // Twice: the second product of a 2-D right-hand operand reads its kept panels.
          for (let i = 0; i < 2; i++) expectClose(both(() => tf.matMul(a, b, ta, tb)));
          tf.dispose([a, b]);
        } finally {
          setRelaxedSimd(true);
        }
      });
    }

  it("keeps a weight's panels from its second product on, as B or as Bᵀ (one copy a weight), and frees them with the weight", () => {
    const start = packedWeightBytes();
    const w = tf.randomNormal([40, 20], 0, 1, 'float32', 11);
    const x = tf.randomNormal([6, 40], 0, 1, 'float32', 12);
    const y = tf.randomNormal([6, 20], 0, 1, 'float32', 13);
    expectClose(both(() => tf.matMul(x, w)));
    // both() multiplied once with the engine's kernel: seen, not yet kept.
    expect(packedWeightBytes()).toBe(start);
    expectClose(both(() => tf.matMul(x, w)));
    // 20 columns in 3 panels of 8: 40 · 24 floats.
    expect(packedWeightBytes()).toBe(start + 40 * 24 * 4);
    expectClose(both(() => tf.matMul(x, w)));
    // As Bᵀ too, but packed for each product: one copy a weight (LoRA's backward through a frozen one).
    for (let i = 0; i < 3; i++) expectClose(both(() => tf.matMul(y, w, false, true)));
    expect(packedWeightBytes()).toBe(start + 40 * 24 * 4);
    // A weight multiplied only transposed (a tied LM head) keeps its Bᵀ panels: [40, 20] in 3 panels of 8 columns, 40 rows each.
    const head = tf.randomNormal([20, 40], 0, 1, 'float32', 21);
    for (let i = 0; i < 2; i++) expectClose(both(() => tf.matMul(x, head, false, true)));
    expect(packedWeightBytes()).toBe(start + 40 * 24 * 4 + 40 * 24 * 4);
    head.dispose();
    expect(packedWeightBytes()).toBe(start + 40 * 24 * 4);
    // A reshape shares the weight's data: packed for its own shape, never read from the other's panels.
    // (The reference multiplies a copy: tfjs's XNNPACK keeps its packed operand by data as well, shape aside.)
    const reshaped = tf.reshape(w, [80, 10]);
    const copy = tf.tensor2d(reshaped.dataSync(), [80, 10]);
    const z = tf.randomNormal([3, 80], 0, 1, 'float32', 14);
    setWasmMatmul(false);
    const want = tf.matMul(z, copy);
    setWasmMatmul(true);
    for (let i = 0; i < 3; i++) {
      const got = tf.matMul(z, reshaped);
      expectClose([got.dataSync() as Float32Array, want.dataSync() as Float32Array]);
      got.dispose();
    }
    expect(packedWeightBytes()).toBe(start + 40 * 24 * 4);
    tf.dispose([w, reshaped, copy, want]);
    expect(packedWeightBytes()).toBe(start);
    // A product of more than 64 rows packs its B for itself: a training step's frozen weight is not kept.
    const frozen = tf.randomNormal([40, 16], 0, 1, 'float32', 19);
    const many = tf.randomNormal([100, 40], 0, 1, 'float32', 20);
    for (let i = 0; i < 3; i++) expectClose(both(() => tf.matMul(many, frozen)));
    expect(packedWeightBytes()).toBe(start);
    tf.dispose([x, y, z, frozen, many]);
  });

  it('broadcasts batch axes on both sides as their materialised copies multiply', () => {
    for (const [sa, sb, ta, tb] of [
      [[3, 1, 4, 5], [3, 5, 8], false, false],
      [[2, 1, 3, 4], [1, 2, 4, 8], false, false],
      [[2, 1, 6, 4], [1, 3, 7, 4], false, true],
      [[4, 1, 5, 3], [1, 2, 5, 9], true, false],
    ] as [number[], number[], boolean, boolean][]) {
      const a = tf.randomNormal(sa, 0, 1, 'float32', 8);
      const b = tf.randomNormal(sb, 0, 1, 'float32', 9);
      const product = tf.matMul(a, b, ta, tb);
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(sa.slice(0, -2), sb.slice(0, -2));
      // Both operands copied out to the whole batch: every batch then has its own, which tfjs multiplies right.
      setWasmMatmul(false);
      const want = tf.tidy(() => tf.matMul(tf.broadcastTo(a, [...outer, ...sa.slice(-2)]), tf.broadcastTo(b, [...outer, ...sb.slice(-2)]), ta, tb));
      setWasmMatmul(true);
      expect(product.shape).toEqual(want.shape);
      expectClose([product.dataSync() as Float32Array, want.dataSync() as Float32Array]);
      tf.dispose([a, b, product, want]);
    }
  });

  it("gives attention's gradients as tfjs does, leaving no tensor behind", () => {
    const q = tf.randomNormal([2, 3, 12, 16], 0, 1, 'float32', 3);
    const k = tf.randomNormal([2, 3, 12, 16], 0, 1, 'float32', 4);
    const v = tf.randomNormal([2, 3, 12, 16], 0, 1, 'float32', 5);
    const before = tf.memory().numTensors;
    const loss = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.sum(tf.sin(tf.matMul(tf.softmax(tf.matMul(q, k, false, true)), v)));
    const grads = tf.grads(loss);
    for (let i = 0; i < 3; i++) expectClose(both(() => grads([q, k, v])[i]));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, k, v]);
  });

  it('leaves a weight that XNNPACK took first to XNNPACK, so that it is never held packed twice', () => {
    const start = packedWeightBytes();
    const w = tf.randomNormal([24, 16], 0, 1, 'float32', 15);
    const big = tf.randomNormal([70, 24], 0, 1, 'float32', 16);
    const small = tf.randomNormal([5, 24], 0, 1, 'float32', 17);
    // Without fused multiply-adds, 64 rows or more are XNNPACK's: it packs w and keeps the copy.
    setRelaxedSimd(false);
    try {
      expectClose(both(() => tf.matMul(big, w)));
    } finally {
      setRelaxedSimd(true);
    }
    for (let i = 0; i < 3; i++) expectClose(both(() => tf.matMul(small, w)));
    expect(packedWeightBytes()).toBe(start);
    // A weight the engine's kernel took first keeps its panels for large products too.
    const v = tf.randomNormal([24, 16], 0, 1, 'float32', 18);
    for (let i = 0; i < 2; i++) expectClose(both(() => tf.matMul(small, v)));
    expect(packedWeightBytes()).toBe(start + 24 * 16 * 4);
    setRelaxedSimd(false);
    try {
      expectClose(both(() => tf.matMul(big, v)));
    } finally {
      setRelaxedSimd(true);
    }
    tf.dispose([w, v, big, small]);
    expect(packedWeightBytes()).toBe(start);
  });

  it('frees every scratch block it allocates', () => {
    const wasm = (tf.backend() as unknown as { wasm: { _malloc(n: number): number; _free(p: number): void } }).wasm;
    const [malloc, free] = [wasm._malloc, wasm._free];
    const live = new Set<number>();
    let allocated = 0;
    wasm._malloc = (n: number) => {
      const p = malloc.call(wasm, n);
      live.add(p);
      allocated++;
      return p;
    };
    wasm._free = (p: number) => {
      live.delete(p);
      free.call(wasm, p);
    };
    try {
      const a = tf.randomNormal([8, 20, 33], 0, 1, 'float32', 6);
      const b = tf.randomNormal([8, 21, 20], 0, 1, 'float32', 7);
      const outputs = [tf.matMul(a, b, true, true), tf.matMul(a, b, true, true)];
      // A plain 2-D weight's panels, kept from its second product, go with it.
      const w = tf.randomNormal([33, 12], 0, 1, 'float32', 8);
      const x = tf.randomNormal([5, 33], 0, 1, 'float32', 9);
      outputs.push(tf.matMul(x, w), tf.matMul(x, w), tf.matMul(x, w, false, false));
      tf.dispose([a, b, w, x, ...outputs]);
      // Inputs, outputs and scratch blocks were allocated (more than the tensors alone), and nothing is left.
      expect(allocated).toBeGreaterThan(4);
      expect([...live]).toEqual([]);
    } finally {
      wasm._malloc = malloc;
      wasm._free = free;
    }
  });

  it('is assembled from its source (scripts/build-wasm-kernels.mjs --check)', () => {
    expect(execFileSync('node', ['scripts/build-wasm-kernels.mjs', '--check'], { encoding: 'utf8' })).toContain('up to date');
  });
});
