/**
 * The lab's panels in headless Chromium against the built app: every tab (with a screenshot of
 * each), synthetic data and its preview, a bad upload that lists its lines while the app keeps
 * working, a real benchmark file, and a run imported, viewed, exported, re-imported and deleted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, openLab, screenshot, labTabs } from './browser';
import { TABS } from '../../src/app/lib/tabs';
import { decodeRunFile, encodeRunFile } from '../../src/core/run/runfile';
import { handMadeRun } from '../unit/ui-fixtures';

describe('lab panels in headless Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  const { panel, openTab } = labTabs(() => page);

  beforeAll(async () => {
    ({ context, page } = await openLab(pageErrors));
  });

  afterAll(async () => {
    await context?.close();
  });

  it('opens every tab, remembers it in the URL hash, and screenshots it', async () => {
    await page.getByTestId('backend-reason').waitFor({ timeout: 60_000 });
    for (const tab of TABS) {
      await openTab(tab.id);
      expect(new URL(page.url()).hash).toBe(`#${tab.id}`);
      expect(await page.getByRole('tab', { selected: true }).textContent()).toBe(tab.label);
      // only the current panel is shown
      expect(await page.locator('[role="tabpanel"]:visible').count()).toBe(1);
      if (tab.id === 'overview') await eventually(() => panel('overview').getByTestId('memory').textContent(), 15_000).toMatch(/\d+ tensors/);
      await screenshot(page, `panel-${tab.id}`);
    }
    // every chart of a training run is there, empty until a run reports
    expect(await panel('train').getByTestId('chart').count()).toBe(9);
    expect(await panel('train').getByTestId('settings-valid').count()).toBe(1);
    expect(pageErrors).toEqual([]);
  });

  it('moves between tabs with the arrow keys and restores the tab from the hash on reload', async () => {
    await openTab('data');
    await page.getByRole('tab', { name: 'Data', exact: true }).focus();
    await page.keyboard.press('ArrowRight');
    await panel('tirgen').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('TIRGen');
    await page.keyboard.press('Home');
    await panel('overview').waitFor({ state: 'visible' });
    await page.goto(new URL('#rollouts', inject('appUrl')).href);
    await page.reload();
    await panel('rollouts').waitFor({ state: 'visible' });
    expect(await page.getByRole('tab', { selected: true }).textContent()).toBe('Rollouts');
  });

  it('generates synthetic tasks and previews the split', async () => {
    await openTab('data');
    const data = panel('data');
    // the default task set is there on first visit
    await eventually(() => data.getByTestId('train-count').textContent()).toMatch(/^2000 training problems/);
    await data.getByTestId('train-size').fill('50');
    await data.getByTestId('test-size').fill('10');
    await data.getByTestId('seed').fill('3');
    await data.getByTestId('generate').click();
    await eventually(() => data.getByTestId('synthetic-summary').textContent()).toMatch(/50 train \+ 10 test tasks \(seed 3\)/);
    expect(await data.getByTestId('train-count').textContent()).toMatch(/^50 training problems/);
    expect(await data.getByTestId('test-count').textContent()).toMatch(/^10 test problems/);
    const table = data.getByTestId('problem-table');
    expect(await table.locator('caption').textContent()).toContain('Training split: 50 problems');
    expect(await table.locator('tbody tr').count()).toBe(15);
    expect(await table.locator('tbody tr').first().textContent()).toMatch(/What is|Solve/);
    // a bad setting is explained and generation waits for a fix
    await data.getByTestId('train-size').fill('0');
    expect(await data.getByTestId('generate').isDisabled()).toBe(true);
    await data.getByTestId('train-size').fill('50');
  });

  it('lists the bad lines of an upload by file and line, and keeps working', async () => {
    await openTab('data');
    const data = panel('data');
    const lines = [
      JSON.stringify({ question: 'Tom has 3 apples and buys 4 more. How many?', answer: '3 + 4 = 7\n#### 7' }),
      '{"question": "broken JSON", ',
      JSON.stringify({ question: '', answer: '#### 1' }),
      JSON.stringify({ problem: 'What is $1+1$?' }),
      JSON.stringify({ problem: 'What is $\\frac{1}{2}+\\frac{1}{2}$?', answer: '1' }),
    ];
    await data.getByTestId('upload-input').setInputFiles({ name: 'bad-train.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(lines.join('\n')) });
    const errors = data.getByTestId('upload-errors');
    await errors.waitFor();
    const text = (await errors.textContent()) ?? '';
    expect(text).toContain('3 lines skipped: 2 of 5 usable');
    expect(text).toContain('bad-train.jsonl, line 2: line is not valid JSON');
    expect(text).toContain('bad-train.jsonl, line 3, field "question": question is missing or empty');
    expect(text).toContain('bad-train.jsonl, line 4, field "answer": no reference answer');
    // the two good lines loaded, into the training split (the file name says train)
    expect(await data.getByTestId('uploads').locator('tbody tr').first().textContent()).toMatch(/bad-train\.jsonl\s*2\s*3/);
    expect(await data.getByTestId('train-count').textContent()).toMatch(/^52 training problems/);

    // a real benchmark file next to it, previewed with its math rendered
    await data.getByTestId('upload-input').setInputFiles(join(process.cwd(), 'data', 'benchmarks', 'math500-test.jsonl'));
    await eventually(() => data.getByTestId('test-count').textContent()).toMatch(/^510 test problems/);
    expect(await data.getByTestId('problem-table').locator('caption').textContent()).toContain('math500-test.jsonl: 500 problems');
    expect(await data.getByTestId('problem-table').locator('.katex').count()).toBeGreaterThan(5);
    // the fields it was read from are shown, and how many of its questions fit the shipped model's context
    const mathRead = data.getByTestId('upload-read').filter({ hasText: 'math500-test.jsonl' });
    expect(await mathRead.getByTestId('upload-fields').textContent()).toMatch(/question from problem, answer from answer, id from line numbers/);
    await eventually(() => data.getByTestId('uploads').locator('tr', { hasText: 'math500-test.jsonl' }).getByTestId('upload-fit').textContent(), 30_000).toMatch(/^\s*\d+ of 500\s*$/);

    // a file whose answer field has another name: the error says why and names the picker; picking the field reads it
    const odd = ['{"prompt_text": "What is 6 times 7?", "gold": 42}', '{"prompt_text": "What is 9 minus 2?", "gold": 7}'].join('\n');
    await data.getByTestId('upload-input').setInputFiles({ name: 'odd-fields.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(odd) });
    const oddRead = data.getByTestId('upload-read').filter({ hasText: 'odd-fields.jsonl' });
    await oddRead.waitFor();
    expect(await data.getByTestId('upload-errors').filter({ hasText: 'odd-fields.jsonl' }).getByTestId('upload-error').textContent()).toBe(
      '0 of 2 lines usable: 2 have no question field and no answer field (fields found: prompt_text, gold); map them with the Question field picker and the Answer field picker',
    );
    await oddRead.getByTestId('field-question').selectOption('prompt_text');
    await oddRead.getByTestId('field-answer').selectOption('gold');
    await eventually(() => data.getByTestId('uploads').locator('tr', { hasText: 'odd-fields.jsonl' }).textContent()).toMatch(/odd-fields\.jsonl\s*2\s*0/);
    expect(await data.getByTestId('upload-errors').filter({ hasText: 'odd-fields.jsonl' }).count()).toBe(0);
    await eventually(() => data.getByTestId('test-count').textContent()).toMatch(/^512 test problems/);
    await data.getByRole('row', { name: /odd-fields\.jsonl/ }).getByRole('button', { name: 'Remove' }).click();
    await eventually(() => data.getByTestId('test-count').textContent()).toMatch(/^510 test problems/);

    // files can be dropped on the upload area too
    const dropped = await page.evaluateHandle(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['{"question": "What is 6*7?", "answer": "6*7=42\\n#### 42"}\n'], 'dropped.jsonl'));
      return transfer;
    });
    await data.getByRole('region', { name: 'Drop JSON lines files here' }).dispatchEvent('drop', { dataTransfer: dropped });
    await eventually(() => data.getByTestId('test-count').textContent()).toMatch(/^511 test problems/);
    expect(await data.getByTestId('problem-table').locator('tbody tr').first().textContent()).toContain('What is 6*7?');
    await data.getByRole('radio', { name: 'math500-test.jsonl' }).check();
    await screenshot(page, 'panel-data');

    // nothing else was lost and the rest of the app still works
    await openTab('train');
    expect(await panel('train').getByTestId('task-set').textContent()).toContain('52 training, 511 test problems');
    await openTab('data');
    await data.getByTestId('generate').click();
    await eventually(() => data.getByTestId('synthetic-summary').textContent()).toMatch(/50 train/);
    expect(pageErrors).toEqual([]);
  });

  it('says before a run how many questions of a suite fit the loaded model\'s context', async () => {
    await openTab('eval');
    const ev = panel('eval');
    await ev.getByTestId('eval-source').selectOption('bench:gsm8k');
    await eventually(() => ev.getByTestId('eval-fit').textContent(), 60_000).toMatch(/^\s*\d+ of 1319 questions fit the loaded model's context \(256 tokens, at least 32 left to generate\)/);
    const fitting = Number(/(\d+) of 1319/.exec((await ev.getByTestId('eval-fit').textContent()) ?? '')?.[1]);
    // GSM8K's longer questions do not fit the tiny model's 256 positions: said now, skipped and counted by the run
    expect(fitting).toBeLessThan(1319);
    expect(pageErrors).toEqual([]);
  });

  it('imports a run, shows its charts and rollouts, exports it, and deletes it', async () => {
    const run = handMadeRun();
    const file = encodeRunFile(run);
    await openTab('runs');
    const runs = panel('runs');
    await runs.getByTestId('run-import').setInputFiles({ name: file.name, mimeType: 'application/x-tar', buffer: Buffer.from(file.bytes) });
    await eventually(() => runs.getByTestId('import-result').textContent()).toMatch(/Imported “hand-made run”: 2 steps, 3 trajectories, with checkpoint/);
    expect(await runs.getByTestId('run-row').count()).toBe(1);
    await runs.getByTestId('run-detail').waitFor();
    expect(await runs.getByTestId('run-detail').getByTestId('chart').count()).toBe(3); // reward, accuracy, code ratio
    await screenshot(page, 'panel-runs');

    // its rollouts, rendered, with tokens decoded by the run's own tokenizer
    await openTab('rollouts');
    const rollouts = panel('rollouts');
    await eventually(() => rollouts.getByTestId('rollouts-summary').textContent()).toMatch(/2 samples in 1 group/);
    const views = rollouts.getByTestId('trajectory');
    expect(await views.count()).toBe(2);
    expect(await views.first().getByTestId('code-cell').textContent()).toContain('print(123*456)');
    expect(await views.first().getByTestId('output-cell').getAttribute('data-status')).toBe('ok');
    expect(await views.first().getByTestId('discarded').locator('del').textContent()).toContain('print(x)');
    expect(await views.first().locator('.reasoning').first().textContent()).toContain('<script>alert(1)</script>');
    expect(await views.nth(1).getByTestId('step-origin').isVisible()).toBe(true);
    await screenshot(page, 'panel-rollouts');
    await views.first().getByLabel('show tokens').check();
    const tokens = views.first().getByTestId('tokens');
    await tokens.waitFor();
    expect(await tokens.locator('.tok.forced').count()).toBe('```output\n56088\n```\n'.length);
    expect((await tokens.textContent())?.replace(/↵/g, '')).toContain('print(123*456)');
    await screenshot(page, 'panel-rollouts-tokens');
    await rollouts.getByTestId('rollouts-step').selectOption('1');
    await eventually(() => rollouts.getByTestId('rollouts-summary').textContent()).toMatch(/1 samples? in 1 group/);

    // export gives back the same run
    await openTab('runs');
    const [download] = await Promise.all([page.waitForEvent('download'), runs.getByTestId('run-export').first().click()]);
    expect(download.suggestedFilename()).toBe(file.name);
    const exported = decodeRunFile(new Uint8Array(readFileSync((await download.path())!)), download.suggestedFilename());
    expect(exported).toEqual(run);

    // importing it again keeps both; a broken file is refused with its reason
    await runs.getByTestId('run-import').setInputFiles({ name: file.name, mimeType: 'application/x-tar', buffer: Buffer.from(file.bytes) });
    await eventually(() => runs.getByTestId('import-result').textContent()).toMatch(/kept as a copy/);
    expect(await runs.getByTestId('run-row').count()).toBe(2);
    await runs.getByTestId('run-import').setInputFiles({ name: 'notes.tar', mimeType: 'application/x-tar', buffer: Buffer.from('not a tar file at all'.repeat(40)) });
    await eventually(() => runs.getByTestId('import-error').textContent()).toMatch(/notes\.tar: not a tar archive/);

    // delete asks once more, then removes the run from storage
    await runs.getByTestId('run-delete').first().click();
    await runs.getByTestId('run-delete-confirm').click();
    await eventually(() => runs.getByTestId('run-row').count()).toBe(1);
    await page.reload();
    await panel('runs').waitFor({ state: 'visible' });
    await eventually(() => panel('runs').getByTestId('run-row').count()).toBe(1);
    expect(pageErrors).toEqual([]);
  });

  it('shows an uncaught failure as a dismissable message and keeps the page alive', async () => {
    await page.evaluate(() => {
      setTimeout(() => {
        throw new Error('failure outside any panel');
      });
      void Promise.reject(new Error('a rejected worker call'));
    });
    const banner = page.getByTestId('error-banner');
    await banner.waitFor();
    await eventually(() => banner.locator('li').count()).toBe(2);
    expect(await banner.textContent()).toContain('failure outside any panel');
    expect(await banner.textContent()).toContain('a rejected worker call');
    await banner.getByRole('button', { name: 'Dismiss message' }).first().click();
    await eventually(() => banner.locator('li').count()).toBe(1);
    await banner.getByRole('button', { name: 'Dismiss message' }).click();
    await banner.waitFor({ state: 'detached' });
    await openTab('data');
    expect(await panel('data').getByTestId('problem-table').isVisible()).toBe(true);
    expect(pageErrors.filter((m) => !/failure outside any panel|a rejected worker call/.test(m))).toEqual([]);
  });
});
