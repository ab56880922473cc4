/**
 * Helper threads for the engine's matrix kernel on tfjs's threaded wasm build
 * (docs/engine.md#the-engines-products-on-several-threads).
 *
 * tfjs's threaded build keeps its heap in a shared memory and runs XNNPACK's products on its own pool
 * of threads; the engine's kernel (wasm-gemm.wat) ran on the calling thread only, so a second core
 * sat idle through a decoding step's products. Here a helper is a worker that instantiates the same
 * kernel module on the same shared memory and, when told, multiplies its share of a product's columns
 * while the calling thread multiplies the first share. Every output value is computed by the same
 * kernel code over the same k order whichever thread computes it, so a product split among threads
 * equals the product on one thread bit for bit.
 *
 * Each helper has a control block of 16 int32 in the wasm heap: [0] its state (IDLE, JOB, RUNNING,
 * DONE, FAILED, QUIT), [1] the kernel (0: gemm, 1: gemm_by_columns, 2: attend), [2..14] the kernel's
 * arguments, [15] the jobs the helper has run. The caller writes the arguments, stores JOB and
 * notifies, and multiplies its own share; the helper claims the job (JOB to RUNNING), runs the kernel
 * and stores DONE (FAILED where the kernel threw); the caller spins on DONE (Atomics.wait is refused
 * on a page's main thread) and stores IDLE. A job no helper has claimed by the time the caller
 * is done with its own share, the caller takes back (JOB to IDLE) and multiplies itself: where the
 * cores are busy (tfjs's own pool threads spin between its operations too), a product is never slower
 * than on one thread for waiting on a helper that is not running. A helper spins for a while after
 * each job before it sleeps in Atomics.wait, since a decoding step's next product comes within a
 * fraction of a millisecond.
 */

export const IDLE = 0;
export const JOB = 1;
export const DONE = 2;
export const QUIT = 3;
export const RUNNING = 4;
/** The helper's kernel call threw (a trap): the caller runs the share itself and stops using the helpers. */
export const FAILED = 5;
/** Int32 slots per helper's control block (64 bytes: its own cache line). */
const CONTROL_INTS = 16;
/** A product of fewer multiply-adds than this runs on the calling thread alone: the hand-off would cost more than it saves. */
const SPLIT_MIN_MACS = 1 << 16;
/** A helper spins this long (ms) for its next job before it sleeps. */
const HELPER_SPIN_MS = 1;
/**
 * A helper that has not finished a share this long after claiming it (ms) is stopped, its share run
 * by the caller, and the helpers are not used again; one that has not started this long after it was
 * spawned is given up on.
 */
let helperTimeoutMs = 10_000;

/**
 * The helper's whole program, for a browser worker (from a blob: URL) or a Node worker_threads
 * worker (eval). It receives { module, memory, control } once and then serves jobs until QUIT.
 */
export const HELPER_SOURCE = `
'use strict';
const browser = typeof WorkerGlobalScope !== 'undefined';
const port = browser ? self : require('node:worker_threads').parentPort;
function serve({ module, memory, control }) {
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const c = new Int32Array(memory.buffer, control, ${CONTROL_INTS});
  port.postMessage('ready');
  // Spins while the state is \`from\`, up to a millisecond, then sleeps until it changes.
  const await_change = (from) => {
    const until = performance.now() + ${HELPER_SPIN_MS};
    for (let i = 0; Atomics.load(c, 0) === from; i++) if ((i & 1023) === 0 && performance.now() > until) break;
    Atomics.wait(c, 0, from);
  };
  for (;;) {
    const state = Atomics.load(c, 0);
    if (state === ${QUIT}) break;
    if (state !== ${JOB}) {
      // IDLE: the next job comes soon in a decoding step; DONE: the caller is about to read it.
      await_change(state);
      continue;
    }
    if (Atomics.compareExchange(c, 0, ${JOB}, ${RUNNING}) !== ${JOB}) continue;
    let next = ${DONE};
    try {
      if (c[1] === 1) k.gemm_by_columns(c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13]);
      else if (c[1] === 2) k.attend(c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14]);
      else k.gemm(c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12]);
      c[15]++;
    } catch (e) {
      next = ${FAILED};
    }
    // QUIT stored while running is kept: the helper leaves.
    if (Atomics.compareExchange(c, 0, ${RUNNING}, next) === ${QUIT}) break;
  }
  if (browser) self.close();
  else port.close();
}
if (browser) self.onmessage = (e) => serve(e.data);
else port.once('message', serve);
`;

