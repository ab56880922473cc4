/**
 * The engine's matrix kernel on wasm (src/core/model/wasm-matmul.ts) against tfjs's own product, for
 * every layout it takes (transposed operands, a shared operand, widths off its 8-column blocks, rows off
 * its 4-row blocks), through gradients, with no tensor or wasm allocation left behind; and the
 * assembled kernel is what its source assembles to.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { setWasmMatmul, wasmMatmulEnabled } from '../../src/core/model/wasm-matmul';
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
    [[12, 7], [12, 9], true, false], // 2-D transposed: the engine's kernel
    [[7, 12], [9, 12], false, true],
    [[30, 40], [40, 24], false, false], // plain 2-D: tfjs's XNNPACK
    [[3, 1, 64], [3, 200, 64], false, true], // one query row over many keys (decoding): dot products
    [[4, 3, 8], [1, 13, 8], false, true], // three rows, keys off the 4-column blocks, one B for all
    [[2, 5, 6], [2, 7, 6], false, true], // K not a multiple of 4: copied out and multiplied as A·B
  ];
  for (const [sa, sb, ta, tb] of shapes) {
    it(`multiplies [${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''} as tfjs does`, () => {
      const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
      const b = tf.randomNormal(sb, 0, 1, 'float32', 2);
      expectClose(both(() => tf.matMul(a, b, ta, tb)));
      tf.dispose([a, b]);
    });
  }

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

  it('frees its scratch memory', () => {
    const a = tf.randomNormal([8, 33, 20], 0, 1, 'float32', 6);
    const b = tf.randomNormal([8, 21, 20], 0, 1, 'float32', 7);
    tf.dispose(tf.matMul(a, b, false, true)); // the first call may grow the heap
    const heapBefore = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    for (let i = 0; i < 200; i++) tf.dispose(tf.matMul(a, b, false, true));
    expect((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length).toBe(heapBefore);
    tf.dispose([a, b]);
  });

  it('is assembled from its source (scripts/build-wasm-kernels.mjs --check)', () => {
    expect(execFileSync('node', ['scripts/build-wasm-kernels.mjs', '--check'], { encoding: 'utf8' })).toContain('up to date');
  });
});
