/**
 * A Hugging Face model in headless Chromium, from a Hub on loopback: a node:http server serves a
 * small random-weight Qwen3 folder (written by the lab's own saveModelFolder, with Qwen3's real
 * tokenizer and chat template) under the Hub's layout, /{repo}/resolve/{revision}/{file}, with CORS,
 * HEAD and Range, and counts what it is asked. The page, pointed at it by the Model panel's Hub
 * address, loads the model by its repository id with the memory budget and the download shown,
 * answers a question with its exact prompt visible, loads it again after a reload without one
 * request, and refuses a model too big for the wasm heap with the numbers while the app goes on.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { eventually, launchBrowser, labTabs, screenshot } from './browser';
import { MemoryFiles } from '../../src/core/files';
import { saveModelFolder } from '../../src/core/model/checkpoint';
import { parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { qwen3Tokenizer, randomWeights } from '../fixtures/hf-models';

const tokenizer = qwen3Tokenizer(JSON.stringify({ eos_token_id: [151645, 151643], temperature: 0.6, top_k: 20, top_p: 0.95 }));

/** A Qwen3 decoder small enough to answer in a second on wasm, over Qwen3's whole vocabulary. */
const mini: ModelConfig = parseModelConfig({
  model_type: 'qwen3',
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  vocab_size: tokenizer.vocabSize,
  max_position_embeddings: 512,
  tie_word_embeddings: true,
  eos_token_id: 151645,
});

/** Llama-2-7B's shape: 6.7 B parameters, 27 GB of float32 weights against the wasm heap's 4.29 GB. */
const TOO_BIG = { model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000, max_position_embeddings: 4096 };
const TOO_BIG_WEIGHT_BYTES = 26_953_662_464;

