/**
 * The lab service the panels share, and what it reports: the compute backend, the loaded model, the
 * sandbox, and which job it is running. The service lives in this tab's policy worker or on a remote
 * node (docs/node.md): main.ts gives both ways to reach it, and `useCompute` switches between them;
 * panels call it through `lab.api`, its typed interface, and never see how it is reached.
 */
import { CONTROL, MAX_WASM_THREADS, type BackendInfo, type BackendName, type ControlValue, type LabApi, type LabConnection, type ModelSummary, type NodeAddress, type NodeHello, type RunSummary, type SandboxStatus } from '../../core/lab/index';
import { reportError } from './messages.svelte';
import { keepOffline } from './offline';

const BACKENDS: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/** The backend order asked for in the URL (?backend=wasm), else the default order. */
export function backendOrderFromUrl(search: string): BackendName[] | undefined {
  const wanted = new URLSearchParams(search).get('backend');
  if (!wanted || !BACKENDS.includes(wanted as BackendName)) return undefined;
  return [wanted as BackendName, ...(wanted === 'cpu' ? [] : (['cpu'] as BackendName[]))];
}

/** The threads asked for in the URL (?threads=2) for tfjs's threaded wasm build, else tfjs's choice. */
export function threadsFromUrl(search: string): number | undefined {
  const wanted = new URLSearchParams(search).get('threads');
  const n = wanted === null || !/^\d+$/.test(wanted) ? NaN : Number(wanted);
  return n >= 1 && n <= MAX_WASM_THREADS ? n : undefined;
}

/** ?engine-threads=1 keeps the engine's own kernels on one thread whatever tfjs's count (to compare), else undefined. */
export function engineHelpersFromUrl(search: string): false | undefined {
  return new URLSearchParams(search).get('engine-threads') === '1' ? false : undefined;
}

/** The ways main.ts gives to reach a lab service, and to keep a run in this browser. */
export interface Connectors {
  browser: () => LabConnection;
  node: (address: NodeAddress) => LabConnection & { ready: Promise<NodeHello> };
  /** Stores a run file in this browser's run store (a run pulled back from a node). */
  keepRun: (bytes: Uint8Array, fileName: string) => Promise<{ run: RunSummary; copy: boolean }>;
}

export type Compute = { kind: 'browser' } | { kind: 'node'; url: string; hello?: NodeHello };

const NODE_URL_KEY = 'thor-lab:node-url';

class Lab {
  /** Not reactive on purpose: panels react to `backend`, which is set once the service answers. */
  api: LabApi | null = null;
  private connection: LabConnection | null = null;
  private connectors: Connectors | null = null;
  /** Where the service runs: this tab's worker, or a remote node. */
  compute = $state.raw<Compute>({ kind: 'browser' });
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

  /** Connects this tab's service, picks its backend and loads the shipped model. */
  start(connectors: Connectors): void {
    if (this.api) return;
    this.connectors = connectors;
    this.open(connectors.browser());
  }

  /** The address of the node used last (the token is never kept). */
  lastNodeUrl(): string {
    return globalThis.localStorage?.getItem(NODE_URL_KEY) ?? 'http://127.0.0.1:8787';
  }

  /**
   * Moves the lab to this tab's worker or to a remote node: the current connection is closed (a job
   * running on a node follows the node's policy for clients that go away) and the other one opened;
   * a node keeps the model it holds.
   */
  async useCompute(target: { kind: 'browser' } | { kind: 'node'; url: string; token: string }): Promise<void> {
    if (!this.connectors) throw new Error('the lab has not started');
    const refuseWhileBusy = () => {
      if (this.busy) throw new Error(`the lab is busy ${this.busy}: stop it before switching compute`);
    };
    refuseWhileBusy();
    const connection = target.kind === 'browser' ? this.connectors.browser() : this.connectors.node({ url: target.url, token: target.token });
    let hello: NodeHello | undefined;
    try {
      // The node must answer before the tab lets go of its own worker; a job started meanwhile keeps it.
      if (target.kind === 'node') hello = await (connection as LabConnection & { ready: Promise<NodeHello> }).ready;
      refuseWhileBusy();
    } catch (e) {
      connection.terminate();
      throw e;
    }
    this.close();
    if (target.kind === 'node') {
      globalThis.localStorage?.setItem(NODE_URL_KEY, target.url);
      this.compute = { kind: 'node', url: target.url, hello };
    } else this.compute = { kind: 'browser' };
    this.open(connection);
  }

  /** Copies a run of the node into this browser's run store. */
  async keepRunHere(id: string): Promise<{ run: RunSummary; copy: boolean }> {
    if (!this.connectors) throw new Error('the lab has not started');
    const { name, bytes } = await this.service().exportRun(id);
    return this.connectors.keepRun(bytes, name);
  }

  private close(): void {
    // Forgotten first: what the old connection still reports (its own closing included) is not this lab's any more.
    const old = this.connection;
    this.connection = null;
    old?.terminate();
    this.api = null;
    this.backend = null;
    this.backendError = null;
    this.model = null;
    this.modelStatus = 'none';
    this.sandbox = { state: 'starting' };
    this.busy = null;
    this.workerFailed = null;
  }

  private open(connection: LabConnection): void {
    this.connection = connection;
    this.api = connection.api;
    connection.onError((message) => {
      if (this.connection !== connection) return;
      this.workerFailed = message;
      reportError(new Error(message), this.compute.kind === 'node' ? 'remote node' : 'policy worker');
    });
    const api = connection.api;
    const current = () => this.connection === connection;
    api
      .init({ order: backendOrderFromUrl(location.search), control: this.control, threads: threadsFromUrl(location.search), engineHelpers: engineHelpersFromUrl(location.search) })
      .then(async (info) => {
        if (!current()) return;
        this.backend = info;
        performance.mark('thor:backend-ready');
        // A node may hold a model already (another page loaded it, or its command line did).
        const held = await api.model();
        if (!current()) return;
        if (held) {
          this.model = held;
          this.modelStatus = 'ready';
        } else await this.loadModel('the shipped model', (a) => a.loadModel({ kind: 'shipped' }));
        const sandbox = await api.sandboxWarm();
        if (!current()) return;
        this.sandbox = sandbox;
        performance.mark('thor:sandbox-ready');
        if (this.sandbox.state === 'failed') reportError(new Error(this.sandbox.error ?? 'the Python sandbox did not start'), 'Python sandbox');
        // The built app keeps a copy of everything it loaded, to open and work offline next time.
        if (import.meta.env.PROD && 'serviceWorker' in navigator && this.compute.kind === 'browser') {
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
        if (!current()) return;
        if (!this.backend) this.backendError = e instanceof Error ? e.message : String(e);
        reportError(e, this.compute.kind === 'node' ? 'remote node' : 'policy worker');
      });
  }

  /** Throws the service's worker away and starts a fresh one (after a crash, or a node that went away); the model must be loaded again. */
  restart(): void {
    if (!this.connectors) return;
    this.close();
    // A lost node is not reconnected with a token the page does not keep: the tab's own worker takes over.
    this.compute = { kind: 'browser' };
    this.open(this.connectors.browser());
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
