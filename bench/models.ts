/**
 * `npm run bench -- models [--only qwen05b,smollm135m] [--backends wasm,webgpu] [--no-torch] [--dir DIR]`
 *
 * Published model shapes on the lab's backends (docs/models.md#what-fits-where): random F32 weights in
 * the shapes of Qwen2.5-0.5B and SmolLM2-135M, written as a model folder and loaded the way the lab
 * loads one (config.json and the memory budget first, then the weights tensor by tensor). For each
 * model and backend, in its own process so that its peak RSS is its own: load time, peak RSS, the
 * wasm heap, prefill of a 128-token prompt, greedy decoding at batch 1 with the KV cache, and LoRA
 * training steps (rank 8 on q_proj and v_proj, one row of 32 tokens), with the wasm heap they reached
 * against the memory budget's estimate of that step (`train_heap_over_estimate_*`). Then the same folder in
 * PyTorch eager on this CPU (bench/models_torch.py: prefill, decoding with its own KV cache, LoRA
 * steps), one process at a time, for the ratios.
 *
 * WebGPU runs only on a real GPU: SwiftShader (Vulkan on the CPU) is skipped with the reason. A model
 * the memory budget refuses gets null figures and the refusal's message. Random ids: the tokenizer
 * files are the shipped char tokenizer's, only there because a model folder needs one.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../src/core/backend';
import { Generation } from '../src/core/engine/generation';
import { LabError } from '../src/core/errors';
import { configToJSON, countParameters, parameterShapes, parseModelConfig, type ModelConfig } from '../src/core/model/config';
import { loadModelStreaming } from '../src/core/model/load';
import { LORA_DEFAULTS, LoraAdapter } from '../src/core/model/lora';
import { assertBudget, currentDeviceLimits, estimateMemory, type MemoryUse } from '../src/core/model/memory';
import type { Transformer } from '../src/core/model/transformer';
import { AdamW } from '../src/core/optim/adamw';
import { trainStep } from '../src/core/optim/step';
import { createRng } from '../src/core/rng';
import { findVulkanICD, releaseNodeWebGPU, selectNodeBackend } from '../src/node/backend';
import { folderSource } from '../src/node/files';
import { machineInfo, writeResult } from './lib';
import { timed } from '../src/core/engine/speed';

const here = dirname(fileURLToPath(import.meta.url));

/** The config.json fields that set each model's shapes (Qwen/Qwen2.5-0.5B, HuggingFaceTB/SmolLM2-135M on the Hub). */
const MODELS: Record<string, Record<string, unknown>> = {
  qwen05b: { model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rope_theta: 1000000, rms_norm_eps: 1e-6, tie_word_embeddings: true },
  smollm135m: { model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000, rms_norm_eps: 1e-5, tie_word_embeddings: true },
};

/** What is run on each model (the same for the lab and PyTorch). */
const PLAN = { prefillLength: 128, decodePrompt: 16, newTokens: 16, trainSeq: 32, trainSteps: 2, loraRank: 8, loraTargets: ['q_proj', 'v_proj'] as const, budgetContext: 1024 };

type Detail = Record<string, unknown>;

/** config.json, an F32 model.safetensors written in 32 MiB pieces (norms 1, other values uniform in ±0.035), and tokenizer files. */
function writeModel(dir: string, cfg: ModelConfig): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...configToJSON(cfg), torch_dtype: 'float32' }, null, 2));
  copyFileSync(join('public', 'models', 'thor-tiny', 'char_tokenizer.json'), join(dir, 'char_tokenizer.json'));
  const shapes = [...parameterShapes(cfg)];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const fd = openSync(join(dir, 'model.safetensors.tmp'), 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, json);
  const piece = new Float32Array(8 << 20);
  const rng = createRng(7);
  for (const [name, shape] of shapes) {
    let left = shape.reduce((a, b) => a * b, 1);
    const norm = name.endsWith('norm.weight');
    while (left > 0) {
      const count = Math.min(left, piece.length);
      if (norm) piece.fill(1, 0, count);
      else for (let i = 0; i < count; i++) piece[i] = (rng.next() * 2 - 1) * 0.035;
      writeSync(fd, new Uint8Array(piece.buffer, 0, count * 4));
      left -= count;
    }
  }
  closeSync(fd);
  // Renamed when complete: an interrupted write is not taken for a model next time.
  renameSync(join(dir, 'model.safetensors.tmp'), join(dir, 'model.safetensors'));
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return (m ? Number(m[1]) * 1024 : process.memoryUsage().rss) / 2 ** 20;
}

