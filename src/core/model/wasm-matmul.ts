/**
 * The engine's matrix product on tfjs's wasm backend (docs/engine.md#the-wasm-matrix-kernel).
 *
 * tfjs-wasm multiplies a plain 2-D product with XNNPACK, near the backend's peak, but a batched or
 * transposed product (attention's scores and weighted sums, and every gradient of them) with a
 * simple loop several times slower. This replaces tfjs's BatchMatMul kernel on wasm: the plain 2-D
 * case still goes to tfjs (XNNPACK), every other case to a register-blocked SIMD kernel of the
 * engine's own (wasm-gemm.wat) that works in tfjs's memory. Operands the kernel cannot read as they
 * lie (a transposed one, or a right-hand one whose width is not a multiple of 8) are first copied
 * into that layout, which costs one pass over them against the product's pass per row.
 */
import * as tf from '@tensorflow/tfjs';
import { GEMM_WASM, GEMM_WASM_SHARED } from './wasm-gemm.generated';

type Gemm = (a: number, lda: number, b: number, ldb: number, c: number, ldc: number, M: number, K: number, N: number) => void;
interface Kernels {
  /** C = A·B, N a multiple of 8. */
  gemm: Gemm;
  /** C = A·Bᵀ, K a multiple of 4: for few rows of A, where copying B out of its layout would cost as much as the product. */
  gemmNT: Gemm;
}

/** Up to this many rows of A, A·Bᵀ is computed as dot products instead of copying Bᵀ out first. */
const NT_MAX_ROWS = 8;

/** The parts of tfjs's wasm backend this kernel uses (BackendWasm's own fields). */
interface WasmBackend {
  wasm: {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    asm?: { memory?: WebAssembly.Memory };
    wasmMemory?: WebAssembly.Memory;
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

let original: tf.KernelConfig | undefined;
let enabled = true;
const kernels = new WeakMap<WebAssembly.Memory, Kernels>();

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function memoryOf(backend: WasmBackend): WebAssembly.Memory {
  const memory = backend.wasm.asm?.memory ?? backend.wasm.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error("tfjs's wasm backend does not expose its memory");
  return memory;
}

function kernelsFor(memory: WebAssembly.Memory): Kernels {
  let k = kernels.get(memory);
  if (!k) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(decode(shared ? GEMM_WASM_SHARED : GEMM_WASM));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    k = { gemm: exports.gemm as Gemm, gemmNT: exports.gemm_nt as Gemm };
    kernels.set(memory, k);
  }
  return k;
}

/**
 * Installs the kernel for the wasm backend (once; later calls do nothing). Returns false where tfjs
 * has no wasm BatchMatMul to replace.
 */
export function installWasmMatmul(): boolean {
  if (original) return true;
  const tfjs = tf.getKernel('BatchMatMul', 'wasm');
  if (!tfjs) return false;
  original = tfjs;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...tfjs, kernelFunc: batchMatMul as unknown as tf.KernelFunc });
  return true;
}

/** Turns the engine's kernel off (tfjs's own for every product) or on again: for comparisons. */
export function setWasmMatmul(on: boolean): void {
  enabled = on;
}

export function wasmMatmulEnabled(): boolean {
  return original !== undefined && enabled;
}

function batchMatMul(args: { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; backend: WasmBackend; attrs: { transposeA: boolean; transposeB: boolean } }): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs;
  const fallback = () => original!.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  if (!enabled || a.dtype !== 'float32' || b.dtype !== 'float32') return fallback();
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(batchA, batchB);
  // The plain 2-D product is XNNPACK's; a broadcast other than one operand shared by all goes to tfjs.
  if ((batch === 1 && !transposeA && !transposeB) || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return fallback();
  if ((transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) !== K) return fallback(); // tfjs says what is wrong
  // The batch axes broadcast as tfjs's own kernel broadcasts them (it throws the same error where they cannot).
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const outShape = [...outer, M, N];
  const out = backend.makeOutput(outShape, 'float32');
  if (M === 0 || N === 0) return out;

  const memory = memoryOf(backend);
  const { gemm, gemmNT } = kernelsFor(memory);
  const aAt = backend.dataIdMap.get(a.dataId).memoryOffset;
  const bAt = backend.dataIdMap.get(b.dataId).memoryOffset;
  const outAt = backend.dataIdMap.get(out.dataId).memoryOffset;
  if (transposeB && !transposeA && M <= NT_MAX_ROWS && K % 4 === 0) {
    for (let i = 0; i < batch; i++) {
      gemmNT(aAt + (batchA === 1 ? 0 : i * M * K * 4), K, bAt + (batchB === 1 ? 0 : i * K * N * 4), K, outAt + i * M * N * 4, N, M, K, N);
    }
    return out;
  }

  const Np = Math.ceil(N / 8) * 8;
  const packA = transposeA;
  const packB = transposeB || Np !== N;
  const viaScratchC = Np !== N;
  const floats = (packA ? M * K : 0) + (packB ? K * Np : 0) + (viaScratchC ? M * Np : 0);
  const scratch = floats > 0 ? backend.wasm._malloc(floats * 4) : 0;
  const heap = new Float32Array(memory.buffer); // after the allocation, which may grow the memory
  const sA = scratch;
  const sB = sA + (packA ? M * K * 4 : 0);
  const sC = sB + (packB ? K * Np * 4 : 0);
  if (packB) heap.fill(0, sB / 4, sB / 4 + K * Np);
  try {
    for (let i = 0; i < batch; i++) {
      const ai = aAt + (batchA === 1 ? 0 : i * M * K * 4);
      const bi = bAt + (batchB === 1 ? 0 : i * K * N * 4);
      let aPtr = ai;
      if (packA && (i === 0 || batchA > 1)) {
        // A lies [K, M]: write it [M, K].
        const src = ai / 4;
        const dst = sA / 4;
        for (let k = 0; k < K; k++) for (let m = 0; m < M; m++) heap[dst + m * K + k] = heap[src + k * M + m];
      }
      if (packA) aPtr = sA;
      let bPtr = bi;
      if (packB && (i === 0 || batchB > 1)) {
        const src = bi / 4;
        const dst = sB / 4;
        if (transposeB) {
          // B lies [N, K]: write it [K, Np].
          for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) heap[dst + k * Np + n] = heap[src + n * K + k];
        } else {
          for (let k = 0; k < K; k++) heap.copyWithin(dst + k * Np, src + k * N, src + k * N + N);
        }
      }
      if (packB) bPtr = sB;
      const oi = outAt + i * M * N * 4;
      gemm(aPtr, K, bPtr, packB ? Np : N, viaScratchC ? sC : oi, Np, M, K, Np);
      if (viaScratchC) for (let m = 0; m < M; m++) heap.copyWithin(oi / 4 + m * N, sC / 4 + m * Np, sC / 4 + m * Np + N);
    }
  } finally {
    if (scratch) backend.wasm._free(scratch);
  }
  return out;
}
