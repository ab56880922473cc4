/**
 * The engine's products on several threads (src/core/model/wasm-threads.ts): real worker threads
 * running the kernel module on a real shared wasm memory, as tfjs's threaded build has it in a
 * cross-origin isolated page. A product split among the caller and its helpers equals the product on
 * one thread bit for bit, for every shape class (rows off the 4-row blocks, column shares off the
 * column blocks, more helpers than blocks), both kernels (rows first, columns first), with the
 * helpers made to do their shares; the cached attention split by batch rows, the same way; small
 * products stay on the caller. What goes wrong is handled: shares no helper claims are taken back, a
 * helper that claims a share and never finishes is stopped and its share run by the caller, one whose
 * kernel fails is replaced by the caller, one that never starts leaves the caller alone.
 */
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GEMM_WASM_SHARED, GEMM_WASM_SHARED_RELAXED } from '../../src/core/model/wasm-gemm.generated';
import {
  FAILED,
  JOB,
  QUIT,
  RUNNING,
  attendThreads,
  helperJobs,
  helpersBroken,
  productThreads,
  readyHelpers,
  setHelperTakeBack,
  setHelperTimeout,
  setWasmHelpers,
  splitAttend,
  splitGemm,
  startHelpers,
  stopHelpers,
  type SpawnHelper,
} from '../../src/core/model/wasm-threads';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

/** Starts `source` in a Node worker_threads worker, as the browser starts the helper from a blob: URL. */
function spawnWith(source?: string): SpawnHelper {
  return (helperSource, init) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(source ?? helperSource, { eval: true });
      worker.once('message', () => resolve(worker));
      worker.once('error', reject);
      worker.postMessage(init);
    });
}

const relaxed = WebAssembly.validate(Buffer.from(GEMM_WASM_SHARED_RELAXED, 'base64'));
const module = new WebAssembly.Module(Buffer.from(relaxed ? GEMM_WASM_SHARED_RELAXED : GEMM_WASM_SHARED, 'base64'));

interface Heap {
  memory: WebAssembly.Memory;
  kernels: {
    gemm(...args: number[]): void;
    gemm_by_columns(...args: number[]): void;
    pack_panels(b: number, ldb: number, K: number, N: number, transposed: number, dst: number): void;
    attend(...args: number[]): void;
  };
  top: number;
}
function heap(): Heap {
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
  return { memory, kernels: new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Heap['kernels'], top: 1 << 16 };
}
function alloc(h: Heap, floats: number): number {
  const at = h.top;
  h.top = (h.top + floats * 4 + 63) & ~63;
  if (h.top > h.memory.buffer.byteLength) h.memory.grow(Math.ceil((h.top - h.memory.buffer.byteLength) / 65536));
  return at;
}
const CONTROL = 1024;
const HELPERS = 3;
const main = heap();

beforeAll(async () => {
  await startHelpers(main.memory, module, HELPERS, CONTROL, spawnWith());
});
afterAll(() => stopHelpers(main.memory));

/** Runs f with the helpers made to claim every share (no take-back), so that they are seen to do the work. */
function helpersDoTheWork<T>(f: () => T): T {
  const was = setHelperTakeBack(false);
  try {
    return f();
  } finally {
    setHelperTakeBack(was);
  }
}

/** A·B for A [M, K] and B [K, N] in panels, with the columns split among threads or not. */
function product(h: Heap, M: number, K: number, N: number, byColumns: boolean, split: boolean): Float32Array {
  const start = h.top;
  const a = alloc(h, M * K);
  const b = alloc(h, K * N);
  const panels = alloc(h, K * N);
  const c = alloc(h, M * N);
  const f = new Float32Array(h.memory.buffer);
  let seed = M * 7919 + K * 104729 + N;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  for (let i = 0; i < M * K; i++) f[a / 4 + i] = random();
  for (let i = 0; i < K * N; i++) f[b / 4 + i] = random();
  f.fill(Number.NaN, c / 4, c / 4 + M * N);
  h.kernels.pack_panels(b, N, K, N, 0, panels);
  const run = byColumns ? h.kernels.gemm_by_columns : h.kernels.gemm;
  if (split) splitGemm(h.memory, run, byColumns, a, 4 * K, 4, panels, 32, 32 * K, c, N, M, K, N, 32);
  else run(a, 4 * K, 4, panels, 32, 32 * K, c, N, M, K, N, 32);
  const out = new Float32Array(h.memory.buffer).slice(c / 4, c / 4 + M * N);
  h.top = start;
  return out;
}

