import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser, screenshot } from './browser';

describe('app shell in headless Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    context = await launchBrowser();
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(inject('appUrl'));
  });

  afterAll(async () => {
    await context?.close();
  });

  it('is cross-origin isolated', async () => {
    await expect.poll(() => page.getByTestId('isolated').textContent()).toContain('yes');
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
  });

  it('runs tfjs on WebGPU in the policy worker and shows the adapter', async () => {
    await page.getByTestId('adapter').waitFor({ timeout: 60_000 });
    const backend = await page.getByTestId('backend').textContent();
    expect(backend).toContain('webgpu');
    expect(await page.getByTestId('adapter').textContent()).toMatch(/swiftshader|google/i);
    await screenshot(page, 'shell-overview');
    expect(errors).toEqual([]);
  });
});
