/** Per-token log-probabilities and masked losses: what the trainers differentiate. */
import * as tf from '@tensorflow/tfjs';
import { targetLogprobsWebGPU, webgpuKernels } from './webgpu-kernels';

/**
 * log p(target_n) = log_softmax(logits_n)[target_n], for logits [N, V] and targets [N] (int32).
 * The pick is a one-hot product rather than a gather, so its gradient needs no UnsortedSegmentSum.
 * (The one-hot is cast rather than made float32 directly: wasm's OneHot writes int32 data whatever the dtype.)
 * On WebGPU one kernel each way, with nothing of size N × V but the gradient (docs/engine.md#webgpu-kernels).
 */
export function logprobsOfTargets(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  if (webgpuKernels()) return targetLogprobsWebGPU(logits, targets);
  return tf.tidy(() => {
    const vocab = logits.shape[1];
    return tf.sum(tf.mul(tf.logSoftmax(logits), tf.cast(tf.oneHot(targets, vocab), 'float32')), -1) as tf.Tensor1D;
  });
}

/** Σ values·mask / max(Σ mask, 1): the token mean over unmasked positions. */
export function maskedMean(values: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(values, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar);
}

/** Mean negative log-likelihood of the unmasked tokens (SFT loss; THOR's α·L_NLL term). */
export function maskedNLL(logprobs: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.neg(maskedMean(logprobs, mask)));
}
