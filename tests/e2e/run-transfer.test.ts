/**
 * One run folder layout for the browser and the command line: a run stopped in the browser, exported
 * and unpacked with tar, goes on with `cli train --resume`; a run stopped in the command line, packed
 * with tar and imported in the browser, goes on from the Train panel.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, launchBrowser, labTabs } from './browser';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];
const dir = mkdtempSync(join(tmpdir(), 'run-transfer-'));
const SMALL = { 'rollout.groupSize': '2', 'rollout.promptsPerStep': '1', 'rollout.maxResponseTokens': '60', 'stepLevel.maxPrefixes': '1', 'stepLevel.groupSize': '2', 'eval.samples': '1', 'eval.everySteps': '0', 'eval.maxQuestions': '2' };

const stepsOf = (folder: string) =>
  readFileSync(join(folder, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l).step as number);

describe('runs move between the browser and the command line', () => {
  let context: BrowserContext;
  let page: Page;
  const { panel, openTab } = labTabs(() => page);
  const trainState = () => panel('train').getByTestId('train-state').textContent();

  beforeAll(async () => {
    context = await launchBrowser();
    page = await context.newPage();
    await page.goto(new URL('?backend=wasm', inject('appUrl')).href);
    await page.waitForFunction(() => performance.getEntriesByName('thor:model-ready').length > 0, null, { timeout: 60_000 });
  });

  afterAll(async () => {
    await context?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a run stopped in the browser, exported and unpacked, goes on in the command line', async () => {
    await openTab('train');
    const train = panel('train');
    for (const [path, value] of Object.entries({ ...SMALL, steps: '3' })) await train.getByTestId(`knob-${path}`).fill(value);
    await train.getByTestId('run-name').fill('from the browser');
    await train.getByTestId('train-start').click();
    await eventually(() => train.getByTestId('train-last').textContent().catch(() => ''), 120_000).toMatch(/step \d:/);
    await train.getByTestId('train-stop').click();
    await eventually(trainState, 60_000).toBe('stopped');

    await openTab('runs');
    const row = panel('runs').getByTestId('run-row').filter({ hasText: 'from the browser' });
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('run-export').click()]);
    const tarFile = join(dir, download.suggestedFilename());
    await download.saveAs(tarFile);
    execFileSync('tar', ['-xf', tarFile, '-C', dir]);
    const folder = join(dir, download.suggestedFilename().replace(/\.tar$/, ''));
    const stoppedAt = JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')).state.checkpointStep as number;
    expect(stoppedAt).toBeGreaterThanOrEqual(1);
    expect(stoppedAt).toBeLessThan(3);
    expect(stepsOf(folder)).toEqual(Array.from({ length: stoppedAt }, (_, i) => i + 1));

    const cli = spawnSync(process.execPath, [...CLI, 'train', '--resume', folder], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('optimizer moments restored');
    expect(cli.stdout).toContain(`going on from step ${stoppedAt} to 3 steps`);
    expect(cli.stdout).toContain('finished 3 steps');
    expect(stepsOf(folder)).toEqual([1, 2, 3]);
    expect(JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')).state).toMatchObject({ status: 'finished', checkpointStep: 3 });
  });

  it('a run stopped in the command line, packed with tar and imported, goes on in the browser', async () => {
    const folder = join(dir, 'from-the-cli');
    const args = ['train', '--out', folder, '--name', 'from the cli', '--steps', '4', ...Object.entries(SMALL).flatMap(([k, v]) => ['--set', `${k}=${v}`]), '--set', 'task.testSize=2'];
    // Ctrl-C once the first step is printed: the run stops after the step under way, with a checkpoint.
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT });
      let out = '';
      let sent = false;
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (!sent && /step 1\/4/.test(out)) sent = child.kill('SIGINT');
      });
      child.on('exit', resolve);
    });
    expect(code).toBe(0);
    const stoppedAt = JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')).state.checkpointStep as number;
    expect(stoppedAt).toBeLessThan(4);
    execFileSync('tar', ['-cf', join(dir, 'from-the-cli.tar'), '-C', dir, 'from-the-cli']);
    expect(readdirSync(dir)).toContain('from-the-cli.tar');

    await openTab('runs');
    await panel('runs').getByTestId('run-import').setInputFiles(join(dir, 'from-the-cli.tar'));
    await eventually(() => panel('runs').getByTestId('import-result').textContent()).toMatch(new RegExp(`^Imported “from the cli”: ${stoppedAt} steps`));

    await openTab('train');
    const offer = panel('train').getByTestId('resume-offer').locator('li', { hasText: 'from the cli' });
    await offer.waitFor({ timeout: 30_000 });
    expect(await offer.textContent()).toContain(`its checkpoint is from step ${stoppedAt}`);
    await offer.getByTestId('resume-run').click();
    await eventually(trainState, 180_000).toBe('finished');
    expect(await panel('train').getByTestId('train-note').textContent()).toBe('optimizer moments restored');
    expect(await panel('train').getByTestId('train-last').textContent()).toMatch(/step 4:/);
    await openTab('runs');
    const row = panel('runs').getByTestId('run-row').filter({ hasText: 'from the cli' });
    await eventually(() => row.getByTestId('run-status').textContent()).toBe('rl · finished');
    expect(await row.locator('td.num').first().textContent()).toBe('4');
  });
});
