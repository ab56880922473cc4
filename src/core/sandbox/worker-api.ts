/**
 * What a Python sandbox worker exposes through Comlink. workers/python.worker.ts only wires this object
 * to its message port (a browser module worker, or a Node worker_threads worker).
 */
import { LabError } from '../errors';
import { PythonRuntime, type RuntimeConfig, type WorkerRunResult } from './runtime';
import type { SandboxInfo } from './types';

export interface PythonWorkerApi {
  /** Boots and seals the interpreter; resolves once the worker is warm. */
  init(config: RuntimeConfig): Promise<SandboxInfo>;
  /** timeoutMs is the pool's limit for the call, for workers that bound a call's CPU time themselves. */
  run(code: string, session: string | null, timeoutMs?: number): WorkerRunResult;
  endSession(session: string): boolean;
  checkIsolation(): string[] | null;
}

/** The same API seen from the other side of the message port: every method answers with a promise. */
export type PythonWorkerPort = {
  [K in keyof PythonWorkerApi]: (...args: Parameters<PythonWorkerApi[K]>) => Promise<Awaited<ReturnType<PythonWorkerApi[K]>>>;
};

export function createPythonWorkerApi(): PythonWorkerApi {
  let runtime: PythonRuntime | undefined;
  const booted = (): PythonRuntime => {
    if (!runtime) throw new LabError('sandbox-worker', 'the Python worker was used before init() finished');
    return runtime;
  };
  return {
    async init(config) {
      if (runtime) throw new LabError('sandbox-worker', 'init() was called twice on one Python worker');
      runtime = await PythonRuntime.boot(config);
      return runtime.info;
    },
    run: (code, session) => booted().run(code, session),
    endSession: (session) => booted().endSession(session),
    checkIsolation: () => booted().checkIsolation(),
  };
}
