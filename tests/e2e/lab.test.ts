/**
 * The lab at work in headless Chromium against the built app, with the shipped tiny model in the
 * policy worker on the wasm backend (SwiftShader's WebGPU is far slower; shell.test.ts checks the
 * WebGPU adapter): streamed answers whose code runs in Pyodide, RL steps that update the charts
 * and the rollouts, pause / reload / resume, export and import of a trained run, evaluation, models
 * created and refused, SFT files with bad lines, and an answer with the network cut. Each test makes
 * the runs it looks at (a held-out split of a few questions keeps them short), and every wait says how
 * long it may take.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, launchBrowser, screenshot, labTabs } from './browser';
import { decodeRunFile, encodeRunFile } from '../../src/core/run/runfile';
import { handMadeRun } from '../unit/ui-fixtures';


describe('the lab at work in headless Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const appUrl = () => new URL('?backend=wasm', inject('appUrl')).href;

  const { panel, openTab } = labTabs(() => page);
  const trainState = () => panel('train').getByTestId('train-state').textContent();
  const setKnobs = async (knobs: Record<string, string>) => {
    for (const [path, value] of Object.entries(knobs)) await panel('train').getByTestId(`knob-${path}`).fill(value);
  };
  const TWO_SMALL_STEPS = { steps: '2', 'rollout.groupSize': '2', 'rollout.promptsPerStep': '1', 'rollout.maxResponseTokens': '64', 'stepLevel.maxPrefixes': '1', 'stepLevel.groupSize': '2', 'eval.samples': '1', 'eval.maxQuestions': '4' };
  /** Trains a run of these settings from the Train panel and waits for it to end. */
  const trainRun = async (name: string, knobs: Record<string, string>) => {
    await openTab('train');
    await setKnobs(knobs);
    await panel('train').getByTestId('run-name').fill(name);
    await panel('train').getByTestId('train-start').click();
    await eventually(trainState, 180_000).toBe('finished');
  };
  /** Imports a run file through the Runs panel and waits for its row. */
  const importRun = async (name: string, bytes: Uint8Array) => {
    await openTab('runs');
    await panel('runs').getByTestId('run-import').setInputFiles({ name, mimeType: 'application/x-tar', buffer: Buffer.from(bytes) });
    await eventually(() => panel('runs').getByTestId('import-result').textContent()).toMatch(/^Imported/);
  };
  const modelReady = () => page.waitForFunction(() => performance.getEntriesByName('thor:model-ready').length > 0, null, { timeout: 60_000 });

  beforeAll(async () => {
    context = await launchBrowser();
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(appUrl());
    await modelReady();
  });

  afterAll(async () => {
    await context?.close();
  });

  it('reports the backend asked for, the model and the Python sandbox with its packages', async () => {
    const overview = panel('overview');
    expect(await overview.getByTestId('backend').textContent()).toContain('wasm');
    // The page is cross-origin isolated, so tfjs runs its threaded build, its pthread workers started
    // on the script vite.config.ts hands them (XNNPACK takes half the logical cores: 1 thread on 2).
    expect(await overview.getByTestId('wasm-build').textContent()).toMatch(/^threaded SIMD build, \d+ threads?$/);
    expect(await overview.getByTestId('overview-model').textContent()).toMatch(/thor-tiny \(shipped\), 1,120,896 parameters/);
    await overview.getByTestId('python-version').waitFor({ timeout: 90_000 });
    expect(await overview.getByTestId('python-version').textContent()).toMatch(/^3\.\d+/);
    expect(await overview.getByTestId('interrupts').textContent()).toContain('interrupt');
    const packages = overview.getByTestId('packages');
    expect(await packages.locator('tr', { hasText: 'sympy' }).textContent()).toMatch(/yes\s*1\.\d+/);
    await eventually(() => overview.getByTestId('memory').textContent()).toMatch(/\d+ tensors, .* in the policy worker \(wasm\)/);
    await screenshot(page, 'lab-overview');
  });

  it('streams an answer whose code runs in Python, its output shown', async () => {
    await openTab('inference');
    const inference = panel('inference');
    await inference.getByTestId('question').fill('What is 31*4?');
    await inference.getByTestId('reference').fill('124');
    // The tiny model learned that this opening leads to a code block.
    await inference.getByTestId('prefix').fill('Use Python.\n');
    await inference.getByTestId('infer-rollout.maxResponseTokens').fill('120');
    await inference.getByTestId('ask').click();
    const answer = inference.getByTestId('answer');
    await answer.getByTestId('final-answer').waitFor({ timeout: 60_000 });
    const code = answer.getByTestId('code-cell').first();
    expect(await code.textContent()).toMatch(/print\(/);
    expect(await code.textContent()).toMatch(/round 1 · ok/);
    const output = answer.getByTestId('output-cell').first();
    expect(await output.getAttribute('data-status')).toBe('ok');
    expect(await output.locator('pre').textContent()).toMatch(/^\d+/);
    // streamed: the first token arrived long before the whole answer
    const stats = (await inference.getByTestId('answer-stats').textContent()) ?? '';
    const first = Number(/first token after (\d+) ms/.exec(stats)?.[1]);
    const total = Number(/tokens in ([\d.]+) s/.exec(stats)?.[1]) * 1000;
    expect(first).toBeLessThan(total);
    expect(await answer.getByTestId('correctness').count()).toBe(1);
    await screenshot(page, 'lab-inference');
  });

  it('trains two RL steps: the charts, the progress and the rollouts update', async () => {
    await trainRun('e2e two steps', TWO_SMALL_STEPS);
    const train = panel('train');
    expect(await train.getByTestId('train-last').textContent()).toMatch(/step 2: reward \d/);
    expect(await train.getByTestId('progress').textContent()).toContain('2 / 2 steps');
    const charts = train.getByTestId('chart');
    for (const title of ['Reward', 'Accuracy', 'Response length', 'Time per phase']) {
      const chart = charts.filter({ hasText: title }).first();
      await eventually(() => chart.locator('.empty').count()).toBe(0);
      expect(await chart.locator('canvas').count()).toBe(1);
    }
    // held-out evaluation before the first step and after the last (eval.everySteps = 20 > 2 steps)
    expect(await train.getByTestId('train-heldout').textContent()).toMatch(/held-out \(4 test problems\) after step 2: accuracy (0|1)\.\d{3}, code (0|1)\.\d{2}/);
    expect(await charts.filter({ hasText: 'Accuracy' }).first().locator('.u-legend').textContent()).toContain('held-out');
    await screenshot(page, 'lab-train');

    // the run was stored step by step; its rollouts are on view
    await openTab('rollouts');
    const rollouts = panel('rollouts');
    await eventually(() => rollouts.getByTestId('rollouts-step').locator('option').allTextContents()).toEqual(['1', '2']);
    expect(await rollouts.getByTestId('rollouts-run').locator('option:checked').textContent()).toContain('e2e two steps');
    await eventually(() => rollouts.getByTestId('trajectory').count()).toBeGreaterThanOrEqual(2);
    await rollouts.getByTestId('trajectory').first().getByLabel('show tokens').check();
    expect(await rollouts.getByTestId('tokens').first().locator('.tok').count()).toBeGreaterThan(0);
    // decoded by the run's own tokenizer (its checkpoint), not shown as ids
    await eventually(() => rollouts.getByTestId('rollouts-summary').textContent()).not.toContain('tokens shown as ids');
    await screenshot(page, 'lab-rollouts');
  });

  it('pauses a run, offers to resume it after a reload, and finishes it from its checkpoint', async () => {
    await openTab('train');
    const train = panel('train');
    await setKnobs({ ...TWO_SMALL_STEPS, steps: '4', 'eval.everySteps': '0' });
    await train.getByTestId('run-name').fill('e2e paused');
    await train.getByTestId('train-start').click();
    await eventually(() => train.getByTestId('train-last').textContent().catch(() => ''), 120_000).toMatch(/step \d:/);
    await train.getByTestId('train-pause').click();
    await eventually(trainState, 60_000).toBe('paused');

    await page.reload();
    await modelReady();
    await openTab('train');
    const offer = panel('train').getByTestId('resume-offer');
    await offer.waitFor();
    // steps run so fast here that the pause may land after step 1, 2 or 3: the offer says which
    const paused = /e2e paused\s*\(RL\) was paused at step (\d) of 4;\s+its checkpoint is from step (\d)\./.exec((await offer.textContent()) ?? '');
    expect(paused?.[1]).toBe(paused?.[2]);
    const at = Number(paused?.[1]);
    expect(at).toBeGreaterThanOrEqual(1);
    expect(at).toBeLessThan(4);
    await screenshot(page, 'lab-train-resume');
    await offer.getByTestId('resume-run').click();
    await eventually(trainState, 180_000).toBe('finished');
    expect(await panel('train').getByTestId('train-note').textContent()).toBe('optimizer moments restored');
    expect(await panel('train').getByTestId('train-last').textContent()).toMatch(/step 4:/);
    expect(await panel('train').getByTestId('progress').textContent()).toContain(`resumed at step ${at}`);
    await eventually(() => panel('train').getByTestId('resume-offer').count()).toBe(0);
    await openTab('runs');
    const row = panel('runs').getByTestId('run-row').filter({ hasText: 'e2e paused' });
    await eventually(() => row.getByTestId('run-status').textContent()).toBe('rl · finished');
    expect(await row.locator('td.num').first().textContent()).toBe('4');
  });

  it('exports a trained run as one file and imports it back', async () => {
    await trainRun('e2e export', { ...TWO_SMALL_STEPS, steps: '1' });
    await openTab('runs');
    const runs = panel('runs');
    const row = runs.getByTestId('run-row').filter({ hasText: 'e2e export' });
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('run-export').click()]);
    const bytes = new Uint8Array(readFileSync((await download.path())!));
    const run = decodeRunFile(bytes, download.suggestedFilename());
    expect(run.name).toBe('e2e export');
    expect(run.metrics.map((m) => m.step)).toEqual([1]);
    expect(run.evals.map((e) => e.step)).toEqual([0, 1]);
    expect(run.rollouts.map((d) => d.step)).toEqual([1]);
    expect(Object.keys(run.checkpoint ?? {}).sort()).toEqual(['char_tokenizer.json', 'config.json', 'model.safetensors', 'optimizer.safetensors']);
    expect(run.report?.['report.md']).toContain('1 steps');
    expect(run.report?.['reward.svg']).toMatch(/^<svg/);
    expect(run.state).toEqual({ status: 'finished', mode: 'rl', totalSteps: 1, checkpointStep: 1 });
    expect(run.config).toMatchObject({ steps: 1, rollout: { groupSize: 2 } });

    await row.getByTestId('run-delete').click();
    await row.getByTestId('run-delete-confirm').click();
    await eventually(() => runs.getByTestId('run-row').filter({ hasText: 'e2e export' }).count()).toBe(0);
    await runs.getByTestId('run-import').setInputFiles({ name: download.suggestedFilename(), mimeType: 'application/x-tar', buffer: Buffer.from(bytes) });
    const trajectories = run.rollouts.reduce((n, d) => n + d.trajectories.length, 0);
    await eventually(() => runs.getByTestId('import-result').textContent()).toBe(`Imported “e2e export”: 1 steps, ${trajectories} trajectories, with checkpoint.`);
    await runs.getByTestId('run-detail').waitFor();
    expect(await runs.getByTestId('run-detail').getByTestId('chart').count()).toBeGreaterThanOrEqual(5);
    await screenshot(page, 'lab-runs');
  });

  it('evaluates the model on the test split and compares two runs', async () => {
    // two runs to compare, made here
    await importRun('compare-a.tar', encodeRunFile({ ...handMadeRun(), id: 'compare-a', name: 'e2e compare a' }).bytes);
    await importRun('compare-b.tar', encodeRunFile({ ...handMadeRun(), id: 'compare-b', name: 'e2e compare b', metrics: [{ step: 1, reward_mean: 0.75 }] }).bytes);
    await openTab('eval');
    const evaluation = panel('eval');
    await evaluation.getByTestId('eval-limit').fill('2');
    await evaluation.getByTestId('eval-eval.samples').fill('1');
    await evaluation.getByTestId('eval-rollout.maxResponseTokens').fill('64');
    await evaluation.getByTestId('eval-run').click();
    await eventually(() => evaluation.getByTestId('eval-accuracy').textContent(), 120_000).toMatch(/%$/);
    expect(await evaluation.getByTestId('eval-maj_at_k').textContent()).toMatch(/%$/);
    const cells = await evaluation.getByTestId('code-answer-table').locator('tbody td').allTextContents();
    const counts = [cells[0], cells[1], cells[3], cells[4]].map(Number);
    const noCode = Number(/(\d+) answers? without code/.exec((await evaluation.getByTestId('no-code').textContent()) ?? '')?.[1]);
    expect(counts.reduce((a, b) => a + b, 0) + noCode).toBe(2);
    expect(await evaluation.getByTestId('eval-history').locator('thead th').count()).toBe(2);
    expect(await evaluation.getByTestId('trajectory').count()).toBe(2);

    await evaluation.getByTestId('compare-left').selectOption({ label: 'e2e compare a' });
    await evaluation.getByTestId('compare-right').selectOption({ label: 'e2e compare b' });
    await evaluation.getByTestId('compare-table').waitFor();
    const reward = evaluation.getByTestId('compare-table').locator('tr', { has: page.locator('td', { hasText: /^reward_mean$/ }) });
    expect(await reward.locator('td').allTextContents()).toEqual(['reward_mean', '0.5000', '0.7500']);
    await screenshot(page, 'lab-eval');
  });

  it('trains a LoRA adapter with THOR on the shipped Llama-architecture model: its rollouts run their code in Python', async () => {
    await openTab('train');
    const train = panel('train');
    // Off for the tiny models by default; "Use LoRA anyway" turns it on.
    await train.getByTestId('lora-force').click();
    expect(await train.getByTestId('knob-lora.enabled').isChecked()).toBe(true);
    await train.getByTestId('lora-module-down_proj').check();
    // 16 rollouts: the shipped model chooses code in about half of its sampled answers, so some of them call Python.
    await trainRun('e2e lora thor', { ...TWO_SMALL_STEPS, steps: '1', 'rollout.groupSize': '8', 'rollout.promptsPerStep': '2', 'rollout.maxResponseTokens': '120' });
    expect(await train.getByTestId('train-last').textContent()).toMatch(/step 1: reward \d/);
    await openTab('runs');
    const row = panel('runs').getByTestId('run-row').filter({ hasText: 'e2e lora thor' });
    await eventually(() => row.count()).toBe(1);
    // The checkpoint holds the adapter (kB), not the 1.12M-parameter model (4.5 MB).
    expect(await row.locator('td').nth(4).textContent()).toMatch(/^[\d.]+ (B|kB)$/);
    await openTab('rollouts');
    const rollouts = panel('rollouts');
    await eventually(() => rollouts.getByTestId('rollouts-run').locator('option:checked').textContent()).toContain('e2e lora thor');
    await eventually(() => rollouts.getByTestId('trajectory').count(), 30_000).toBeGreaterThan(0);
    const samples = Number(/^(\d+) samples/.exec((await rollouts.getByTestId('rollouts-summary').textContent()) ?? '')?.[1]);
    expect(samples).toBeGreaterThanOrEqual(16);
    // Python ran the rollouts' code: an output cell holding the interpreter's real answer, on some page.
    let outputs = 0;
    for (let page = 0; page < Math.ceil(samples / 8) && outputs === 0; page++) {
      if (page > 0) await rollouts.getByRole('button', { name: 'Next' }).click();
      outputs = await rollouts.getByTestId('output-cell').count();
    }
    expect(outputs).toBeGreaterThan(0);
    expect(['ok', 'error', 'timeout']).toContain(await rollouts.getByTestId('output-cell').first().getAttribute('data-status'));
    expect((await rollouts.getByTestId('output-cell').first().locator('pre').textContent())?.length).toBeGreaterThan(0);
    expect(await page.getByTestId('error-banner').count()).toBe(0);
  });

  it('creates a model, refuses a broken checkpoint with a message, and reloads the shipped model', async () => {
    await openTab('model');
    const model = panel('model');
    await model.getByRole('button', { name: 'nano', exact: true }).click();
    await model.getByTestId('create-model').click();
    await eventually(() => model.getByTestId('model-label').textContent()).toBe('new 2×64 model (seed 0)');
    // kept as a download (a model folder in one .tar) and in this browser
    const [download] = await Promise.all([page.waitForEvent('download'), model.getByTestId('model-download').click()]);
    expect(download.suggestedFilename()).toBe('new-2-64-model-seed-0.tar');
    expect(readFileSync((await download.path())!).subarray(0, 200).toString()).toContain('new-2-64-model-seed-0/');
    await model.getByLabel('Name of the saved model').fill('e2e nano');
    await model.getByTestId('model-save').click();
    await model.getByTestId('model-saved').waitFor();
    await eventually(() => model.getByTestId('stored-checkpoints').textContent()).toContain('e2e nano');

    // a folder whose weights are not safetensors: the worker's error reaches the page as a message
    const folder = join(mkdtempSync(join(tmpdir(), 'thor-lab-')), 'broken-model');
    mkdirSync(folder);
    copyFileSync('public/models/thor-tiny/config.json', join(folder, 'config.json'));
    copyFileSync('public/models/thor-tiny/char_tokenizer.json', join(folder, 'char_tokenizer.json'));
    writeFileSync(join(folder, 'model.safetensors'), 'definitely not safetensors');
    await model.getByTestId('model-folder').setInputFiles(folder);
    await model.getByTestId('load-folder').click();
    await model.getByTestId('model-error').waitFor({ timeout: 30_000 });
    expect(await model.getByTestId('model-error').textContent()).toMatch(/model\.safetensors/);
    expect(await page.getByTestId('error-banner').textContent()).toMatch(/loading broken-model.*broken-model\/model\.safetensors/);
    expect(await model.getByTestId('model-label').textContent()).toBe('new 2×64 model (seed 0)');
    await screenshot(page, 'lab-model');

    await model.getByTestId('load-shipped').click();
    await eventually(() => model.getByTestId('model-label').textContent()).toBe('thor-tiny (shipped)');
    // one message, dismissed; the page went on working throughout
    expect(await page.getByTestId('error-banner').locator('li').count()).toBe(1);
    await page.getByTestId('error-banner').getByRole('button', { name: 'Dismiss message' }).click();
    await page.getByTestId('error-banner').waitFor({ state: 'detached' });
  });

  it('lists the bad lines of an SFT file by line number and trains on the good ones', async () => {
    await openTab('train');
    const train = panel('train');
    await train.getByRole('radio', { name: /^SFT/ }).check();
    await train.getByRole('radio', { name: 'a TIR JSON-lines file' }).check();
    const lines = [
      JSON.stringify({ question: 'What is 6*7?', response: 'Use Python.\n```python\nprint(6*7)\n```\n```output\n42\n```\nSo \\boxed{42}.' }),
      '{"question": "broken',
      JSON.stringify({ question: 'What is 2+3?', response: 'Directly: \\boxed{5}.' }),
      JSON.stringify({ question: 'What is 1+1?' }),
    ];
    await train.getByTestId('sft-file').setInputFiles({ name: 'tir.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(lines.join('\n')) });
    expect(await train.getByTestId('sft-file-summary').textContent()).toBe('tir.jsonl: 2 demonstrations, 2 bad lines.');
    const errors = (await train.getByTestId('sft-errors').textContent()) ?? '';
    expect(errors).toContain('tir.jsonl, line 2: line is not valid JSON');
    expect(errors).toContain('tir.jsonl, line 4: response is missing or empty');
    await train.getByTestId('knob-sft.steps').fill('2');
    await train.getByTestId('knob-sft.warmupSteps').fill('0');
    await train.getByTestId('knob-eval.maxQuestions').fill('2');
    await train.getByTestId('run-name').fill('e2e sft');
    await train.getByTestId('train-start').click();
    await eventually(trainState, 120_000).toBe('finished');
    expect(await train.getByTestId('train-last').textContent()).toMatch(/step 2: loss \d/);
    await eventually(() => train.getByTestId('chart').filter({ hasText: 'Loss' }).locator('.empty').count()).toBe(0);
    // held-out evaluation before and after SFT, as for RL
    expect(await train.getByTestId('train-heldout').textContent()).toMatch(/held-out \(2 test problems\) after step 2/);
    await screenshot(page, 'lab-train-sft');
  });

  it('answers with the network cut, and opens again from its offline copy', async () => {
    await page.waitForFunction(() => performance.getEntriesByName('thor:offline-ready').length > 0, null, { timeout: 60_000 });
    const ask = async () => {
      await openTab('inference');
      const inference = panel('inference');
      await inference.getByTestId('question').fill('What is 31*4?');
      await inference.getByTestId('reference').fill('124');
      await inference.getByTestId('prefix').fill('Use Python.\n');
      const stats = inference.getByTestId('answer-stats');
      const before = (await stats.count()) > 0 ? await stats.textContent() : null;
      await inference.getByTestId('ask').click();
      // a new answer: its figures differ from the last one's, and it is finished
      await eventually(async () => {
        const now = (await stats.textContent()) ?? '';
        return now !== before && /tokens in/.test(now);
      }, 90_000).toBe(true);
      expect(await inference.getByTestId('answer').getByTestId('output-cell').first().getAttribute('data-status')).toBe('ok');
    };
    await context.setOffline(true);
    try {
      expect(await page.evaluate(() => fetch(`/not-kept-${Date.now()}`).then(() => 'reached', () => 'offline'))).toBe('offline');
      await ask();
      // the whole lab again, from the copy its service worker keeps: page, model, tfjs, Pyodide
      await page.reload();
      await modelReady();
      await page.waitForFunction(() => performance.getEntriesByName('thor:sandbox-ready').length > 0, null, { timeout: 90_000 });
      await openTab('overview');
      expect(await panel('overview').getByTestId('python-version').textContent()).toMatch(/^3\./);
      await screenshot(page, 'lab-offline');
      await ask();
      // the other shipped model was kept too, though it was never loaded online
      await openTab('model');
      await panel('model').getByTestId('load-shipped-thor-tiny-cot').click();
      await eventually(() => panel('model').getByTestId('model-label').textContent(), 60_000).toBe('thor-tiny-cot (shipped)');
    } finally {
      await context.setOffline(false);
    }
    expect(pageErrors).toEqual([]);
  });

  it('takes its wasm threads from ?threads=, offers them in the Overview, and measures this device on them', async () => {
    const threaded = await context.newPage();
    const errors: string[] = [];
    threaded.on('pageerror', (e) => errors.push(e.message));
    try {
      await threaded.goto(new URL('?backend=wasm&threads=2#overview', inject('appUrl')).href);
      const overview = threaded.getByTestId('panel-overview');
      // tfjs's threaded build on the 2 threads asked for, whatever its own choice would be here.
      await eventually(() => overview.getByTestId('wasm-build').textContent(), 60_000).toBe('threaded SIMD build, 2 threads');
      // The engine's own products take the second thread too (a helper worker on tfjs's shared memory).
      expect(await overview.getByTestId('engine-threads').textContent()).toBe("the engine's products on 2 threads");
      expect(await overview.getByTestId('threads-choice').inputValue()).toBe('2');
      const measure = overview.getByTestId('speed-measure');
      await eventually(() => measure.isEnabled(), 60_000).toBe(true);
      await measure.click();
      const result = overview.getByTestId('speed-result');
      await result.waitFor({ timeout: 300_000 });
      const report = JSON.parse((await result.getAttribute('data-report')) ?? 'null') as { backend: string; threads: number; matmul_gflops: number; engine_matmul_gflops: number; decode: { tok_s: number; vs_matmul: number }; train: { tok_s: number; vs_matmul: number } };
      // Chromium compiles relaxed SIMD: the engine's kernels multiply-add in one step.
      expect(report).toMatchObject({ backend: 'wasm', threads: 2, fused_multiply_add: true, engine_threads: 2 });
      for (const x of [report.matmul_gflops, report.engine_matmul_gflops, report.decode.tok_s, report.train.tok_s, report.decode.vs_matmul, report.train.vs_matmul]) expect(x).toBeGreaterThan(0);
      expect(await overview.getByTestId('speed-engine-products').textContent()).toContain('(fused multiply-adds), 2 threads');
      expect(await overview.getByTestId('speed-where').textContent()).toMatch(/^wasm, 2 threads, 9\.8M parameters, \d+ s$/);
      await screenshot(threaded, 'overview-speed');
    } finally {
      await threaded.close();
    }
    expect(errors).toEqual([]);
  });
});
