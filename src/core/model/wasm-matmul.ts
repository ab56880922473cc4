/**
 * The engine's matrix product on tfjs's wasm backend (docs/engine.md#the-wasm-matrix-kernel).
 *
 * This replaces tfjs's BatchMatMul kernel on wasm with a register-blocked SIMD kernel of the
 * engine's own (wasm-gemm.wat) that works in tfjs's memory: batched and transposed products (which
 * tfjs runs with a simple loop several times slower than its 2-D rate) and plain 2-D ones (which tfjs
 * gives XNNPACK), whose rate it passes with its right-hand operand in panels and fused multiply-adds
 * (docs/engine.md#fused-multiply-adds). The right-hand operand is read from panels of 8 columns, read
 * sequentially: kept from earlier products for a weight (keptPanels), else copied for this product
 * (pack_panels), unless the product has so few rows that the copy would cost as much as the product
 * and B can be read where it lies: the copy costs one pass over B against the product's pass per 4
 * rows. The left-hand operand is read where it lies, transposed or not, except a transposed one so
 * wide that stepping along it would jump a kilobyte at a time: that one is transposed first. With
 * several tfjs threads, a product's columns are shared among helper threads (wasm-threads.ts); large
 * plain products stay XNNPACK's only where the kernel has fewer threads than tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { GEMM_WASM, GEMM_WASM_RELAXED, GEMM_WASM_SHARED, GEMM_WASM_SHARED_RELAXED } from './wasm-gemm.generated';
import { productThreads, splitGemm, startHelpers, wasmHelpersWanted } from './wasm-threads';

type Gemm = (a: number, lda: number, b: number, ldb: number, c: number, ldc: number, M: number, K: number, N: number) => void;
/** The engine's wasm kernels (wasm-gemm.wat); pointers are byte offsets into tfjs's memory. */
export interface Kernels {
  /** C = A·B, N a multiple of 8 (nc: ignored, as gemmByColumns's last argument); A's (m, k) at a + m·rowA + k·colA bytes, row k of B's block j of 8 columns at b + j·colB + k·rowB. */
  gemm(a: number, rowA: number, colA: number, b: number, rowB: number, colB: number, c: number, ldc: number, M: number, K: number, N: number, nc?: number): void;
  /** The same, nc columns (a multiple of 8) at a time for all rows: for few rows, B read from memory once. */
  gemmByColumns(a: number, rowA: number, colA: number, b: number, rowB: number, colB: number, c: number, ldc: number, M: number, K: number, N: number, nc: number): void;
  /** dst [cols, rows] = srcᵀ for src [rows, cols]. */
  transpose(src: number, rows: number, cols: number, dst: number): void;
  /** B [K, N] (or, transposed, Bᵀ of B [N, K]) written as gemm's panels at dst: K·⌈N/8⌉·8 floats. */
  packPanels(b: number, ldb: number, K: number, N: number, transposed: number, dst: number): void;
  /** C = A·Bᵀ, K a multiple of 4: for few rows of A, where copying B out of its layout would cost as much as the product. */
  gemmNT: Gemm;
  /** RMSNorm of x [rows, cols] into y; cols a multiple of 4 (wasm-kernels.ts). */
  rmsNorm(x: number, w: number, y: number, rows: number, cols: number, eps: number): void;
  /** Its gradient into dx, and added into dw. */
  rmsNormGrad(x: number, w: number, dy: number, dx: number, dw: number, rows: number, cols: number, eps: number): void;
  /** RoPE of x [rows, H, d] into y (inverse: its gradient); d a multiple of 8. */
  rope(x: number, cos: number, sin: number, y: number, rows: number, tableRows: number, H: number, d: number, inverse: number): void;
  /** Attention of a cached step over the first S of C slots (wasm-kernels.ts); d a multiple of 8, scratch R·S floats. */
  attend(q: number, k: number, v: number, bias: number, out: number, scratch: number, B: number, nKV: number, R: number, T: number, C: number, S: number, d: number): void;
  /** SwiGLU's silu(g) · u of n values (a multiple of 4), and its gradients. */
  swiglu(g: number, u: number, out: number, n: number): void;
  swigluGrad(g: number, u: number, dy: number, dg: number, du: number, n: number): void;
}