function wasmHeapMb(): number | undefined {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8 ? wasm.HEAPU8.buffer.byteLength / 2 ** 20 : undefined;
}

function randomRow(length: number, vocab: number, seed: number): number[] {
  const rng = createRng(seed);
  return Array.from({ length }, () => rng.int(0, vocab - 1));
}

/** Runs a Generation to its end; returns the seconds of its first step (prompt) and of the rest (one token each). */
async function generate(model: Transformer, prompt: number[], newTokens: number): Promise<{ firstS: number; restS: number }> {
  const gen = new Generation(model, [prompt], { maxNewTokens: newTokens, temperature: 0 });
  try {
    let firstS = 0;
    const [, totalS] = await timed(async () => {
      const [, s] = await timed(() => gen.step());
      firstS = s;
      while (gen.active > 0) await gen.step();
    });
    return { firstS, restS: totalS - firstS };
  } finally {
    gen.dispose();
  }
}

/** One model on one backend, in this process: prints `RESULT {json}`. */
async function child(name: string, backend: BackendName, dir: string): Promise<void> {
  const out: Detail = { model: name, backend };
  const info = await selectNodeBackend([backend]);
  out.adapter = info.adapter;
  const baseline = tf.memory().numTensors;
  const use: MemoryUse = { mode: 'infer', batch: 1, context: PLAN.budgetContext };
  let model: Transformer;
  try {
    const [loaded, loadS] = await timed(() => loadModelStreaming(folderSource(dir), { beforeWeights: (cfg) => void assertBudget(cfg, use, currentDeviceLimits(), `${dir}/config.json`) }));
    model = loaded.model;
    out.load_s = loadS;
  } catch (e) {
    out.refused = e instanceof LabError ? e.message : `load failed: ${(e as Error).message}`;
    out.peak_rss_mb = peakRssMb();
    console.log(`RESULT ${JSON.stringify(out)}`);
    return;
  }
  const log = (what: string) => console.error(`${name} ${backend}: ${what} (rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB, heap ${wasmHeapMb()?.toFixed(0) ?? '-'} MB)`);
  log(`loaded in ${(out.load_s as number).toFixed(1)} s`);
  out.parameters = model.numParameters();
  out.heap_after_load_mb = wasmHeapMb();
  const vocab = model.cfg.vocab_size;
  try {
    // The first products pack XNNPACK's copies of the Linear weights: timed apart.
    const [, firstS] = await timed(() => generate(model, randomRow(8, vocab, 1), 2));
    out.first_forward_s = firstS;
    out.heap_after_first_forward_mb = wasmHeapMb();
    log(`first forward ${firstS.toFixed(1)} s`);
    const pre = await generate(model, randomRow(PLAN.prefillLength, vocab, 2), 1);
    out.prefill_s = pre.firstS;
    out.prefill_tok_s = PLAN.prefillLength / pre.firstS;
    log(`prefill ${(out.prefill_tok_s as number).toFixed(1)} tok/s`);
    const dec = await generate(model, randomRow(PLAN.decodePrompt, vocab, 3), PLAN.newTokens);
    out.decode_s = dec.restS;
    out.decode_tok_s = (PLAN.newTokens - 1) / dec.restS;
    log(`decode ${(out.decode_tok_s as number).toFixed(2)} tok/s`);
  } catch (e) {
    out.generation_error = (e as Error).message.slice(0, 400);
  }
  try {
    const adapter = LoraAdapter.create(model.cfg, { ...LORA_DEFAULTS, rank: PLAN.loraRank, alpha: PLAN.loraRank, targetModules: [...PLAN.loraTargets] }, 1);
    model.attachAdapter(adapter);
    const ids = tf.tensor2d([randomRow(PLAN.trainSeq + 1, vocab, 4)], undefined, 'int32');
    const mask = tf.ones([1, PLAN.trainSeq]) as tf.Tensor2D;
    const opt = new AdamW(model.trainableVariables(), { weightDecay: 0 });
    const step = () => trainStep(model, opt, [() => model.loss(ids, mask)], { lr: 1e-4, maxGradNorm: 1 });
    const [, warmS] = await timed(() => step());
    out.lora_first_step_s = warmS;
    const [, s] = await timed(async () => {
      for (let i = 0; i < PLAN.trainSteps; i++) await step();
    });
    out.lora_train_s = s;
    out.lora_train_tok_s = (PLAN.trainSeq * PLAN.trainSteps) / s;
    out.lora_parameters = adapter.variables().reduce((n, v) => n + v.size, 0);
    out.heap_after_train_mb = wasmHeapMb();
    // The budget's estimate of this very use, beside the heap it reached (docs/models.md#memory-budget).
    const trainUse: MemoryUse = { mode: 'train', batch: 1, context: PLAN.trainSeq + 1, updateBatch: 1, lora: { rank: PLAN.loraRank, targetModules: [...PLAN.loraTargets] } };
    out.estimate_train_mb = estimateMemory(model.cfg, trainUse, backend).total / 2 ** 20;
    log(`LoRA ${(out.lora_train_tok_s as number).toFixed(1)} tok/s`);
    opt.dispose();
    tf.dispose([ids, mask]);
  } catch (e) {
    out.lora_error = (e as Error).message.slice(0, 400);
  }
  model.dispose();
  out.tensors_left = tf.memory().numTensors - baseline;
  out.peak_rss_mb = peakRssMb();
  if (backend === 'webgpu') releaseNodeWebGPU();
  console.log(`RESULT ${JSON.stringify(out)}`);
}