const same = (x: Float32Array, y: Float32Array) => Buffer.from(x.buffer).equals(Buffer.from(y.buffer));

describe('the engine products on helper threads', () => {
  it('starts its helpers on the shared memory', () => {
    expect(readyHelpers(main.memory)).toHaveLength(HELPERS);
    expect(productThreads(main.memory)).toBe(HELPERS + 1);
  });

  it('equals the product on one thread bit for bit, for every shape class and both kernels, the helpers doing their shares', () => {
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
        const one = product(main, M, K, N, byColumns, false);
        const before = helperJobs(main.memory);
        const split = helpersDoTheWork(() => product(main, M, K, N, byColumns, true));
        const blocks = N / 8;
        const shares = M * K * N < 1 << 16 ? 1 : Math.ceil(blocks / Math.ceil(blocks / Math.min(HELPERS + 1, blocks)));
        expect(helperJobs(main.memory) - before, `${M}×${K}×${N}`).toBe(shares - 1);
        expect(one.some(Number.isNaN), `${M}×${K}×${N}`).toBe(false);
        expect(same(split, one), `${M}×${K}×${N} ${byColumns ? 'by columns' : 'rows first'}`).toBe(true);
      }
  });

  it('hands no share of a small product to its helpers, and leaves their control blocks idle', () => {
    const controls = readyHelpers(main.memory).map((h) => h.control);
    const jobs = helperJobs(main.memory);
    product(main, 2, 16, 32, true, true); // 1,024 multiply-adds: not worth a hand-off
    expect(helperJobs(main.memory)).toBe(jobs);
    helpersDoTheWork(() => product(main, 16, 384, 1024, true, true));
    // Each IDLE again, with the last job's share of columns (1,024 columns in 4 shares).
    expect(controls.map((c) => [Atomics.load(c, 0), c[12]])).toEqual(controls.map(() => [0, 256]));
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
      const start = main.top;
      const q = alloc(main, B * nKV * R * d);
      const k = alloc(main, B * nKV * C * d);
      const v = alloc(main, B * nKV * C * d);
      const bias = alloc(main, B * T * C);
      const out1 = alloc(main, B * nKV * R * d);
      const out2 = alloc(main, B * nKV * R * d);
      const scratch = alloc(main, (HELPERS + 1) * R * S);
      const f = new Float32Array(main.memory.buffer);
      let seed = B * 31 + C;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
      for (const [at, n] of [[q, B * nKV * R * d], [k, B * nKV * C * d], [v, B * nKV * C * d]]) for (let i = 0; i < n; i++) f[at / 4 + i] = random();
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) f[bias / 4 + (b * T + t) * C + c] = c <= S - 1 - (b % 3) ? 0 : -1e9;
      f.fill(Number.NaN, out1 / 4, out1 / 4 + B * nKV * R * d);
      f.fill(Number.NaN, out2 / 4, out2 / 4 + B * nKV * R * d);
      main.kernels.attend(q, k, v, bias, out1, scratch, B, nKV, R, T, C, S, d);
      const threads = attendThreads(main.memory, B, nKV, R, S, d);
      expect(threads, `B = ${B}`).toBe(Math.min(B, HELPERS + 1));
      const before = helperJobs(main.memory);
      helpersDoTheWork(() => splitAttend(main.memory, main.kernels.attend, q, k, v, bias, out2, scratch, B, nKV, R, T, C, S, d));
      expect(helperJobs(main.memory) - before).toBe(Math.ceil(B / Math.ceil(B / threads)) - 1);
      const g = new Float32Array(main.memory.buffer);
      const one = g.slice(out1 / 4, out1 / 4 + B * nKV * R * d);
      expect(one.some(Number.isNaN)).toBe(false);
      expect(same(g.slice(out2 / 4, out2 / 4 + B * nKV * R * d), one), `B ${B} nKV ${nKV} R ${R} S ${S}`).toBe(true);
      main.top = start;
    }
    // One row, or a tiny one: on the caller alone.
    expect(attendThreads(main.memory, 1, 2, 3, 100, 64)).toBe(1);
    expect(attendThreads(main.memory, 4, 1, 1, 2, 8)).toBe(1);
  });

  it('runs on the calling thread alone when the helpers are turned off', () => {
    const was = setWasmHelpers(false);
    try {
      expect(productThreads(main.memory)).toBe(1);
      expect(readyHelpers(main.memory)).toHaveLength(0);
      const jobs = helperJobs(main.memory);
      expect(same(product(main, 16, 384, 256, true, true), product(main, 16, 384, 256, true, false))).toBe(true);
      expect(helperJobs(main.memory)).toBe(jobs);
    } finally {
      setWasmHelpers(was);
    }
  });
});