/**
 * A plain 2-D product of this many rows or more stays XNNPACK's when tfjs runs more threads than this
 * kernel has (XNNPACK shares such a product among them; wasm-threads.ts gives the kernel as many where
 * the page allows) or when the engine has no relaxed SIMD (without fused multiply-adds this kernel
 * trains slower than XNNPACK; it still decodes faster). docs/engine.md#fused-multiply-adds
 */
const XNNPACK_MIN_ROWS = 64;
/**
 * Up to this many rows, gemm goes COLUMN_BLOCK columns of B at a time for every row: a decoding
 * step's B (a weight) then comes from memory once, not once per 4 rows (docs/engine.md#fused-multiply-adds).
 */
const COLUMNS_FIRST_MAX_ROWS = 64;
const COLUMN_BLOCK = 32;
/** Up to this many rows of A, A·Bᵀ is computed as dot products instead of copying Bᵀ out first. */
const NT_MAX_ROWS = 8;
/**
 * From this many rows of A, B is packed in panels before the product even when it could be read
 * where it lies: the copy is one pass over B against one pass per 4 rows of A, and the product then
 * reads B sequentially (docs/engine.md#the-wasm-matrix-kernel).
 */
const PANEL_MIN_ROWS = 8;
/**
 * A transposed left-hand operand [K, M] is read where it lies up to this many rows M of the product;
 * wider, each step along K would jump a row of 1 KB or more, and it is first transposed.
 */
const STRIDED_A_MAX_ROWS = 256;

