/**
 * The services the panels share: the policy worker (model, generation, training, off the main
 * thread) and what it reported about the compute backend. Started once by the app.
 */
import type { Remote } from 'comlink';
import type { BackendInfo } from '../../core/backend';
import type { PolicyWorkerApi } from '../../../workers/policy.worker';
import { startPolicyWorker } from '../services/policy';
import { reportError } from './messages.svelte';

class Lab {
  /**
   * Not reactive on purpose: a Comlink proxy answers every property read (and Svelte's dev-mode
   * checks would turn into calls to the worker). Panels react to `backend`, which comes after it.
   */
  policy: Remote<PolicyWorkerApi> | null = null;
  backend = $state.raw<BackendInfo | null>(null);
  backendError = $state<string | null>(null);

  start(): void {
    if (this.policy) return;
    const policy = startPolicyWorker();
    this.policy = policy;
    policy
      .init()
      .then((info) => (this.backend = info))
      .catch((e: unknown) => {
        this.backendError = e instanceof Error ? e.message : String(e);
        reportError(e, 'policy worker');
      });
  }
}

export const lab = new Lab();
