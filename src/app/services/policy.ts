import * as Comlink from 'comlink';
import type { PolicyWorkerApi } from '../../../workers/policy.worker';

/** Starts the policy worker and returns its Comlink proxy. */
export function startPolicyWorker(): Comlink.Remote<PolicyWorkerApi> {
  const worker = new Worker(new URL('../../../workers/policy.worker.ts', import.meta.url), { type: 'module', name: 'policy' });
  return Comlink.wrap<PolicyWorkerApi>(worker);
}
