/**
 * The Python sandbox worker: a browser module worker, or a Node worker_threads worker (CLI, server,
 * tests). It only exposes the sandbox API over Comlink; the work is in src/core/sandbox.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { createPythonWorkerApi } from '../src/core/sandbox/worker-api';

export type { PythonWorkerApi } from '../src/core/sandbox/worker-api';

const api = createPythonWorkerApi();
const inNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

if (inNode) {
  const workerThreads = 'node:worker_threads'; // a variable, so that the browser build leaves it alone
  const { parentPort } = (await import(/* @vite-ignore */ workerThreads)) as typeof import('node:worker_threads');
  if (!parentPort) throw new Error('python.worker.ts must run inside a worker thread');
  Comlink.expose(api, nodeEndpoint(parentPort));
} else {
  Comlink.expose(api);
}
