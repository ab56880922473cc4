/**
 * The Python tool sandbox as the rest of the lab sees it: an Executor runs one snippet of model-written
 * code and returns what happened. Implementations: the Pyodide worker pool (browser and Node), and
 * CPython subprocesses behind the same pool (Node on a server, src/node/cpython.ts).
 */

/**
 * How a call ended.
 * - ok: the code ran to the end (or called sys.exit(0)).
 * - error: Python raised (syntax error, exception, non-zero sys.exit) or the input was refused.
 * - timeout: the time limit passed; the code was interrupted or its worker was replaced.
 * - memory: the code ran out of the memory allowed to a worker; the worker was replaced.
 * - killed: the Python runtime or its worker died (for example a native stack overflow); it was replaced.
 */
export type RunStatus = 'ok' | 'error' | 'timeout' | 'memory' | 'killed';

export interface RunOptions {
  /** Wall-clock limit for the call in milliseconds (> 0). Default: the pool's timeoutMs. */
  timeoutMs?: number;
  /**
   * Stateful mode: calls with the same session (one trajectory) share one Python namespace and one
   * scratch directory, like a notebook. Without it every call starts from a fresh namespace.
   */
  session?: string;
}

export interface RunResult {
  status: RunStatus;
  stdout: string;
  stderr: string;
  /** Line of the submitted code where the error was raised (1-based), null when unknown or no error. */
  errorLine: number | null;
  /** Wall-clock time of the call, from the moment a worker took it to the moment its result arrived. */
  durationMs: number;
  /** True when stdout or stderr went past the output cap and was cut. */
  truncated: boolean;
}

/** Something that runs Python code: the sandbox pool, or a remote one behind the same interface. */
export interface Executor {
  run(code: string, options?: RunOptions): Promise<RunResult>;
  /** Forgets a session's namespace and scratch files. */
  endSession(session: string): Promise<void>;
  close(): Promise<void>;
}

/** Where an optional Python package came from, or why it is missing. */
export interface PackageStatus {
  name: string;
  available: boolean;
  version?: string;
  /** bundle and cdn: Pyodide's offline bundle or its CDN; system: installed in the CPython interpreter's environment. */
  source?: 'bundle' | 'cdn' | 'stdlib' | 'system';
  /** Why it is not available (failed download, no bundle and no network, ...). */
  reason?: string;
}

/** What a warm worker reports about itself. */
export interface SandboxInfo {
  /** Which Python runs the code: Pyodide (WebAssembly, browser or Node worker threads) or CPython subprocesses. */
  runtime: 'pyodide' | 'cpython';
  pythonVersion: string;
  /** '' when the runtime is CPython. */
  pyodideVersion: string;
  /** The limits and isolation in force, one line each, saying what enforces them (the OS or the Python guard). */
  isolation: string[];
  packages: PackageStatus[];
  /** True when timeouts can interrupt Python in place (SharedArrayBuffer interrupt buffer, or SIGINT to a CPython process). */
  interrupts: boolean;
  /** Milliseconds from worker start to warm (the interpreter loaded, packages preloaded). */
  warmMs: number;
  /** Milliseconds spent importing the preloaded packages and warming them up (part of warmMs). */
  preloadMs: number;
  /** Milliseconds of each preloaded package's import alone. */
  importMs: Record<string, number>;
}

/** Limits enforced inside a worker. All have defaults (see DEFAULT_LIMITS). */
export interface SandboxLimits {
  /** Characters kept of stdout and of stderr per call; the rest is dropped and truncated is set. */
  maxOutputChars: number;
  /** Largest accepted code, in characters. */
  maxCodeChars: number;
  /** Python recursion limit; code may lower it, raising it is clamped to this value. */
  recursionLimit: number;
  /** Memory a worker may grow to, in MiB (Pyodide: its WebAssembly heap; CPython: its address space); past it allocations fail with MemoryError. */
  memoryLimitMb: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  maxOutputChars: 65_536,
  maxCodeChars: 100_000,
  recursionLimit: 3_000,
  memoryLimitMb: 1_024,
};

/** The pool's default per-call limit: SandboxFusion's default run timeout is 10 s. */
export const DEFAULT_TIMEOUT_MS = 10_000;
