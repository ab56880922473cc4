/**
 * A browser that kept runs with an earlier version of the lab (IndexedDB version 1: the run's state
 * as "live", the model label inside its config, no evaluations): the stored runs are upgraded in place
 * and a paused one goes on from its checkpoint.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, launchBrowser, labTabs } from './browser';

describe('run storage written by an earlier version', () => {
  let context: BrowserContext;
  let page: Page;
  const { panel, openTab } = labTabs(() => page);

  beforeAll(async () => {
    context = await launchBrowser();
    page = await context.newPage();
    // A page of the app's origin that is not the app: the database is written before the app opens it.
    await page.goto(new URL('models/thor-tiny/config.json', inject('appUrl')).href);
    await page.evaluate(async () => {
      const files: Record<string, Uint8Array> = {};
      for (const name of ['config.json', 'model.safetensors', 'char_tokenizer.json']) files[name] = new Uint8Array(await (await fetch(`/models/thor-tiny/${name}`)).arrayBuffer());
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const open = indexedDB.open('thor-lab', 1);
        open.onupgradeneeded = () => {
          const d = open.result;
          d.createObjectStore('runs', { keyPath: 'id' });
          d.createObjectStore('metrics', { keyPath: ['runId', 'step'] });
          d.createObjectStore('rollouts', { keyPath: ['runId', 'step'] });
          d.createObjectStore('checkpoints', { keyPath: 'runId' });
        };
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const config = { seed: 7, steps: 3, rollout: { groupSize: 2, promptsPerStep: 1, maxResponseTokens: 60 }, stepLevel: { groupSize: 2, maxPrefixes: 1 }, eval: { samples: 1, everySteps: 0, benchmarks: [] }, model: 'thor-tiny (shipped)' };
      const tx = db.transaction(['runs', 'metrics', 'checkpoints'], 'readwrite');
      tx.objectStore('runs').put({ id: 'old-run', name: 'an older run', createdAt: '2026-11-20T10:00:00.000Z', config, steps: 1, trajectories: 0, checkpointBytes: 1, hasReport: false, lastMetrics: { step: 1, reward_mean: 0.5 }, live: { status: 'paused', mode: 'rl', totalSteps: 3, checkpointStep: 1 } });
      tx.objectStore('metrics').put({ runId: 'old-run', step: 1, metrics: { step: 1, reward_mean: 0.5 } });
      tx.objectStore('checkpoints').put({ runId: 'old-run', files });
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
      db.close();
    });
    await page.goto(new URL('?backend=wasm', inject('appUrl')).href);
    await page.waitForFunction(() => performance.getEntriesByName('thor:model-ready').length > 0, null, { timeout: 60_000 });
  });

  afterAll(async () => {
    await context?.close();
  });

  it('upgrades the stored runs and resumes a paused one', async () => {
    await openTab('runs');
    const row = panel('runs').getByTestId('run-row').filter({ hasText: 'an older run' });
    await eventually(() => row.getByTestId('run-status').textContent()).toBe('rl · paused');
    await row.getByRole('button', { name: 'an older run' }).click();
    // the model label left the config, which now parses as a run config
    const config = JSON.parse((await panel('runs').getByTestId('run-detail').locator('details pre').first().textContent()) ?? '{}');
    expect(config).not.toHaveProperty('model');
    expect(config.eval).toEqual({ samples: 1, everySteps: 0 });

    await openTab('train');
    const offer = panel('train').getByTestId('resume-offer').locator('li', { hasText: 'an older run' });
    await offer.waitFor({ timeout: 30_000 });
    await offer.getByTestId('resume-run').click();
    await eventually(() => panel('train').getByTestId('train-state').textContent(), 180_000).toBe('finished');
    expect(await panel('train').getByTestId('train-note').textContent()).toBe("the run kept no training questions and held-out questions: it goes on with those given now (the Data panel's, or the run config's task); optimizer moments start afresh (none stored)");
    expect(await panel('train').getByTestId('train-last').textContent()).toMatch(/step 3:/);
  });
});
