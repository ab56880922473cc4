/**
 * The engine's fused wasm kernels (src/core/model/wasm-kernels.ts) against tfjs's ops, forward and
 * backward; the model with them generates what it generates without them and trains with the same
 * loss and gradients, leaving no tensor behind.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvWriteWasm, rmsNormWasm, ropeWasm, setWasmKernels, wasmKernels } from '../../src/core/model/wasm-kernels';
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

  it('gives the same loss and gradients as tfjs ops on a Qwen3-shaped model, and leaves no tensor behind', async () => {
    await trainingWithAndWithout(setWasmKernels);
  });
});
