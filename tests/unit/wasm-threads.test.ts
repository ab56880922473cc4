/**
 * The engine's products on several threads (src/core/model/wasm-threads.ts): real worker threads
 * running the kernel module on a real shared wasm memory, as tfjs's threaded build has it in a
 * cross-origin isolated page. A product split among the caller and its helpers equals the product on
 * one thread bit for bit, for every shape class (rows off the 4-row blocks, column shares off the
 * column blocks, more helpers than blocks), both kernels (rows first, columns first); small products
 * stay on the caller; the cached attention split by batch rows, the same way; turned off, the caller
 * works alone.
 */
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GEMM_WASM_SHARED, GEMM_WASM_SHARED_RELAXED } from '../../src/core/model/wasm-gemm.generated';
import { attendThreads, helperJobs, productThreads, readyHelpers, setWasmHelpers, splitAttend, splitGemm, startHelpers, stopHelpers, type SpawnHelper } from '../../src/core/model/wasm-threads';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

/** Node's counterpart of the browser's blob: worker: the same helper program, run by worker_threads. */
const nodeSpawn: SpawnHelper = (source, init) =>
  new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true });
    worker.once('message', () => resolve(worker));
    worker.once('error', reject);
    worker.postMessage(init);
  });

const relaxed = WebAssembly.validate(Buffer.from(GEMM_WASM_SHARED_RELAXED, 'base64'));
const module = new WebAssembly.Module(Buffer.from(relaxed ? GEMM_WASM_SHARED_RELAXED : GEMM_WASM_SHARED, 'base64'));
const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as {
  gemm(...args: number[]): void;
  gemm_by_columns(...args: number[]): void;
  pack_panels(b: number, ldb: number, K: number, N: number, transposed: number, dst: number): void;
  attend(...args: number[]): void;
};
const HELPERS = 3;
const CONTROL = 1024;
let top = 1 << 16;
function alloc(floats: number): number {
  const at = top;
  top = (top + floats * 4 + 63) & ~63;
  return at;
}

beforeAll(async () => {
  await startHelpers(memory, module, HELPERS, CONTROL, nodeSpawn);
});
afterAll(() => stopHelpers(memory));

/** A·B for A [M, K] and B [K, N] in panels, with the columns split among threads or not. */
function product(M: number, K: number, N: number, byColumns: boolean, split: boolean): Float32Array {
  const heap = new Float32Array(memory.buffer);
  const a = alloc(M * K);
  const b = alloc(K * N);
  const panels = alloc(K * N);
  const c = alloc(M * N);
  let seed = M * 7919 + K * 104729 + N;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  for (let i = 0; i < M * K; i++) heap[a / 4 + i] = random();
  for (let i = 0; i < K * N; i++) heap[b / 4 + i] = random();
  heap.fill(Number.NaN, c / 4, c / 4 + M * N);
  kernels.pack_panels(b, N, K, N, 0, panels);
  const run = byColumns ? kernels.gemm_by_columns : kernels.gemm;
  if (split) splitGemm(memory, run, byColumns, a, 4 * K, 4, panels, 32, 32 * K, c, N, M, K, N, 32);
  else run(a, 4 * K, 4, panels, 32, 32 * K, c, N, M, K, N, 32);
  const out = heap.slice(c / 4, c / 4 + M * N);
  top = a;
  return out;
}

