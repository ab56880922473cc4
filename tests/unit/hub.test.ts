/**
 * Loading model folders from a Hub: a real HTTP server on loopback serves a small random-weight
 * model under the Hub's layout (/<repo>/resolve/<revision>/<file>), with HEAD, Range requests and
 * ETags, counts what it is asked, and can cut a response after some bytes.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { MemoryFiles } from '../../src/core/files';
import { MemoryHubCache } from '../../src/core/hub/cache';
import { hubCacheKey, hubFileUrl, HubModel, parseHubRef, type DownloadProgress, type HubRef } from '../../src/core/hub/hub';
import type { LabEvent } from '../../src/core/lab/api';
import { CONTROL } from '../../src/core/lab/control';
import { LabService } from '../../src/core/lab/service';
import { loadModelFolder, saveModelFolder } from '../../src/core/model/checkpoint';
import { parameterShapes, parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { loadModelStreaming } from '../../src/core/model/load';
import { estimateMemory, gb } from '../../src/core/model/memory';
import { Transformer } from '../../src/core/model/transformer';
import type { WeightMap } from '../../src/core/model/weights';
import { HFTokenizer } from '../../src/core/tokenizer/hf';
import { folderSink, folderSource } from '../../src/node/files';
import { DiskHubCache } from '../../src/node/hub-cache';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';
import { randomWeights } from '../fixtures/hf-models';

const tmp = mkdtempSync(join(tmpdir(), 'thor-hub-'));

/** A tiny HF tokenizer (BPE over single characters, no merges): 42 tokens. */
function tinyTokenizer(): HFTokenizer {
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  for (const c of ' abcdefghijklmnopqrstuvwxyz0123456789.,?!') vocab[c] = Object.keys(vocab).length;
  const json = {
    version: '1.0',
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
  return new HFTokenizer({ tokenizer: JSON.stringify(json), config: JSON.stringify({ eos_token: '<|endoftext|>' }) });
}

const config: ModelConfig = parseModelConfig({
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 64,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
});

/** Repositories the server has: repo → file → bytes. */
const repos = new Map<string, Map<string, Uint8Array>>();
const weights = randomWeights(config, 7);

interface Served {
  method: string;
  file: string;
  range?: string;
  status: number;
}
const log: Served[] = [];
/** file name → bytes after which the next GET of it is cut (the socket closed), once. */
const cuts = new Map<string, number>();
let server: Server;
let base = '';

/** The token of the gated repository, and the Authorization headers its weights' CDN host was sent. */
const GATED_TOKEN = 'hf_secret_token';
const cdnAuthorization: (string | undefined)[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  // A gated repository, as the Hub serves one: its files need the token; its weights redirect to a CDN host.
  const cdn = /^\/cdn\/(.+)$/.exec(req.url ?? '');
  if (cdn) cdnAuthorization.push(req.headers.authorization);
  if (!cdn && (req.url ?? '').startsWith('/lab/gated/') && req.headers.authorization !== `Bearer ${GATED_TOKEN}`) {
    res.writeHead(401, 'Unauthorized').end('Access to this model is restricted');
    return;
  }
  if (!cdn && (req.url ?? '').startsWith('/lab/gated/') && /\.safetensors$/.test(req.url ?? '') && req.method === 'GET') {
    res.writeHead(302, { location: `http://localhost:${(server.address() as AddressInfo).port}/cdn${req.url}` }).end();
    return;
  }
  const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(decodeURI(cdn ? `/${cdn[1]}` : (req.url ?? '')));
  const file = m?.[3] ?? '';
  const bytes = m ? repos.get(m[1])?.get(file) : undefined;
  const entry: Served = { method: req.method ?? '', file, range: req.headers.range, status: 200 };
  log.push(entry);
  if (!bytes) {
    entry.status = 404;
    res.writeHead(404).end('Entry not found');
    return;
  }
  const etag = `"${bytes.length}-${bytes[bytes.length - 1]}"`;
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (range && (ifRange === undefined || ifRange === etag)) {
    start = Number(range[1]);
    if (start >= bytes.length) {
      entry.status = 416;
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` }).end();
      return;
    }
    entry.status = 206;
    res.writeHead(206, { 'Content-Length': bytes.length - start, 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`, ETag: etag, 'Accept-Ranges': 'bytes' });
  } else {
    res.writeHead(200, { 'Content-Length': bytes.length, ETag: etag, 'Accept-Ranges': 'bytes' });
  }
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  // A slow download (a large file on a slow line): 4 kB every 20 ms.
  if (m?.[1] === 'lab/slow' && req.method === 'GET' && file.endsWith('.safetensors')) {
    let at = start;
    const next = () => {
      if (res.destroyed) return;
      if (at >= bytes.length) return void res.end();
      res.write(bytes.subarray(at, at + 4096));
      at += 4096;
      setTimeout(next, 20);
    };
    next();
    return;
  }
  const cut = cuts.get(file);
  if (cut !== undefined && req.method === 'GET') {
    cuts.delete(file);
    // The bytes go out, then the connection drops (a moment later, so the client has read them).
    res.write(bytes.subarray(start, start + cut), () => setTimeout(() => res.socket?.destroy(), 100));
    return;
  }
  res.end(bytes.subarray(start));
}

