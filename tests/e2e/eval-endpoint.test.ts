/**
 * The Eval panel against an OpenAI-compatible endpoint, in headless Chromium: the lab's own server
 * (the shipped model, served from this test process) evaluated from the page's worker with Python run
 * by the page's sandbox; the server killed midway and started again, and the evaluation resumed from
 * the problems it kept; then the loaded model on the same questions, and the two evaluations compared
 * problem by problem.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, openLab, screenshot, labTabs } from './browser';
import { LabService } from '../../src/core/lab/service';
import { nodeLabEnv } from '../../src/node/lab';
import { startOpenAIServer, type RunningServer } from '../../src/node/openai-server';

describe('evaluating an endpoint from the Eval panel', () => {
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const lab = new LabService(nodeLabEnv({ python: { size: 1, preload: [] } }));
  let server: RunningServer | undefined;
  let port = 0;
  const { panel, openTab } = labTabs(() => page);

  const serve = async () => {
    server = await startOpenAIServer({ model: lab.textModel(), name: 'thor-tiny', port, allowedOrigins: [new URL(inject('appUrl')).origin] });
    port = Number(new URL(server.baseURL).port);
  };

  beforeAll(async () => {
    await lab.init();
    await lab.loadModel({ kind: 'shipped' });
    await serve();
    ({ context, page } = await openLab(pageErrors));
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    await lab.close();
  });

  it('evaluates the server, survives its death by resuming, and compares with the loaded model', async () => {
    await page.getByTestId('backend-reason').waitFor({ timeout: 60_000 });
    await openTab('eval');
    const ev = panel('eval');
    await ev.getByTestId('eval-target-endpoint').check();
    await ev.getByTestId('eval-endpoint-url').fill(server!.baseURL);
    await ev.getByTestId('eval-endpoint-model').fill('');
    expect(await ev.getByTestId('eval-endpoint-error').textContent()).toMatch(/Endpoint model: expected/);
    await ev.getByTestId('eval-endpoint-model').fill('thor-tiny');
    await ev.getByTestId('eval-endpoint-concurrency').fill('1');
    await ev.getByTestId('eval-limit').fill('12');
    await ev.getByTestId('eval-eval.samples').fill('1');
    await eventually(() => ev.getByTestId('eval-run').isEnabled(), 120_000).toBe(true);
    await ev.getByTestId('eval-run').click();

    // Kill the server once a few problems are in; the panel keeps them and offers to resume.
    await eventually(async () => Number(/^(\d+) \//.exec((await ev.getByTestId('progress').locator('.counts').textContent()) ?? '')?.[1] ?? 0), 120_000).toBeGreaterThanOrEqual(3);
    await server!.close();
    await eventually(() => ev.getByTestId('eval-error').textContent(), 120_000).toMatch(/stopped after \d+ of 12 problems: .*cannot reach/);
    const kept = await ev.getByTestId('eval-resume').textContent();
    const done = Number(/\((\d+) of 12 done\)/.exec(kept ?? '')?.[1]);
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(12);
    await screenshot(page, 'panel-eval-resume');

    await serve();
    await ev.getByTestId('eval-resume').click();
    await eventually(() => ev.getByTestId('eval-history').count(), 180_000).toBe(1);
    expect(await ev.getByTestId('eval-history').textContent()).toMatch(new RegExp(`thor-tiny @ ${new URL(server!.baseURL).origin.replace(/[.]/g, '\\.')}.*resumed after ${done}`, 's'));
    expect(await ev.getByTestId('eval-accuracy').textContent()).toMatch(/%/);
    expect(await ev.getByTestId('eval-best_of_n').textContent()).toMatch(/%/);

    // The loaded model on the same questions, then the two compared problem by problem.
    await ev.getByTestId('eval-target-local').check();
    await ev.getByTestId('eval-run').click();
    await eventually(() => ev.locator('[data-testid="eval-history"] thead th').count(), 180_000).toBe(3);
    await ev.getByTestId('eval-compare-a').selectOption('0');
    await ev.getByTestId('eval-compare-b').selectOption('1');
    expect((await ev.getByTestId('eval-comparison').textContent())?.replace(/\s+/g, ' ')).toMatch(/12 problems in both: accuracy A \d+\.\d%, B \d+\.\d%; A better on \d+, B better on \d+, equal on \d+; sign test p = /);
    await screenshot(page, 'panel-eval-compare');
    expect(pageErrors).toEqual([]);
  });

  it('answers a question through the endpoint in the Inference panel, the code run by the page', async () => {
    await openTab('inference');
    const inf = panel('inference');
    await inf.getByTestId('infer-target-endpoint').check();
    expect(await inf.getByTestId('infer-endpoint-url').inputValue()).toBe(server!.baseURL);
    await inf.getByTestId('question').fill('What is 31*4?');
    await inf.getByTestId('reference').fill('124');
    await inf.getByTestId('infer-rollout.maxToolCalls').fill('2');
    await inf.getByTestId('ask').click();
    await eventually(() => inf.getByTestId('answer-stats').textContent(), 120_000).toMatch(/tokens in [\d.]+ s/);
    // Whatever the tiny model wrote, what it shows came from the server and any code ran in the page.
    const answer = inf.getByTestId('answer');
    const code = await answer.getByTestId('code-cell').count();
    if (code > 0) expect(await answer.getByTestId('output-cell').first().getAttribute('data-status')).toMatch(/ok|error|timeout/);
    expect((await answer.textContent())?.length).toBeGreaterThan(20);
    await screenshot(page, 'panel-inference-endpoint');
    expect(pageErrors).toEqual([]);
  });
});