/** repo → file → bytes; the too-big repository's weights are only sized (HEAD), never sent. */
const repos = new Map<string, Map<string, Uint8Array>>();
const requests: { method: string; repo: string; file: string; status: number }[] = [];
let server: Server;
let hubUrl = '';

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range, ETag, Accept-Ranges',
  // The page is cross-origin isolated (COEP require-corp): answers from another origin must allow it.
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...CORS, 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Allow-Headers': 'Range, If-Range', 'Access-Control-Max-Age': '600' }).end();
    return;
  }
  const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(decodeURI(req.url ?? ''));
  const entry = { method: req.method ?? '', repo: m?.[1] ?? '', file: m?.[3] ?? '', status: 200 };
  requests.push(entry);
  if (m?.[1] === 'lab/too-big' && entry.file === 'model.safetensors' && req.method === 'HEAD') {
    res.writeHead(200, { ...CORS, 'Content-Length': TOO_BIG_WEIGHT_BYTES }).end();
    return;
  }
  const bytes = m ? repos.get(m[1])?.get(entry.file) : undefined;
  if (!bytes) {
    entry.status = 404;
    res.writeHead(404, CORS).end('Entry not found');
    return;
  }
  const etag = `"${bytes.length}"`;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = range && Number(range[1]) < bytes.length ? Number(range[1]) : 0;
  if (start > 0) {
    entry.status = 206;
    res.writeHead(206, { ...CORS, 'Content-Length': bytes.length - start, 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`, ETag: etag, 'Accept-Ranges': 'bytes' });
  } else {
    res.writeHead(200, { ...CORS, 'Content-Length': bytes.length, ETag: etag, 'Accept-Ranges': 'bytes' });
  }
  res.end(req.method === 'HEAD' ? undefined : bytes.subarray(start));
}

const gets = (repo: string, file?: string, from = 0) => requests.slice(from).filter((r) => r.method === 'GET' && r.repo === repo && (file === undefined || r.file === file));

describe('a Hugging Face model from a Hub, in headless Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const { panel, openTab } = labTabs(() => page);
  const appUrl = () => new URL('?backend=wasm#model', inject('appUrl')).href;
  const shippedReady = () => page.waitForFunction(() => performance.getEntriesByName('thor:model-ready').length > 0, null, { timeout: 60_000 });
  const model = () => panel('model');

  beforeAll(async () => {
    const folder = new MemoryFiles('qwen3-mini');
    await saveModelFolder(folder, { config: mini, weights: randomWeights(mini, 11), tokenizer });
    repos.set('lab/qwen3-mini', folder.files);
    const big = new Map<string, Uint8Array>();
    big.set('config.json', new TextEncoder().encode(JSON.stringify(TOO_BIG)));
    big.set('tokenizer.json', folder.files.get('tokenizer.json')!);
    repos.set('lab/too-big', big);
    server = createServer(handle);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    context = await launchBrowser();
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(appUrl());
    await shippedReady();
  });

  afterAll(async () => {
    await context?.close();
    await new Promise((ok) => server?.close(ok));
  });

  it('loads the model by its id with the memory budget and the download shown, and summarises it', async () => {
    await openTab('model');
    // float16 weights need WebGPU: on wasm the choice is there, off, and says why.
    const weights = model().getByTestId('hub-weights');
    expect(await weights.inputValue()).toBe('f32');
    expect(await weights.locator('option[value="f16"]').getAttribute('disabled')).not.toBeNull();
    expect(await model().getByTestId('hub-card').textContent()).toContain('float16 weights need the WebGPU backend; this lab runs on wasm');
    await model().getByTestId('hub-url').fill(hubUrl);
    await model().getByTestId('hub-repo').fill('lab/qwen3-mini');
    await model().getByTestId('hub-load').click();
    await eventually(() => model().getByTestId('model-label').textContent(), 60_000).toBe('lab/qwen3-mini@main');

    const weightBytes = repos.get('lab/qwen3-mini')!.get('model.safetensors')!.length;
    expect(gets('lab/qwen3-mini', 'model.safetensors')).toHaveLength(1);
    // The budget came before the weights: it is the engine's estimate from config.json, against the wasm heap.
    expect(await model().getByTestId('hub-budget-verdict').textContent()).toBe('fits');
    const budget = (await model().getByTestId('hub-budget').textContent()) ?? '';
    expect(budget).toContain('limit: 4.29 GB in all (the wasm heap');
    expect(budget).toMatch(/weights \(float32\)\s*9\.7 MB/);
    expect(budget).toContain(`${(tokenizer.vocabSize * 16 + 2 * 16 * 16 + 2 * 8 * 16 + 3 * 16 * 32 + 2 * 8 + 3 * 16).toLocaleString('en-US')} parameters`);
    // The download ended with every file whole; its bytes include the weights.
    const figures = (await model().getByTestId('hub-download-figures').textContent()) ?? '';
    expect(figures).toMatch(/^100%: /);
    expect(figures).toContain('5 of 5 files');
    expect(figures).toContain('done');
    const total = Number(/of ([\d.]+) MB/.exec(figures)?.[1]) * 1e6;
    expect(total).toBeGreaterThan(weightBytes);

    expect(await model().getByTestId('model-arch').textContent()).toMatch(/^qwen3, 1 layers, hidden 16, 2 heads \(1 key\/value\), context 512/);
    expect(await model().getByTestId('model-vocab').textContent()).toBe(`${tokenizer.vocabSize.toLocaleString('en-US')} ids (Hugging Face tokenizer.json)`);
    expect(await model().getByTestId('model-prompt-format').textContent()).toContain('its own chat template');
    expect(await model().getByTestId('model-stops').textContent()).toBe('<|im_end|> (151645), <|endoftext|> (151643)');
    await screenshot(page, 'hub-model-loaded');

    // A Hugging Face model trains an adapter by default; the Overview shows the wasm heap.
    await openTab('train');
    expect(await panel('train').getByTestId('knob-lora.enabled').isChecked()).toBe(true);
    expect(await panel('train').getByTestId('lora-module-q_proj').isChecked()).toBe(true);
    expect(await panel('train').getByTestId('lora-module-gate_proj').isChecked()).toBe(false);
    // rank 8 × ((16 + 16) for q_proj + (16 + 8) for v_proj) in one layer
    expect(await panel('train').getByTestId('lora-size').textContent()).toMatch(/^Adapter: 448 trainable parameters \(0\.02% of the model's 2,429,072\)/);
    await panel('train').getByTestId('lora-module-k_proj').check();
    expect(await panel('train').getByTestId('lora-size').textContent()).toMatch(/^Adapter: 640 trainable parameters/);
    expect(await panel('train').getByTestId('settings-valid').count()).toBe(1);
    await screenshot(page, 'hub-model-train-lora');
    await openTab('overview');
    await eventually(() => panel('overview').getByTestId('memory-heap').textContent(), 15_000).toMatch(/MB/);
  });

  it('answers a question with the exact prompt shown, special tokens marked', async () => {
    await openTab('inference');
    const inference = panel('inference');
    await inference.getByTestId('question').fill('What is 6*7?');
    await inference.getByTestId('infer-rollout.maxResponseTokens').fill('4');
    await inference.getByTestId('ask').click();
    await eventually(() => inference.getByTestId('answer-stats').textContent(), 60_000).toMatch(/\d+ tokens in [\d.]+ s/);
    await inference.getByTestId('prompt-view').locator('summary').click();
    const prompt = (await inference.getByTestId('prompt-text').textContent()) ?? '';
    expect(prompt.startsWith('<|im_start|>user\n')).toBe(true);
    expect(prompt).toContain('What is 6*7?<|im_end|>\n<|im_start|>assistant\n');
    expect(await inference.getByTestId('prompt-text').locator('mark').allTextContents()).toEqual(['<|im_start|>', '<|im_end|>', '<|im_start|>']);
  });

  it('trains a LoRA adapter on the Qwen3 model with GRPO from the Train panel, and stores only the adapter', async () => {
    await openTab('train');
    const train = panel('train');
    expect(await train.getByTestId('knob-lora.enabled').isChecked()).toBe(true);
    const knobs = { steps: '1', 'rollout.groupSize': '2', 'rollout.promptsPerStep': '1', 'rollout.maxResponseTokens': '24', 'stepLevel.maxPrefixes': '1', 'stepLevel.groupSize': '2', 'stepLevel.suffixTokens': '8', 'eval.samples': '1', 'eval.maxQuestions': '1' };
    for (const [path, value] of Object.entries(knobs)) await train.getByTestId(`knob-${path}`).fill(value);
    await train.getByTestId('run-name').fill('qwen3 lora');
    await train.getByTestId('train-start').click();
    await eventually(() => train.getByTestId('train-state').textContent(), 300_000).toBe('finished');
    expect(await train.getByTestId('train-last').textContent()).toMatch(/step 1: reward \d/);
    // The run keeps the adapter (hundreds of parameters), not the 2.4M-parameter model.
    await openTab('runs');
    const row = panel('runs').getByTestId('run-row').filter({ hasText: 'qwen3 lora' });
    await eventually(() => row.count()).toBe(1);
    expect(await row.locator('td').nth(4).textContent()).toMatch(/^[\d.]+ (B|kB)$/);
    await openTab('rollouts');
    await eventually(() => panel('rollouts').getByTestId('trajectory').count(), 30_000).toBeGreaterThanOrEqual(2);
    expect(await panel('rollouts').getByTestId('rollouts-summary').textContent()).toMatch(/tokens shown as ids \(the run keeps no tokenizer: a LoRA run keeps its adapter only\)/);
    expect(await page.getByTestId('error-banner').count()).toBe(0);
    await screenshot(page, 'hub-model-lora-trained');
  });

  it('loads it again after a reload from this browser, without one request', async () => {
    const from = requests.length;
    await page.reload();
    await shippedReady();
    await openTab('model');
    // The Hub form was remembered.
    expect(await model().getByTestId('hub-url').inputValue()).toBe(hubUrl);
    expect(await model().getByTestId('hub-repo').inputValue()).toBe('lab/qwen3-mini');
    await model().getByTestId('hub-load').click();
    await eventually(() => model().getByTestId('model-label').textContent(), 60_000).toBe('lab/qwen3-mini@main');
    await model().getByTestId('hub-cached').waitFor();
    expect(requests.slice(from)).toEqual([]);
  });

  it('refuses a model too big for the wasm heap with the numbers, and the app goes on', async () => {
    const from = requests.length;
    await model().getByTestId('hub-repo').fill('lab/too-big');
    await model().getByTestId('hub-load').click();
    const error = model().getByTestId('hub-error');
    await eventually(() => error.textContent(), 60_000).toMatch(/does not fit/);
    const text = (await error.textContent()) ?? '';
    expect(text).toContain('lab/too-big@main/config.json');
    expect(text).toContain('against the 4.29 GB limit of the wasm heap');
    expect(text).toContain('No setting fits: the weights alone need');
    expect(text).toContain('26.95 GB in float32');
    expect(await model().getByTestId('hub-budget-verdict').textContent()).toBe('does not fit');
    // Only config.json and the tokenizer travelled; the weights were sized, never asked for.
    expect(gets('lab/too-big', 'model.safetensors', from)).toEqual([]);
    expect(requests.slice(from).some((r) => r.method === 'HEAD' && r.file === 'model.safetensors')).toBe(true);
    // The model loaded before stays, and the lab takes the next job.
    expect(await model().getByTestId('model-label').textContent()).toBe('lab/qwen3-mini@main');
    await eventually(() => model().getByTestId('hub-load').isEnabled()).toBe(true);
    await screenshot(page, 'hub-model-refused');
  });

  it('loads the same files dropped on the panel, with the budget before the weights are read', async () => {
    // The page fetches the folder's files from the Hub and drops them, as a user drops files from disk.
    const names = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];
    await page.evaluate(
      async ({ base, names }) => {
        const transfer = new DataTransfer();
        for (const name of names) {
          const blob = await (await fetch(`${base}/lab/qwen3-mini/resolve/main/${name}`)).blob();
          transfer.items.add(new File([blob], name));
        }
        document.querySelector('[data-testid="model-drop"]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      },
      { base: hubUrl, names },
    );
    await eventually(() => model().getByText('Folder').locator('xpath=following-sibling::dd[1]').textContent()).toBe('dropped files');
    await model().getByTestId('load-folder').click();
    await eventually(() => model().getByTestId('model-label').textContent(), 60_000).toBe('dropped files');
    expect(await model().getByTestId('folder-budget-verdict').textContent()).toBe('fits');
    expect(await model().getByTestId('model-stops').textContent()).toBe('<|im_end|> (151645), <|endoftext|> (151643)');
    expect(pageErrors).toEqual([]);
  });
});
