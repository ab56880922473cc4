/**
 * `npm run bench -- ui [--steps N]`: the lab in headless Chromium (Debian's, WebGPU on SwiftShader)
 * against its production build, measured as a user meets it:
 *   - first_token_ms: page load to the first streamed token of the shipped model on the default
 *     backend (the question is asked as soon as the model is ready; model_ready_ms and
 *     ask_to_first_token_ms split it); first_token_ms_webgpu the same on WebGPU asked by name;
 *   - longest_main_thread_task_ms: the longest main-thread task (PerformanceObserver "longtask")
 *     while the model trains (goal: none over 50 ms);
 *   - rl_step_s_browser_webgpu vs rl_step_s_node_wasm: the same RL step (config, seed, model) in
 *     the browser's policy worker on WebGPU and in Node on wasm, in the same run; the browser on
 *     wasm as a third figure, to tell the backend from the browser.
 * An RL step's time is its trainer-measured time_step_s, the last step of the run (the first one
 * also compiles the WebGPU shaders; it is reported in the details).
 * Writes bench/results/ui.json.
 */
import { parseArgs } from 'node:util';
import { build, preview } from 'vite';
import type { Page } from 'playwright-core';
import { launchBrowser } from '../tests/e2e/browser';
import { defaultRunConfig, parseRunConfig, type RunConfigInput } from '../src/core/config/schema';
import { generateTasks } from '../src/core/data/tasks';
import { GrpoTrainer } from '../src/core/rl/trainer';
import { sandboxChecker } from '../src/core/reward/sandbox-checker';
import { loadModel } from '../src/node/lab';
import { selectNodeBackend } from '../src/node/backend';
import { createNodePythonPool } from '../src/node/python';
import { machineInfo, writeResult } from './lib';

/** The measured RL step: small enough for SwiftShader, every phase present (rollouts, Python, step level, update). */
function stepConfig(steps: number): RunConfigInput {
  return {
    seed: 7,
    steps,
    rollout: { groupSize: 4, promptsPerStep: 2, maxResponseTokens: 64 },
    grpo: { dynamicSampling: false },
    stepLevel: { maxPrefixes: 2, groupSize: 2, suffixTokens: 8 },
    eval: { everySteps: 0, samples: 1, maxQuestions: 8 }, // held-out evaluation only before and after the steps, on 8 questions (not in their time_step_s)
  };
}

/** The knobs of the Train panel for a config (dotted paths). */
function knobs(c: RunConfigInput): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, `${prefix}${k}.`);
      else out[`${prefix}${k}`] = String(v);
    }
  };
  walk(c as Record<string, unknown>, '');
  return out;
}

const QUESTION = 'What is 31*4?';

/** Registers the long-task observer before the app's first script runs. */
const OBSERVE_LONG_TASKS = () => {
  const w = window as unknown as { __longTasks: { start: number; duration: number }[] };
  w.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
};

const mark = (page: Page, name: string) => page.evaluate((n) => performance.getEntriesByName(n).at(-1)?.startTime ?? null, name);

async function setKnobs(page: Page, values: Record<string, string>): Promise<void> {
  for (const [path, value] of Object.entries(values)) {
    const input = page.getByTestId(`knob-${path}`);
    if ((await input.getAttribute('type')) === 'checkbox') await input.setChecked(value === 'true');
    else await input.fill(value);
  }
}

/** Page load to first token: a fresh page, the question asked the moment the model is ready. */
async function firstToken(page: Page, url: string): Promise<Record<string, number | string>> {
  await page.goto(`${url}#inference`);
  await page.getByTestId('question').fill(QUESTION);
  await page.getByTestId('prefix').fill('Use Python.\n');
  await page.waitForFunction(() => !(document.querySelector('[data-testid=ask]') as HTMLButtonElement | null)?.disabled, null, { timeout: 300_000, polling: 10 });
  const asked = await page.evaluate(() => performance.now());
  await page.getByTestId('ask').click();
  await page.waitForFunction(() => performance.getEntriesByName('thor:first-token').length > 0, null, { timeout: 600_000 });
  const first = (await mark(page, 'thor:first-token'))!;
  const ready = (await mark(page, 'thor:model-ready'))!;
  await page.getByTestId('answer-stats').filter({ hasText: 'tokens in' }).waitFor({ timeout: 600_000 });
  const stats = (await page.getByTestId('answer-stats').textContent()) ?? '';
  return {
    first_token_ms: first,
    model_ready_ms: ready,
    ask_to_first_token_ms: first - asked,
    tokens_per_s: Number(/\(([\d.]+) tokens\/s\)/.exec(stats)?.[1] ?? NaN),
  };
}

