/**
 * The TIRGen panel in headless Chromium against the built app (docs/tirgen.md#the-tirgen-panel): the
 * shipped model as the actor and the rule critic on three synthetic questions, run in the policy
 * worker with its Pyodide sandbox; a step shown before and after with its python block and real
 * output; the report's charts; the kept samples saved to the Data panel and handed to SFT; a run
 * stopped midway that resumes to the data of the run never stopped; the hint's one click that loads
 * thor-tiny-cot, THOR's chain-of-thought actor, which the Model panel then shows loaded.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, launchBrowser, labTabs, screenshot } from './browser';

describe('the TIRGen panel in headless Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  /** Samples the first run kept (a resumed run of the same request keeps the same). */
  let keptUnbroken = 0;
  const pageErrors: string[] = [];
  const { panel, openTab } = labTabs(() => page);

  beforeAll(async () => {
    context = await launchBrowser();
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(new URL('?backend=wasm', inject('appUrl')).href);
    await page.waitForFunction(() => performance.getEntriesByName('thor:model-ready').length > 0, null, { timeout: 60_000 });
  });

  afterAll(async () => {
    await context?.close();
  });

  it('runs rule-critic TIRGen, shows each step before and after, charts the report, and saves the samples to Data for SFT', async () => {
    await openTab('tirgen');
    const tirgen = panel('tirgen');
    await tirgen.getByTestId('tirgen-count').fill('3');
    await tirgen.getByTestId('tirgen-question-seed').fill('4');
    await tirgen.getByTestId('tirgen-attempts').fill('4');
    await tirgen.getByTestId('tirgen-seed').fill('1');
    // a bad setting is named and the run waits for a fix
    await tirgen.getByTestId('tirgen-attempts').fill('0');
    await eventually(() => tirgen.getByTestId('tirgen-form-problem').textContent()).toMatch(/tirgen\.attempts/);
    expect(await tirgen.getByTestId('tirgen-run').isDisabled()).toBe(true);
    await tirgen.getByTestId('tirgen-attempts').fill('4');
    await tirgen.getByTestId('tirgen-run').click();
    await eventually(() => tirgen.getByTestId('tirgen-state').textContent(), 120_000).toBe('finished');
    // progress events come over their own channel and may trail the outcome by a moment
    await eventually(() => tirgen.getByTestId('tirgen-counts').textContent()).toMatch(/^3 \/ 3 questions · 12 attempts · \d+ kept/);

    // a rewritten step: the actor's text on the left, the critic's python block and its real output on the right
    const step = tirgen.locator('[data-testid="tirgen-step"][data-verdict="rewrite"]').first();
    await step.waitFor();
    expect(((await step.getByTestId('step-before').textContent()) ?? '').trim()).not.toBe('');
    const code = step.getByTestId('step-after').getByTestId('step-code-after').first();
    expect(await code.locator('figcaption').textContent()).toBe('python');
    expect(await code.locator('pre code').textContent()).toMatch(/print\(/);
    const output = step.getByTestId('step-after').getByTestId('step-output-after').first();
    expect(await output.locator('figcaption').textContent()).toBe('output · ok');
    expect(((await output.locator('pre').textContent()) ?? '').trim()).toMatch(/\S/);
    const box = async (id: string) => (await step.getByTestId(id).boundingBox())!;
    // side by side: the after column starts to the right of the before column, on the same row
    expect((await box('step-after')).x).toBeGreaterThan((await box('step-before')).x + (await box('step-before')).width - 1);
    expect(Math.abs((await box('step-after')).y - (await box('step-before')).y)).toBeLessThan(2);

    // the report as charts: drops by filter and selection, failures, calls per kept sample, and the kept ratio
    const dropped = tirgen.getByTestId('tirgen-chart-dropped');
    expect(await dropped.getByTestId('bar').count()).toBe(9);
    expect(await dropped.locator('svg[role="img"] desc').textContent()).toMatch(/answer: \d+ samples/);
    const kept = Number(((await tirgen.getByTestId('tirgen-kept').textContent()) ?? '').split(' / ')[0]);
    expect(kept).toBeGreaterThan(0);
    keptUnbroken = kept;
    const calls = await tirgen.getByTestId('tirgen-chart-calls').getByTestId('bar').evaluateAll((bars) => bars.reduce((a, b) => a + Number(b.getAttribute('data-value')), 0));
    expect(calls).toBe(kept);
    expect(Number(await tirgen.getByTestId('tirgen-kept-ratio').textContent())).toBeCloseTo(kept / 3, 3);
    await screenshot(page, 'panel-tirgen-run');

    // the kept samples become a data set in the Data panel
    await tirgen.getByTestId('tirgen-save-name').fill('e2e tirgen');
    await tirgen.getByTestId('tirgen-save').click();
    await openTab('data');
    const row = panel('data').getByTestId('tir-dataset').filter({ hasText: 'e2e tirgen' });
    await row.waitFor();
    expect(await row.locator('td').nth(1).textContent()).toBe(String(kept));

    // and Start SFT opens the Train panel in SFT mode on it
    await openTab('tirgen');
    await tirgen.getByTestId('tirgen-sft').click();
    await panel('train').waitFor({ state: 'visible' });
    await eventually(() => panel('train').getByTestId('sft-dataset-summary').textContent()).toMatch(new RegExp(`^e2e tirgen: ${kept} demonstrations`));
    expect(await panel('train').getByTestId('train-start').isDisabled()).toBe(false);
    expect(pageErrors).toEqual([]);
  });

  it('stops midway keeping what it finished, and resumes to the same data as the run never stopped', async () => {
    await openTab('tirgen');
    const tirgen = panel('tirgen');
    await tirgen.getByTestId('tirgen-run').click();
    await eventually(() => tirgen.getByTestId('tirgen-step').count()).toBeGreaterThan(0);
    await tirgen.getByTestId('tirgen-stop').click();
    await eventually(() => tirgen.getByTestId('tirgen-state').textContent(), 60_000).toBe('stopped');
    const resume = tirgen.getByTestId('tirgen-resume');
    expect(await resume.textContent()).toMatch(/^Resume \([0-2] of 3 done\)$/);
    await resume.click();
    await eventually(() => tirgen.getByTestId('tirgen-state').textContent(), 120_000).toBe('finished');
    await eventually(() => tirgen.getByTestId('tirgen-counts').textContent()).toMatch(/^3 \/ 3 questions · 12 attempts/);
    expect(Number(((await tirgen.getByTestId('tirgen-kept').textContent()) ?? '').split(' / ')[0])).toBe(keptUnbroken);
    expect(await tirgen.getByTestId('tirgen-download-data').textContent()).toBe(`data.jsonl (${keptUnbroken})`);
    expect(pageErrors).toEqual([]);
  });

  it('loads thor-tiny-cot as the actor from the hint in one click, and the Model panel shows it loaded', async () => {
    await openTab('tirgen');
    const tirgen = panel('tirgen');
    const hint = tirgen.getByTestId('tirgen-actor-hint');
    expect(await hint.getAttribute('data-cot')).toBe('false');
    expect(await hint.textContent()).toMatch(/The loaded model \(thor-tiny \(shipped\)\) is not that model/);
    await screenshot(page, 'panel-tirgen-actor-hint');
    await tirgen.getByTestId('tirgen-load-cot').click();
    await eventually(() => hint.getAttribute('data-cot')).toBe('true');
    expect(await hint.textContent()).toMatch(/The actor is thor-tiny-cot.*Start SFT will train this same model on its own TIRGen data/);
    await screenshot(page, 'panel-tirgen-actor-cot');
    expect(await tirgen.getByTestId('tirgen-target-local').locator('..').textContent()).toMatch(/loaded model \(thor-tiny-cot \(shipped\)\)/);

    await openTab('model');
    const model = panel('model');
    expect(await model.getByTestId('model-label').textContent()).toBe('thor-tiny-cot (shipped)');
    expect(await model.getByTestId('pretrain-notes').textContent()).toMatch(/demonstrations \(steps in words, no code\)/);
    const shipped = model.getByTestId('shipped-models').locator('li');
    expect(await shipped.filter({ hasText: 'thor-tiny-cot' }).textContent()).toMatch(/thor-tiny-cot: writes steps in words, TIRGen's actor · loaded/);
    expect(await shipped.filter({ hasText: /^thor-tiny: writes Python \(default\)/ }).textContent()).not.toMatch(/loaded/);
    expect(pageErrors).toEqual([]);
  });
});