/** A started helper: its control block, and how to stop it (asked to leave, or its worker ended now). */
export interface Helper {
  control: Int32Array;
  stop(): void;
  kill(): void;
}

/**
 * Starts a worker running HELPER_SOURCE and hands it the module, the memory and its control block;
 * resolves when it is ready. The default starts a browser worker from a blob: URL.
 */
export type SpawnHelper = (source: string, init: { module: WebAssembly.Module; memory: WebAssembly.Memory; control: number }) => Promise<{ terminate(): void }>;

const browserSpawn: SpawnHelper = (source, init) =>
  new Promise((resolve, reject) => {
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    const worker = new Worker(url);
    URL.revokeObjectURL(url);
    worker.onmessage = () => resolve(worker);
    worker.onerror = (e) => reject(new Error(`a wasm helper thread failed to start: ${e.message}`));
    worker.postMessage(init);
  });

interface Pool {
  helpers: Helper[];
  /** Why the helpers stopped being used, once they did. */
  broken?: string;
}
const pools = new WeakMap<WebAssembly.Memory, Pool>();
let helpersWanted = true;

/** Whether helpers are wanted now (setWasmHelpers). */
export function wasmHelpersWanted(): boolean {
  return helpersWanted;
}

/** Uses the helpers (on, the default) or multiplies on the calling thread alone (off): for comparisons. Returns the setting it replaces. */
export function setWasmHelpers(on: boolean): boolean {
  const was = helpersWanted;
  helpersWanted = on;
  return was;
}

/**
 * Starts `count` helpers for this shared memory (once; later calls do nothing). `controlAt` is the
 * byte address of count · 64 bytes of the heap the caller set aside for good. Products run on the
 * calling thread alone until the helpers are ready, and for good if one fails to start.
 */
export function startHelpers(memory: WebAssembly.Memory, module: WebAssembly.Module, count: number, controlAt: number, spawn: SpawnHelper = browserSpawn): Promise<void> {
  if (pools.has(memory) || count < 1) return Promise.resolve();
  const pool: Pool = { helpers: [], broken: 'starting' };
  pools.set(memory, pool);
  const starting = Array.from({ length: count }, async (_, i): Promise<Helper> => {
    const control = controlAt + i * CONTROL_INTS * 4;
    const view = new Int32Array(memory.buffer, control, CONTROL_INTS);
    view.fill(0);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`a wasm helper thread did not start in ${helperTimeoutMs / 1000} s`)), helperTimeoutMs);
    });
    const spawning = spawn(HELPER_SOURCE, { module, memory, control });
    try {
      const worker = await Promise.race([spawning, late]);
      return {
        control: view,
        stop: () => {
          Atomics.store(view, 0, QUIT);
          Atomics.notify(view, 0);
          // The helper leaves its loop on QUIT, at the latest when its share is done; then it is ended.
          setTimeout(() => worker.terminate(), 1000);
        },
        kill: () => {
          Atomics.store(view, 0, QUIT);
          worker.terminate();
        },
      };
    } catch (e) {
      // One that starts after all is ended at once.
      void spawning.then((w) => w.terminate(), () => undefined);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  });
  return Promise.allSettled(starting).then((results) => {
    const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // All or none: the ones that started are stopped, and products stay on the calling thread.
      for (const h of started) h.stop();
      pool.broken = String(failed.reason instanceof Error ? failed.reason.message : failed.reason);
    } else {
      pool.helpers = started;
      pool.broken = undefined;
    }
  });
}

