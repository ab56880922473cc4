/**
 * The engine's own WebGPU kernels against tfjs's reference ops, forward and backward, on Dawn (here
 * SwiftShader, a CPU implementation of Vulkan: these are correctness checks, not timings).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from '../../src/core/optim/adamw';
import { attentionWebGPU, entropyWebGPU, rmsNormWebGPU, ropeWebGPU, setWebGPUKernels, swigluWebGPU, targetLogprobsWebGPU } from '../../src/core/model/webgpu-kernels';
import { releaseNodeWebGPU, selectNodeBackend } from '../../src/node/backend';
import { checkRmsNorm, checkRope, generationWithAndWithout, trainingWithAndWithout } from '../fixtures/kernels';
import { expectSameAsReference, maxDiff } from '../fixtures/tensors';

beforeAll(async () => {
  expect((await selectNodeBackend(['webgpu'])).name).toBe('webgpu');
});

afterAll(() => releaseNodeWebGPU());

describe('RMSNorm kernel', () => {
  // Columns below, at and above the workgroup's 64 threads, not multiples of it; a 3-D input.
  const shapes: number[][] = [[3, 8], [5, 64], [4, 100], [2, 3, 384], [1, 1000]];
  for (const shape of shapes) {
    it(`equals the reference on [${shape.join(', ')}], value and both gradients`, async () => {
      await checkRmsNorm(rmsNormWebGPU, shape);
    });
  }
});

describe('RoPE kernel', () => {
  // One table for every row (prefill), and a table per row (decoding at different positions).
  const cases: { x: number[]; rows: number }[] = [
    { x: [2, 5, 3, 8], rows: 1 },
    { x: [3, 1, 4, 64], rows: 3 },
    { x: [1, 7, 2, 128], rows: 1 },
  ];
  for (const { x: shape, rows } of cases) {
    it(`equals HF's rotate_half form on x [${shape.join(', ')}] with ${rows} table row(s), value and gradient`, async () => {
      await checkRope(ropeWebGPU, shape, rows);
    });
  }
});

describe('SwiGLU kernel', () => {
  for (const shape of [[3, 7], [16, 352], [2, 5, 64]]) {
    it(`equals silu(g)·u on [${shape.join(', ')}], value and both gradients`, async () => {
      const g = tf.randomNormal(shape, 0, 3, 'float32', 21);
      const u = tf.randomNormal(shape, 0, 1, 'float32', 22);
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 23);
      await expectSameAsReference((a, b) => swigluWebGPU(a, b), (a, b) => tf.mul(tf.mul(a, tf.sigmoid(a)), b), [g, u], dy, ['value', 'dg', 'du']);
      tf.dispose([g, u, dy]);
    });
  }
});

describe('log-probability of the target kernel', () => {
  // Vocabularies below and above the workgroup, the tiny model's, and Qwen's 151,936 ids.
  for (const [rows, vocab] of [[5, 40], [7, 97], [3, 1024], [2, 151936]]) {
    it(`equals log_softmax picked by one-hot on [${rows} × ${vocab}], value and gradient`, async () => {
      const logits = tf.randomNormal([rows, vocab], 0, 4, 'float32', 31) as tf.Tensor2D;
      const targets = tf.tensor1d(Array.from({ length: rows }, (_, i) => (i * 7919) % vocab), 'int32');
      const dy = tf.randomNormal([rows], 0, 1, 'float32', 32);
      await expectSameAsReference((l) => targetLogprobsWebGPU(l as tf.Tensor2D, targets), (l) => tf.sum(tf.mul(tf.logSoftmax(l), tf.cast(tf.oneHot(targets, vocab), 'float32')), -1), [logits], dy, ['value', 'dlogits']);
      tf.dispose([logits, targets, dy]);
    });
  }
});

/** The engine's attention in tfjs ops (transformer.ts): the heads sharing a kv head stacked on the query axis. */
function referenceAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const [B, nH, T, hd] = q.shape;
  const [, nKV, S] = k.shape;
  const group = nH / nKV;
  const scores = tf.matMul(tf.reshape(q, [B, nKV, group * T, hd]), k, false, true);
  const probs = tf.softmax(tf.add(tf.reshape(scores, [B, nH, T, S]), bias));
  return tf.reshape(tf.matMul(tf.reshape(probs, [B, nKV, group * T, S]), v), [B, nH, T, hd]);
}

/** A causal mask [1, 1, T, S] for queries at positions S − T .. S − 1, or one per row with `pad` leading keys masked. */
function maskOf(B: number, T: number, S: number, pad: number[] = []): tf.Tensor4D {
  const rows = pad.length > 0 ? B : 1;
  const data = new Float32Array(rows * T * S);
  for (let b = 0; b < rows; b++)
    for (let t = 0; t < T; t++)
      for (let s = 0; s < S; s++) if (s > S - T + t || s < (pad[b] ?? 0)) data[(b * T + t) * S + s] = -1e9;
  return tf.tensor4d(data, [rows, 1, T, S]);
}

