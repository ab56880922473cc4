/**
 * The command line loads a Hugging Face model by repository id (`--model hf:owner/name`) from a Hub
 * at the address HF_ENDPOINT gives: a real HTTP server on loopback serves a small Qwen3-shaped folder
 * (random weights, Qwen3's real tokenizer and chat template) under the Hub's URL layout. The first
 * answer downloads it with progress; the second reads the cache and asks the server for nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelSourceOf } from '../../src/cli/model-source';
import { MemoryFiles } from '../../src/core/files';
import { saveModelFolder } from '../../src/core/model/checkpoint';
import { parseModelConfig } from '../../src/core/model/config';
import { qwen3Tokenizer, randomWeights } from '../fixtures/hf-models';

const ROOT = join(import.meta.dirname, '..', '..');

const files = new Map<string, Uint8Array>();
const requests: { method: string; path: string }[] = [];
let server: Server;
let endpoint = '';
const cache = mkdtempSync(join(os.tmpdir(), 'cli-hub-'));

function handle(req: IncomingMessage, res: ServerResponse): void {
  requests.push({ method: req.method ?? '', path: req.url ?? '' });
  const m = /^\/lab\/qwen3-mini\/resolve\/main\/(.+)$/.exec(req.url ?? '');
  const bytes = m ? files.get(decodeURIComponent(m[1]!)) : undefined;
  if (!bytes) {
    res.writeHead(404).end('Entry not found');
    return;
  }
  res.writeHead(200, { 'Content-Length': bytes.length, ETag: `"${bytes.length}"` });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, HF_ENDPOINT: endpoint, THOR_LAB_CACHE: cache } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  const tokenizer = qwen3Tokenizer();
  const config = parseModelConfig({ model_type: 'qwen3', hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, vocab_size: tokenizer.vocabSize, max_position_embeddings: 512, tie_word_embeddings: true, eos_token_id: 151645 });
  const weights = randomWeights(config, 7);
  const folder = new MemoryFiles('qwen3-mini');
  await saveModelFolder(folder, { config, weights, tokenizer });
  for (const [name, bytes] of folder.files) files.set(name, bytes);
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(cache, { recursive: true, force: true });
});

describe('cli --model hf:owner/name', () => {
  it('reads a model flag as a Hub repository, a Hub address or a folder', () => {
    expect(modelSourceOf('hf:Qwen/Qwen2.5-0.5B-Instruct@v1')).toEqual({ kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B-Instruct', revision: 'v1' });
    expect(modelSourceOf('https://hf-mirror.com/Qwen/Qwen3-0.6B')).toEqual({ kind: 'hub', repo: 'https://hf-mirror.com/Qwen/Qwen3-0.6B' });
    expect(modelSourceOf('models/qwen')).toEqual({ kind: 'path', path: 'models/qwen' });
    expect(modelSourceOf(undefined)).toEqual({ kind: 'shipped' });
  });

  it('downloads the model with progress and answers in its chat template; a second answer reads the cache', async () => {
    const weightsGets = () => requests.filter((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors')).length;
    const first = await cli(['infer', '--model', 'hf:lab/qwen3-mini', '--question', 'What is 2+3?', '--max-tokens', '4', '--json']);
    expect(first.stderr.replace(/\n[^\n]{300,}/g, '')).not.toMatch(/Error/);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/download .* MB, \d+\/\d+ files/);
    expect(weightsGets()).toBe(1);
    const record = JSON.parse(first.stdout.trim().split('\n').at(-1)!) as { question: string; responseTokens?: number };
    expect(record.question).toBe('What is 2+3?');

    const before = requests.length;
    const second = await cli(['infer', '--model', 'hf:lab/qwen3-mini', '--question', 'What is 2+3?', '--max-tokens', '4', '--json']);
    expect(second.code).toBe(0);
    expect(weightsGets()).toBe(1);
    expect(requests.length).toBe(before);
  }, 240_000);

  it('names the repository and the address of a file the Hub does not have', async () => {
    const r = await cli(['infer', '--model', 'hf:lab/no-such-model', '--question', 'What is 2+3?', '--max-tokens', '4']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('/lab/no-such-model/resolve/main/config.json');
    expect(r.stderr).toMatch(/404/);
  }, 120_000);
});