/** The parts of tfjs's wasm backend this kernel uses (BackendWasm's own fields). */
export interface WasmBackend {
  wasm: {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    asm?: { memory?: WebAssembly.Memory };
    wasmMemory?: WebAssembly.Memory;
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

let original: tf.KernelConfig | undefined;
let enabled = true;
/** Whether to take the kernels' relaxed-SIMD build (fused multiply-adds) where the engine has it. */
let relaxedWanted = true;
const instances = new WeakMap<WebAssembly.Memory, { relaxed: boolean; kernels: Kernels; module: WebAssembly.Module }>();
/** Why the engine's kernel cannot run in this backend (its module did not load), once found out. */
let unavailable: string | undefined;

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

export function memoryOf(backend: WasmBackend): WebAssembly.Memory {
  const memory = backend.wasm.asm?.memory ?? backend.wasm.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error("tfjs's wasm backend does not expose its memory");
  return memory;
}

let relaxedAvailable: boolean | undefined;

/**
 * Whether this engine compiles relaxed SIMD (docs/engine.md#fused-multiply-adds): Chromium does
 * (since 114), Node 20 behind a V8 flag the Node backend sets, other browsers may not.
 */
export function relaxedSimdAvailable(): boolean {
  // Looked at once (every kernel call asks): the Node backend sets its V8 flag before it installs the kernels.
  relaxedAvailable ??= WebAssembly.validate(decode(GEMM_WASM_RELAXED));
  return relaxedAvailable;
}

/**
 * Takes the kernels' build with fused multiply-adds where the engine has relaxed SIMD (on, the
 * default), or the one without (off): for comparisons. Takes effect for kernels loaded afterwards.
 * Returns the setting it replaces.
 */
export function setRelaxedSimd(on: boolean): boolean {
  const was = relaxedWanted;
  relaxedWanted = on;
  return was;
}

/** Whether tfjs's heap is a SharedArrayBuffer (its threaded build), which an imported memory must declare. */
function sharedMemory(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

export function kernelsFor(memory: WebAssembly.Memory): Kernels {
  const relaxed = relaxedWanted && relaxedSimdAvailable();
  let entry = instances.get(memory);
  if (!entry || entry.relaxed !== relaxed) {
    const source = sharedMemory(memory) ? (relaxed ? GEMM_WASM_SHARED_RELAXED : GEMM_WASM_SHARED) : relaxed ? GEMM_WASM_RELAXED : GEMM_WASM;
    const module = new WebAssembly.Module(decode(source));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    const kernels: Kernels = {
      gemm: exports.gemm as Kernels['gemm'],
      gemmByColumns: exports.gemm_by_columns as Kernels['gemmByColumns'],
      packPanels: exports.pack_panels as Kernels['packPanels'],
      transpose: exports.transpose as Kernels['transpose'],
      gemmNT: exports.gemm_nt as Gemm,
      rmsNorm: exports.rms_norm as Kernels['rmsNorm'],
      rmsNormGrad: exports.rms_norm_grad as Kernels['rmsNormGrad'],
      rope: exports.rope as Kernels['rope'],
      attend: exports.attend as Kernels['attend'],
      swiglu: exports.swiglu as Kernels['swiglu'],
      swigluGrad: exports.swiglu_grad as Kernels['swigluGrad'],
    };
    entry = { relaxed, kernels, module };
    instances.set(memory, entry);
  }
  return entry.kernels;
}

/**
 * By memory, once its helper threads were asked for: the kernel module they run (none where none were
 * started) and when they are ready.
 */
const helperStarts = new WeakMap<WebAssembly.Memory, { module?: WebAssembly.Module; ready: Promise<void> }>();

/**
 * Starts the engine's helper threads on the wasm backend now in use (once): on tfjs's threaded build
 * with several threads, one fewer than tfjs's thread count, so that the engine's products use the
 * threads XNNPACK's do (wasm-threads.ts). Resolves, once they are ready, with the threads its
 * products run on. The browser calls it as its backend comes up; elsewhere the memory is not shared.
 */
export async function startEngineThreads(): Promise<number> {
  if (tf.getBackend() !== 'wasm' || !wasmMatmulEnabled()) return 1;
  const backend = tf.backend() as unknown as WasmBackend;
  let memory: WebAssembly.Memory;
  try {
    memory = memoryOf(backend);
    kernelsFor(memory);
  } catch (e) {
    // tfjs's build without SIMD, or a heap the module cannot import: tfjs's own kernels, on its threads.
    unavailable = e instanceof Error ? e.message : String(e);
    return 1;
  }
  let start = helperStarts.get(memory);
  // Turned off (?engine-threads=1): none started, and none asked for yet.
  if (!start && wasmHelpersWanted()) {
    start = { ready: Promise.resolve() };
    const threads = getThreadsCount();
    const module = instances.get(memory)?.module;
    if (sharedMemory(memory) && threads > 1 && typeof Worker !== 'undefined' && typeof Blob !== 'undefined' && module) {
      // 64 bytes a helper for its control block, kept for as long as the backend.
      const at = backend.wasm._malloc(64 * (threads - 1)) >>> 0;
      if (at !== 0) start = { module, ready: startHelpers(memory, module, threads - 1, at) };
    }
    helperStarts.set(memory, start);
  }
  await start?.ready;
  return engineProductThreads(memory);
}

/** Threads the engine's products run on in this memory now (its helpers run the kernels now loaded only). */
export function engineProductThreads(memory: WebAssembly.Memory): number {
  const module = helperStarts.get(memory)?.module;
  return module !== undefined && module === instances.get(memory)?.module ? productThreads(memory) : 1;
}

/** Whether the kernels now loaded for this memory multiply-add in one fused step (relaxed SIMD). */
export function fusedMultiplyAdd(memory: WebAssembly.Memory): boolean {
  return instances.get(memory)?.relaxed ?? false;
}

/**
 * Right operands of more elements than this are never packed whole (64 MB of float32): not kept in
 * panels here, and never handed to XNNPACK whole by ops.ts, since it too keeps its packed copy while
 * the tensor lives, which for a 151936 × 896 embedding is 545 MB more of the 4 GiB heap
 * (docs/models.md#what-fits-where).
 */
export const WASM_PACK_LIMIT = 1 << 24;
/** Panels are kept for products of up to this many rows (a generation's steps). */
const KEEP_MAX_ROWS = 64;
const PACK_CACHE_BUDGET = 1 << 30;
interface Packed {
  at: number;
  bytes: number;
  /** The shape it was packed for: a reshape shares its tensor's data (then it is packed per product). */
  K: number;
  N: number;
}
/**
 * Right-hand operands kept in panels between products (docs/engine.md#kept-panels): a weight
 * multiplied at every step of a generation is packed once, not once a step, as XNNPACK keeps its
 * own packed copy of the weights it multiplies. An operand is kept from the second product of at
 * most KEEP_MAX_ROWS rows it takes part in, in the same layout (an activation is multiplied once; a
 * product of more rows packs B for itself at little cost); its copy is freed with its data. Up to
 * WASM_PACK_LIMIT floats an operand and PACK_CACHE_BUDGET bytes in all; past them a weight of a plain
 * product goes to XNNPACK, any other operand is packed for each product.
 *
 * By tensor data: its panels as B, and as Bᵀ.
 */
const packedCache = new Map<object, { plain?: Packed; transposed?: Packed }>();
/** Right-hand operands of plain products XNNPACK took first (it keeps its own packed copy of each). */
const xnnpackOwned = new WeakSet<object>();
/** Operands seen once as a right-hand operand, by layout (1: as B, 2: as Bᵀ), not yet kept. */
const seenOnce = new WeakMap<object, number>();
let packedBytes = 0;
/** Backends whose disposeData frees the packed copies too. */
const hooked = new WeakSet<object>();

/** Bytes the kept panels take in the wasm heap (they are not tensors: tf.memory() does not count them). */
export function packedWeightBytes(): number {
  return packedBytes;
}

function dropPacked(backend: WasmBackend, dataId: object): void {
  const entry = packedCache.get(dataId);
  if (!entry) return;
  packedCache.delete(dataId);
  for (const p of [entry.plain, entry.transposed])
    if (p) {
      backend.wasm._free(p.at);
      packedBytes -= p.bytes;
    }
}

/** Frees an operand's panels when tfjs frees its data (once per backend). */
function hookDispose(backend: WasmBackend): void {
  if (hooked.has(backend)) return;
  hooked.add(backend);
  const dispose = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force?: boolean) => {
    const freed = dispose(dataId, force);
    if (freed) dropPacked(backend, dataId);
    return freed;
  };
}

/**
 * b's panels for a product: kept from an earlier one, or made now and kept (the second time b is
 * seen so); else why not: 'first' (seen once so far), 'reshaped' (kept for another shape of the same
 * data), 'rows' (a product of more rows than kept panels serve), 'twice' (kept in the other layout),
 * 'full' (too large to keep, or the budget spent).
 */
function keptPanels(backend: WasmBackend, kernels: Kernels, b: tf.TensorInfo, transposed: boolean, M: number, K: number, N: number): number | 'first' | 'reshaped' | 'rows' | 'twice' | 'full' {
  const key = transposed ? 'transposed' : 'plain';
  const entry = packedCache.get(b.dataId) ?? {};
  const kept = entry[key];
  if (kept) return kept.K === K && kept.N === N ? kept.at : 'reshaped';
  // A product of many rows packs B for itself: the copy is small next to the product (a training
  // step's, whose frozen weights would otherwise be kept twice, as B and as Bᵀ).
  if (M > KEEP_MAX_ROWS) return 'rows';
  // One copy a weight: one kept as B is packed for itself as Bᵀ (LoRA's backward through a frozen
  // weight), and the other way round.
  if (entry[transposed ? 'plain' : 'transposed'] || xnnpackOwned.has(b.dataId)) return 'twice';
  const bit = transposed ? 2 : 1;
  const seen = seenOnce.get(b.dataId) ?? 0;
  if (!(seen & bit)) {
    seenOnce.set(b.dataId, seen | bit);
    return 'first';
  }
  const bytes = K * Math.ceil(N / 8) * 8 * 4;
  if (K * N > WASM_PACK_LIMIT || packedBytes + bytes > PACK_CACHE_BUDGET) return 'full';
  const at = backend.wasm._malloc(bytes) >>> 0;
  if (at === 0) return 'full';
  hookDispose(backend);
  kernels.packPanels(backend.dataIdMap.get(b.dataId).memoryOffset, transposed ? K : N, K, N, transposed ? 1 : 0, at);
  entry[key] = { at, bytes, K, N };
  packedCache.set(b.dataId, entry);
  packedBytes += bytes;
  return at;
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

let plainProducts = true;

/** Sends plain 2-D products to XNNPACK (off) or to the engine's kernel (on, the default): for comparisons. Returns the setting it replaces. */
export function setWasmPlainProducts(on: boolean): boolean {
  const was = plainProducts;
  plainProducts = on;
  return was;
}

/** Turns the engine's kernel off (tfjs's own for every product) or on again: for comparisons. */
export function setWasmMatmul(on: boolean): void {
  enabled = on;
}

export function wasmMatmulEnabled(): boolean {
  return original !== undefined && enabled && unavailable === undefined;
}

/**
 * For each batch of the output, the batch of A and of B it reads, with the batch axes broadcast as
 * tfjs broadcasts them (right-aligned; an axis of 1 is repeated).
 */
function batchIndices(outer: number[], outerA: number[], outerB: number[]): { a: Int32Array; b: Int32Array } {
  const n = outer.reduce((x, y) => x * y, 1);
  const a = new Int32Array(n);
  const b = new Int32Array(n);
  const strides = (shape: number[]) => {
    // The stride of each output axis in this operand's batches: 0 where the operand has no such axis or size 1.
    const out = new Array<number>(outer.length).fill(0);
    let stride = 1;
    for (let j = shape.length - 1; j >= 0; j--) {
      const axis = outer.length - shape.length + j;
      out[axis] = shape[j] === 1 ? 0 : stride;
      stride *= shape[j];
    }
    return out;
  };
  const sa = strides(outerA);
  const sb = strides(outerB);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let ia = 0;
    let ib = 0;
    for (let axis = outer.length - 1; axis >= 0; axis--) {
      const coord = rest % outer[axis];
      rest = Math.floor(rest / outer[axis]);
      ia += coord * sa[axis];
      ib += coord * sb[axis];
    }
    a[i] = ia;
    b[i] = ib;
  }
  return { a, b };
}

function batchMatMul(args: { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; backend: WasmBackend; attrs: { transposeA: boolean; transposeB: boolean } }): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs;
  const fallback = () => original!.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  if (!enabled || unavailable !== undefined || a.dtype !== 'float32' || b.dtype !== 'float32') return fallback();
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = outerA.reduce((x, y) => x * y, 1);
  const batchB = outerB.reduce((x, y) => x * y, 1);
  const plain2d = batchA === 1 && batchB === 1 && !transposeA && !transposeB;
  // tfjs says what is wrong with operands that do not fit.
  if ((transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) !== K) return fallback();
  if (plain2d && !plainProducts) return fallback();
  // The batch axes broadcast as tfjs broadcasts them (this throws tfjs's error where they cannot).
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  let memory: WebAssembly.Memory;
  let kernels: Kernels;
  try {
    memory = memoryOf(backend);
    kernels = kernelsFor(memory);
  } catch (e) {
    // tfjs's build without SIMD, or a heap the module cannot import: tfjs's own kernel from now on.
    unavailable = e instanceof Error ? e.message : String(e);
    return fallback();
  }
  // A plain product XNNPACK takes: XNNPACK then keeps its own packed copy of B, and every later plain
  // product with B goes to it too, so that no weight is held packed twice (docs/engine.md#kept-panels).
  const toXnnpack = () => {
    xnnpackOwned.add(b.dataId);
    return fallback();
  };
  // A large plain product stays XNNPACK's with several threads or without fused multiply-adds; so
  // does a narrow one (fewer than 8 columns off the blocks of 8: a matrix-vector product such as a
  // large LM head times one row's hidden state), which the 8-column blocks would multiply 8 wide.
  // (The engine's threads count as many as the product's 8-column blocks they can share.)
  const threads = engineProductThreads(memory);
  const xnnpacks = xnnpackOwned.has(b.dataId) || N < 8 || (M >= XNNPACK_MIN_ROWS && (Math.min(threads, Math.ceil(N / 8)) < getThreadsCount() || !fusedMultiplyAdd(memory)));
  if (plain2d && xnnpacks && !packedCache.has(b.dataId)) return toXnnpack();
  // A right-hand operand that is neither batched nor broadcast may be kept in panels (a weight).
  const keep = batchB === 1 && !transposeA ? keptPanels(backend, kernels, b, transposeB, M, K, N) : 'first';
  // A plain product's weight that cannot be kept goes to XNNPACK, which keeps its own copy: read in
  // place, a wide weight would be read 32 bytes a row, a page apart.
  if (plain2d && keep === 'full') return toXnnpack();
  const kept = typeof keep === 'number' ? keep : undefined;
  const { a: ia, b: ib } = batchIndices(outer, outerA, outerB);
  const batch = ia.length;
  const out = backend.makeOutput([...outer, M, N], 'float32');
  if (M === 0 || N === 0 || batch === 0) return out;
  const aAt = backend.dataIdMap.get(a.dataId).memoryOffset;
  const bAt = backend.dataIdMap.get(b.dataId).memoryOffset;
  const outAt = backend.dataIdMap.get(out.dataId).memoryOffset;
  if (kept === undefined && transposeB && !transposeA && M <= NT_MAX_ROWS && K % 4 === 0) {
    for (let i = 0; i < batch; i++) kernels.gemmNT(aAt + ia[i] * M * K * 4, K, bAt + ib[i] * K * N * 4, K, outAt + i * M * N * 4, N, M, K, N);
    return out;
  }

  const Np = Math.ceil(N / 8) * 8;
  // A plain product's B is packed for it even for few rows: a weight of a generation, seen for the
  // first time, is wide (read in place, 32 bytes of a row at a time, each row a page or more apart).
  const packB = kept === undefined && (transposeB || Np !== N || M >= PANEL_MIN_ROWS || plain2d);
  const viaScratchC = Np !== N;
  const copyA = transposeA && M >= STRIDED_A_MAX_ROWS;
  const floats = (copyA ? M * K : 0) + (packB ? K * Np : 0) + (viaScratchC ? M * Np : 0);
  // `>>> 0`: an address past 2 GB comes back negative (as tfjs reads its own allocations).
  const scratch = floats > 0 ? backend.wasm._malloc(floats * 4) >>> 0 : 0;
  if (floats > 0 && scratch === 0) {
    backend.disposeData(out.dataId);
    return fallback();
  }
  // A is read row-major [M, K] where it lies or from its transposed copy, else transposed [K, M] where it lies.
  const [rowA, colA] = transposeA && !copyA ? [4, 4 * M] : [4 * K, 4];
  try {
    const heap = new Float32Array(memory.buffer); // after the allocation, which may grow the memory
    const sA = scratch;
    const sB = sA + (copyA ? M * K * 4 : 0);
    const sC = sB + (packB ? K * Np * 4 : 0);
    let copiedA = -1;
    let packedB = -1;
    for (let i = 0; i < batch; i++) {
      const ai = aAt + ia[i] * M * K * 4;
      const bi = bAt + ib[i] * K * N * 4;
      if (copyA && copiedA !== ia[i]) {
        kernels.transpose(ai, K, M, sA);
        copiedA = ia[i];
      }
      if (packB && packedB !== ib[i]) {
        // B lies [K, N] (or [N, K] transposed): written in panels of 8 columns.
        kernels.packPanels(bi, transposeB ? K : N, K, N, transposeB ? 1 : 0, sB);
        packedB = ib[i];
      }
      const oi = outAt + i * M * N * 4;
      // B from its panels (rows 32 bytes apart, blocks 32·K), or row-major where it lies (N = Np then).
      const [bFrom, rowB, colB] = kept !== undefined ? [kept, 32, 32 * K] : packB ? [sB, 32, 32 * K] : [bi, 4 * N, 32];
      // Few rows: B's panels a block of columns at a time for all rows (read from memory once).
      const byColumns = M <= COLUMNS_FIRST_MAX_ROWS && (kept !== undefined || packB);
      const run = byColumns ? kernels.gemmByColumns : kernels.gemm;
      // With helper threads, each takes a share of the columns (wasm-threads.ts).
      if (threads > 1) splitGemm(memory, run, byColumns, copyA ? sA : ai, rowA, colA, bFrom, rowB, colB, viaScratchC ? sC : oi, Np, M, K, Np, COLUMN_BLOCK);
      else run(copyA ? sA : ai, rowA, colA, bFrom, rowB, colB, viaScratchC ? sC : oi, Np, M, K, Np, COLUMN_BLOCK);
      if (viaScratchC) for (let m = 0; m < M; m++) heap.copyWithin(oi / 4 + m * N, sC / 4 + m * Np, sC / 4 + m * Np + N);
    }
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  } finally {
    if (scratch) backend.wasm._free(scratch);
  }
  return out;
}
