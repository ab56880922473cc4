/**
 * The two primitives whose default tfjs gradients are slow or missing on some backends, with
 * gradients that work everywhere:
 * - linear: wasm multiplies plain matrices with XNNPACK but transposed operands (which the default
 *   matMul gradient uses) with a naive loop about ten times slower, so the gradient transposes
 *   explicitly there.
 * - embedding lookup: the gradient of gather needs UnsortedSegmentSum, which tfjs-backend-wasm
 *   does not have; without it the gradient is a one-hot matmul.
 */
import * as tf from '@tensorflow/tfjs';

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

/** tf.customGrad with typed inputs: `forward` returns the value and the gradient of each input. */
export function customOp(forward: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc }): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return forward(args.slice(0, -1) as tf.Tensor[], save);
  });
  return (...inputs) => op(...inputs);
}

/** Backends whose matMul with transposed operands is much slower than a transpose plus a plain matMul. */
function prefersExplicitTranspose(): boolean {
  return tf.getBackend() === 'wasm';
}

/** a·bᵀ, or aᵀ·b, computed the fastest way for the current backend. */
function matMulT(a: tf.Tensor2D, b: tf.Tensor2D, transposeA: boolean, transposeB: boolean): tf.Tensor2D {
  if (!prefersExplicitTranspose()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b);
}

/** y = x·W with x [N, in] and W [in, out]; dx = dy·Wᵀ, dW = xᵀ·dy. */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const op = customOp(([input, weight], save) => {
    save([input, weight]);
    const value = tf.matMul(input as tf.Tensor2D, weight as tf.Tensor2D);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [matMulT(dy as tf.Tensor2D, ws, false, true), matMulT(xs, dy as tf.Tensor2D, true, false)];
    };
    return { value, gradFunc };
  });
  return op(x, w) as tf.Tensor2D;
}

/** Largest one-hot block in the wasm embedding gradient, in elements (64 MB of float32). */
const ONE_HOT_BLOCK = 1 << 24;

/** dTable[v] = Σ_{n: ids[n] = v} dy[n], as dyᵀ·onehot(ids) in blocks of tokens (no UnsortedSegmentSum needed). */
export function embeddingGradOneHot(dy: tf.Tensor2D, ids: tf.Tensor1D, vocab: number): tf.Tensor2D {
  return tf.tidy(() => {
    const n = ids.shape[0];
    const block = Math.max(1, Math.floor(ONE_HOT_BLOCK / vocab));
    let acc: tf.Tensor2D | undefined; // [h, V]
    for (let start = 0; start < n; start += block) {
      const size = Math.min(block, n - start);
      const oneHot = tf.cast(tf.oneHot(tf.slice(ids, start, size), vocab), 'float32') as tf.Tensor2D;
      const part = matMulT(tf.slice(dy, [start, 0], [size, -1]), oneHot, true, false);
      acc = acc ? tf.add(acc, part) : part;
    }
    return tf.transpose(acc as tf.Tensor2D);
  });
}

/** Rows of table [V, h] for ids [N]; the gradient reaches the table only. */
export function embedding(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  const vocab = table.shape[0];
  const op = customOp(([weight], save) => {
    // The ids are saved (kept by the tape) rather than captured: a loss closure's own tensors are
    // disposed when its forward pass ends, before the backward pass runs.
    save([ids]);
    const value = tf.gather(weight, ids);
    const gradFunc = (dy: tf.Tensor, [savedIds]: tf.Tensor[]) =>
      tf.getKernel('UnsortedSegmentSum', tf.getBackend())
        ? tf.unsortedSegmentSum(dy, savedIds as tf.Tensor1D, vocab)
        : embeddingGradOneHot(dy as tf.Tensor2D, savedIds as tf.Tensor1D, vocab);
    return { value, gradFunc };
  });
  return op(table) as tf.Tensor2D;
}
