/**
 * Registers every tfjs backend a browser can use and points wasm at the app's own copies of its
 * binaries (served by the app, so the lab works offline).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { installWasmKernels } from '../core/model/wasm-kernels';
import { startEngineThreads } from '../core/model/wasm-matmul';
import { setWasmHelpers } from '../core/model/wasm-threads';
import { selectBackend, DEFAULT_ORDER, type BackendInfo, type BackendName } from '../core/backend';

// Where the page is cross-origin isolated (the app sends COOP/COEP), tfjs picks its threaded SIMD
// build, whose pthread workers get their main script from vite.config.ts's wasmThreadsMainScript;
// XNNPACK then multiplies on half the logical cores, at most 4 (tfjs's choice; docs/engine.md#threads).
// Elsewhere it takes the single-threaded SIMD build.

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});
// The engine's own kernels on wasm: matrix products, RMSNorm, RoPE, KV-cache writes (docs/engine.md).
installWasmKernels();

/** The WebGL renderer string (e.g. "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device ...))"), if readable. */
function webglRenderer(): string | undefined {
  if (typeof OffscreenCanvas === 'undefined') return undefined;
  const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
  if (!gl) return undefined;
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return renderer || undefined;
}

/**
 * Picks the backend. With no order given (the default), a GPU backend whose device is a CPU
 * emulation (SwiftShader on a machine without a GPU) is passed over for wasm; an order from the URL
 * (?backend=webgpu) is taken as asked. `threads` (?threads=2) sets how many threads tfjs's threaded
 * wasm build multiplies on, before it starts; tfjs's own choice is half the logical cores, at most 4.
 * `engineHelpers: false` (?engine-threads=1) keeps the engine's own kernels on the calling thread, to
 * compare (docs/engine.md#the-engines-products-on-several-threads).
 */
export async function selectBrowserBackend(order?: BackendName[], options: { threads?: number; engineHelpers?: boolean } = {}): Promise<BackendInfo> {
  if (options.engineHelpers === false) setWasmHelpers(false);
  if (options.threads === undefined) return pickBackend(order);
  // tfjs's wasm module caps the count at half of navigator.hardwareConcurrency, which it reads as it
  // starts (it takes every core to have two hardware threads): while it starts, this worker reports
  // twice the count asked for, so that the count asked for is the count used (docs/engine.md#threads).
  setThreadsCount(options.threads);
  const asked = 2 * options.threads;
  Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => asked });
  try {
    return await pickBackend(order);
  } finally {
    delete (navigator as unknown as Record<string, unknown>).hardwareConcurrency;
  }
}

async function pickBackend(order?: BackendName[]): Promise<BackendInfo> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  const info = await selectBackend(order ?? DEFAULT_ORDER, gpu, {
    allowSoftwareGpu: order !== undefined,
    webglRenderer,
  });
  if (info.name !== 'webgpu' && !gpu) {
    info.reason = `this browser exposes no WebGPU (navigator.gpu is missing${globalThis.isSecureContext ? '' : '; the page is not a secure context'}); ${info.reason}`;
  }
  // The engine's own products on as many threads as tfjs's (helper workers on its shared memory).
  if (info.wasm) info.wasm.engineThreads = await startEngineThreads();
  return info;
}
