/**
 * Matrix products and the embedding lookup, with gradients that are fast or present on every backend:
 * - wasm multiplies plain matrices with XNNPACK but transposed operands (which the default matMul
 *   gradient uses) with a naive loop about ten times slower: they go to the engine's own kernel
 *   (wasm-matmul.ts), or, with that kernel off, the transposes are explicit.
 * - tfjs-webgpu runs outputs of at most 128 values with a workgroup-reduction shader that
 *   SwiftShader (WebGPU on the CPU) executes about thirty times slower than the small-output one.
 * - the gradient of gather needs UnsortedSegmentSum, which tfjs-backend-wasm does not have; without
 *   it the embedding gradient is a one-hot matmul.
 */
import * as tf from '@tensorflow/tfjs';
import { WASM_PACK_LIMIT, wasmMatmulEnabled } from './wasm-matmul';

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

/**
 * Whether a gradient tape records ops here (inside tf.grad / tf.variableGrads). Generation and
 * evaluation record none.
 */
function taping(): boolean {
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}

const saveNothing: tf.GradSaveFunc = () => {};

/**
 * tf.customGrad with typed inputs: `forward` returns the value and the gradient of each input. With
 * no tape recording, the forward runs alone in its own scope: a custom-gradient op's bookkeeping
 * costs as much as a small kernel, and a decoding step runs dozens of them.
 */
export function customOp(forward: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc }): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return forward(args.slice(0, -1) as tf.Tensor[], save);
  });
  return (...inputs) => (taping() ? op(...inputs) : tf.tidy(() => forward(inputs, saveNothing).value));
}

/** tfjs-webgpu's MatMulProgramType.MatMulSmallOutputSizeProgram. */
const WEBGPU_SMALL_OUTPUT_PROGRAM = 2;

/**
 * tf.matMul, steering around the slow paths above: explicit transposes for 2-D products on wasm,
 * and on webgpu the small-output shader for outputs of at most 128 values (tfjs picks its program
 * from a global flag, read while the op is built, so the flag is set around the call).
 */
export function matMul<T extends tf.Tensor>(a: T, b: T, transposeA = false, transposeB = false): T {
  const backend = tf.getBackend();
  // Only 2-D products reach XNNPACK; batched ones take the naive loop with or without transposes.
  if (backend === 'wasm' && a.rank === 2 && b.rank === 2) return wasmMatMul(a as tf.Tensor as tf.Tensor2D, b as tf.Tensor as tf.Tensor2D, transposeA, transposeB) as tf.Tensor as T;
  const rows = a.shape[a.rank - (transposeA ? 1 : 2)];
  const cols = b.shape[b.rank - (transposeB ? 2 : 1)];
  const batch = Math.max(a.size / (a.shape[a.rank - 1] * a.shape[a.rank - 2]), b.size / (b.shape[b.rank - 1] * b.shape[b.rank - 2]));
  if (backend !== 'webgpu' || batch * rows * cols > 128) return tf.matMul(a, b, transposeA, transposeB) as T;
  const flags = tf.env();
  const before = flags.get('WEBGPU_MATMUL_PROGRAM_TYPE');
  flags.set('WEBGPU_MATMUL_PROGRAM_TYPE', WEBGPU_SMALL_OUTPUT_PROGRAM);
  try {
    return tf.matMul(a, b, transposeA, transposeB) as T;
  } finally {
    flags.set('WEBGPU_MATMUL_PROGRAM_TYPE', before);
  }
}

export { WASM_PACK_LIMIT };

/**
 * A 2-D product on wasm. The engine's kernel (wasm-matmul.ts) takes a transposed operand as it lies
 * (or copies it in one fast pass) and keeps a weight's panels, transposed too. Without it, or for a
 * b too large to pack whole: a·bᵀ is computed as (b·aᵀ)ᵀ when transposing the two small operands
 * costs less than transposing b (tfjs-backend-wasm's transpose of a large matrix is a plain strided
 * loop, seconds for an embedding, and b then stays XNNPACK's input, read, not packed); a plain a·b
 * with a large b is summed over blocks of b's rows, each packed and freed in turn.
 */
