/**
 * Offline use: the service worker (public/sw.js) keeps a copy of every file the app serves as it
 * is fetched. Files fetched before it took charge (the first visit) are handed to it here to fetch
 * again and keep: the page's own, the policy worker's (model, tfjs binaries, worker scripts), Pyodide
 * and the Python bundle, the bundled benchmark files, and every shipped model (the one loaded at start
 * and the others). After that the lab opens without a network.
 */
import { SHIPPED_MODEL_FILES, SHIPPED_MODELS } from '../../core/lab/index';
import { BENCHMARKS } from './benchmarks';

const PYODIDE_FILES = ['pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json'];

/** Registers the service worker and fills its copy; resolves with the number of files kept. */
export async function keepOffline(workerUrls: string[]): Promise<number> {
  const sw = navigator.serviceWorker;
  await sw.register(`${import.meta.env.BASE_URL}sw.js`);
  await sw.ready;
  if (!sw.controller) await new Promise((resolve) => sw.addEventListener('controllerchange', resolve, { once: true }));
  const base = new URL(import.meta.env.BASE_URL, location.href);
  const manifest = await fetch(new URL('python/manifest.json', base))
    .then((r) => (r.ok ? (r.json() as Promise<{ archive: string }>) : null))
    .catch(() => null);
  const urls = new Set(
    [
      location.href.split('#')[0],
      ...performance.getEntriesByType('resource').map((e) => e.name),
      ...workerUrls,
      ...PYODIDE_FILES.map((name) => new URL(`pyodide/${name}`, base).href),
      ...(manifest ? [new URL(`python/${manifest.archive}`, base).href] : []),
      ...BENCHMARKS.map((b) => new URL(b.url, base).href),
      // Every shipped model, not only the one loaded at start: any of them loads offline.
      ...SHIPPED_MODELS.flatMap((m) => [...SHIPPED_MODEL_FILES, 'pretrain.json'].map((name) => new URL(`${m.folder}/${name}`, base).href)),
    ].filter((u) => new URL(u).origin === location.origin),
  );
  // The service worker fetches and keeps them on its own thread; the page only waits for the count.
  const worker = sw.controller;
  if (!worker) return 0;
  const channel = new MessageChannel();
  const kept = new Promise<number>((resolve) => {
    channel.port1.onmessage = (e: MessageEvent<{ kept: number }>) => resolve(e.data.kept);
  });
  worker.postMessage({ keep: [...urls] }, [channel.port2]);
  return kept;
}
