/**
 * The engine's fused kernels on tfjs's wasm backend (docs/engine.md#fused-wasm-kernels).
 *
 * On a CPU a small model's step is many small ops, and tfjs pays a fixed cost for each (the kernel
 * call, the tape, a new output): RMSNorm written with tfjs's ops is six of them, RoPE five. Here each
 * is one kernel registered with tfjs for the wasm backend, working in tfjs's own memory like the
 * matrix kernel (wasm-matmul.ts), forward and backward (as tf.customGrad ops, so training uses them
 * too). Generation's attention over the KV cache is one kernel too, with an exponential of its own
 * 4 lanes at a time, and so is SwiGLU's gating; training's attention stays tfjs's ops.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './ops';
import { engineProductThreads, installWasmMatmul, kernelsFor, memoryOf, type Kernels, type WasmBackend } from './wasm-matmul';
import { attendThreads, splitAttend } from './wasm-threads';

const RMS_NORM = 'ThorRmsNorm';
const RMS_NORM_GRAD = 'ThorRmsNormGrad';
const ROPE = 'ThorRope';
const KV_WRITE = 'ThorKvWrite';
const ATTEND = 'ThorAttend';
const GATHER_ROWS = 'ThorGatherRows';
const SWIGLU = 'ThorSwiglu';
const SWIGLU_GRAD = 'ThorSwigluGrad';

type Inputs = Record<string, tf.TensorInfo>;

type Kernel = (args: { inputs: Inputs; backend: WasmBackend; attrs: Record<string, unknown> }) => tf.TensorInfo | tf.TensorInfo[];

/** A tensor's data as a byte offset into the backend's memory, as the kernels take it. */
function at(backend: WasmBackend, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}

function kernels(backend: WasmBackend): Kernels {
  return kernelsFor(memoryOf(backend));
}

/** [rows, cols] of x taken as rows along its last axis. */
function rowsOf(x: tf.TensorInfo): [number, number] {
  const cols = x.shape[x.shape.length - 1];
  return [cols === 0 ? 0 : tf.util.sizeFromShape(x.shape) / cols, cols];
}

/** y = x · w / √(mean(x²) + eps) over the last axis; rows are every other axis. */
const rmsNormKernel: Kernel = ({ inputs: { x, w }, backend, attrs }) => {
  const [rows, cols] = rowsOf(x);
  const out = backend.makeOutput(x.shape, 'float32');
  kernels(backend).rmsNorm(at(backend, x), at(backend, w), at(backend, out), rows, cols, attrs.eps as number);
  return out;
};

/** Its gradients, dx and dw (dw starts at zero: the kernel adds each row's share). */
const rmsNormGradKernel: Kernel = ({ inputs: { x, w, dy }, backend, attrs }) => {
  const [rows, cols] = rowsOf(x);
  const dx = backend.makeOutput(x.shape, 'float32');
  const dw = backend.makeOutput(w.shape, 'float32');
  const dwAt = at(backend, dw);
  new Float32Array(memoryOf(backend).buffer, dwAt, cols).fill(0);
  kernels(backend).rmsNormGrad(at(backend, x), at(backend, w), at(backend, dy), at(backend, dx), dwAt, rows, cols, attrs.eps as number);
  return [dx, dw];
};

/**
 * RoPE of x [batch, length, heads, d] with tables cos, sin [batch or 1, length, 1, d]; with
 * `inverse`, its gradient.
 */
const ropeKernel: Kernel = ({ inputs: { x, cos, sin }, backend, attrs }) => {
  const [B, T, H, d] = x.shape;
  const out = backend.makeOutput(x.shape, 'float32');
  const tableRows = cos.shape[0] === 1 ? T : B * T;
  kernels(backend).rope(at(backend, x), at(backend, cos), at(backend, sin), at(backend, out), B * T, tableRows, H, d, attrs.inverse ? 1 : 0);
  return out;
};

/**
 * Writes rows of `values` [N, d] into `cache` [B, nKV, C, d] at `slots` [N, 3] (row, kv head, slot)
 * in place, and returns the cache itself as the output (its data shared, as tfjs's own Reshape
 * shares it). tfjs's TensorScatterUpdate copies the whole cache for every write instead: for a
 * decoding step that is every layer's keys and values, megabytes a step, to change a few rows.
 */
const kvWriteKernel: Kernel = ({ inputs: { cache, slots, values }, backend }) => {
  const [, nKV, C, d] = cache.shape;
  const n = slots.shape[0];
  const memory = memoryOf(backend);
  const heap = new Float32Array(memory.buffer);
  const index = new Int32Array(memory.buffer, at(backend, slots), n * 3);
  const base = at(backend, cache) / 4;
  const from = at(backend, values) / 4;
  for (let i = 0; i < n; i++) {
    const to = base + ((index[3 * i] * nKV + index[3 * i + 1]) * C + index[3 * i + 2]) * d;
    heap.copyWithin(to, from + i * d, from + (i + 1) * d);
  }
  backend.incRef(cache.dataId);
  return { dataId: cache.dataId, shape: cache.shape, dtype: cache.dtype };
};