function lastJsonLine(stdout: string, prefix = ''): Detail | undefined {
  const line = stdout
    .split('\n')
    .filter((l) => l.startsWith(prefix) && l.slice(prefix.length).trim().startsWith('{'))
    .pop();
  return line ? (JSON.parse(line.slice(prefix.length)) as Detail) : undefined;
}

/** The child process for one model and backend (tsx's loader flags passed on). */
function measure(name: string, backend: BackendName, dir: string): Detail {
  const args = [...process.execArgv, join(here, 'run.ts'), 'models', '--child', name, backend, dir];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'], timeout: 30 * 60_000 });
  const result = lastJsonLine(r.stdout, 'RESULT ');
  if (!result) return { model: name, backend, error: `the measuring process ended with ${r.status ?? r.signal} and no result: ${r.stdout.trim().slice(-800)}` };
  return result;
}

function torch(name: string, dir: string): Detail {
  const ensure = spawnSync('sh', [join(here, 'ensure_torch.sh')], { encoding: 'utf8' });
  if (ensure.status !== 0) return { model: name, backend: 'torch', error: `bench/ensure_torch.sh failed: ${ensure.stderr.trim().slice(-400)}` };
  const args = [join(here, 'models_torch.py'), '--model', dir, '--prompt-len', String(PLAN.prefillLength), '--decode-prompt', String(PLAN.decodePrompt), '--new-tokens', String(PLAN.newTokens), '--train-seq', String(PLAN.trainSeq), '--train-steps', String(PLAN.trainSteps), '--lora-rank', String(PLAN.loraRank), '--lora-targets', PLAN.loraTargets.join(',')];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', timeout: 30 * 60_000, maxBuffer: 1 << 24 });
  const out = lastJsonLine(r.stdout);
  if (r.status !== 0 || !out) return { model: name, backend: 'torch', error: `models_torch.py exited with ${r.status ?? r.signal}: ${r.stderr.trim().slice(-800)}` };
  return { model: name, backend: 'torch', kv_cache: 'preallocated per-layer K/V buffers written in place (bench/torch_ref.py greedy_decode)', ...out };
}

