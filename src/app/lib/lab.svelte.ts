/**
 * The services the panels share: the policy worker (model, Python sandbox, generation, training,
 * all off the main thread) and what it reports: the compute backend, the loaded model, the
 * sandbox, and which job it is running. Started once by the app; the shipped model loads by default.
 */
import type { Remote } from 'comlink';
import type { BackendInfo, BackendName } from '../../core/backend';
import { CONTROL, type ControlValue } from '../services/control';
import type { LabService, ModelSummary, SandboxStatus } from '../services/lab-service';
import { startPolicyWorker, type PolicyWorker } from '../services/policy';
import { reportError } from './messages.svelte';
import { keepOffline } from './offline';

const BACKENDS: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/** The backend order asked for in the URL (?backend=wasm), else the default order. */
export function backendOrderFromUrl(search: string): BackendName[] | undefined {
  const wanted = new URLSearchParams(search).get('backend');
  if (!wanted || !BACKENDS.includes(wanted as BackendName)) return undefined;
  return [wanted as BackendName, ...(wanted === 'cpu' ? [] : (['cpu'] as BackendName[]))];
}

class Lab {
  /**
   * Not reactive on purpose: a Comlink proxy answers every property read (and Svelte's dev-mode
   * checks would turn into calls to the worker). Panels react to `backend`, which comes after it.
   */
  policy: Remote<LabService> | null = null;
  private worker: PolicyWorker | null = null;
  backend = $state.raw<BackendInfo | null>(null);
  backendError = $state<string | null>(null);
  model = $state.raw<ModelSummary | null>(null);
  modelStatus = $state<'none' | 'loading' | 'ready' | 'failed'>('none');
  modelError = $state<string | null>(null);
  sandbox = $state.raw<SandboxStatus>({ state: 'starting' });
  /** The job the policy worker is running for this page ("training", "inference", …), or null. */
  busy = $state<string | null>(null);
  /** Files kept for offline use (0 until the copy is made). */
  offlineFiles = $state(0);
  /** Set when the worker crashed: its calls will never answer; the page offers a restart. */
  workerFailed = $state<string | null>(null);
  /** Pause / stop word shared with the worker (SharedArrayBuffer when the page is cross-origin isolated). */
  readonly control: Int32Array;
  readonly sharedControl: boolean;

  constructor() {
    this.sharedControl = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
    this.control = new Int32Array(this.sharedControl ? new SharedArrayBuffer(4) : new ArrayBuffer(4));
  }

  start(): void {
    if (this.policy) return;
    const worker = startPolicyWorker();
    this.worker = worker;
    this.policy = worker.api;
    worker.onError((message) => {
      this.workerFailed = message;
      reportError(new Error(message), 'policy worker');
    });
    const policy = worker.api;
    policy
      .init({ order: backendOrderFromUrl(location.search), control: this.control })
      .then(async (info) => {
        this.backend = info;
        performance.mark('thor:backend-ready');
        await this.loadModel('the shipped model', (p) => p.loadShippedModel());
        this.sandbox = await policy.sandboxWarm();
        performance.mark('thor:sandbox-ready');
        if (this.sandbox.state === 'failed') reportError(new Error(this.sandbox.error ?? 'the Python sandbox did not start'), 'Python sandbox');
        // The built app keeps a copy of everything it loaded, to open and work offline next time.
        if (import.meta.env.PROD && 'serviceWorker' in navigator) {
          policy
            .resourceUrls()
            .then(keepOffline)
            .then((n) => {
              this.offlineFiles = n;
              performance.mark('thor:offline-ready');
            })
            .catch((e: unknown) => reportError(e, 'offline copy'));
        }
      })
      .catch((e: unknown) => {
        if (!this.backend) this.backendError = e instanceof Error ? e.message : String(e);
        reportError(e, 'policy worker');
      });
  }

  /** Throws the worker away and starts a fresh one (after a crash); the model must be loaded again. */
  restart(): void {
    this.worker?.terminate();
    this.worker = null;
    this.policy = null;
    this.backend = null;
    this.backendError = null;
    this.model = null;
    this.modelStatus = 'none';
    this.sandbox = { state: 'starting' };
    this.busy = null;
    this.workerFailed = null;
    this.start();
  }

  /** Runs a job in the worker while the page shows it busy; failures become messages (and rethrow). */
  async job<T>(what: string, work: (policy: Remote<LabService>) => Promise<T>): Promise<T> {
    const policy = this.policy;
    if (!policy) throw new Error('the policy worker is not running');
    if (this.busy) throw new Error(`the policy worker is busy ${this.busy}`);
    this.busy = what;
    Atomics.store(this.control, 0, CONTROL.run);
    try {
      return await work(policy);
    } catch (e) {
      reportError(e, what);
      throw e;
    } finally {
      this.busy = null;
    }
  }

  /** Loads a model into the worker; the previous one stays if this fails. */
  async loadModel(what: string, load: (policy: Remote<LabService>) => Promise<ModelSummary>): Promise<ModelSummary | undefined> {
    const previous = this.modelStatus;
    this.modelStatus = 'loading';
    this.modelError = null;
    try {
      const summary = await this.job(`loading ${what}`, load);
      this.model = summary;
      this.modelStatus = 'ready';
      performance.mark('thor:model-ready');
      return summary;
    } catch (e) {
      this.modelError = e instanceof Error ? e.message : String(e);
      this.modelStatus = this.model ? previous : 'failed';
      return undefined;
    }
  }

  /** Asks the running job to pause, go on, or stop (it looks at the word between decoding steps). */
  setControl(value: ControlValue): void {
    Atomics.store(this.control, 0, value);
    // Without shared memory the word lives in the worker; a message sets it (and wakes a paused job).
    this.policy?.setControl(value).catch((e: unknown) => reportError(e, 'policy worker'));
  }

  async refreshSandbox(): Promise<void> {
    if (!this.policy || !this.backend) return;
    this.sandbox = await this.policy.sandboxStatus();
  }
}

export const lab = new Lab();
