import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, openLab, screenshot } from './browser';

describe('app shell in headless Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    ({ context, page } = await openLab(errors));
  });

  afterAll(async () => {
    await context?.close();
  });

  it('is cross-origin isolated', async () => {
    await eventually(() => page.getByTestId('isolated').textContent()).toContain('yes');
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
  });

  it('passes over the software WebGPU device (SwiftShader) for wasm by default, and says why', async () => {
    await eventually(() => page.getByTestId('backend').textContent(), 60_000).toContain('wasm');
    expect(await page.getByTestId('backend-reason').textContent()).toMatch(/webgpu \(its device is a CPU emulation \(.*swiftshader/i);
    await screenshot(page, 'shell-overview');
    expect(errors).toEqual([]);
  });

  it('runs tfjs on WebGPU in the policy worker when asked by name and shows the adapter', async () => {
    const gpuPage = await context.newPage();
    gpuPage.on('pageerror', (e) => errors.push(e.message));
    await gpuPage.goto(new URL('?backend=webgpu', inject('appUrl')).href);
    await gpuPage.getByTestId('adapter').waitFor({ timeout: 60_000 });
    expect(await gpuPage.getByTestId('backend').textContent()).toContain('webgpu');
    expect(await gpuPage.getByTestId('adapter').textContent()).toMatch(/swiftshader|google/i);
    await gpuPage.close();
    expect(errors).toEqual([]);
  });
});
