/**
 * `npm run bench -- speed [--threads 1,2]`: the engine's speed in a real browser at each wasm
 * thread count, as a user measures it: the app's production build in headless Chromium, opened
 * with ?backend=wasm&threads=N (tfjs's threaded SIMD build, cross-origin isolated), the Overview
 * panel's Measure button (src/core/engine/speed.ts: the backend's 2-D matmul rate, decoding at
 * batch 16 and training 8 × 128 tokens of a ~10M model, FLOPs from its shapes). In the same run:
 * the same measurement in Node (tfjs's single-threaded build there), and PyTorch eager (OpenBLAS)
 * on the same shapes and weights at the same thread counts (bench/torch_ref.py --threads N). At the
 * largest count the page is measured twice: with the engine's own kernels on as many threads as
 * tfjs's, and kept on one (?engine-threads=1). Writes bench/results/speed.json.
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { build, preview } from 'vite';
import { launchBrowser } from '../tests/e2e/browser';
import { measureSpeed, QUICK_SPEED_PLAN, randomRows, SPEED_MODEL, type SpeedReport } from '../src/core/engine/speed';
import { Transformer } from '../src/core/model/transformer';
import { selectNodeBackend } from '../src/node/backend';
import { torchYardstick } from './engine';
import { machineInfo, writeResult } from './lib';

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { threads: { type: 'string', default: '1,2' } } });
  const counts = values.threads.split(',').map(Number);
  for (const n of counts) if (!(Number.isInteger(n) && n >= 1 && n <= 64)) throw new Error(`--threads: ${n} is no thread count (1 to 64)`);
  const plan = QUICK_SPEED_PLAN;
  const summary: Record<string, number> = { logical_cores: cpus().length };
  const details: unknown[] = [];

  process.env.NODE_ENV = 'production';
  await build({ mode: 'production', logLevel: 'warn' });
  const server = await preview({ preview: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' });
  const base = server.resolvedUrls?.local[0];
  if (!base) throw new Error('vite preview did not report a URL');
  const browser: Record<number, SpeedReport> = {};
  // At the largest count also with the engine's own kernels kept on one thread (?engine-threads=1):
  // what its helper threads give, side by side (docs/engine.md#the-engines-products-on-several-threads).
  const most = counts[counts.length - 1];
  let engineOnOne: SpeedReport | undefined;
  const runs = [...counts.map((threads) => ({ threads, helpers: true })), ...(most > 1 ? [{ threads: most, helpers: false }] : [])];
  const context = await launchBrowser();
  try {
    for (const { threads, helpers } of runs) {
      const page = await context.newPage();
      await page.goto(`${base}?backend=wasm&threads=${threads}${helpers ? '' : '&engine-threads=1'}#overview`);
      const build = page.getByTestId('wasm-build');
      await build.waitFor({ timeout: 300_000 });
      const said = ((await build.textContent()) ?? '').trim();
      const measure = page.getByTestId('speed-measure');
      await page.waitForFunction(() => !(document.querySelector('[data-testid=speed-measure]') as HTMLButtonElement | null)?.disabled, null, { timeout: 300_000 });
      await measure.click();
      const result = page.getByTestId('speed-result');
      await result.waitFor({ timeout: 900_000 });
      const report = JSON.parse((await result.getAttribute('data-report')) ?? 'null') as SpeedReport;
      if (report.threads !== threads) throw new Error(`asked for ${threads} threads, the page measured with ${report.threads} (${said})`);
      const engineThreads = report.engine_threads ?? 1;
      if (engineThreads !== (helpers ? threads : 1)) throw new Error(`the engine's kernels ran on ${engineThreads} thread(s), ${helpers ? threads : 1} expected (${said})`);
      if (helpers) browser[threads] = report;
      else engineOnOne = report;
      details.push({ where: 'browser', build: said, ...report });
      console.log(`browser, ${said}, the engine's kernels on ${engineThreads}: matmul ${report.matmul_gflops.toFixed(1)} GFLOP/s (the engine's ${report.engine_matmul_gflops?.toFixed(1)}${report.fused_multiply_add ? ', fused multiply-adds' : ''}), decoding ${report.decode.tok_s.toFixed(0)} tokens/s (${report.decode.vs_matmul.toFixed(2)}), training ${report.train.tok_s.toFixed(0)} tokens/s (${report.train.vs_matmul.toFixed(2)})`);
      await page.close();
    }
  } finally {
    await context.close();
    await server.close();
  }

  await selectNodeBackend(['wasm']);
  const node = await measureSpeed({ plan });
  details.push({ where: 'node', ...node });
  console.log(`node: matmul ${node.matmul_gflops.toFixed(1)} GFLOP/s, decoding ${node.decode.tok_s.toFixed(0)} tokens/s, training ${node.train.tok_s.toFixed(0)} tokens/s`);

  // PyTorch on the measured model's shapes and the same random weights, at each thread count.
  const model = Transformer.create(SPEED_MODEL, { seed: 1 });
  const torch: Record<number, Record<string, unknown>> = {};
  try {
    for (const threads of counts) {
      const t = await torchYardstick(model, randomRows(2, 24, SPEED_MODEL.vocab_size, 11), { batch: plan.decode.batch, promptLength: plan.decode.promptLength, newTokens: plan.decode.newTokens, train: plan.train }, threads);
      torch[threads] = t;
      details.push({ where: 'torch', asked_threads: threads, ...t });
      console.log(t.error ? `torch: ${t.error}` : `torch, ${t.threads} thread(s): decoding ${Number(t.decode_tok_s).toFixed(0)} tokens/s, training ${Number(t.train_tok_s).toFixed(0)} tokens/s`);
    }
  } finally {
    model.dispose();
  }

  for (const threads of counts) {
    const b = browser[threads];
    Object.assign(summary, {
      [`browser_matmul_gflops_t${threads}`]: b.matmul_gflops,
      ...(b.engine_matmul_gflops !== undefined && { [`browser_engine_matmul_gflops_t${threads}`]: b.engine_matmul_gflops, [`browser_fused_multiply_add_t${threads}`]: b.fused_multiply_add ? 1 : 0 }),
      [`browser_decode_tok_s_t${threads}`]: b.decode.tok_s,
      [`browser_train_tok_s_t${threads}`]: b.train.tok_s,
      [`browser_decode_vs_matmul_t${threads}`]: b.decode.vs_matmul,
      [`browser_train_vs_matmul_t${threads}`]: b.train.vs_matmul,
    });
    const t = torch[threads];
    if (t && !t.error) {
      Object.assign(summary, {
        [`torch_decode_tok_s_t${threads}`]: Number(t.decode_tok_s),
        [`torch_train_tok_s_t${threads}`]: Number(t.train_tok_s),
        [`vs_torch_decode_t${threads}`]: b.decode.tok_s / Number(t.decode_tok_s),
        [`vs_torch_train_t${threads}`]: b.train.tok_s / Number(t.train_tok_s),
      });
    }
  }
  const one = counts[0];
  if (engineOnOne) {
    Object.assign(summary, {
      [`browser_engine_matmul_gflops_t${most}_engine_t1`]: engineOnOne.engine_matmul_gflops ?? 0,
      [`browser_decode_tok_s_t${most}_engine_t1`]: engineOnOne.decode.tok_s,
      [`browser_train_tok_s_t${most}_engine_t1`]: engineOnOne.train.tok_s,
      [`engine_threads_gain_decode_t${most}`]: browser[most].decode.tok_s / engineOnOne.decode.tok_s,
      [`engine_threads_gain_train_t${most}`]: browser[most].train.tok_s / engineOnOne.train.tok_s,
    });
  }
  if (most !== one) {
    summary[`threads_speedup_matmul_t${most}`] = browser[most].matmul_gflops / browser[one].matmul_gflops;
    summary[`threads_speedup_decode_t${most}`] = browser[most].decode.tok_s / browser[one].decode.tok_s;
    summary[`threads_speedup_train_t${most}`] = browser[most].train.tok_s / browser[one].train.tok_s;
  }
  summary.threads_wasm = most;
  Object.assign(summary, { node_matmul_gflops: node.matmul_gflops, node_decode_tok_s: node.decode.tok_s, node_train_tok_s: node.train.tok_s });
  writeResult('speed', summary, details, machineInfo({ backend: 'wasm (browser: threaded SIMD; Node: SIMD)' }));
}
