/** One optimisation step: gradients of every parameter, clipping by global norm, AdamW. */
import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer';
import type { AdamW } from './adamw';
import { clipByGlobalNorm } from './clip';

export interface StepOptions {
  lr: number;
  /** Clip the global gradient norm to this (default 1.0); Infinity turns clipping off. */
  maxGradNorm?: number;
}

export interface StepStats {
  /** Sum of the micro-batch losses. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  lr: number;
}

/**
 * Differentiates each micro-batch loss (already scaled by the caller, e.g. its share of the
 * tokens, so the sum is the batch loss), sums their gradients, clips and applies AdamW. Reads back
 * only two numbers at the end.
 */
export async function trainStep(model: Transformer, optimizer: AdamW, microBatches: (() => tf.Scalar)[], options: StepOptions): Promise<StepStats> {
  const variables = model.trainableVariables();
  let total: Record<string, tf.Tensor> | undefined;
  let loss: tf.Scalar | undefined;
  for (const f of microBatches) {
    const { value, grads } = tf.variableGrads(f, variables);
    if (!total) {
      total = grads;
      loss = value;
      continue;
    }
    const sum: Record<string, tf.Tensor> = {};
    for (const name of Object.keys(total)) sum[name] = tf.add(total[name], grads[name]);
    const lossSum = tf.add(loss!, value) as tf.Scalar;
    tf.dispose([...Object.values(total), ...Object.values(grads), loss!, value]);
    total = sum;
    loss = lossSum;
  }
  if (!total || !loss) throw new RangeError('trainStep needs at least one micro-batch');
  const { grads, norm } = clipByGlobalNorm(total, options.maxGradNorm ?? 1.0);
  tf.dispose(Object.values(total));
  optimizer.apply(grads, options.lr);
  tf.dispose(Object.values(grads));
  const [lossValue, normValue] = await Promise.all([loss.data(), norm.data()]);
  tf.dispose([loss, norm]);
  return { loss: lossValue[0], gradNorm: normValue[0], lr: options.lr };
}
