import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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

/**
 * tfjs's threaded wasm build starts its pthread workers on a main script that it hands over as the
 * source text of its own factory function (`wasmFactoryThreadedSimd.toString()`); once bundled and
 * minified, that function refers to names outside itself, and every pthread worker fails with a
 * ReferenceError. This hands over the threaded build's own script instead, unchanged from the
 * package, so the lab's worker can run XNNPACK on several threads (docs/engine.md#threads).
 */
const THREADED_MAIN = /new Blob\(\[`var WasmBackendModuleThreadedSimd = ` \+\s*wasmFactoryThreadedSimd\.toString\(\)\]/;
function wasmThreadsMainScript(): Plugin {
  const require = createRequire(import.meta.url);
  const script = () => readFileSync(require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js'), 'utf8');
  return {
    name: 'wasm-threads-main-script',
    transform(code, id) {
      if (!/tfjs-backend-wasm[\\/]dist[\\/](backend_wasm|tf-backend-wasm[^\\/]*)\.js$/.test(id.split('?')[0]) || !code.includes('wasmFactoryThreadedSimd.toString()')) return null;
      if (!THREADED_MAIN.test(code)) this.error(`${id}: tfjs's threaded main script is not where this plugin expects it (a new tfjs version?)`);
      return { code: code.replace(THREADED_MAIN, () => `new Blob([${JSON.stringify(script())}]`), map: null };
    },
  };
}

export default defineConfig({
  plugins: [svelte(), pythonSandboxAssets(), wasmThreadsMainScript()],
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
  worker: { format: 'es', plugins: () => [wasmThreadsMainScript()] },
  optimizeDeps: { exclude: ['pyodide'], rolldownOptions: { plugins: [wasmThreadsMainScript()] } },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
});