describe('the engine products on helper threads', () => {
  it('starts its helpers on the shared memory', () => {
    expect(readyHelpers(memory)).toHaveLength(HELPERS);
    expect(productThreads(memory)).toBe(HELPERS + 1);
  });

  it('equals the product on one thread bit for bit, for every shape class and both kernels', () => {
    // Rows: 1, off the 4-row blocks, a decoding batch, past the columns-first limit. Columns: one
    // block (no split possible), fewer blocks than threads, shares off the 32-column blocks, wide.
    for (const [M, K, N] of [
      [1, 384, 1024],
      [3, 64, 8],
      [16, 384, 24],
      [16, 384, 128],
      [13, 100, 1000],
      [64, 1024, 384],
      [100, 384, 136],
    ])
      for (const byColumns of [true, false]) {
        const one = product(M, K, N, byColumns, false);
        const split = product(M, K, N, byColumns, true);
        expect(one.some(Number.isNaN), `${M}×${K}×${N}`).toBe(false);
        expect(Buffer.from(split.buffer).equals(Buffer.from(one.buffer)), `${M}×${K}×${N} ${byColumns ? 'by columns' : 'rows first'}`).toBe(true);
      }
  });

  it('hands shares of a product to its helpers, and of a small one to none', () => {
    const controls = readyHelpers(memory).map((h) => h.control);
    // Shares of a large product: the helpers multiply them (a share no helper has claimed when the
    // caller is done with its own, the caller takes back, so not necessarily every one).
    const before = helperJobs(memory);
    for (let i = 0; i < 4; i++) product(64, 1024, 1024, true, true);
    expect(helperJobs(memory)).toBeGreaterThan(before);
    // Each control block is IDLE again, with the last job's column share (1,024 columns in 4 shares).
    expect(controls.map((c) => [Atomics.load(c, 0), c[12]])).toEqual(controls.map(() => [0, 256]));
    for (const c of controls) c[12] = -1;
    const jobs = helperJobs(memory);
    product(2, 16, 32, true, true); // 1,024 multiply-adds: not worth a hand-off
    expect(controls.map((c) => c[12])).toEqual(controls.map(() => -1));
    expect(helperJobs(memory)).toBe(jobs);
  });

  it('splits a cached attention by batch rows, equal to one thread bit for bit', () => {
    // q, out [B, nKV, R, d]; k, v [B, nKV, C, d]; bias [B, 1, T, C] with the slots past each row's
    // length masked; R = group · T query rows a kv head.
    for (const [B, nKV, group, T, C, S, d] of [
      [16, 2, 3, 1, 48, 37, 64],
      [5, 1, 2, 2, 200, 180, 32],
      [3, 2, 1, 1, 300, 256, 64],
    ]) {
      const R = group * T;
      const heap = new Float32Array(memory.buffer);
      const q = alloc(B * nKV * R * d);
      const k = alloc(B * nKV * C * d);
      const v = alloc(B * nKV * C * d);
      const bias = alloc(B * T * C);
      const out1 = alloc(B * nKV * R * d);
      const out2 = alloc(B * nKV * R * d);
      const scratch = alloc(4 * R * S);
      let seed = B * 31 + C;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
      for (const [at, n] of [[q, B * nKV * R * d], [k, B * nKV * C * d], [v, B * nKV * C * d]]) for (let i = 0; i < n; i++) heap[at / 4 + i] = random();
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) heap[bias / 4 + (b * T + t) * C + c] = c <= S - 1 - b % 3 ? 0 : -1e9;
      heap.fill(Number.NaN, out1 / 4, out1 / 4 + B * nKV * R * d);
      heap.fill(Number.NaN, out2 / 4, out2 / 4 + B * nKV * R * d);
      kernels.attend(q, k, v, bias, out1, scratch, B, nKV, R, T, C, S, d);
      const before = helperJobs(memory);
      const threads = attendThreads(memory, B, nKV, R, S, d);
      expect(threads, `B = ${B}`).toBe(Math.min(B, HELPERS + 1));
      splitAttend(memory, kernels.attend, q, k, v, bias, out2, scratch, B, nKV, R, T, C, S, d);
      const one = heap.slice(out1 / 4, out1 / 4 + B * nKV * R * d);
      const split = heap.slice(out2 / 4, out2 / 4 + B * nKV * R * d);
      expect(one.some(Number.isNaN)).toBe(false);
      expect(Buffer.from(split.buffer).equals(Buffer.from(one.buffer)), `B ${B} nKV ${nKV} R ${R} S ${S}`).toBe(true);
      expect(helperJobs(memory)).toBeGreaterThanOrEqual(before);
      top = q;
    }
    // One row, or a tiny one: on the caller alone.
    expect(attendThreads(memory, 1, 2, 3, 100, 64)).toBe(1);
    expect(attendThreads(memory, 4, 1, 1, 2, 8)).toBe(1);
  });

  it('runs on the calling thread alone when the helpers are turned off', () => {
    const was = setWasmHelpers(false);
    try {
      expect(productThreads(memory)).toBe(1);
      const controls = readyHelpers(memory);
      expect(controls).toHaveLength(0);
      const one = product(16, 384, 256, true, false);
      expect(Buffer.from(product(16, 384, 256, true, true).buffer).equals(Buffer.from(one.buffer))).toBe(true);
    } finally {
      setWasmHelpers(was);
    }
  });
});