/** Why WebGPU is not measured here, or undefined when a real GPU may be present. */
function webgpuSkipReason(): string | undefined {
  const icd = findVulkanICD();
  if (!icd) return 'no Vulkan driver (ICD) on this machine, so Dawn has no GPU';
  if (/swiftshader/i.test(icd)) return `the only Vulkan driver is SwiftShader (${icd}), a CPU emulation: not a GPU, and about 0.5 GFLOP/s (bench/engine.ts)`;
  return undefined;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function main(args: string[]): Promise<void> {
  if (args[0] === '--child') return child(args[1], args[2] as BackendName, args[3]);
  const started = performance.now();
  const only = (flag(args, '--only') ?? Object.keys(MODELS).join(',')).split(',');
  const backends = (flag(args, '--backends') ?? 'wasm,webgpu').split(',') as BackendName[];
  const root = flag(args, '--dir') ?? join(tmpdir(), 'thor-bench-models');
  const machine: Record<string, string | number | undefined> = { load_avg_1m_start: loadavg()[0] };
  const summary: Record<string, number> = {};
  const details: Detail[] = [];
  const nulls: Record<string, string> = {};
  for (const name of only) {
    if (!MODELS[name]) throw new Error(`unknown model ${name}: one of ${Object.keys(MODELS).join(', ')}`);
    const cfg = parseModelConfig(MODELS[name]);
    const dir = join(root, name);
    if (!existsSync(join(dir, 'model.safetensors'))) {
      console.error(`${name}: writing ${((countParameters(cfg) * 4) / 1e9).toFixed(2)} GB of random F32 weights to ${dir}`);
      writeModel(dir, cfg);
    }
    details.push({ model: name, kind: 'model', parameters: countParameters(cfg), file_bytes: statSync(join(dir, 'model.safetensors')).size, config: MODELS[name] });
    let lab: Detail | undefined;
    for (const backend of backends) {
      if (backend === 'webgpu') {
        const why = webgpuSkipReason();
        if (why) {
          details.push({ model: name, backend, skipped: why });
          continue;
        }
      }
      const r = measure(name, backend, dir);
      details.push({ kind: 'lab', plan: PLAN, ...r });
      console.error(`${name} ${backend}: ${JSON.stringify(r)}`);
      if (backend === 'wasm') lab = r;
      else if (typeof r.decode_tok_s === 'number') summary[`decode_tok_s_${name}_${backend}`] = r.decode_tok_s;
    }
    const t = args.includes('--no-torch') ? { model: name, backend: 'torch', skipped: '--no-torch' } : torch(name, dir);
    details.push({ kind: 'torch', plan: PLAN, ...t });
    console.error(`${name} torch: ${JSON.stringify(t)}`);
    const figures: [string, string][] = [
      ['load_s', 'load_s'],
      ['peak_mem_mb', 'peak_rss_mb'],
      ['prefill_tok_s', 'prefill_tok_s'],
      ['decode_tok_s', 'decode_tok_s'],
      ['lora_train_tok_s', 'lora_train_tok_s'],
    ];
    const why = (lab?.refused ?? lab?.error ?? lab?.generation_error ?? lab?.lora_error) as string | undefined;
    for (const [key, field] of figures) {
      const v = lab?.[field];
      if (typeof v === 'number' && !(key === 'peak_mem_mb' && lab?.refused)) summary[`${key}_${name}`] = v;
      else nulls[`${key}_${name}`] = why ?? 'not measured';
    }
    // Above 1: the budget's estimate of the LoRA step was too low for the heap it reached.
    if (typeof lab?.heap_after_train_mb === 'number' && typeof lab?.estimate_train_mb === 'number') summary[`train_heap_over_estimate_${name}`] = lab.heap_after_train_mb / lab.estimate_train_mb;
    if (typeof lab?.decode_tok_s === 'number' && typeof t.decode_tok_s === 'number') summary[`vs_torch_decode_${name}`] = lab.decode_tok_s / t.decode_tok_s;
    else nulls[`vs_torch_decode_${name}`] = (t.error ?? t.skipped ?? why ?? 'not measured') as string;
    if (typeof t.decode_tok_s === 'number') summary[`torch_decode_tok_s_${name}`] = t.decode_tok_s;
    if (typeof t.prefill_tok_s === 'number') summary[`torch_prefill_tok_s_${name}`] = t.prefill_tok_s;
    if (typeof t.lora_train_tok_s === 'number') summary[`torch_lora_train_tok_s_${name}`] = t.lora_train_tok_s;
    if (typeof lab?.prefill_tok_s === 'number' && typeof t.prefill_tok_s === 'number') summary[`vs_torch_prefill_${name}`] = lab.prefill_tok_s / t.prefill_tok_s;
    if (typeof lab?.lora_train_tok_s === 'number' && typeof t.lora_train_tok_s === 'number') summary[`vs_torch_lora_train_${name}`] = lab.lora_train_tok_s / t.lora_train_tok_s;
  }
  // Summary values are numbers; a figure that could not be measured is listed here with the reason.
  details.push({ kind: 'run', null_figures: nulls, seconds: (performance.now() - started) / 1000 });
  machine.load_avg_1m_end = loadavg()[0];
  writeResult('models', summary, details, machineInfo({ backend: backends.join(', '), ...machine }));
  for (const [k, v] of Object.entries(nulls)) console.log(`  ${k}: null (${v.slice(0, 200)})`);
}