describe('helper threads that do not do their part', () => {
  /** A worker that says it is ready and then does what `loop` says with its control block `c`. */
  const helperThat = (loop: string) => `
    const { parentPort } = require('node:worker_threads');
    parentPort.once('message', ({ memory, control }) => {
      const c = new Int32Array(memory.buffer, control, 16);
      parentPort.postMessage('ready');
      ${loop}
    });`;

  it('takes back the shares no helper claims', async () => {
    const h = heap();
    // Ready, but never looks at its control block.
    await startHelpers(h.memory, module, 2, CONTROL, spawnWith(helperThat('setInterval(() => undefined, 1000);')));
    try {
      expect(readyHelpers(h.memory)).toHaveLength(2);
      expect(same(product(h, 16, 384, 512, true, true), product(h, 16, 384, 512, true, false))).toBe(true);
      expect(readyHelpers(h.memory).map((x) => Atomics.load(x.control, 0))).toEqual([0, 0]);
      expect(helpersBroken(h.memory)).toBeUndefined();
    } finally {
      stopHelpers(h.memory);
    }
  });

  it('stops a helper that claims a share and never finishes it, and runs the share itself', async () => {
    const h = heap();
    // Claims the job, then sleeps for good.
    await startHelpers(h.memory, module, 1, CONTROL, spawnWith(helperThat(`
      while (Atomics.compareExchange(c, 0, ${JOB}, ${RUNNING}) !== ${JOB}) Atomics.wait(c, 0, 0, 50);
      Atomics.wait(c, 0, ${RUNNING});`)));
    const was = setHelperTimeout(300);
    try {
      expect(same(helpersDoTheWork(() => product(h, 16, 384, 512, true, true)), product(h, 16, 384, 512, true, false))).toBe(true);
      expect(helpersBroken(h.memory)).toMatch(/did not finish its share in 0\.3 s/);
      expect(readyHelpers(h.memory)).toHaveLength(0);
      expect(productThreads(h.memory)).toBe(1);
    } finally {
      setHelperTimeout(was);
      stopHelpers(h.memory);
    }
  });

  it('runs the share of a helper whose kernel failed, and stops using the helpers', async () => {
    const h = heap();
    // Claims the job and reports a failed kernel call.
    await startHelpers(h.memory, module, 1, CONTROL, spawnWith(helperThat(`
      for (;;) {
        if (Atomics.compareExchange(c, 0, ${JOB}, ${RUNNING}) === ${JOB}) { Atomics.store(c, 0, ${FAILED}); break; }
        Atomics.wait(c, 0, 0, 50);
      }`)));
    try {
      expect(same(helpersDoTheWork(() => product(h, 16, 384, 512, true, true)), product(h, 16, 384, 512, true, false))).toBe(true);
      expect(helpersBroken(h.memory)).toMatch(/failed in a kernel/);
      expect(productThreads(h.memory)).toBe(1);
    } finally {
      stopHelpers(h.memory);
    }
  });

  it('gives up on helpers that do not start, and stops the ones that did', async () => {
    const h = heap();
    let calls = 0;
    const terminated: number[] = [];
    const spawn: SpawnHelper = () => {
      const i = calls++;
      // The first starts; the second never answers.
      return i === 0 ? Promise.resolve({ terminate: () => void terminated.push(i) }) : new Promise(() => undefined);
    };
    const was = setHelperTimeout(200);
    try {
      await startHelpers(h.memory, module, 2, CONTROL, spawn);
      expect(helpersBroken(h.memory)).toMatch(/did not start in 0\.2 s/);
      expect(productThreads(h.memory)).toBe(1);
      // The one that started is asked to leave and then ended.
      expect(Atomics.load(new Int32Array(h.memory.buffer, CONTROL, 16), 0)).toBe(QUIT);
      await new Promise((r) => setTimeout(r, 1100));
      expect(terminated).toEqual([0]);
    } finally {
      setHelperTimeout(was);
      stopHelpers(h.memory);
    }
  });
});