function wasmMatMul(a: tf.Tensor2D, b: tf.Tensor2D, transposeA: boolean, transposeB: boolean): tf.Tensor2D {
  if ((transposeA || transposeB) && wasmMatmulEnabled() && b.size <= WASM_PACK_LIMIT) return tf.matMul(a, b, transposeA, transposeB);
  const [m, k] = transposeA ? [a.shape[1], a.shape[0]] : a.shape;
  const smallLeft = transposeB && m * (k + b.shape[0]) < b.size;
  return tf.tidy(() => {
    const left = transposeA ? (tf.transpose(a) as tf.Tensor2D) : a; // [M, K]
    if (transposeB) {
      if (smallLeft) return tf.transpose(tf.matMul(b, tf.transpose(left))) as tf.Tensor2D;
      return tf.matMul(left, tf.transpose(b)) as tf.Tensor2D;
    }
    if (b.size <= WASM_PACK_LIMIT) return tf.matMul(left, b) as tf.Tensor2D;
    const rows = Math.max(1, Math.floor(WASM_PACK_LIMIT / b.shape[1]));
    let acc: tf.Tensor2D | undefined;
    for (let start = 0; start < k; start += rows) {
      const size = Math.min(rows, k - start);
      const block = tf.slice(b, [start, 0], [size, -1]);
      const part = tf.slice(left, [0, start], [-1, size]);
      const product = tf.matMul(part, block) as tf.Tensor2D;
      // Disposed at once: the block's packed copy goes with it, so one block is packed at a time.
      tf.dispose([block, part]);
      if (acc) {
        const sum = tf.add(acc, product) as tf.Tensor2D;
        tf.dispose([acc, product]);
        acc = sum;
      } else acc = product;
    }
    return acc as tf.Tensor2D;
  });
}

/**
 * y = x·W for x [N, in] and W [in, out] (dx = dy·Wᵀ, dW = xᵀ·dy), or with `transposed` y = x·Wᵀ for
 * W [out, in] (dx = dy·W, dW = dyᵀ·x): the tied LM head reads the embedding [V, h] that way.
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, transposed = false): tf.Tensor2D {
  const op = customOp(([input, weight], save) => {
    save([input, weight]);
    const value = matMul(input, weight, false, transposed);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved;
      return transposed ? [matMul(dy, ws), matMul(dy, xs, true, false)] : [matMul(dy, ws, false, true), matMul(xs, dy, true, false)];
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
      const part = matMul(tf.slice(dy, [start, 0], [size, -1]) as tf.Tensor2D, oneHot, true, false);
      acc = acc ? tf.add(acc, part) : part;
    }
    return tf.transpose(acc as tf.Tensor2D);
  });
}

/**
 * Rows of table [V, h] for ids [N]; the gradient reaches the table only. `gather` takes the rows
 * (a backend's faster kernel for it; tf.gather by default).
 */
export function embedding(ids: tf.Tensor1D, table: tf.Tensor2D, gather: (t: tf.Tensor2D, i: tf.Tensor1D) => tf.Tensor2D = tf.gather): tf.Tensor2D {
  const vocab = table.shape[0];
  const op = customOp(([weight], save) => {
    // The ids are saved (kept by the tape) rather than captured: a loss closure's own tensors are
    // disposed when its forward pass ends, before the backward pass runs.
    save([ids]);
    const value = gather(weight as tf.Tensor2D, ids);
    const gradFunc = (dy: tf.Tensor, [savedIds]: tf.Tensor[]) =>
      tf.getKernel('UnsortedSegmentSum', tf.getBackend())
        ? tf.unsortedSegmentSum(dy, savedIds as tf.Tensor1D, vocab)
        : embeddingGradOneHot(dy as tf.Tensor2D, savedIds as tf.Tensor1D, vocab);
    return { value, gradFunc };
  });
  return op(table) as tf.Tensor2D;
}
