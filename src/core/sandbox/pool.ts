/**
 * A pool of warm Python sandbox workers with a queue and a concurrency cap (one call per worker).
 * Timeouts fire in two steps: a soft interrupt through the worker's interrupt buffer (KeyboardInterrupt
 * inside Python), then, if it has not landed after a grace period, the worker is terminated and a new
 * one is started. The pool stays usable after every kind of failure.
 * Where the workers live (browser module workers, Node worker_threads) is the spawn function's business.
 */
import { LabError } from '../errors';
import { checkCode, checkRunOptions, checkTimeout } from './input';
import { createOutputMirror, readOutputMirror } from './output';
import type { RuntimeConfig, WorkerRunResult } from './runtime';
import { DEFAULT_LIMITS, DEFAULT_TIMEOUT_MS, type Executor, type RunOptions, type RunResult, type SandboxInfo, type SandboxLimits } from './types';
import type { PythonWorkerPort } from './worker-api';

/** One started worker, as the environment provides it. */
export interface SandboxWorker {
  port: PythonWorkerPort;
  /** SharedArrayBuffer-backed Int32Array(1) the worker watches; absent without cross-origin isolation. */
  interruptBuffer?: Int32Array;
  /** Interrupts the running call by other means than the buffer (a signal to a child process). */
  interrupt?(): void;
  /** What the running call has printed so far, read when the call has to be abandoned (instead of the shared output mirror). */
  printed?(maxChars: number): { text: string; truncated: boolean };
  /** Called once when the worker dies on its own (crash, out of memory), not after terminate(). */
  onExit(listener: (reason: string) => void): void;
  terminate(): void;
}

export type SpawnSandboxWorker = () => SandboxWorker;

export interface PoolOptions {
  /** Number of workers, which is also the number of calls running at once. */
  size: number;
  /** Default limit per call (RunOptions.timeoutMs overrides it). */
  timeoutMs: number;
  /** How long an interrupted call may take to stop before its worker is terminated. */
  graceMs: number;
  /** How long a worker may take to become warm. */
  startTimeoutMs: number;
  /** Calls waiting beyond this many are refused (runaway tool loops). */
  maxQueue: number;
  /** A worker is replaced after this many calls (bounds what a long series of calls can leave behind). */
  recycleAfterCalls: number;
  limits: SandboxLimits;
  /** Everything a worker needs to boot, except its interrupt buffer. */
  runtime: Omit<RuntimeConfig, 'interruptBuffer' | 'limits'>;
}

export const DEFAULT_POOL_OPTIONS: Omit<PoolOptions, 'runtime'> = {
  size: 1,
  timeoutMs: DEFAULT_TIMEOUT_MS,
  graceMs: 500,
  startTimeoutMs: 120_000,
  maxQueue: 10_000,
  recycleAfterCalls: 5_000,
  limits: DEFAULT_LIMITS,
};

export interface PoolHealth {
  size: number;
  idle: number;
  busy: number;
  starting: number;
  failed: number;
  queued: number;
  calls: number;
  /** Workers replaced so far (timeouts, crashes, memory, recycling). */
  replacements: number;
  lastStartError?: string;
}

type SlotState = 'starting' | 'idle' | 'busy' | 'failed' | 'closed';

interface Slot {
  id: number;
  state: SlotState;
  worker?: SandboxWorker;
  calls: number;
  sessions: Set<string>;
  /** Set while a call runs: resolves that call when the worker dies under it. */
  onExit?: (reason: string) => void;
  /** Set while the worker starts: ends the start at once (the pool closed, or the worker died). */
  abortStart?: (reason: string) => void;
  startFailures: number;
  /** The worker's stdout, written through to shared memory (output.ts): what a call printed survives its worker. */
  output?: SharedArrayBuffer;
}

interface Job {
  kind: 'run' | 'end';
  code: string;
  session?: string;
  timeoutMs: number;
  resolve(result: RunResult | undefined): void;
  reject(error: unknown): void;
}

const MAX_START_FAILURES = 3;

export class PythonPool implements Executor {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly sessionSlot = new Map<string, Slot>();
  private readonly lostSessions = new Set<string>();
  private readonly options: PoolOptions;
  private closed = false;
  private calls = 0;
  private replacements = 0;
  private lastStartError: string | undefined;
  private firstInfo: SandboxInfo | undefined;
  private readyWaiters: { resolve(): void; reject(e: unknown): void }[] = [];

  private constructor(private readonly spawn: SpawnSandboxWorker, options: PoolOptions) {
    this.options = options;
  }

