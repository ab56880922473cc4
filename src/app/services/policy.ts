import * as Comlink from 'comlink';
import type { PolicyWorkerApi } from '../../../workers/policy.worker';

export interface PolicyWorker {
  api: Comlink.Remote<PolicyWorkerApi>;
  /** Reports an error the worker could not turn into a rejected call (a failed script, a crash). */
  onError(listener: (message: string) => void): void;
  terminate(): void;
}

/** Starts the policy worker and returns its Comlink proxy. */
export function startPolicyWorker(): PolicyWorker {
  const worker = new Worker(new URL('../../../workers/policy.worker.ts', import.meta.url), { type: 'module', name: 'policy' });
  const api = Comlink.wrap<PolicyWorkerApi>(worker);
  return {
    api,
    onError(listener) {
      worker.addEventListener('error', (e) => listener(e.message || 'the policy worker failed to start or crashed'));
      worker.addEventListener('messageerror', () => listener('a message from the policy worker could not be read'));
    },
    terminate() {
      api[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}
