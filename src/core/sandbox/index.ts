/** The Python tool sandbox: types, observation text, input checks, the worker pool and its runtime. */
export * from './types';
export * from './observation';
export { checkCode, checkRunOptions, type CodeProblem } from './input';
export { PythonPool, DEFAULT_POOL_OPTIONS, type PoolOptions, type PoolHealth, type SandboxWorker, type SpawnSandboxWorker } from './pool';
export type { BundleSource, RuntimeConfig, WorkerRunResult } from './runtime';
export type { PythonWorkerApi, PythonWorkerPort } from './worker-api';
