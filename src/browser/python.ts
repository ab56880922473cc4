/**
 * The Python sandbox in the browser: a pool of module workers (workers/python.worker.ts) that load
 * Pyodide and the sympy/mpmath bundle from the app itself (same origin, offline). Interrupts need
 * SharedArrayBuffer, so timeouts land softly only when the page is cross-origin isolated; otherwise
 * a timed-out worker is terminated and replaced.
 */
import * as Comlink from 'comlink';
import { PythonPool, type PoolOptions, type SandboxWorker } from '../core/sandbox/pool';
import type { BundleSource } from '../core/sandbox/runtime';
import type { PythonWorkerApi, PythonWorkerPort } from '../core/sandbox/worker-api';
import type { SandboxCapabilities } from '../core/lab/api';
import type { PythonSandbox } from '../core/lab/service';
import guardSource from '../core/sandbox/guard.py?raw';

export interface BrowserPythonOptions extends Partial<Omit<PoolOptions, 'runtime'>> {
  /** Packages imported while warming up. Default: sympy and mpmath. */
  preload?: string[];
  /** Allow Pyodide's CDN for packages the bundle lacks (default: when the browser is online). */
  allowCdn?: boolean;
}

/** Pyodide's own CDN, for packages not in the offline bundle (numpy, or sympy without the bundle). */
const PYODIDE_CDN = 'https://cdn.jsdelivr.net/pyodide/v314.0.7/full/';

export function sandboxCapabilities(): SandboxCapabilities {
  const isolated = globalThis.crossOriginIsolated === true;
  return { interrupts: isolated && typeof SharedArrayBuffer === 'function', crossOriginIsolated: isolated, online: navigator.onLine };
}

/** Starts one module worker running the sandbox. */
export function spawnBrowserSandboxWorker(): SandboxWorker {
  const worker = new Worker(new URL('../../workers/python.worker.ts', import.meta.url), { type: 'module', name: 'python-sandbox' });
  const port = Comlink.wrap<PythonWorkerApi>(worker) as unknown as PythonWorkerPort;
  let exitListener: ((reason: string) => void) | undefined;
  worker.addEventListener('error', (event) => exitListener?.(`the worker failed: ${event.message || 'unknown error'}`));
  return {
    port,
    interruptBuffer: sandboxCapabilities().interrupts ? new Int32Array(new SharedArrayBuffer(4)) : undefined,
    onExit: (listener) => {
      exitListener = listener;
    },
    terminate: () => worker.terminate(),
  };
}

/** The bundle the app serves from public/python/, or undefined when it was not built. */
export async function findPythonBundle(base = import.meta.env.BASE_URL): Promise<BundleSource | undefined> {
  try {
    const response = await fetch(`${base}python/manifest.json`);
    if (!response.ok) return undefined;
    const manifest = (await response.json()) as { archive: string; packages: Record<string, string> };
    return { url: new URL(`${base}python/${manifest.archive}`, location.href).href, packages: manifest.packages };
  } catch {
    return undefined;
  }
}

/** Starts the sandbox pool; resolves once its workers are warm. */
export async function startPythonSandbox(options: BrowserPythonOptions = {}): Promise<PythonSandbox> {
  const { preload, allowCdn, ...poolOptions } = options;
  const capabilities = sandboxCapabilities();
  const bundle = await findPythonBundle();
  const wanted = ['sympy', 'mpmath', 'numpy'];
  const cdn = allowCdn ?? capabilities.online;
  const pool = await PythonPool.start(spawnBrowserSandboxWorker, {
    size: Math.min(4, Math.max(1, (navigator.hardwareConcurrency || 2) - 1)),
    ...poolOptions,
    runtime: {
      indexURL: new URL(`${import.meta.env.BASE_URL}pyodide/`, location.href).href,
      guardSource,
      bundle,
      packages: wanted,
      preload: preload ?? ['sympy', 'mpmath'],
      cdnPackages: cdn ? wanted.filter((name) => !bundle?.packages[name]) : [],
      packageBaseUrl: PYODIDE_CDN,
    },
  });
  return { pool, info: pool.info()!, capabilities };
}