/** Trains `steps` RL steps in the page; returns each step's metrics and the long tasks while it trained. */
async function trainInPage(page: Page, url: string, steps: number): Promise<{ metrics: Record<string, number>[]; longTasks: { start: number; duration: number }[]; seconds: number }> {
  await page.goto(`${url}#train`);
  await setKnobs(page, knobs(stepConfig(steps)));
  await page.waitForFunction(() => !(document.querySelector('[data-testid=train-start]') as HTMLButtonElement | null)?.disabled, null, { timeout: 300_000 });
  // Python warm first, as in Node: the step's time is the step's, not Pyodide's start-up.
  await page.waitForFunction(() => performance.getEntriesByName('thor:sandbox-ready').length > 0, null, { timeout: 300_000 });
  const started = await page.evaluate(() => performance.now());
  await page.getByTestId('train-start').click();
  await page.waitForFunction(() => ['finished', 'failed', 'stopped'].includes(document.querySelector('[data-testid=train-state]')?.textContent ?? ''), null, { timeout: 1_200_000, polling: 500 });
  const ended = await page.evaluate(() => performance.now());
  const state = await page.getByTestId('train-state').textContent();
  if (state !== 'finished') throw new Error(`the browser run ended ${state}: ${await page.getByTestId('train-status').textContent()}`);
  const longTasks = await page.evaluate(
    ([from, to]) => (window as unknown as { __longTasks: { start: number; duration: number }[] }).__longTasks.filter((t) => t.start >= from && t.start <= to),
    [started, ended],
  );
  // The per-step metrics of the newest run, as the worker stored them.
  const metrics = await page.evaluate(
    () =>
      new Promise<Record<string, number>[]>((resolve, reject) => {
        const open = indexedDB.open('thor-lab');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction(['runs', 'metrics']);
          const runs = tx.objectStore('runs').getAll();
          runs.onsuccess = () => {
            const newest = (runs.result as { id: string; createdAt: string }[]).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
            const rows = tx.objectStore('metrics').getAll(IDBKeyRange.bound([newest.id, -Infinity], [newest.id, Infinity]));
            rows.onsuccess = () => resolve((rows.result as { metrics: Record<string, number> }[]).map((r) => r.metrics));
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
  );
  return { metrics, longTasks, seconds: (ended - started) / 1000 };
}

/** The same steps in Node on wasm: the shipped model, the same config and seed, the Node sandbox pool. */
async function trainInNode(steps: number): Promise<Record<string, number>[]> {
  await selectNodeBackend(['wasm']);
  const config = parseRunConfig(stepConfig(steps));
  const { model, tokenizer } = await loadModel();
  const pool = await createNodePythonPool({ size: 1, timeoutMs: config.rollout.toolTimeoutMs });
  const trainer = new GrpoTrainer({ model, tokenizer, executor: pool, checker: sandboxChecker(pool) }, config, defaultTrainSplit());
  try {
    const out: Record<string, number>[] = [];
    for (let s = 0; s < steps; s++) out.push((await trainer.trainStep()).metrics as Record<string, number>);
    return out;
  } finally {
    trainer.dispose();
    model.dispose();
    await pool.close();
  }
}

/** The training split the page trains on: the Data panel's default synthetic set (the run config's task defaults). */
function defaultTrainSplit() {
  const { seed, task } = defaultRunConfig();
  return generateTasks({ seed, count: task.trainSize, split: 'train', kinds: task.kinds, difficulties: task.difficulties, testFraction: task.testFraction });
}

const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { steps: { type: 'string', default: '2' } } });
  const steps = Math.max(1, Number(values.steps));

  process.env.NODE_ENV = 'production';
  await build({ mode: 'production', logLevel: 'warn' });
  const server = await preview({ preview: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' });
  const base = server.resolvedUrls?.local[0];
  if (!base) throw new Error('vite preview did not report a URL');

  const details: unknown[] = [];
  let adapter = 'unknown';
  const context = await launchBrowser();
  try {
    await context.addInitScript(OBSERVE_LONG_TASKS);
    // 1. Page load to first token on the default backend (wasm on a machine whose only WebGPU
    //    device is SwiftShader), then on WebGPU asked by name.
    const page = await context.newPage();
    const first = await firstToken(page, base);
    await page.getByRole('tab', { name: 'Overview', exact: true }).click();
    const chosen = (await page.getByTestId('backend').textContent())?.trim() ?? 'unknown';
    console.log(`first token after ${Math.round(Number(first.first_token_ms))} ms on ${chosen} (model ready at ${Math.round(Number(first.model_ready_ms))} ms)`);
    details.push({ what: `first token, default backend (${chosen})`, ...first });
    await page.close();

    const gpuUrl = `${base}?backend=webgpu`;
    const gpuPage = await context.newPage();
    const firstGpu = await firstToken(gpuPage, gpuUrl);
    await gpuPage.getByRole('tab', { name: 'Overview', exact: true }).click();
    adapter = (await gpuPage.getByTestId('backend').textContent())?.trim() ?? 'unknown';
    console.log(`first token on webgpu after ${Math.round(Number(firstGpu.first_token_ms))} ms`);
    details.push({ what: 'first token, webgpu', ...firstGpu });

    // 2. RL steps on WebGPU, long tasks watched; then the same on wasm in the browser.
    const gpu = await trainInPage(gpuPage, gpuUrl, steps);
    console.log(`browser webgpu: ${gpu.metrics.map((m) => m.time_step_s.toFixed(1)).join(', ')} s per step`);
    details.push({ what: 'rl steps, browser webgpu', seconds: gpu.seconds, longTasks: gpu.longTasks, metrics: gpu.metrics });
    await gpuPage.close();

    const wasmPage = await context.newPage();
    const wasm = await trainInPage(wasmPage, `${base}?backend=wasm`, steps);
    console.log(`browser wasm: ${wasm.metrics.map((m) => m.time_step_s.toFixed(1)).join(', ')} s per step`);
    details.push({ what: 'rl steps, browser wasm', seconds: wasm.seconds, longTasks: wasm.longTasks, metrics: wasm.metrics });

    // 3. The same steps in Node on wasm.
    const node = await trainInNode(steps);
    console.log(`node wasm: ${node.map((m) => m.time_step_s.toFixed(1)).join(', ')} s per step`);
    details.push({ what: 'rl steps, node wasm', metrics: node });

    const lastStep = (ms: Record<string, number>[]) => ms.at(-1)!.time_step_s;
    const longest = Math.max(0, ...gpu.longTasks.map((t) => t.duration), ...wasm.longTasks.map((t) => t.duration));
    writeResult(
      'ui',
      {
        first_token_ms: round(Number(first.first_token_ms), 0),
        model_ready_ms: round(Number(first.model_ready_ms), 0),
        ask_to_first_token_ms: round(Number(first.ask_to_first_token_ms), 0),
        first_token_ms_webgpu: round(Number(firstGpu.first_token_ms), 0),
        longest_main_thread_task_ms: round(longest, 0),
        long_tasks_while_training: gpu.longTasks.length + wasm.longTasks.length,
        rl_step_s_browser_webgpu: round(lastStep(gpu.metrics)),
        rl_step_s_browser_wasm: round(lastStep(wasm.metrics)),
        rl_step_s_node_wasm: round(lastStep(node)),
        browser_webgpu_vs_node_wasm: round(lastStep(gpu.metrics) / lastStep(node), 2),
      },
      details,
      machineInfo({ backend: `default ${chosen}; webgpu and wasm (browser) / wasm (node)`, adapter, browser: 'Debian chromium, headless', steps, config: JSON.stringify(stepConfig(steps)) }),
    );
  } finally {
    await context.close();
    await server.close();
  }
}
