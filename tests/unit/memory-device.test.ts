/** The device limits the memory budget compares with, read from the backends themselves (docs/models.md#memory-budget). */
import { afterAll, describe, expect, it } from 'vitest';
import { currentDeviceLimits, WASM_HEAP_MAX_BYTES } from '../../src/core/model/memory';
import { initNodeWebGPU, releaseNodeWebGPU, selectNodeBackend } from '../../src/node/backend';

afterAll(() => releaseNodeWebGPU());

describe('device limits', () => {
  it("wasm: the heap's maximum", async () => {
    expect((await selectNodeBackend(['wasm'])).name).toBe('wasm');
    expect(currentDeviceLimits()).toMatchObject({ backend: 'wasm', totalBytes: WASM_HEAP_MAX_BYTES });
    expect(currentDeviceLimits(2e9).totalBytes).toBe(2e9);
  });

  it("webgpu: the adapter's buffer limits, the smaller of the two", async () => {
    const gpu = await initNodeWebGPU();
    expect(gpu, 'a WebGPU adapter (Dawn on SwiftShader)').toBeDefined();
    const adapter = await gpu!.requestAdapter();
    expect((await selectNodeBackend(['webgpu'])).name).toBe('webgpu');
    const limits = currentDeviceLimits();
    expect(limits.backend).toBe('webgpu');
    expect(limits.totalBytes).toBeUndefined();
    expect(limits.bufferBytes).toBe(Math.min(adapter!.limits.maxBufferSize, adapter!.limits.maxStorageBufferBindingSize));
    expect(limits.bufferBytes).toBeGreaterThan(0);
  });
});