async function modelFolder(options: { shardBytes?: number; drop?: string[] } = {}): Promise<Map<string, Uint8Array>> {
  const files = new MemoryFiles('fixture');
  await saveModelFolder(files, { config, weights, tokenizer: tinyTokenizer() }, { shardBytes: options.shardBytes });
  for (const name of options.drop ?? []) files.files.delete(name);
  return files.files;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  repos.set('lab/tiny', await modelFolder());
  repos.set('lab/tiny-sharded', await modelFolder({ shardBytes: 20_000 }));
  repos.set('lab/no-tokenizer', await modelFolder({ drop: ['tokenizer.json'] }));
  repos.set('lab/cut', await modelFolder());
  repos.set('lab/cut-twice', await modelFolder());
  repos.set('lab/service', await modelFolder());
  repos.set('lab/gated', await modelFolder());
  repos.set('lab/slow', await modelFolder());
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(tmp, { recursive: true, force: true });
});

const since = (n: number) => log.slice(n);
const isWeights = (f: string) => f.endsWith('.safetensors');

function expectWeightsEqual(a: WeightMap, b: WeightMap): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) expect(Array.from(b.get(name)!.data), name).toEqual(Array.from(t.data));
}

describe('Hub references', () => {
  it('reads repo ids and addresses, and builds the resolve layout', () => {
    const ref = parseHubRef('Qwen/Qwen2.5-0.5B-Instruct');
    expect(ref).toEqual({ repo: 'Qwen/Qwen2.5-0.5B-Instruct', revision: 'main', baseUrl: 'https://huggingface.co' });
    expect(hubFileUrl(ref, 'config.json')).toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/resolve/main/config.json');
    expect(parseHubRef('Qwen/Qwen2.5-0.5B-Instruct', { baseUrl: 'https://hf-mirror.com/', revision: 'v1.0' })).toEqual({ repo: 'Qwen/Qwen2.5-0.5B-Instruct', revision: 'v1.0', baseUrl: 'https://hf-mirror.com' });
    expect(parseHubRef('https://hf-mirror.com/HuggingFaceTB/SmolLM2-135M/tree/7b1c2a3')).toEqual({ repo: 'HuggingFaceTB/SmolLM2-135M', revision: '7b1c2a3', baseUrl: 'https://hf-mirror.com' });
    expect(() => parseHubRef('not a repo')).toThrow(/owner\/name/);
  });
});