/**
 * Attention of a cached forward step: q [B, nKV, R, d] (the R = group · T query rows of the heads
 * sharing kv head g, already scaled by 1/√d), the cache k, v [B, nKV, C, d], the bias [B, 1, T, C];
 * over the first `attended` slots only, which every real token's bias masks beyond. One kernel for
 * what tfjs runs as two batched products, an add and a softmax, reading the cache once.
 */
const attendKernel: Kernel = ({ inputs: { q, k, v, bias }, backend, attrs }) => {
  const [B, nKV, R, d] = q.shape;
  const C = k.shape[2];
  const T = bias.shape[2];
  const S = Math.min(C, attrs.attended as number);
  const out = backend.makeOutput(q.shape, 'float32');
  if (out.shape.some((n) => n === 0)) return out;
  // With helper threads, the batch's rows are shared among them (wasm-threads.ts), each thread with its own scores.
  const run = kernels(backend).attend; // first: it may load the kernels again, which the helpers must then match
  const memory = memoryOf(backend);
  const threads = engineProductThreads(memory) > 1 ? attendThreads(memory, B, nKV, R, S, d) : 1;
  // The scores of one kv head's query rows, a thread; `>>> 0`: an address past 2 GB comes back negative.
  const scratch = backend.wasm._malloc(threads * R * Math.max(S, 1) * 4) >>> 0;
  if (scratch === 0) {
    backend.disposeData(out.dataId);
    throw new Error(`attention: the wasm heap has no room for ${R} × ${S} scores`);
  }
  try {
    if (threads > 1) splitAttend(memory, run, at(backend, q), at(backend, k), at(backend, v), at(backend, bias), at(backend, out), scratch, B, nKV, R, T, C, S, d);
    else run(at(backend, q), at(backend, k), at(backend, v), at(backend, bias), at(backend, out), scratch, B, nKV, R, T, C, S, d);
  } finally {
    backend.wasm._free(scratch);
  }
  return out;
};

/**
 * Rows of table [V, h] (float32 or int32) at ids [N], each row one copy. tfjs-wasm's GatherV2 moves
 * one value at a time through strides: for a decoding batch's embedding it took as long as a layer's
 * norms and attention together. An id out of range is refused as tfjs refuses it.
 */
const gatherRowsKernel: Kernel = ({ inputs: { table, ids }, backend }) => {
  const [V, h] = table.shape;
  const n = ids.shape[0];
  const out = backend.makeOutput([n, h], table.dtype);
  if (n === 0 || h === 0) return out;
  const memory = memoryOf(backend);
  const index = new Int32Array(memory.buffer, at(backend, ids), n);
  for (let i = 0; i < n; i++)
    if (!(index[i] >= 0 && index[i] < V)) {
      backend.disposeData(out.dataId);
      throw new Error(`GatherV2: the index value ${index[i]} is not in [0, ${V - 1}]`);
    }
  const heap = new Float32Array(memory.buffer);
  const from = at(backend, table) / 4;
  const to = at(backend, out) / 4;
  for (let i = 0; i < n; i++) heap.copyWithin(to + i * h, from + index[i] * h, from + (index[i] + 1) * h);
  return out;
};

/** silu(g) · u, elementwise (g and u of one shape, their size a multiple of 4). */
const swigluKernel: Kernel = ({ inputs: { g, u }, backend }) => {
  const out = backend.makeOutput(g.shape, 'float32');
  kernels(backend).swiglu(at(backend, g), at(backend, u), at(backend, out), tf.util.sizeFromShape(g.shape));
  return out;
};

/** Its gradients dg and du from dy. */
const swigluGradKernel: Kernel = ({ inputs: { g, u, dy }, backend }) => {
  const dg = backend.makeOutput(g.shape, 'float32');
  const du = backend.makeOutput(g.shape, 'float32');
  kernels(backend).swigluGrad(at(backend, g), at(backend, u), at(backend, dy), at(backend, dg), at(backend, du), tf.util.sizeFromShape(g.shape));
  return [dg, du];
};

let installed = false;
let enabled = true;

/**
 * Registers the engine's wasm kernels with tfjs, the matrix kernel (wasm-matmul.ts) and these (once;
 * later calls do nothing).
 */