/** Sets how long a helper may take to start or to finish a claimed share (ms; tests). Returns the setting it replaces. */
export function setHelperTimeout(ms: number): number {
  const was = helperTimeoutMs;
  helperTimeoutMs = ms;
  return was;
}

let takeBack = true;
/**
 * Lets the caller take back a share no helper has claimed yet (on, the default), or makes it wait
 * for the helpers to claim every share (off): for tests that must see the helpers do the work.
 * Returns the setting it replaces.
 */
export function setHelperTakeBack(on: boolean): boolean {
  const was = takeBack;
  takeBack = on;
  return was;
}

/** Stops this memory's helpers (tests; a page's helpers live as long as its backend). */
export function stopHelpers(memory: WebAssembly.Memory): void {
  const pool = pools.get(memory);
  if (!pool) return;
  for (const h of pool.helpers) h.stop();
  pools.delete(memory);
}

/** The helpers ready to take a share of a product in this memory (none: the calling thread alone). */
export function readyHelpers(memory: WebAssembly.Memory): readonly Helper[] {
  const pool = pools.get(memory);
  return helpersWanted && pool && pool.broken === undefined ? pool.helpers : [];
}

/** Shares of products the helpers of this memory have multiplied so far. */
export function helperJobs(memory: WebAssembly.Memory): number {
  return (pools.get(memory)?.helpers ?? []).reduce((n, h) => n + Atomics.load(h.control, 15), 0);
}

/** Threads a product in this memory runs on now: 1 plus the ready helpers. */
export function productThreads(memory: WebAssembly.Memory): number {
  return 1 + readyHelpers(memory).length;
}

type GemmFn = (a: number, rowA: number, colA: number, b: number, rowB: number, colB: number, c: number, ldc: number, M: number, K: number, N: number, nc: number) => void;
type AttendFn = (q: number, k: number, v: number, bias: number, out: number, scratch: number, B: number, nKV: number, R: number, T: number, C: number, S: number, d: number) => void;

/**
 * Runs shares 1.. of a job on the helpers (op and each share's arguments) while the caller runs share
 * 0, then waits for them; a share no helper has claimed by then, the caller runs itself.
 */
function handOff(memory: WebAssembly.Memory, helpers: readonly Helper[], op: number, shares: number[][], runHere: (args: number[]) => void): void {
  const used: { helper: Helper; args: number[] }[] = [];
  for (let p = 1; p < shares.length; p++) {
    const helper = helpers[p - 1];
    // Addresses past 2 GB go in as their int32 bit patterns, which wasm reads back as the same i32.
    helper.control.set([op, ...shares[p]], 1);
    Atomics.store(helper.control, 0, JOB);
    Atomics.notify(helper.control, 0);
    used.push({ helper, args: shares[p] });
  }
  runHere(shares[0]);
  for (const { helper, args } of used) {
    const ctl = helper.control;
    // Not claimed yet: taken back and run here.
    if (takeBack && Atomics.compareExchange(ctl, 0, JOB, IDLE) === JOB) {
      runHere(args);
      continue;
    }
    let state = Atomics.load(ctl, 0);
    const started = performance.now();
    for (let i = 0; state !== DONE && state !== FAILED; i++, state = Atomics.load(ctl, 0))
      if ((i & 4095) === 0 && performance.now() - started > helperTimeoutMs) {
        // Stopped first, so that it writes nothing more; its share is run here.
        breakPool(memory, `a helper thread did not finish its share in ${helperTimeoutMs / 1000} s`, true);
        state = FAILED;
        break;
      }
    if (state === FAILED) {
      if (Atomics.load(ctl, 0) === FAILED) breakPool(memory, 'a helper thread failed in a kernel', false);
      runHere(args);
    }
    if (Atomics.load(ctl, 0) !== QUIT) Atomics.store(ctl, 0, IDLE);
  }
}