describe('downloading from a Hub', () => {
  const cacheDir = join(tmp, 'cache');
  const ref: () => HubRef = () => parseHubRef('lab/tiny', { baseUrl: base });

  it('downloads every file with progress whose totals add up, and loads the same weights', async () => {
    const served = repos.get('lab/tiny')!;
    const start = log.length;
    const hub = new HubModel(ref(), { cache: new DiskHubCache(cacheDir) });
    const events: DownloadProgress[] = [];
    await hub.download((p) => events.push(p));
    const sizes = [...served.values()].reduce((a, b) => a + b.length, 0);
    const last = events[events.length - 1];
    expect(last.total).toBe(sizes);
    expect(last.done).toBe(sizes);
    expect(last.etaSeconds).toBe(0);
    expect(last.bytesPerSecond).toBeGreaterThan(0);
    // Every event's overall figures are the sum of the files' figures so far; each file ends at its size.
    for (const name of served.keys()) {
      const ofFile = events.filter((e) => e.file === name);
      if (ofFile.length === 0) continue;
      expect(ofFile[ofFile.length - 1].fileDone, name).toBe(served.get(name)!.length);
      expect(ofFile[ofFile.length - 1].fileTotal, name).toBe(served.get(name)!.length);
    }
    for (let i = 1; i < events.length; i++) expect(events[i].done).toBeGreaterThanOrEqual(events[i - 1].done);
    // Optional files the repository lacks were asked for once and are not listed.
    expect(await hub.list()).toEqual(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
    expect(since(start).filter((s) => s.status === 404).map((s) => s.file).sort()).toEqual(['chat_template.jinja', 'generation_config.json']);
    expect(since(start).filter((s) => s.method === 'GET' && isWeights(s.file))).toHaveLength(1);

    const fromHub = await loadModelFolder(hub);
    expectWeightsEqual(weights, fromHub.weights);
    expect(fromHub.tokenizer.vocabSize).toBe(42);
  });

  it('loads again from the cache without a single request', async () => {
    const start = log.length;
    const hub = new HubModel(ref(), { cache: new DiskHubCache(cacheDir) });
    const events: DownloadProgress[] = [];
    await hub.download((p) => events.push(p));
    const folder = await loadModelFolder(hub);
    expectWeightsEqual(weights, folder.weights);
    expect(since(start).filter((s) => isWeights(s.file))).toEqual([]);
    expect(since(start)).toEqual([]);
    expect(events).toEqual([]);
  });

  it('reads a sharded repository through its index', async () => {
    const served = repos.get('lab/tiny-sharded')!;
    const shards = [...served.keys()].filter(isWeights).sort();
    expect(shards.length).toBeGreaterThan(1);
    const hub = new HubModel(parseHubRef('lab/tiny-sharded', { baseUrl: base }), { cache: new MemoryHubCache() });
    expect((await hub.list()).filter(isWeights).sort()).toEqual(shards);
    const folder = await loadModelFolder(hub);
    expectWeightsEqual(weights, folder.weights);
  });

  it('resumes a cut download with a Range request and ends byte-identical; a half file is never complete', async () => {
    const served = repos.get('lab/cut')!.get('model.safetensors')!;
    const cache = new DiskHubCache(join(tmp, 'cut-cache'));
    const r = parseHubRef('lab/cut', { baseUrl: base });
    const key = hubCacheKey(r, 'model.safetensors');
    cuts.set('model.safetensors', 50_000);
    const first = new HubModel(r, { cache, retries: 0, writeBytes: 4096 });
    const err = await first.download().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabError);
    expect((err as Error).message).toMatch(/download of .*lab\/cut\/resolve\/main\/model\.safetensors stopped/);
    expect((err as Error).message).toContain(`expected ${served.length} bytes`);
    // The cache holds a marked partial, not a file.
    expect(await cache.completeSize(key)).toBeUndefined();
    expect(existsSync(join(cache.dir, ...key.split('/')))).toBe(false);
    const partial = await cache.partial(key);
    expect(partial!.total).toBe(served.length);
    expect(partial!.bytes).toBeGreaterThan(0);
    expect(partial!.bytes).toBeLessThanOrEqual(50_000);
    await expect(cache.read(key)).rejects.toThrow(/not complete.*expected \d+ bytes, found \d+ bytes/);

    const start = log.length;
    const again = new HubModel(r, { cache });
    await again.download();
    const weightRequests = since(start).filter((s) => s.method === 'GET' && isWeights(s.file));
    expect(weightRequests).toEqual([{ method: 'GET', file: 'model.safetensors', range: `bytes=${partial!.bytes}-`, status: 206 }]);
    expect(Buffer.from(await cache.read(key)).equals(Buffer.from(served))).toBe(true);
    expect(await cache.partial(key)).toBeUndefined();
    expectWeightsEqual(weights, (await loadModelFolder(again)).weights);
  });

  it('resumes within one download when the connection is cut (retries)', async () => {
    const served = repos.get('lab/cut-twice')!.get('model.safetensors')!;
    const cache = new MemoryHubCache();
    const r = parseHubRef('lab/cut-twice', { baseUrl: base });
    cuts.set('model.safetensors', 30_000);
    const start = log.length;
    await new HubModel(r, { cache, writeBytes: 1024 }).download();
    const gets = since(start).filter((s) => s.method === 'GET' && isWeights(s.file));
    expect(gets.map((g) => g.status)).toEqual([200, 206]);
    expect(gets[1].range).toMatch(/^bytes=\d+-$/);
    expect(Buffer.from(await cache.read(hubCacheKey(r, 'model.safetensors'))).equals(Buffer.from(served))).toBe(true);
  });

  it('names the URL and the status when a required file is missing', async () => {
    const hub = new HubModel(parseHubRef('lab/no-tokenizer', { baseUrl: base }), { cache: new MemoryHubCache() });
    const err = await hub.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabError);
    expect((err as Error).message).toContain(`HTTP 404 Not Found for ${base}/lab/no-tokenizer/resolve/main/tokenizer.json`);
    const missing = new HubModel(parseHubRef('lab/does-not-exist', { baseUrl: base }), { cache: new MemoryHubCache() });
    await expect(missing.list()).rejects.toThrow(`${base}/lab/does-not-exist/resolve/main/config.json`);
  });

  it('needs a token for a gated repository, and sends it to the Hub but not to the host its weights redirect to', async () => {
    const ref = parseHubRef('lab/gated', { baseUrl: base });
    const without = await new HubModel(ref, { cache: new MemoryHubCache() }).list().catch((e: unknown) => e);
    expect((without as Error).message).toMatch(/HTTP 401 Unauthorized for .*lab\/gated\/resolve\/main\/config\.json.*gated or private: accept its licence on the Hub and give an access token/);
    const wrong = await new HubModel(ref, { cache: new MemoryHubCache(), token: 'hf_wrong' }).list().catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/HTTP 401/);
    const hub = new HubModel(ref, { cache: new MemoryHubCache(), token: GATED_TOKEN });
    const folder = await loadModelFolder(hub);
    expectWeightsEqual(folder.weights, weights);
    expect(cdnAuthorization.length).toBeGreaterThan(0);
    expect(cdnAuthorization.every((h) => h === undefined)).toBe(true);
  });
});

