/**
 * The Python sandbox pool in Node (CLI, server, tests, benchmarks): workers are worker_threads running
 * workers/python.worker.ts through Comlink's node adapter, Pyodide is read from node_modules and the
 * offline sympy/mpmath bundle from public/python/ (built by scripts/build-python-bundle.mjs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { LabError } from '../core/errors';
import { PythonPool, type PoolOptions, type SandboxWorker } from '../core/sandbox/pool';
import type { BundleSource } from '../core/sandbox/runtime';
import type { PythonWorkerPort } from '../core/sandbox/worker-api';

const require = createRequire(import.meta.url);
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKER_URL = new URL('../../workers/python.worker.ts', import.meta.url);

/** Where build-python-bundle.mjs writes the bundle. */
export const PYTHON_BUNDLE_DIR = join(REPO_ROOT, 'public', 'python');
/** The sandbox's Python side, handed to each interpreter as text. */
export const GUARD_PY = join(REPO_ROOT, 'src', 'core', 'sandbox', 'guard.py');

/** What build-python-bundle.mjs writes next to the archive. */
export interface BundleManifest {
  archive: string;
  packages: Record<string, string>;
  source: string;
  sha256: string;
}

export interface NodePythonPoolOptions extends Partial<Omit<PoolOptions, 'runtime'>> {
  /** Packages imported while warming up. Default: sympy and mpmath (when the bundle has them). */
  preload?: string[];
  /** Optional packages to report on. Default: sympy, mpmath, numpy. */
  packages?: string[];
  /** Packages that may come from Pyodide's CDN when the bundle lacks them. Default: none (offline). */
  cdnPackages?: string[];
  /** Directory holding manifest.json and the archive. Default: public/python. */
  bundleDir?: string;
  /** Walk the object graph when sealing to prove nothing reaches JavaScript (slow; tests). */
  checkIsolation?: boolean;
}

/** Default size: one worker per core but one, at least one. */
export function defaultPoolSize(): number {
  return Math.max(1, os.cpus().length - 1);
}

/** Starts a pool of warm sandbox workers in worker_threads. Call close() when done. */
export async function createNodePythonPool(options: NodePythonPoolOptions = {}): Promise<PythonPool> {
  const { preload, packages, cdnPackages, bundleDir, checkIsolation, ...poolOptions } = options;
  const bundle = readPythonBundle(bundleDir ?? PYTHON_BUNDLE_DIR);
  return PythonPool.start(spawnNodeSandboxWorker, {
    size: defaultPoolSize(),
    ...poolOptions,
    runtime: {
      indexURL: pyodideIndexPath(),
      guardSource: readFileSync(GUARD_PY, 'utf8'),
      bundle,
      packages: packages ?? ['sympy', 'mpmath', 'numpy'],
      preload: preload ?? ['sympy', 'mpmath'],
      cdnPackages: cdnPackages ?? [],
      checkIsolation,
    },
  });
}

/** The directory of the pyodide package, with a trailing slash (Pyodide's indexURL). */
export function pyodideIndexPath(): string {
  return dirname(require.resolve('pyodide/package.json')) + '/';
}

/** Reads the offline bundle, or returns undefined when it has not been built. */
export function readPythonBundle(dir: string): BundleSource | undefined {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return undefined;
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as BundleManifest;
  } catch (e) {
    throw new LabError('python-bundle', 'the Python bundle manifest is not valid JSON', {
      file: manifestPath, found: e instanceof Error ? e.message : String(e), hint: 'Rebuild it with `npm run build:python`',
    });
  }
  const archive = join(dir, manifest.archive ?? '');
  if (typeof manifest.archive !== 'string' || !existsSync(archive)) {
    throw new LabError('python-bundle', 'the Python bundle archive named in the manifest is missing', {
      file: manifestPath, field: 'archive', found: String(manifest.archive), hint: 'Rebuild it with `npm run build:python`',
    });
  }
  return { bytes: new Uint8Array(readFileSync(archive)), packages: manifest.packages ?? {} };
}

/**
 * Starts one worker thread. The worker is TypeScript; Node runs it through tsx's loader, registered
 * inside the worker itself (loader flags in execArgv do not reach worker threads reliably, and vitest's
 * transforms do not reach them at all).
 */
export function spawnNodeSandboxWorker(): SandboxWorker {
  const tsxApi = pathToFileURL(join(dirname(require.resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const load = `await import(${JSON.stringify(WORKER_URL.href)});`;
  const bootstrap = WORKER_URL.pathname.endsWith('.ts')
    ? `import { register } from ${JSON.stringify(tsxApi)};\nregister();\n${load}`
    : load;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), { name: 'python-sandbox' });
  const port = Comlink.wrap(nodeEndpoint(worker)) as unknown as PythonWorkerPort;
  let exitListener: ((reason: string) => void) | undefined;
  let exited = false;
  const exit = (reason: string) => {
    if (exited) return;
    exited = true;
    exitListener?.(reason);
  };
  worker.on('error', (e) => exit(`the worker crashed: ${e.message}`));
  worker.on('exit', (code) => exit(`the worker exited with code ${code}`));
  return {
    port,
    interruptBuffer: new Int32Array(new SharedArrayBuffer(4)),
    onExit: (listener) => {
      exitListener = listener;
    },
    terminate: () => {
      exited = true;
      void worker.terminate();
    },
  };
}
