/**
 * Registers every tfjs backend a browser can use and points wasm at the app's own copies of its
 * binaries (served by the app, so the lab works offline).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { selectBackend, DEFAULT_ORDER, type BackendInfo, type BackendName } from '../../core/backend';

// The multithreaded wasm build starts its pthread workers from its own script URL, which a bundled
// module worker does not have: it fails there. The single-threaded SIMD build works everywhere.
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

export async function selectBrowserBackend(order: BackendName[] = DEFAULT_ORDER): Promise<BackendInfo> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  const info = await selectBackend(order, gpu);
  if (info.name !== 'webgpu' && !gpu) {
    info.reason = `this browser exposes no WebGPU (navigator.gpu is missing${globalThis.isSecureContext ? '' : '; the page is not a secure context'}); ${info.reason}`;
  }
  return info;
}