describe('streaming load', () => {
  it('reads a folder tensor by tensor into the same model, and leaks no tensor', async () => {
    const dir = join(tmp, 'folder');
    await saveModelFolder(folderSink(dir), { config, weights, tokenizer: tinyTokenizer() }, { shardBytes: 30_000 });
    const before = tf.memory().numTensors;
    const { model, tokenizer } = await loadModelStreaming(folderSource(dir));
    const reference = Transformer.fromWeights(config, weights);
    const ids = tf.tensor2d([tokenizer.encode('hello world 42')], undefined, 'int32');
    const [a, b] = [model.logits(ids), reference.logits(ids)];
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    expect(model.trainableVariables().map((v) => model.nameOf(v))).toEqual([...parameterShapes(config).keys()]);
    tf.dispose([ids, a, b]);
    model.dispose();
    reference.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the lab service and Hub models', () => {
  it('downloads with progress events and loads; refuses a model over the memory limit before any weights are asked for', async () => {
    const store = new DiskRunStore(join(tmp, 'runs'));
    const cacheDir = join(tmp, 'service-cache');
    const before = tf.memory().numTensors;
    let limit = 1e9;
    const lab = new LabService({ ...nodeLabEnv({ store, hubCacheDir: cacheDir }), deviceLimits: () => ({ backend: 'wasm', totalBytes: limit, source: 'a test limit' }) });

    limit = 50_000; // below the weights' 4 bytes × parameters
    let start = log.length;
    const refused = await lab.loadModel({ kind: 'hub', repo: 'lab/service', baseUrl: base }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LabError);
    expect((refused as Error).message).toMatch(/config\.json, field "infer: batch 8, context 256": the model does not fit: needs about [\d.]+ MB \(weights \(f32\) 83\.1 kB, .*\) against the 50\.0 kB limit of a test limit/);
    const e = estimateMemory(config, { mode: 'infer', batch: 8, context: 256 }, 'wasm');
    expect(gb(e.weights)).toBe('83.1 kB');
    expect((refused as Error).message).toContain(`No setting fits: the weights alone need ${gb(e.weights + e.packedWeights)} (83.1 kB in float32 and ${gb(e.packedWeights)} of their packed copies) against the 50.0 kB limit`);
    expect(since(start).filter((s) => s.method === 'GET' && isWeights(s.file))).toEqual([]);

    limit = 1e9;
    start = log.length;
    const events: LabEvent[] = [];
    const summary = await lab.loadModel({ kind: 'hub', repo: 'lab/service', baseUrl: base }, (e) => events.push(e));
    expect(summary.origin).toBe('hub');
    expect(summary.parameters).toBe([...parameterShapes(config).values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0));
    const downloads = events.filter((e): e is Extract<LabEvent, { type: 'download' }> => e.type === 'download');
    const size = repos.get('lab/service')!.get('model.safetensors')!.length;
    expect(downloads[downloads.length - 1].progress.done).toBe(downloads[downloads.length - 1].progress.total);
    expect(downloads[downloads.length - 1].progress.total).toBeGreaterThanOrEqual(size);
    expect(since(start).filter((s) => s.method === 'GET' && isWeights(s.file))).toHaveLength(1);
    await lab.close();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops a download when asked, keeps the model it had, and goes on from the bytes kept', async () => {
    const lab = new LabService(nodeLabEnv({ store: new DiskRunStore(join(tmp, 'runs-stop')), hubCacheDir: join(tmp, 'stop-cache') }));
    await lab.loadModel({ kind: 'hub', repo: 'lab/service', baseUrl: base });
    let asked = false;
    const stopped = await lab
      .loadModel({ kind: 'hub', repo: 'lab/slow', baseUrl: base }, (e) => {
        if (e.type === 'download' && e.progress.done > 8192 && !asked) {
          asked = true;
          void lab.setControl(CONTROL.stop);
        }
      })
      .catch((e: unknown) => e);
    expect((stopped as LabError).message).toMatch(/^loading the model was stopped\. What was downloaded is kept/);
    expect((await lab.model())?.label).toBe('lab/service@main');
    const start = log.length;
    await lab.loadModel({ kind: 'hub', repo: 'lab/slow', baseUrl: base });
    expect((await lab.model())?.label).toBe('lab/slow@main');
    // The second load asked only for the rest of the weights.
    const again = since(start).filter((s) => s.method === 'GET' && isWeights(s.file));
    expect(again).toHaveLength(1);
    expect(again[0].range).toMatch(/^bytes=[1-9]\d*-$/);
    await lab.close();
  });
});
