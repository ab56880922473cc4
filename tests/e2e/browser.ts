/** Launches Debian's Chromium (headless, WebGPU through SwiftShader) with playwright-core. */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { expect, inject } from 'vitest';
import { TABS } from '../../src/app/lib/tabs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = join(process.cwd(), 'tests', 'artifacts');

export async function launchBrowser(): Promise<BrowserContext> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'thor-lab-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--enable-unsafe-webgpu',
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/** A fresh browser on the lab's page, its uncaught errors collected into `errors`. */
export async function openLab(errors: string[]): Promise<{ context: BrowserContext; page: Page }> {
  const context = await launchBrowser();
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(inject('appUrl'));
  return { context, page };
}

/** Saves a screenshot of the page under tests/artifacts/NAME.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Polls until the value matches, for at most `timeout` ms (a CPU-bound page can be slow to redraw). */
export const eventually = <T>(read: () => Promise<T> | T, timeout = 30_000) => expect.poll(read, { timeout, interval: 100 });

/** The lab's tabs in a page (read when called, so the page can be opened later): a panel by tab id, and opening a tab. */
export function labTabs(page: () => Page) {
  const panel = (id: string) => page().getByTestId(`panel-${id}`);
  const openTab = async (id: string) => {
    await page().getByRole('tab', { name: TABS.find((t) => t.id === id)!.label, exact: true }).click();
    await panel(id).waitFor({ state: 'visible' });
  };
  return { panel, openTab };
}
