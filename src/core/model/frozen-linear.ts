/**
 * x·W for a weight that is not trained (the base model under a LoRA adapter, docs/lora.md#cost):
 * the gradient reaches x only. linear() in ops.ts returns dW = xᵀ·dy as well, one more matrix
 * product of the forward's size per layer, which a frozen base would compute and throw away.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp, matMul } from './ops';

/** y = x·W for W [in, out], or x·Wᵀ for W [out, in] with `transposed`; dx only. */
export function frozenLinear(x: tf.Tensor2D, w: tf.Tensor2D, transposed = false): tf.Tensor2D {
  const op = customOp(([input], save) => {
    save([input]);
    // W is a variable: it outlives the forward pass, so the backward pass may read it from here.
    const gradFunc = (dy: tf.Tensor) => [transposed ? matMul(dy, w) : matMul(dy, w, false, true)];
    return { value: matMul(input, w, false, transposed), gradFunc };
  });
  return op(x) as tf.Tensor2D;
}