export function installWasmKernels(): void {
  if (installed) return;
  installed = true;
  installWasmMatmul();
  const kernels: [string, Kernel][] = [
    [RMS_NORM, rmsNormKernel],
    [RMS_NORM_GRAD, rmsNormGradKernel],
    [ROPE, ropeKernel],
    [KV_WRITE, kvWriteKernel],
    [ATTEND, attendKernel],
    [GATHER_ROWS, gatherRowsKernel],
    [SWIGLU, swigluKernel],
    [SWIGLU_GRAD, swigluGradKernel],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
}

/** Turns the fused kernels off (tfjs's ops instead) or on again: for comparisons. */
export function setWasmKernels(on: boolean): void {
  enabled = on;
}

let attentionOn = true;

/** Turns the attention kernel alone off (tfjs's ops for generation's attention) or on again: for comparisons. Returns the setting it replaces. */
export function setWasmAttention(on: boolean): boolean {
  const was = attentionOn;
  attentionOn = on;
  return was;
}

/** Whether generation's attention runs in the engine's kernel here (with the other fused kernels). */
export function wasmAttention(): boolean {
  return attentionOn && wasmKernels();
}

/** Why the kernels cannot run in this backend (their module did not load), once found out. */
let unavailable: string | undefined;
/** The backend memory the module was last instantiated for: checked once per memory, not per op. */
let loadedFor: WebAssembly.Memory | undefined;

/**
 * Whether the fused kernels run here: on tfjs's wasm backend once installed, unless turned off or
 * their module cannot load there (tfjs's build without SIMD). RMSNorm takes rows whose length is a
 * multiple of 4, RoPE heads whose size is a multiple of 8 (the kernels' vector width): the callers
 * check those and use tfjs's ops otherwise.
 */
export function wasmKernels(): boolean {
  if (!installed || !enabled || unavailable !== undefined || tf.getBackend() !== 'wasm') return false;
  try {
    const memory = memoryOf(tf.backend() as unknown as WasmBackend);
    if (memory !== loadedFor) kernelsFor(memory);
    loadedFor = memory;
    return true;
  } catch (e) {
    unavailable = e instanceof Error ? e.message : String(e);
    return false;
  }
}

function runKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
}

/** RMSNorm over the last axis, with its gradients (x and w), in one kernel each way. */
export function rmsNormWasm<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number): T {
  const op = customOp(([xs, ws], save) => {
    save([xs, ws]);
    const value = runKernel(RMS_NORM, { x: xs, w: ws }, { eps }) as tf.Tensor;
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel(RMS_NORM_GRAD, { x: saved[0], w: saved[1], dy }, { eps }) as tf.Tensor[];
    return { value, gradFunc };
  });
  return op(x, w) as T;
}

/** RoPE (HF's half-split convention) for x [batch, length, heads, d]; the tables are constants (no gradient). */
export function ropeWasm(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const op = customOp(([xs], save) => {
    // Saved, not captured: tables made inside a loss function are disposed before its backward pass.
    save([cos, sin]);
    const value = runKernel(ROPE, { x: xs, cos, sin }, { inverse: false }) as tf.Tensor;
    const gradFunc = (dy: tf.Tensor, [c, s]: tf.Tensor[]) => runKernel(ROPE, { x: dy, cos: c, sin: s }, { inverse: true }) as tf.Tensor;
    return { value, gradFunc };
  });
  return op(x);
}

/**
 * tf.tensorScatterUpdate(cache, slots, values) for the KV cache's writes, in place: the returned
 * tensor shares the cache's data, and the tensor passed in sees the write too. Only for a cache its
 * caller gives up (a generation step, which disposes the old cache and takes the returned one); no
 * gradient. Not for a tensor that is ever an unbatched right-hand operand of a product (batch 1,
 * whatever the left-hand operand's batch): the engine's matrix kernel keeps its panels by tensor
 * data (wasm-matmul.ts), as XNNPACK keeps its packed copy, and either would read a stale one. The
 * transformer writes in place only where batch × kv heads is above 1.
 */
export function kvWriteWasm(cache: tf.Tensor4D, slots: tf.Tensor2D, values: tf.Tensor2D): tf.Tensor4D {
  return runKernel(KV_WRITE, { cache, slots, values }) as tf.Tensor4D;
}

/**
 * softmax(q·kᵀ + bias)·v for a cached forward step (generation), in one kernel: q [B, nKV, R, d]
 * scaled by 1/√d with R = group · T query rows per kv head (row r at step r mod T), the cache k, v
 * [B, nKV, C, d], bias [B, 1, T, C], over the first `attended` slots (every real token's bias masks
 * the slots past them). The output is q's shape. No gradient: generation is never differentiated.
 * d must be a multiple of 8 (the caller checks, and uses tfjs's ops otherwise).
 */
export function attendWasm(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, attended: number): tf.Tensor4D {
  return runKernel(ATTEND, { q, k, v, bias }, { attended }) as tf.Tensor4D;
}

/**
 * tf.gather(table, ids) for a 2-D table and 1-D int32 ids on wasm, one copy a row (no gradient of its
 * own: embedding() wraps it in its gradient); tf.gather elsewhere.
 */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (ids.dtype !== 'int32' || (table.dtype !== 'float32' && table.dtype !== 'int32') || !wasmKernels()) return tf.gather(table, ids);
  return runKernel(GATHER_ROWS, { table, ids }) as tf.Tensor2D;
}

/**
 * SwiGLU's gating silu(gate) · up in one kernel each way (tfjs's ops are a sigmoid and two products,
 * and three more for the gradient). The caller checks that the size is a multiple of 4.
 */
export function swigluWasm<T extends tf.Tensor>(gate: T, up: T): T {
  const op = customOp(([g, u], save) => {
    save([g, u]);
    const value = runKernel(SWIGLU, { g, u }) as tf.Tensor;
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel(SWIGLU_GRAD, { g: saved[0], u: saved[1], dy }) as tf.Tensor[];
    return { value, gradFunc };
  });
  return op(gate, up) as T;
}
