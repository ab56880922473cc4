/**
 * Rotary position embeddings in Hugging Face's convention (LlamaRotaryEmbedding + rotate_half):
 * the head dimension is split into two halves rather than interleaved pairs, so HF checkpoints give
 * the same logits here as in transformers.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp, matMul } from './ops';

/** inv_freq[i] = theta^(-2i/d), i < d/2 (RoFormer, Su et al. 2021; HF's _compute_default_rope_parameters). */
export function inverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  return inv;
}

/**
 * cos and sin tables [length, headDim]: angle(p, j) = p * inv_freq[j mod d/2], the halves repeated
 * (HF: emb = cat(freqs, freqs)).
 */
export function ropeTables(headDim: number, theta: number, length: number): { cos: Float32Array; sin: Float32Array } {
  const inv = inverseFrequencies(headDim, theta);
  const half = headDim / 2;
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  for (let p = 0; p < length; p++) {
    for (let j = 0; j < headDim; j++) {
      // HF multiplies in float32: round the angle the same way.
      const angle = Math.fround(p * inv[j % half]);
      cos[p * headDim + j] = Math.cos(angle);
      sin[p * headDim + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * The matrix R with x·R = rotate_half(x) = cat(-x[d/2:], x[:d/2]). A matmul is one fast op on every
 * backend, where slice + neg + concat would be four slow ones on wasm.
 */
export function rotateHalfMatrix(headDim: number): Float32Array {
  const half = headDim / 2;
  const r = new Float32Array(headDim * headDim);
  for (let j = 0; j < half; j++) {
    r[(j + half) * headDim + j] = -1; // out[j] = -x[j + d/2]
    r[j * headDim + j + half] = 1; // out[j + d/2] = x[j]
  }
  return r;
}

/**
 * rotate_half(x) over the last axis, x [..., d]. R is antisymmetric (Rᵀ = -R), so the gradient
 * dy·Rᵀ is -(dy·R): no transposed matmul (wasm runs those about ten times slower).
 */
export function rotateHalf(x: tf.Tensor, r: tf.Tensor2D): tf.Tensor {
  const d = r.shape[0];
  const op = customOp(([input], save) => {
    save([]);
    const value = tf.reshape(matMul(tf.reshape(input, [-1, d]), r), input.shape);
    const gradFunc = (dy: tf.Tensor) => tf.neg(tf.reshape(matMul(tf.reshape(dy, [-1, d]), r), dy.shape));
    return { value, gradFunc };
  });
  return op(x);
}

/** x·cos + rotate_half(x)·sin (HF apply_rotary_pos_emb); cos/sin broadcast over the head axis. */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, r: tf.Tensor2D): tf.Tensor {
  return tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x, r), sin));
}
