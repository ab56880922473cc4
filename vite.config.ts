import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Cross-origin isolation (COOP/COEP) gives the page SharedArrayBuffer, which the Python sandbox
// needs for interrupt buffers (timeouts that fire without killing the worker).
export const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Pyodide's runtime files, served by the app itself under /pyodide/ (same origin, offline). */
const PYODIDE_FILES: Record<string, string> = {
  'pyodide.asm.mjs': 'text/javascript',
  'pyodide.asm.wasm': 'application/wasm',
  'python_stdlib.zip': 'application/zip',
  'pyodide-lock.json': 'application/json',
};

/**
 * Serves Pyodide's files in dev and copies them into the build; builds the sympy/mpmath bundle in
 * public/python/ when it is missing (and can be built).
 */
function pythonSandboxAssets(): Plugin {
  const pyodideDir = fileURLToPath(new URL('./node_modules/pyodide/', import.meta.url));
  return {
    name: 'python-sandbox-assets',
    buildStart() {
      if (!existsSync(fileURLToPath(new URL('./public/python/manifest.json', import.meta.url)))) {
        execFileSync(process.execPath, [fileURLToPath(new URL('./scripts/build-python-bundle.mjs', import.meta.url)), '--if-possible'], { stdio: 'inherit' });
      }
    },
    configureServer(server) {
      server.middlewares.use('/pyodide/', (req, res, next) => {
        const name = (req.url ?? '').split('?')[0].replace(/^\//, '');
        const type = PYODIDE_FILES[name];
        if (!type) return next();
        res.setHeader('Content-Type', type);
        for (const [header, value] of Object.entries(isolationHeaders)) res.setHeader(header, value);
        createReadStream(pyodideDir + name).pipe(res);
      });
    },
    generateBundle() {
      for (const name of Object.keys(PYODIDE_FILES)) {
        this.emitFile({ type: 'asset', fileName: `pyodide/${name}`, source: readFileSync(pyodideDir + name) });
      }
    },
  };
}

export default defineConfig({
  plugins: [svelte(), pythonSandboxAssets()],
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['pyodide'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
});
