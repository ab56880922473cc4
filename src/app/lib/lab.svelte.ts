/**
 * The lab service the panels share, and what it reports: the compute backend, the loaded model, the
 * sandbox, and which job it is running. The service lives in the policy worker (main.ts connects
 * it); panels call it through `lab.api`, its typed interface, and never see how it is reached.
 */
import { CONTROL, type BackendInfo, type BackendName, type ControlValue, type LabApi, type LabConnection, type ModelSummary, type SandboxStatus } from '../../core/lab/index';
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
  /** Not reactive on purpose: panels react to `backend`, which is set once the service answers. */
  api: LabApi | null = null;
  private connection: LabConnection | null = null;
  private connect: (() => LabConnection) | null = null;
  backend = $state.raw<BackendInfo | null>(null);
  backendError = $state<string | null>(null);
  model = $state.raw<ModelSummary | null>(null);
  modelStatus = $state<'none' | 'loading' | 'ready' | 'failed'>('none');
  modelError = $state<string | null>(null);
  sandbox = $state.raw<SandboxStatus>({ state: 'starting' });
  /** The job the service is running for this page ("training", "inference", …), or null. */
  busy = $state<string | null>(null);
  /** Files kept for offline use (0 until the copy is made). */
  offlineFiles = $state(0);
  /** Set when the service's worker crashed: its calls will never answer; the page offers a restart. */
  workerFailed = $state<string | null>(null);
  /** Pause / stop word shared with the worker (SharedArrayBuffer when the page is cross-origin isolated). */
  readonly control: Int32Array;
  readonly sharedControl: boolean;

  constructor() {
    this.sharedControl = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
    this.control = new Int32Array(this.sharedControl ? new SharedArrayBuffer(4) : new ArrayBuffer(4));
  }

  /** Connects the service, picks its backend and loads the shipped model. */
  start(connect: () => LabConnection): void {
    if (this.api) return;
    this.connect = connect;
    const connection = connect();
    this.connection = connection;
    this.api = connection.api;
    connection.onError((message) => {
      this.workerFailed = message;
      reportError(new Error(message), 'policy worker');
    });
    const api = connection.api;
    api
      .init({ order: backendOrderFromUrl(location.search), control: this.control })
      .then(async (info) => {
        this.backend = info;
        performance.mark('thor:backend-ready');
        await this.loadModel('the shipped model', (a) => a.loadModel({ kind: 'shipped' }));
        this.sandbox = await api.sandboxWarm();
        performance.mark('thor:sandbox-ready');
        if (this.sandbox.state === 'failed') reportError(new Error(this.sandbox.error ?? 'the Python sandbox did not start'), 'Python sandbox');
        // The built app keeps a copy of everything it loaded, to open and work offline next time.
        if (import.meta.env.PROD && 'serviceWorker' in navigator) {
          api
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

  /** Throws the service's worker away and starts a fresh one (after a crash); the model must be loaded again. */
  restart(): void {
    this.connection?.terminate();
    this.connection = null;
    this.api = null;
    this.backend = null;
    this.backendError = null;
    this.model = null;
    this.modelStatus = 'none';
    this.sandbox = { state: 'starting' };
    this.busy = null;
    this.workerFailed = null;
    if (this.connect) this.start(this.connect);
  }

  /** Runs a job of the service while the page shows it busy; failures become messages (and rethrow). */
  async job<T>(what: string, work: (api: LabApi) => Promise<T>): Promise<T> {
    const api = this.api;
    if (!api) throw new Error('the lab service is not running');
    if (this.busy) throw new Error(`the lab is busy ${this.busy}`);
    this.busy = what;
    Atomics.store(this.control, 0, CONTROL.run);
    try {
      return await work(api);
    } catch (e) {
      reportError(e, what);
      throw e;
    } finally {
      this.busy = null;
    }
  }

  /** The service for calls that are no job (the run store, status); throws when it is not running. */
  service(): LabApi {
    if (!this.api) throw new Error('the lab service is not running');
    return this.api;
  }

  /** Loads a model; the previous one stays if this fails. */
  async loadModel(what: string, load: (api: LabApi) => Promise<ModelSummary>): Promise<ModelSummary | undefined> {
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
    this.api?.setControl(value).catch((e: unknown) => reportError(e, 'policy worker'));
  }

  /** The model the service holds now (a resumed run loads its own). */
  async refreshModel(): Promise<void> {
    const model = await this.api?.model();
    if (model) {
      this.model = model;
      this.modelStatus = 'ready';
    }
  }

  async refreshSandbox(): Promise<void> {
    if (!this.api || !this.backend) return;
    this.sandbox = await this.api.sandboxStatus();
  }
}

export const lab = new Lab();