  /** Starts the workers and resolves when all are warm (or rejects when none can start). */
  static async start(spawn: SpawnSandboxWorker, options: Partial<PoolOptions> & Pick<PoolOptions, 'runtime'>): Promise<PythonPool> {
    const merged: PoolOptions = { ...DEFAULT_POOL_OPTIONS, ...options, limits: { ...DEFAULT_LIMITS, ...options.limits } };
    checkPoolOptions(merged);
    const pool = new PythonPool(spawn, merged);
    for (let id = 0; id < merged.size; id++) {
      const slot: Slot = { id, state: 'starting', calls: 0, sessions: new Set(), startFailures: 0 };
      pool.slots.push(slot);
      void pool.startWorker(slot);
    }
    await pool.ready();
    return pool;
  }

  /** Resolves when no worker is starting any more and at least one is usable. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
      this.settleReady();
    });
  }

  /** What the first warm worker reported: versions, packages, interrupts, warm-up time. */
  info(): SandboxInfo | undefined {
    return this.firstInfo;
  }

  health(): PoolHealth {
    const count = (state: SlotState) => this.slots.filter((s) => s.state === state).length;
    return {
      size: this.slots.length,
      idle: count('idle'),
      busy: count('busy'),
      starting: count('starting'),
      failed: count('failed'),
      queued: this.queue.length,
      calls: this.calls,
      replacements: this.replacements,
      lastStartError: this.lastStartError,
    };
  }

  /** Runs code; bad code becomes an 'error' result, bad options a rejected LabError. */
  async run(code: string, options: RunOptions = {}): Promise<RunResult> {
    checkRunOptions(options);
    if (this.closed) throw new LabError('sandbox-closed', 'the Python sandbox pool is closed');
    const problem = checkCode(code, this.options.limits.maxCodeChars);
    if (problem) {
      return { status: 'error', stdout: '', stderr: `InputError: ${problem.message}\n`, errorLine: problem.line, durationMs: 0, truncated: false };
    }
    if (this.queue.length >= this.options.maxQueue) {
      throw new LabError('sandbox-queue-full', `${this.queue.length} calls are already waiting for the Python sandbox`, {
        field: 'maxQueue', expected: `at most ${this.options.maxQueue} waiting calls`, found: String(this.queue.length + 1), hint: 'Wait for results before sending more code',
      });
    }
    return new Promise<RunResult | undefined>((resolve, reject) => {
      this.queue.push({ kind: 'run', code, session: options.session, timeoutMs: options.timeoutMs ?? this.options.timeoutMs, resolve, reject });
      this.pump();
    }) as Promise<RunResult>;
  }

