import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** The backend tfjs is using now. */
  name: BackendName;
  /** GPU adapter description when the backend is webgpu (vendor / architecture / device). */
  adapter?: string;
  /**
   * On wasm: which of tfjs's builds runs (the threaded one needs a cross-origin isolated page, and
   * Node gets the single-threaded one) and on how many threads XNNPACK multiplies.
   */
  /** engineThreads: the threads the engine's own products run on (docs/engine.md#threads), where the environment starts helpers for them. */
  wasm?: { build: 'threaded SIMD' | 'SIMD' | 'plain'; threads: number; engineThreads?: number };
  /** Why this backend: chosen first, or which earlier choices failed and how. */
  reason: string;
  /** Every backend tried, in order, with the error of those that failed. */
  tried: { name: BackendName; ok: boolean; error?: string }[];
}

export const DEFAULT_ORDER: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/** Renderer names of GPU emulations that run on the CPU (Chromium's SwiftShader, Mesa's llvmpipe / lavapipe, Windows' WARP). */
const SOFTWARE_RENDERER = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render/i;

/** True when a WebGPU adapter or WebGL renderer description names a CPU emulation of a GPU. */
export function isSoftwareRenderer(description: string | undefined): boolean {
  return description !== undefined && SOFTWARE_RENDERER.test(description);
}


/** Reads a human description of the WebGPU adapter, if the environment has one. */
export async function describeWebGPUAdapter(gpu: GPU | undefined): Promise<string | undefined> {
  if (!gpu) return undefined;
  const adapter = await gpu.requestAdapter();
  if (!adapter) return undefined;
  // `adapter.info` is the current spec; requestAdapterInfo() is the older form.
  const info: Partial<GPUAdapterInfo> =
    (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info ??
    (await (adapter as unknown as { requestAdapterInfo?: () => Promise<GPUAdapterInfo> }).requestAdapterInfo?.()) ??
    {};
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length ? parts.join(' / ') : 'unnamed adapter';
}

/**
 * Tries backends in order and keeps the first that initialises and runs a small op correctly.
 * Backends must already be registered (import the tfjs-backend-* packages before calling).
 */
export async function selectBackend(
  order: BackendName[] = DEFAULT_ORDER,
  gpu?: GPU,
  options: {
    /**
     * A GPU backend whose device is emulated on the CPU is tens of times slower than wasm for these
     * models (bench/results/ui.json); it is skipped unless this is set (a backend asked for by name).
     */
    allowSoftwareGpu?: boolean;
    /** The WebGL renderer string, where the environment can read one (browsers). */
    webglRenderer?: () => string | undefined;
  } = {},
): Promise<BackendInfo> {
  const tried: BackendInfo['tried'] = [];
  let webgpuAdapter: Promise<string | undefined> | undefined;
  const webgpuDescription = () => (webgpuAdapter ??= describeWebGPUAdapter(gpu).catch(() => undefined));
  for (const name of order) {
    if (!tf.findBackendFactory(name)) {
      tried.push({ name, ok: false, error: 'not registered in this build' });
      continue;
    }
    const isLast = name === order[order.length - 1];
    if (!options.allowSoftwareGpu && !isLast && (name === 'webgpu' || name === 'webgl')) {
      const device = name === 'webgpu' ? await webgpuDescription() : options.webglRenderer?.();
      if (isSoftwareRenderer(device)) {
        tried.push({ name, ok: false, error: `its device is a CPU emulation (${device}), much slower than wasm; ?backend=${name} uses it anyway` });
        continue;
      }
    }
    try {
      const ok = await tf.setBackend(name);
      if (!ok) throw new Error('initialisation returned false');
      await tf.ready();
      await smokeTest();
      tried.push({ name, ok: true });
      const adapter = name === 'webgpu' ? await webgpuDescription() : undefined;
      const failed = tried.filter((t) => !t.ok);
      const reason = failed.length === 0
        ? `${name} is the first choice and works`
        : `fell back to ${name}: ${failed.map((t) => `${t.name} (${t.error})`).join('; ')}`;
      return { name, adapter, reason, tried, ...(name === 'wasm' ? { wasm: await wasmBuildInfo() } : {}) };
    } catch (e) {
      tried.push({ name, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
  throw new Error(`no tfjs backend works here: ${tried.map((t) => `${t.name}: ${t.error}`).join('; ')}`);
}

async function smokeTest(): Promise<void> {
  const a = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  const b = tf.matMul(a, a);
  const data = await b.data();
  a.dispose();
  b.dispose();
  const want = [7, 10, 15, 22];
  if (want.some((w, i) => Math.abs(data[i] - w) > 1e-3)) throw new Error(`smoke test matmul gave ${Array.from(data)}`);
}

/** What tfjs's wasm backend runs on, once it is the backend (see BackendInfo.wasm). */
async function wasmBuildInfo(): Promise<NonNullable<BackendInfo['wasm']>> {
  const [simd, threaded] = await Promise.all([tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')]);
  return { build: simd ? (threaded ? 'threaded SIMD' : 'SIMD') : 'plain', threads: getThreadsCount() };
}
