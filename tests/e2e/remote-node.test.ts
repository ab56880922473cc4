/**
 * The lab in headless Chromium pointed at a remote node (started here on loopback, as `npm run node`
 * starts it): the Compute switch refuses a wrong token, connects with the right one, and then the
 * same panels answer a question, train a step, evaluate and run TIRGen on the node, the Runs panel lists the node's runs
 * and keeps one in the browser, and switching back shows the browser's own store with it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LabService } from '../../src/core/lab/service';
import { nodeLabEnv } from '../../src/node/lab';
import { startLabNode, type LabNode } from '../../src/node/lab-node';
import { eventually, labTabs, openLab, screenshot } from './browser';

describe('the lab driving a remote node', () => {
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const dir = mkdtempSync(join(os.tmpdir(), 'remote-node-'));
  const lab = new LabService(nodeLabEnv({ runsDir: join(dir, 'runs'), python: { size: 1, preload: [] } }));
  let node: LabNode;
  const { panel, openTab } = labTabs(() => page);

  beforeAll(async () => {
    await lab.init({ order: ['wasm'] });
    await lab.loadModel({ kind: 'shipped' });
    node = await startLabNode({ lab, port: 0, allowedOrigins: [new URL(inject('appUrl')).origin], python: 'pyodide (WebAssembly, in worker threads)', version: 'test' });
    ({ context, page } = await openLab(pageErrors));
  });

  afterAll(async () => {
    await context?.close();
    await node?.close();
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the token, answers and trains on the node, and keeps its run in the browser', async () => {
    await page.waitForFunction(() => performance.getEntriesByName('thor:model-ready').length > 0, null, { timeout: 90_000 });
    const compute = page.getByTestId('compute');
    await compute.getByTestId('compute-choice').selectOption('node');
    await compute.getByTestId('node-url').fill(node.url);
    await compute.getByTestId('node-token').fill('not-the-token');
    await compute.getByTestId('node-connect').click();
    await eventually(() => compute.getByTestId('compute-error').textContent()).toMatch(/could not connect to the node/);
    expect(await compute.getByTestId('compute-status').textContent()).toMatch(/^this browser/);

    await compute.getByTestId('node-token').fill(node.token);
    await compute.getByTestId('node-connect').click();
    await eventually(() => compute.getByTestId('compute-status').textContent(), 60_000).toMatch(/^node http:\/\/127\.0\.0\.1:\d+: wasm, Python in pyodide/);
    await eventually(() => panel('overview').getByTestId('overview-model').textContent(), 60_000).toMatch(/thor-tiny \(shipped\)/);
    await eventually(() => panel('overview').getByTestId('node-job').textContent(), 30_000).toMatch(/The node runs no job now/);

    // A question answered by the node's model, its code run by the node's Python.
    await openTab('inference');
    const inference = panel('inference');
    await inference.getByTestId('question').fill('What is 31*4?');
    await inference.getByTestId('infer-rollout.maxResponseTokens').fill('120');
    await inference.getByTestId('ask').click();
    await inference.getByTestId('answer').getByTestId('final-answer').waitFor({ timeout: 90_000 });

    // A training step on the node, with its chart and progress in the same panel.
    await openTab('train');
    const train = panel('train');
    const knobs = { steps: '1', 'rollout.groupSize': '2', 'rollout.promptsPerStep': '1', 'rollout.maxResponseTokens': '48', 'stepLevel.maxPrefixes': '1', 'stepLevel.groupSize': '2', 'eval.samples': '1', 'eval.maxQuestions': '2' };
    for (const [path, value] of Object.entries(knobs)) await train.getByTestId(`knob-${path}`).fill(value);
    await train.getByTestId('run-name').fill('trained on the node');
    await train.getByTestId('train-start').click();
    await eventually(() => train.getByTestId('train-state').textContent(), 180_000).toBe('finished');
    expect(await train.getByTestId('train-last').textContent()).toMatch(/step 1: reward \d/);
    const onNode = (await lab.listRuns()).find((r) => r.name === 'trained on the node');
    expect(onNode?.steps).toBe(1);

    // An evaluation and a TIRGen run on the node, with their progress in the same panels.
    await openTab('eval');
    const evaluation = panel('eval');
    await evaluation.getByTestId('eval-limit').fill('2');
    await evaluation.getByTestId('eval-eval.samples').fill('1');
    await evaluation.getByTestId('eval-rollout.maxResponseTokens').fill('64');
    await evaluation.getByTestId('eval-run').click();
    await eventually(() => evaluation.getByTestId('eval-accuracy').textContent(), 120_000).toMatch(/%$/);
    await openTab('tirgen');
    const tirgen = panel('tirgen');
    await tirgen.getByTestId('tirgen-count').fill('2');
    await tirgen.getByTestId('tirgen-attempts').fill('2');
    await tirgen.getByTestId('tirgen-run').click();
    await eventually(() => tirgen.getByTestId('tirgen-state').textContent(), 120_000).toBe('finished');
    await eventually(() => tirgen.getByTestId('tirgen-counts').textContent()).toMatch(/^2 \/ 2 questions · \d+ attempts/);
    expect(await tirgen.getByTestId('tirgen-step').count()).toBeGreaterThan(0);

    // The node's runs, and one kept in this browser.
    await openTab('runs');
    const runs = panel('runs');
    const row = runs.getByTestId('run-row').filter({ hasText: 'trained on the node' });
    await eventually(() => row.count()).toBe(1);
    await row.getByTestId('run-keep-here').click();
    await eventually(() => runs.getByTestId('import-result').textContent()).toMatch(/"trained on the node" is kept in this browser/);
    await screenshot(page, 'remote-node');

    // Back to this browser: its own store has the run, with its step.
    await page.getByTestId('compute').getByTestId('compute-choice').selectOption('browser');
    await eventually(() => page.getByTestId('compute-status').textContent(), 60_000).toMatch(/^this browser \(/);
    const local = runs.getByTestId('run-row').filter({ hasText: 'trained on the node' });
    await eventually(() => local.count(), 60_000).toBe(1);
    expect(await runs.getByTestId('run-keep-here').count()).toBe(0);
    // Leaving the node reported nothing: the wrong token's refusal was shown by the switch, not as an error.
    expect(await page.getByTestId('error-banner').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
