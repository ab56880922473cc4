/**
 * Backend set-up for Node (CLI, server, tests, benchmarks): webgpu through Dawn (the `webgpu` npm
 * package) when a Vulkan device exists, SwiftShader from Debian's chromium included; wasm otherwise.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../core/model/wasm-kernels';
import { selectBackend, type BackendInfo, type BackendName } from '../core/backend';

const require = createRequire(import.meta.url);

/** Known locations of SwiftShader's Vulkan ICD (Debian's chromium ships it). */
const SWIFTSHADER_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json'];

export function findVulkanICD(): string | undefined {
  if (process.env.VK_ICD_FILENAMES) return process.env.VK_ICD_FILENAMES;
  return SWIFTSHADER_ICDS.find((p) => existsSync(p));
}

let gpuReady: Promise<GPU | undefined> | undefined;
let dawnGlobals: { gpu: GPU } | undefined;

/** Creates navigator.gpu from Dawn once per process; undefined when no Vulkan device can be found. */
export function initNodeWebGPU(): Promise<GPU | undefined> {
  gpuReady ??= (async () => {
    const icd = findVulkanICD();
    if (!icd) return undefined;
    process.env.VK_ICD_FILENAMES = icd;
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]) as unknown as GPU;
    dawnGlobals = { gpu };
    const nav = (globalThis as unknown as { navigator?: Record<string, unknown> }).navigator;
    if (nav) {
      try {
        Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
      } catch {
        (globalThis as Record<string, unknown>).navigator = { ...nav, gpu };
      }
    } else (globalThis as Record<string, unknown>).navigator = { gpu };
    await import('@tensorflow/tfjs-backend-webgpu');
    return gpu;
  })();
  return gpuReady;
}

let wasmReady = false;
/** Registers the wasm backend, pointing it at the .wasm files inside node_modules. */
export async function initNodeWasm(): Promise<void> {
  if (wasmReady) return;
  const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  setWasmPaths(join(dir, 'dist') + '/');
  // Relaxed SIMD (fused multiply-adds in the engine's kernels, docs/engine.md#fused-multiply-adds)
  // is on by default in Chromium and in Node from 22; Node 20 compiles it behind this V8 flag.
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  // The engine's own kernels on wasm: matrix products, RMSNorm, RoPE, KV-cache writes (docs/engine.md).
  installWasmKernels();
  wasmReady = true;
}

/**
 * Picks a backend in Node. `order` defaults to webgpu (if a Vulkan ICD exists and its device is not
 * a CPU emulation such as SwiftShader), then wasm, then cpu; an order given is taken as asked.
 */
export async function selectNodeBackend(order?: BackendName[]): Promise<BackendInfo> {
  await initNodeWasm();
  const want = order ?? (['webgpu', 'wasm', 'cpu'] as BackendName[]);
  const gpu = want.includes('webgpu') ? await initNodeWebGPU() : undefined;
  return selectBackend(want, gpu, { allowSoftwareGpu: order !== undefined });
}

/**
 * Drops the process-wide references to Dawn so Node can exit (Dawn keeps the event loop alive
 * while navigator.gpu is reachable).
 */
export function releaseNodeWebGPU(): void {
  if (!dawnGlobals) return;
  if (tf.findBackend('webgpu')) tf.removeBackend('webgpu');
  const nav = (globalThis as unknown as { navigator?: { gpu?: unknown } }).navigator;
  if (nav && 'gpu' in nav) {
    try {
      delete nav.gpu;
    } catch {
      /* read-only navigator: nothing to drop */
    }
  }
  dawnGlobals = undefined;
  gpuReady = undefined;
}
