/** Gradient clipping by global norm (Pascanu et al. 2013; torch.nn.utils.clip_grad_norm_). */
import * as tf from '@tensorflow/tfjs';

/** ‖g‖ = sqrt(Σ_i Σ g_i²) over every gradient tensor. Summed pairwise: an addN of many inputs exceeds WebGPU's storage-buffer limit per shader. */
export function globalNorm(grads: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(grads.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))) as tf.Scalar);
}

/**
 * Gradients scaled by min(1, maxNorm / (‖g‖ + 1e-6)) (as PyTorch), and the norm before clipping. The
 * scale stays on the device (no read-back inside the step). The caller disposes all returned tensors.
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): { grads: Record<string, tf.Tensor>; norm: tf.Scalar } {
  return tf.tidy(() => {
    const norm = globalNorm(Object.values(grads));
    const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
    const clipped: Record<string, tf.Tensor> = {};
    for (const [name, g] of Object.entries(grads)) clipped[name] = tf.mul(g, scale);
    return { grads: clipped, norm };
  });
}