/** Stops using this memory's helpers: asked to leave, or (kill) their workers ended at once. */
function breakPool(memory: WebAssembly.Memory, why: string, kill: boolean): void {
  const pool = pools.get(memory);
  if (!pool || pool.broken !== undefined) return;
  pool.broken = why;
  for (const h of pool.helpers) (kill ? h.kill : h.stop)();
}

/** Why this memory's helpers are not used (undefined while they are, or where there are none). */
export function helpersBroken(memory: WebAssembly.Memory): string | undefined {
  const pool = pools.get(memory);
  return pool?.broken === 'starting' ? undefined : pool?.broken;
}

/**
 * C = A·B with gemm (byColumns: gemm_by_columns, nc columns at a time) over the helpers and the calling
 * thread: N (a multiple of 8) is cut into shares of whole 8-column blocks, the first for the caller.
 * Arguments as the kernel's; a small product, or no helper ready, runs on the calling thread alone.
 */
export function splitGemm(
  memory: WebAssembly.Memory,
  run: GemmFn,
  byColumns: boolean,
  a: number, rowA: number, colA: number,
  b: number, rowB: number, colB: number,
  c: number, ldc: number,
  M: number, K: number, N: number, nc: number,
): void {
  const helpers = readyHelpers(memory);
  const blocks = N / 8;
  const parts = Math.min(helpers.length + 1, blocks);
  if (parts < 2 || M * K * N < SPLIT_MIN_MACS) {
    run(a, rowA, colA, b, rowB, colB, c, ldc, M, K, N, nc);
    return;
  }
  const share = Math.ceil(blocks / parts);
  const shares: number[][] = [];
  for (let from = 0; from < blocks; from += share) shares.push([a, rowA, colA, b + from * colB, rowB, colB, c + from * 32, ldc, M, K, Math.min(share, blocks - from) * 8, nc]);
  handOff(memory, helpers, byColumns ? 1 : 0, shares, (x) => run(...(x as Parameters<GemmFn>)));
}

/**
 * Attention of a cached step (the attend kernel) over the helpers and the calling thread: the batch's
 * rows are cut into shares, each with its own scores scratch (`scratch` holds R·S floats a thread,
 * for threads = attendThreads(memory, B)). Every row's result is the one-thread result bit for bit.
 */
export function splitAttend(
  memory: WebAssembly.Memory,
  run: AttendFn,
  q: number, k: number, v: number, bias: number, out: number, scratch: number,
  B: number, nKV: number, R: number, T: number, C: number, S: number, d: number,
): void {
  const helpers = readyHelpers(memory);
  const parts = attendThreads(memory, B, nKV, R, S, d);
  if (parts < 2) {
    run(q, k, v, bias, out, scratch, B, nKV, R, T, C, S, d);
    return;
  }
  const share = Math.ceil(B / parts);
  const shares: number[][] = [];
  for (let from = 0, p = 0; from < B; from += share, p++) {
    const rows = Math.min(share, B - from);
    const qAt = from * nKV * R * d * 4;
    const cacheAt = from * nKV * C * d * 4;
    shares.push([q + qAt, k + cacheAt, v + cacheAt, bias + from * T * C * 4, out + qAt, scratch + p * R * S * 4, rows, nKV, R, T, C, S, d]);
  }
  handOff(memory, helpers, 2, shares, (x) => run(...(x as Parameters<AttendFn>)));
}

/** Threads an attention of this shape is cut among (the size of the scratch splitAttend needs: R·S floats each). */
export function attendThreads(memory: WebAssembly.Memory, B: number, nKV: number, R: number, S: number, d: number): number {
  const parts = Math.min(readyHelpers(memory).length + 1, B);
  // Multiply-adds of the scores and the weighted sum.
  return parts >= 2 && 2 * B * nKV * R * S * d >= SPLIT_MIN_MACS ? parts : 1;
}