describe('attention kernel', () => {
  // [B, nH, nKV, T, S, hd]: training (T = S) with grouped heads; a prefill chunk over a longer cache;
  // one token decoding; more keys than a chunk (256); head_dim 128 (Qwen3) and an odd one.
  const cases: [number, number, number, number, number, number][] = [
    [2, 4, 2, 7, 7, 8],
    [1, 2, 1, 5, 40, 16],
    [3, 4, 4, 1, 19, 32],
    [1, 2, 2, 3, 300, 8],
    [1, 2, 1, 4, 4, 128],
    [2, 3, 1, 6, 6, 20],
  ];
  for (const [B, nH, nKV, T, S, hd] of cases) {
    it(`equals the reference for B ${B}, ${nH} heads on ${nKV} kv heads, ${T} queries over ${S} keys, head_dim ${hd}: value and dq, dk, dv`, async () => {
      const q = tf.mul(tf.randomNormal([B, nH, T, hd], 0, 1, 'float32', 1), 1 / Math.sqrt(hd));
      const k = tf.randomNormal([B, nKV, S, hd], 0, 1, 'float32', 2);
      const v = tf.randomNormal([B, nKV, S, hd], 0, 1, 'float32', 3);
      const mask = maskOf(B, T, S, B > 1 ? [0, 2, 1].slice(0, B) : []);
      const dy = tf.randomNormal([B, nH, T, hd], 0, 1, 'float32', 4);
      await expectSameAsReference(
        (a, b, c) => attentionWebGPU(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask),
        (a, b, c) => referenceAttention(a, b, c, mask),
        [q, k, v],
        dy,
        ['value', 'dq', 'dk', 'dv'],
      );
      tf.dispose([q, k, v, mask, dy]);
    });
  }
});

describe('entropy kernel', () => {
  const reference = (l: tf.Tensor) => {
    const logSoft = tf.logSoftmax(l);
    return tf.neg(tf.sum(tf.mul(tf.exp(logSoft), logSoft), -1));
  };
  // Rows of near-equal, peaked and spread logits; vocabularies below and above the workgroup, and Qwen's.
  for (const [rows, vocab, scale] of [[5, 40, 1], [7, 97, 8], [3, 1024, 0.01], [2, 151936, 3]] as const) {
    it(`equals the log-softmax's on [${rows} × ${vocab}] (logits × ${scale}), value and gradient`, async () => {
      const logits = tf.mul(tf.randomNormal([rows, vocab], 0, 1, 'float32', rows), scale);
      const dy = tf.randomNormal([rows], 0, 1, 'float32', 9);
      // Float32's rounding of x − lse grows with the logits' size: 1e-5 of the largest (about 4σ).
      await expectSameAsReference((l) => entropyWebGPU(l as tf.Tensor2D), reference, [logits], dy, ['value', 'dlogits'], 1e-5 * Math.max(1, 4 * scale));
      tf.dispose([logits, dy]);
    });
  }
});

describe('fused AdamW', () => {
  it('takes the same steps as the op-by-op AdamW, decayed matrices and undecayed vectors alike', async () => {
    const start = { w: tf.randomNormal([33, 17], 0, 1, 'float32', 41), b: tf.randomNormal([17], 0, 1, 'float32', 42) };
    const run = async (on: boolean) => {
      setWebGPUKernels(on);
      try {
        const w = tf.variable(start.w, true, `w_${on}`);
        const b = tf.variable(start.b, true, `b_${on}`);
        const opt = new AdamW([w, b], { weightDecay: 0.1 });
        for (let step = 0; step < 3; step++) {
          const grads = { [w.name]: tf.randomNormal([33, 17], 0, 1, 'float32', 50 + step), [b.name]: tf.randomNormal([17], 0, 1, 'float32', 60 + step) };
          opt.apply(grads, 1e-2);
          tf.dispose(Object.values(grads));
        }
        const state = await opt.exportState((v) => v.name.replace(/_(true|false)$/, ''));
        const out = { w: Array.from(await w.data()), b: Array.from(await b.data()), state };
        opt.dispose();
        tf.dispose([w, b]);
        return out;
      } finally {
        setWebGPUKernels(true);
      }
    };
    const before = tf.memory().numTensors;
    const fused = await run(true);
    const plain = await run(false);
    expect(tf.memory().numTensors).toBe(before);
    const close = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - b[i]) <= 1e-6 * Math.max(1, Math.abs(b[i])));
    expect(close(fused.w, plain.w)).toBe(true);
    expect(close(fused.b, plain.b)).toBe(true);
    for (const key of ['m.w', 'v.w', 'm.b', 'v.b']) expect(close(Array.from(fused.state.moments.get(key)!.data), Array.from(plain.state.moments.get(key)!.data)), key).toBe(true);
    // The weights moved: the check compares steps, not two copies of the start.
    expect(close(fused.w, Array.from(await start.w.data()))).toBe(false);
    tf.dispose([start.w, start.b]);
  });
});

describe('the model with the kernels', () => {
  it('generates the same tokens as without them at temperature 0, and leaves no tensor or GPU buffer behind', async () => {
    const { before, after } = await generationWithAndWithout(setWebGPUKernels);
    const gpu = (m: tf.MemoryInfo) => m as tf.MemoryInfo & { numBytesInGPU: number; numBytesAllocatedInGPU: number };
    expect(after.numTensors).toBe(before.numTensors);
    expect(gpu(after).numBytesInGPU).toBe(gpu(before).numBytesInGPU);
    expect(gpu(after).numBytesAllocatedInGPU).toBe(gpu(before).numBytesAllocatedInGPU);
  });
});

describe('a training step with the kernels', () => {
  it('gives the same loss and gradients as tfjs ops on a Qwen3-shaped model, and leaves no tensor behind', async () => {
    // Every kernel above sits on the path, attention's backward included.
    await trainingWithAndWithout(setWebGPUKernels);
  });
});