  async endSession(session: string): Promise<void> {
    checkRunOptions({ session });
    this.lostSessions.delete(session);
    if (this.closed || !this.sessionSlot.has(session)) return;
    await new Promise<RunResult | undefined>((resolve, reject) => {
      this.queue.push({ kind: 'end', code: '', session, timeoutMs: this.options.timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** Per worker: paths from Python objects to JavaScript found when sealing (runtime.checkIsolation). */
  async checkIsolation(): Promise<(string[] | null)[]> {
    return Promise.all(this.slots.filter((s) => s.worker && s.state !== 'starting').map((s) => s.worker!.port.checkIsolation()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new LabError('sandbox-closed', 'the Python sandbox pool was closed'));
    for (const slot of this.slots) {
      slot.state = 'closed';
      // A worker terminated on purpose reports no exit: a start in progress is ended here, or its
      // start timeout would keep the process alive long after the pool closed.
      slot.abortStart?.('the Python sandbox pool was closed');
      slot.worker?.terminate();
      slot.worker = undefined;
    }
    this.settleReady();
  }

  // --- Scheduling ------------------------------------------------------------------------------

  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const job = this.queue[i];
      const slot = this.pick(job);
      if (!slot) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      if (job.kind === 'end') void this.endOn(slot, job);
      else void this.runOn(slot, job);
    }
  }

  /** A session sticks to its worker; other calls take any idle worker, preferring those without sessions. */
  private pick(job: Job): Slot | undefined {
    const owner = job.session !== undefined ? this.sessionSlot.get(job.session) : undefined;
    if (owner) return owner.state === 'idle' ? owner : undefined;
    if (job.kind === 'end') return undefined;
    const idle = this.slots.filter((s) => s.state === 'idle');
    idle.sort((a, b) => a.sessions.size - b.sessions.size);
    return idle[0];
  }

  private async endOn(slot: Slot, job: Job): Promise<void> {
    slot.state = 'busy';
    try {
      await slot.worker!.port.endSession(job.session!);
    } catch {
      // A worker that cannot end a session is replaced by the next failure; the session is gone either way.
    }
    slot.sessions.delete(job.session!);
    this.sessionSlot.delete(job.session!);
    if (slot.state === 'busy') slot.state = 'idle';
    job.resolve(undefined);
    this.pump();
  }

  private async runOn(slot: Slot, job: Job): Promise<void> {
    slot.state = 'busy';
    slot.calls++;
    this.calls++;
    const worker = slot.worker!;
    const output = slot.output;
    let note = '';
    if (job.session !== undefined) {
      if (this.lostSessions.delete(job.session)) {
        note = '[sandbox] this session\'s earlier state was lost when its worker was replaced; the call started from a fresh namespace\n';
      }
      this.sessionSlot.set(job.session, slot);
      slot.sessions.add(job.session);
    }
    const started = performance.now();
    if (worker.interruptBuffer) Atomics.store(worker.interruptBuffer, 0, 0);
    const call = worker.port.run(job.code, job.session ?? null, job.timeoutMs).then(
      (result) => ({ kind: 'result' as const, result }),
      (error: unknown) => ({ kind: 'exit' as const, reason: `the worker failed: ${error instanceof Error ? error.message : String(error)}` }),
    );
    const exited = new Promise<{ kind: 'exit'; reason: string }>((resolve) => {
      slot.onExit = (reason) => resolve({ kind: 'exit', reason });
    });
    let outcome = await firstOf([call, exited], job.timeoutMs);
    let interrupted = false;
    if (outcome.kind === 'timeout' && (worker.interruptBuffer || worker.interrupt)) {
      interrupted = true;
      if (worker.interruptBuffer) Atomics.store(worker.interruptBuffer, 0, 2); // SIGINT: KeyboardInterrupt inside Python
      worker.interrupt?.();
      outcome = await firstOf([call, exited], this.options.graceMs);
    }
    slot.onExit = undefined;
    const durationMs = performance.now() - started;
    const seconds = (job.timeoutMs / 1000).toPrecision(3).replace(/\.?0+$/, '');
    const timeoutLine = `TimeoutError: the code did not finish within ${seconds} s`;

    // What the call printed before its worker had to go (nothing is known without shared memory).
    const printed = () => {
      const max = this.options.limits.maxOutputChars;
      const out = worker.printed ? worker.printed(max) : output ? readOutputMirror(output, max) : { text: '', truncated: false };
      return { stdout: out.text, truncated: out.truncated };
    };
    let result: RunResult;
    let replace: string | undefined;
    if (outcome.kind === 'result') {
      const r: WorkerRunResult = outcome.result;
      const timedOut = interrupted && !r.dead;
      result = {
        status: timedOut ? 'timeout' : r.status,
        stdout: r.stdout,
        stderr: note + joinLines(r.stderr, timedOut ? `${timeoutLine} and was interrupted\n` : r.traceback),
        errorLine: r.errorLine,
        durationMs,
        truncated: r.truncated,
      };
      if (r.dead) replace = 'its Python runtime died';
      else if (r.status === 'memory') replace = 'it ran out of memory';
      else if (r.heapMb > 0.75 * this.options.limits.memoryLimitMb) replace = `its heap grew to ${Math.round(r.heapMb)} MiB`;
      else if (slot.calls >= this.options.recycleAfterCalls) replace = 'it reached its call budget';
    } else if (outcome.kind === 'exit') {
      result = { status: 'killed', ...printed(), stderr: `${note}Killed: ${outcome.reason}\n`, errorLine: null, durationMs };
      replace = outcome.reason;
    } else {
      const how = interrupted ? 'did not stop when interrupted' : 'could not be interrupted (no SharedArrayBuffer)';
      result = { status: 'timeout', ...printed(), stderr: `${note}${timeoutLine}; it ${how}, so its worker was replaced\n`, errorLine: null, durationMs };
      replace = 'it timed out';
    }
    if (replace !== undefined && !this.closed) this.replaceWorker(slot);
    else if (slot.state === 'busy') slot.state = 'idle';
    job.resolve(result);
    this.pump();
  }

  // --- Worker lifecycle ------------------------------------------------------------------------

  private replaceWorker(slot: Slot): void {
    this.replacements++;
    for (const session of slot.sessions) {
      this.sessionSlot.delete(session);
      this.lostSessions.add(session);
    }
    slot.sessions.clear();
    const old = slot.worker;
    slot.worker = undefined;
    old?.terminate();
    slot.state = 'starting';
    slot.calls = 0;
    void this.startWorker(slot);
  }

  private async startWorker(slot: Slot): Promise<void> {
    let worker: SandboxWorker | undefined;
    try {
      worker = this.spawn();
      const current = worker;
      const diedStarting = new Promise<never>((_, reject) => {
        slot.abortStart = (reason) => reject(new Error(reason));
      });
      worker.onExit((reason) => {
        if (slot.worker !== current) return;
        if (slot.state === 'starting') slot.abortStart?.(reason);
        else if (slot.onExit) slot.onExit(reason);
        else if (slot.state === 'idle' && !this.closed) this.replaceWorker(slot);
      });
      slot.worker = worker;
      // Shared memory is there when the worker has an interrupt buffer (Node; a cross-origin isolated page).
      slot.output = worker.interruptBuffer ? createOutputMirror(this.options.limits.maxOutputChars) : undefined;
      const runtime: RuntimeConfig = { ...this.options.runtime, limits: this.options.limits, interruptBuffer: worker.interruptBuffer, outputMirror: slot.output };
      const warm = Promise.race([worker.port.init(runtime), diedStarting]);
      const info = await withTimeout(warm, this.options.startTimeoutMs, 'the Python worker did not become warm in time').finally(() => {
        slot.abortStart = undefined;
      });
      if (this.closed || slot.worker !== worker) {
        worker.terminate();
        return;
      }
      this.firstInfo ??= info;
      slot.state = 'idle';
      slot.startFailures = 0;
    } catch (e) {
      worker?.terminate();
      if (slot.worker === worker) slot.worker = undefined;
      if (this.closed) return;
      slot.startFailures++;
      this.lastStartError = e instanceof Error ? e.message : String(e);
      if (slot.startFailures >= MAX_START_FAILURES) {
        slot.state = 'failed';
        this.failQueueIfNoWorkerLeft();
      } else {
        await delay(500 * slot.startFailures);
        if (!this.closed) return this.startWorker(slot);
      }
    }
    this.settleReady();
    this.pump();
  }

  private failQueueIfNoWorkerLeft(): void {
    if (this.slots.some((s) => s.state !== 'failed')) return;
    const error = new LabError('sandbox-start', 'no Python sandbox worker could start', {
      found: this.lastStartError,
      hint: 'Check that the pyodide package is installed and its files are served (or readable)',
    });
    for (const job of this.queue.splice(0)) job.reject(error);
  }

  private settleReady(): void {
    if (this.readyWaiters.length === 0) return;
    if (this.slots.some((s) => s.state === 'starting')) return;
    const waiters = this.readyWaiters.splice(0);
    if (this.slots.some((s) => s.state === 'idle' || s.state === 'busy')) {
      for (const w of waiters) w.resolve();
    } else {
      const error = this.closed
        ? new LabError('sandbox-closed', 'the Python sandbox pool was closed')
        : new LabError('sandbox-start', 'no Python sandbox worker could start', { found: this.lastStartError });
      for (const w of waiters) w.reject(error);
    }
  }
}

function checkPoolOptions(o: PoolOptions): void {
  const where = 'Python sandbox pool options';
  if (!Number.isInteger(o.size) || o.size < 1) {
    throw new LabError('sandbox-options', 'the pool size must be a whole number of workers', { file: where, field: 'size', expected: 'an integer >= 1', found: String(o.size) });
  }
  checkTimeout(o.timeoutMs, where, 'timeoutMs');
  checkTimeout(o.startTimeoutMs, where, 'startTimeoutMs');
  if (!Number.isFinite(o.graceMs) || o.graceMs < 0) {
    throw new LabError('sandbox-options', 'the grace period must be zero or more milliseconds', { file: where, field: 'graceMs', expected: 'a number >= 0', found: String(o.graceMs) });
  }
  for (const [field, value] of Object.entries(o.limits)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new LabError('sandbox-options', 'sandbox limits must be positive numbers', { file: where, field: `limits.${field}`, expected: 'a number > 0', found: String(value) });
    }
  }
}

function joinLines(first: string, second: string): string {
  if (!first) return second;
  if (!second) return first;
  return first.endsWith('\n') ? first + second : `${first}\n${second}`;
}

type Raced<T> = T | { kind: 'timeout' };

/** The first of the promises to settle, or { kind: 'timeout' } after ms. */
async function firstOf<T>(promises: Promise<T>[], ms: number): Promise<Raced<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<{ kind: 'timeout' }>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), ms);
  });
  try {
    return await Promise.race([...promises, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  const outcome = await firstOf([promise.then((value) => ({ kind: 'value' as const, value }))], ms);
  if (outcome.kind === 'timeout') throw new Error(message);
  return outcome.value;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
