/**
 * `npm run bench -- engine [--quick] [--backends wasm,webgpu] [--no-torch]`
 *
 * The policy engine's speed, for a ~1M and a ~10M parameter model, on every backend here: greedy
 * decoding with the KV cache at batch 1, 16 and 64, the same without a cache (a full re-forward per
 * token), prefill, and training (forward, backward, clipping, AdamW). Then the yardstick a user
 * would otherwise pick: the same architecture and weights in PyTorch eager on this CPU
 * (bench/torch_ref.py), whose logits must match the lab's.
 *
 * Re-forward decoding is quadratic in length, so its time for N new tokens is integrated from timed
 * forwards at a few lengths (midpoint rule); for the ~1M model at batch 16 on wasm, 64 new tokens
 * are also run token by token, as a check of the estimate. SwiftShader's WebGPU runs on the CPU at about
 * 0.5 GFLOP/s: it gets smaller batches and fewer tokens, recorded with each figure.
 *
 * On wasm, in the same run: the backend's own 2-D matmul rate (GFLOP/s; XNNPACK's) and the engine's
 * kernel's at the same shapes, the effective rate of training and of decoding at batch 16 and 64 (the
 * model's FLOPs from its shapes, docs/engine.md#flops, over their time), their ratio to the
 * backend's matmul rate, the threads the backend uses, the gain of each of the engine's choices
 * measured in turns (attention kernel, its own plain products, fused multiply-adds), a per-kernel profile of one
 * training step and the kernels one decoding step launches (docs/engine.md#where-the-time-goes); and
 * the same with tfjs's own kernels instead of the engine's (its matrix kernel and fused kernels off),
 * side by side. On WebGPU, the ~10M model with its matrices
 * packed as float16 pairs (docs/engine.md#packed-f16-weights): bytes held against float32
 * (`f16_weight_mem_ratio`), its logits against the float32 model's, and decoding at batch 16.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../src/core/backend';
import { Generation } from '../src/core/engine/generation';
import { decodeRate, productRates, randomRows, SPEED_MODEL, timed, trainingStep, trainRate } from '../src/core/engine/speed';
import { greedyNextTokens, greedyReforward } from '../src/core/engine/reforward';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { configToJSON, parseModelConfig, type ModelConfig } from '../src/core/model/config';
import { forwardFlops, matmulFlopsPerToken } from '../src/core/model/flops';
import { linear } from '../src/core/model/ops';
import { writeSafetensors } from '../src/core/model/safetensors';
import { Transformer } from '../src/core/model/transformer';
import { setWasmAttention, setWasmKernels } from '../src/core/model/wasm-kernels';
import { fusedMultiplyAdd, memoryOf, setRelaxedSimd, setWasmMatmul, setWasmPlainProducts, type WasmBackend } from '../src/core/model/wasm-matmul';
import { releaseNodeWebGPU, selectNodeBackend } from '../src/node/backend';
import { machineInfo, writeResult } from './lib';

const here = dirname(fileURLToPath(import.meta.url));

const MODELS: Record<string, ModelConfig> = {
  '1M': parseModelConfig({ model_type: 'llama', hidden_size: 128, intermediate_size: 384, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 1024, max_position_embeddings: 1024, tie_word_embeddings: true }),
  '10M': SPEED_MODEL,
};

/** What one backend runs. */
interface Plan {
  decodeBatches: number[];
  promptLength: number;
  newTokens: number;
  /** Lengths at which a re-forward is timed to integrate its cost. */
  reforwardSamples: number;
  prefill: { batch: number; length: number };
  train: { batch: number; seq: number; steps: number };
}

const PLANS: Record<'wasm' | 'webgpu', Record<string, Plan>> = {
  wasm: {
    '1M': { decodeBatches: [1, 16, 64], promptLength: 16, newTokens: 256, reforwardSamples: 4, prefill: { batch: 16, length: 128 }, train: { batch: 8, seq: 128, steps: 4 } },
    '10M': { decodeBatches: [1, 16, 64], promptLength: 16, newTokens: 256, reforwardSamples: 4, prefill: { batch: 16, length: 128 }, train: { batch: 8, seq: 128, steps: 3 } },
  },
  webgpu: {
    '1M': { decodeBatches: [1, 16], promptLength: 16, newTokens: 16, reforwardSamples: 2, prefill: { batch: 4, length: 64 }, train: { batch: 4, seq: 32, steps: 2 } },
    '10M': { decodeBatches: [1, 16], promptLength: 16, newTokens: 6, reforwardSamples: 2, prefill: { batch: 2, length: 32 }, train: { batch: 2, seq: 16, steps: 1 } },
  },
};

/** Smaller everything, for a smoke run of the benchmark itself. */
function quick(plan: Plan): Plan {
  return { ...plan, decodeBatches: plan.decodeBatches.slice(0, 2), newTokens: Math.min(plan.newTokens, 16), reforwardSamples: 2, train: { ...plan.train, steps: 1 } };
}

type Detail = Record<string, unknown>;

/** Greedy decoding with the KV cache: the first step prefills the prompts (and samples the first new token), the rest decode. */
async function kvDecode(model: Transformer, batch: number, plan: Plan): Promise<Detail> {
  const r = await decodeRate(model, { batch, promptLength: plan.promptLength, newTokens: plan.newTokens });
  const totalS = r.prefill_s + r.decode_s;
  return { kind: 'decode_kv', batch, prompt_len: plan.promptLength, new_tokens: plan.newTokens, prefill_s: r.prefill_s, decode_s: r.decode_s, total_s: totalS, decode_tok_s: r.tok_s, total_tok_s: (batch * plan.newTokens) / totalS, gflops: r.gflops };
}

/**
 * The model's matrices packed as float16 pairs (docs/engine.md#packed-f16-weights): the bytes tfjs
 * holds for a copy of the model before and after packing, the logits against the float32 model's on
 * the same rows, and greedy decoding at batch 16 with the packed copy.
 */
async function packedWeights(model: Transformer, plan: Plan): Promise<Detail> {
  const start = tf.memory().numBytes;
  const copy = Transformer.fromWeights(model.cfg, await model.exportWeights(), 'bench');
  const f32Bytes = tf.memory().numBytes - start;
  const own = copy.packWeights();
  const f16Bytes = tf.memory().numBytes - start;
  const rows = tf.tensor2d(randomRows(2, 24, model.cfg.vocab_size, 21), undefined, 'int32');
  const [a, b] = [model.logits(rows), copy.logits(rows)];
  const [da, db] = [await a.data(), await b.data()];
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < da.length; i++) {
    diff = Math.max(diff, Math.abs(da[i] - db[i]));
    scale = Math.max(scale, Math.abs(da[i]));
  }
  tf.dispose([rows, a, b]);
  const decode = await kvDecode(copy, 16, plan);
  copy.dispose();
  return {
    kind: 'packed_f16',
    f32_bytes: f32Bytes,
    f16_bytes: f16Bytes,
    mem_ratio: f16Bytes / f32Bytes,
    model_bytes_f32: own.before,
    model_bytes_f16: own.after,
    logits_max_abs_diff: diff,
    logits_max_abs: scale,
    decode_tok_s_b16: decode.decode_tok_s,
    note: 'bytes: tf.memory().numBytes held by a copy of the model, float32 then packed; logits: 2 rows of 24 random ids against the float32 model',
  };
}

/** Greedy decoding by full re-forward: Σ over new tokens of one forward at the current length, integrated from timed samples. */
async function reforwardDecode(model: Transformer, batch: number, plan: Plan): Promise<Detail> {
  const segments = plan.reforwardSamples;
  const lengths = Array.from({ length: segments }, (_, i) => plan.promptLength + Math.round(((i + 0.5) * plan.newTokens) / segments));
  await greedyNextTokens(model, randomRows(batch, lengths[0], model.cfg.vocab_size, 1)); // warm-up
  const seconds: number[] = [];
  for (const length of lengths) {
    const rows = randomRows(batch, length, model.cfg.vocab_size, length);
    seconds.push((await timed(() => greedyNextTokens(model, rows)))[1]);
  }
  const totalS = seconds.reduce((a, s) => a + (s * plan.newTokens) / segments, 0);
  return { kind: 'decode_reforward', method: `estimated: forwards timed at lengths ${lengths.join(', ')}, midpoint rule`, batch, prompt_len: plan.promptLength, new_tokens: plan.newTokens, sample_lengths: lengths, sample_s: seconds, total_s: totalS, decode_tok_s: (batch * plan.newTokens) / totalS };
}

/** The same, token by token (a check of the estimate). */
async function reforwardDirect(model: Transformer, batch: number, plan: Plan): Promise<Detail> {
  const prompts = randomRows(batch, plan.promptLength, model.cfg.vocab_size, 7);
  const [, totalS] = await timed(() => greedyReforward(model, prompts, plan.newTokens));
  return { kind: 'decode_reforward', method: 'measured token by token', batch, prompt_len: plan.promptLength, new_tokens: plan.newTokens, total_s: totalS, decode_tok_s: (batch * plan.newTokens) / totalS };
}

/** Prompt tokens per second through the cached forward (chunks of 64), until each row has its first new token. */
async function prefill(model: Transformer, plan: Plan): Promise<Detail> {
  const { batch, length } = plan.prefill;
  const run = async () => {
    const gen = new Generation(model, randomRows(batch, length, model.cfg.vocab_size, 3), { maxNewTokens: 1, temperature: 0, prefillChunk: 64 });
    const [, s] = await timed(async () => {
      while (gen.active > 0) await gen.step();
    });
    gen.dispose();
    return s;
  };
  await run();
  const s = await run();
  return { kind: 'prefill', batch, prompt_len: length, chunk: 64, seconds: s, tok_s: (batch * length) / s };
}

/**
 * One of the engine's choices on and off, the rest the same, in turns (on, off, on, off) so that a
 * slow moment of the machine weighs on both: `run` times one decoding or training run and says its
 * tokens; the gain is the ratio of the total tokens/s. The setting is put back as it was. The
 * choices: the attention kernel (wasm-kernels.ts) against tfjs's batched products and softmax; the
 * engine's kernel for plain 2-D products against XNNPACK; fused multiply-adds against products and
 * sums (wasm-matmul.ts).
 */
async function gain(kind: string, set: (on: boolean) => boolean, run: () => Promise<{ seconds: number; tokens: number }>, about: Detail): Promise<Detail> {
  const seconds = { on: 0, off: 0 };
  let tokens = 0;
  const was = set(true);
  try {
    for (const on of [true, false, true, false]) {
      set(on);
      const r = await run();
      seconds[on ? 'on' : 'off'] += r.seconds;
      tokens += on ? r.tokens : 0;
    }
  } finally {
    set(was);
  }
  return { kind, ...about, tok_s_on: tokens / seconds.on, tok_s_off: tokens / seconds.off, gain: seconds.off / seconds.on };
}

/** gain() of decoding at `batch` (up to 128 new tokens). */
function decodeGain(model: Transformer, batch: number, plan: Plan, kind: string, set: (on: boolean) => boolean): Promise<Detail> {
  const decode = { batch, promptLength: plan.promptLength, newTokens: Math.min(plan.newTokens, 128) };
  const run = async () => ({ seconds: (await decodeRate(model, decode)).decode_s, tokens: batch * (decode.newTokens - 1) });
  return gain(kind, set, run, { batch, new_tokens: decode.newTokens });
}

/** gain() of training steps. */
function trainGain(model: Transformer, plan: Plan, kind: string, set: (on: boolean) => boolean): Promise<Detail> {
  const run = async () => ({ seconds: (await trainRate(model, plan.train)).seconds, tokens: plan.train.batch * plan.train.seq * plan.train.steps });
  return gain(kind, set, run, { batch: plan.train.batch, seq: plan.train.seq });
}

/** Training steps (forward, backward, clip at 1.0, AdamW) on random ids of the plan's shape. */
async function train(model: Transformer, plan: Plan): Promise<Detail> {
  const { batch, seq, steps } = plan.train;
  const r = await trainRate(model, plan.train);
  return { kind: 'train', batch, seq, steps, seconds: r.seconds, tok_s: r.tok_s, gflops: r.gflops };
}

/**
 * The 2-D products of a decoding step at batch `batch`, alone: every projection, MLP and LM-head
 * product of the model, with its own weights, in the order a step runs them, nothing else. A step
 * streams the whole model's weights from memory, where matmulRate's products find their one
 * right-hand operand in the cache; this is the rate decoding's own products get, the ceiling of
 * decoding if every other op cost nothing (docs/engine.md#where-the-time-goes).
 */
async function decodeProducts(model: Transformer, batch: number): Promise<Detail> {
  const { cfg } = model;
  const w = (name: string) => model.params.get(name) as tf.Tensor2D;
  const xh = tf.randomNormal([batch, cfg.hidden_size]) as tf.Tensor2D;
  const xq = tf.randomNormal([batch, cfg.num_attention_heads * cfg.head_dim]) as tf.Tensor2D;
  const xi = tf.randomNormal([batch, cfg.intermediate_size]) as tf.Tensor2D;
  const step = () =>
    tf.tidy(() => {
      const outs: tf.Tensor[] = [];
      for (let i = 0; i < cfg.num_hidden_layers; i++) {
        const pre = `model.layers.${i}`;
        for (const p of ['q_proj', 'k_proj', 'v_proj']) outs.push(linear(xh, w(`${pre}.self_attn.${p}.weight`)));
        outs.push(linear(xq, w(`${pre}.self_attn.o_proj.weight`)));
        for (const p of ['gate_proj', 'up_proj']) outs.push(linear(xh, w(`${pre}.mlp.${p}.weight`)));
        outs.push(linear(xi, w(`${pre}.mlp.down_proj.weight`)));
      }
      outs.push(cfg.tie_word_embeddings ? linear(xh, w('model.embed_tokens.weight'), true) : linear(xh, w('lm_head.weight')));
      return outs[outs.length - 1];
    });
  for (let i = 0; i < 3; i++) step().dispose();
  const reps = 40;
  const [, s] = await timed(async () => {
    for (let i = 0; i < reps; i++) {
      const last = step();
      await last.data();
      last.dispose();
    }
  });
  tf.dispose([xh, xq, xi]);
  return { kind: 'decode_products', batch, reps, seconds: s, step_ms: (s / reps) * 1e3, gflops: (batch * matmulFlopsPerToken(cfg) * reps) / s / 1e9, note: "one decoding step's 2-D products with the model's own weights, nothing else" };
}

type Profile = Awaited<ReturnType<typeof tf.profile>>;

/**
 * The kernels a profile recorded. A custom op (linear, embedding, RoPE) is recorded as an "unnamed
 * scope" around the kernels it runs, which are recorded themselves: counting it too would count
 * their time twice.
 */
function profiledKernels(info: Profile): Profile['kernels'] {
  return info.kernels.filter((k) => k.name !== 'unnamed scope' && k.name !== '');
}

/** One decoding step at batch `batch` (after a few), under tf.profile: kernels launched and their time. */
async function decodeProfile(model: Transformer, batch: number, plan: Plan): Promise<Detail> {
  const gen = new Generation(model, randomRows(batch, plan.promptLength, model.cfg.vocab_size, batch), { maxNewTokens: 16, temperature: 0 });
  for (let i = 0; i < 4; i++) await gen.step();
  const [info, s] = await timed(() => tf.profile(async () => void (await gen.step())));
  gen.dispose();
  const kernels = profiledKernels(info);
  const kernelMs = kernels.reduce((a, k) => a + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0), 0);
  return { kind: 'decode_profile', batch, step_s: s, kernel_ms: kernelMs, kernel_calls: kernels.length };
}

/** One training step under tf.profile: time and calls per kernel, largest first. */
async function trainProfile(model: Transformer, plan: Plan): Promise<Detail> {
  const { batch, seq } = plan.train;
  const { step, dispose } = trainingStep(model, plan.train);
  await step();
  const [info, s] = await timed(() => tf.profile(async () => void (await step())));
  dispose();
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of profiledKernels(info)) {
    // Matrix products split by kind: tfjs runs 2-D and batched ones (attention's) through one kernel.
    const shape = k.inputShapes[0] ?? [];
    const batched = shape.slice(0, -2).reduce((a, b) => a * b, 1) > 1;
    const name = k.name === 'BatchMatMul' ? `BatchMatMul (${batched ? 'batched: attention' : '2-D'})` : k.name;
    const e = byKernel.get(name) ?? { ms: 0, calls: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.calls++;
    byKernel.set(name, e);
  }
  const kernelMs = [...byKernel.values()].reduce((a, e) => a + e.ms, 0);
  const kernels = [...byKernel.entries()].sort((x, y) => y[1].ms - x[1].ms).map(([name, e]) => ({ name, ms: Math.round(e.ms * 10) / 10, calls: e.calls, share: e.ms / kernelMs }));
  return { kind: 'train_profile', batch, seq, step_s: s, kernel_ms: kernelMs, kernel_calls: info.kernels.length, kernels: kernels.slice(0, 16) };
}

/** bench/torch_ref.py on the same weights (on `threads` threads, else torch's default); returns its JSON and the lab's logits difference. */
export async function torchYardstick(model: Transformer, rows: number[][], plan: { batch: number; promptLength: number; newTokens: number; train: Plan['train'] }, threads?: number): Promise<Detail> {
  const script = join(here, 'torch_ref.py');
  if (!existsSync(script)) return { kind: 'torch', error: `${script} is missing: no PyTorch yardstick this run` };
  const ensure = spawnSync('sh', [join(here, 'ensure_torch.sh')], { encoding: 'utf8' });
  if (ensure.status !== 0) return { kind: 'torch', error: `bench/ensure_torch.sh failed: ${ensure.stderr.trim().slice(-500)}` };
  const dir = mkdtempSync(join(tmpdir(), 'thor-engine-bench-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(configToJSON(model.cfg), null, 2));
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(await model.exportWeights()));
    writeFileSync(join(dir, 'ids.json'), JSON.stringify(rows));
    const args = [script, '--model', dir, '--ids-json', join(dir, 'ids.json'), '--batch', String(plan.batch), '--prompt-len', String(plan.promptLength), '--new-tokens', String(plan.newTokens), '--train-batch', String(plan.train.batch), '--train-seq', String(plan.train.seq), '--train-steps', String(plan.train.steps), ...(threads ? ['--threads', String(threads)] : [])];
    const run = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 256 * 1024 * 1024 });
    if (run.status !== 0) return { kind: 'torch', error: `torch_ref.py exited with ${run.status ?? run.signal}: ${run.stderr.trim().slice(-800)}` };
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, unknown> & { logits_check?: { logits: number[] } };
    const x = tf.tensor2d(rows, undefined, 'int32');
    const logits = model.logits(x);
    const lab = (await logits.data()).subarray(0, rows[0].length * model.cfg.vocab_size);
    tf.dispose([x, logits]);
    const theirs = out.logits_check?.logits ?? [];
    let maxDiff = theirs.length === lab.length ? 0 : Infinity;
    let maxAbs = 0;
    for (let i = 0; i < Math.min(theirs.length, lab.length); i++) {
      maxDiff = Math.max(maxDiff, Math.abs(theirs[i] - lab[i]));
      maxAbs = Math.max(maxAbs, Math.abs(theirs[i]));
    }
    delete out.logits_check;
    return { kind: 'torch', ...out, logits_compared: lab.length, logits_max_abs_diff: maxDiff, logits_max_abs: maxAbs, args: args.slice(1).join(' ') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function main(args: string[]): Promise<void> {
  const started = performance.now();
  const isQuick = args.includes('--quick');
  const backends = (flag(args, '--backends') ?? 'wasm,webgpu').split(',') as ('wasm' | 'webgpu')[];
  const details: Detail[] = [];
  const summary: Record<string, number> = {};
  // Other work on the machine slows every figure: the load is recorded with them.
  const machine: Record<string, string | number | undefined> = { load_avg_1m_start: loadavg()[0] };
  const ran: string[] = [];

  for (const backend of backends) {
    let adapter: string | undefined;
    try {
      const info = await selectNodeBackend([backend as BackendName]);
      adapter = info.adapter;
    } catch (e) {
      details.push({ backend, skipped: `not available here: ${(e as Error).message}` });
      continue;
    }
    ran.push(backend);
    if (adapter) machine.adapter = adapter;
    if (backend === 'wasm') machine.wasm_simd = String(tf.env().getBool('WASM_HAS_SIMD_SUPPORT')), machine.wasm_threads = String(tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'));
    const suffix = backend === 'wasm' ? '' : `_${backend}`;
    for (const [size, cfg] of Object.entries(MODELS)) {
      const plan = isQuick ? quick(PLANS[backend][size]) : PLANS[backend][size];
      const model = Transformer.create(cfg, { seed: 1 });
      const base = { backend, model: size, params: model.numParameters() };
      const log = (d: Detail) => {
        details.push({ ...base, ...d });
        const rate = (d.decode_tok_s ?? d.tok_s ?? d.decode_tok_s_b16) as number | undefined;
        console.log(`${backend} ${size} ${d.kind}${d.batch !== undefined ? ` b${d.batch}` : ''}: ${rate?.toFixed(1)} tok/s (${((performance.now() - started) / 1000).toFixed(0)} s)`);
        return d;
      };
      const kv: Record<number, Detail> = {};
      const re: Record<number, Detail> = {};
      for (const batch of plan.decodeBatches) {
        kv[batch] = log(await kvDecode(model, batch, plan));
        re[batch] = log(await reforwardDecode(model, batch, plan));
        const speedup = (re[batch].total_s as number) / (kv[batch].total_s as number);
        details.push({ ...base, kind: 'kv_speedup', batch, new_tokens: plan.newTokens, speedup, note: 'total time for new_tokens tokens: re-forward / KV cache (prefill included)' });
      }
      if (backend === 'wasm' && size === '1M' && !isQuick) {
        // The estimate against a token-by-token run (64 new tokens keeps the check short).
        const check = { ...plan, newTokens: 64 };
        const estimate = log(await reforwardDecode(model, 16, check));
        const direct = log(await reforwardDirect(model, 16, check));
        details.push({ ...base, kind: 'reforward_estimate_check', batch: 16, new_tokens: 64, estimated_s: estimate.total_s, measured_s: direct.total_s, ratio: (estimate.total_s as number) / (direct.total_s as number) });
      }
      const pre = log(await prefill(model, plan));
      const tr = log(await train(model, plan));
      if (backend === 'wasm' && size === '10M') {
        // What the backend itself can do, next to what training and decoding get out of it.
        // The same shapes as the device measurement (speed.ts): [512³] and the MLP's at 16 and 1024 rows.
        const { best: matmul, rates } = await productRates(cfg);
        const { best: engineMatmul, rates: engineRates } = await productRates(cfg, 'engine');
        for (const r of rates) details.push({ ...base, kind: 'matmul', ...r });
        for (const r of engineRates) details.push({ ...base, kind: 'matmul_engine', ...r });
        const fma = fusedMultiplyAdd(memoryOf(tf.backend() as unknown as WasmBackend));
        const trainGflops = tr.gflops as number;
        const decodeGflops = (kv[16]?.gflops as number | undefined) ?? NaN;
        // Batch 64: an RL step's rollouts at the lab's defaults (rollout.promptsPerStep 8 × rollout.groupSize 8).
        const decodeGflops64 = (kv[64]?.gflops as number | undefined) ?? NaN;
        const profile = await trainProfile(model, plan);
        details.push({ ...base, ...profile });
        const decodeProf = await decodeProfile(model, 16, plan);
        details.push({ ...base, ...decodeProf });
        const products = log(await decodeProducts(model, 16));
        const attention = [await decodeGain(model, 16, plan, 'decode_attention_kernel', setWasmAttention), await decodeGain(model, 64, plan, 'decode_attention_kernel', setWasmAttention)];
        const engineProducts = [await decodeGain(model, 16, plan, 'decode_engine_products', setWasmPlainProducts), await decodeGain(model, 64, plan, 'decode_engine_products', setWasmPlainProducts), await trainGain(model, plan, 'train_engine_products', setWasmPlainProducts)];
        const fmaGains = fma ? [await decodeGain(model, 16, plan, 'decode_fused_multiply_add', setRelaxedSimd), await decodeGain(model, 64, plan, 'decode_fused_multiply_add', setRelaxedSimd), await trainGain(model, plan, 'train_fused_multiply_add', setRelaxedSimd)] : [];
        for (const g of [...attention, ...engineProducts, ...fmaGains]) log(g);
        // The same with tfjs's own kernels (the engine's matrix kernel and fused kernels off), side by side.
        setWasmMatmul(false);
        setWasmKernels(false);
        const trTfjs = log({ ...(await train(model, plan)), matmul_kernel: 'tfjs' });
        const d16Tfjs = log({ ...(await kvDecode(model, 16, plan)), matmul_kernel: 'tfjs' });
        const profileTfjs = await trainProfile(model, plan);
        const decodeProfTfjs = await decodeProfile(model, 16, plan);
        setWasmMatmul(true);
        setWasmKernels(true);
        details.push({ ...base, ...profileTfjs, matmul_kernel: 'tfjs' }, { ...base, ...decodeProfTfjs, matmul_kernel: 'tfjs' });
        const trainGflopsTfjs = trTfjs.gflops as number;
        const decodeGflopsTfjs = d16Tfjs.gflops as number;
        const stepFlops = forwardFlops(cfg, plan.train.batch, plan.train.seq);
        const attentionShare = 1 - (plan.train.batch * plan.train.seq * matmulFlopsPerToken(cfg)) / stepFlops;
        details.push({ ...base, kind: 'gflops', matmul_gflops: matmul, train_gflops: trainGflops, decode_gflops_b16: decodeGflops, matmul_mflops_per_token: matmulFlopsPerToken(cfg) / 1e6, attention_share_of_train_flops: attentionShare, note: 'model FLOPs from shapes (docs/engine.md#flops) over measured time; matmul: the best of the shapes above' });
        Object.assign(summary, {
          matmul_gflops_wasm: matmul,
          matmul_gflops_wasm_engine: engineMatmul,
          engine_vs_backend_matmul_wasm: engineMatmul / matmul,
          fused_multiply_add_wasm: fma ? 1 : 0,
          decode_gflops_wasm_b64: decodeGflops64,
          decode_vs_matmul_wasm_b64: decodeGflops64 / matmul,
          decode_engine_products_gain_b16: engineProducts[0].gain as number,
          decode_engine_products_gain_b64: engineProducts[1].gain as number,
          train_engine_products_gain: engineProducts[2].gain as number,
          ...(fma && { decode_fma_gain_b16: fmaGains[0].gain as number, decode_fma_gain_b64: fmaGains[1].gain as number, train_fma_gain: fmaGains[2].gain as number }),
          train_gflops_wasm: trainGflops,
          decode_gflops_wasm: decodeGflops,
          train_vs_matmul_wasm: trainGflops / matmul,
          decode_vs_matmul_wasm: decodeGflops / matmul,
          decode_products_gflops_wasm: products.gflops as number,
          decode_vs_products_wasm: decodeGflops / (products.gflops as number),
          train_vs_matmul_wasm_tfjs_kernel: trainGflopsTfjs / matmul,
          decode_vs_matmul_wasm_tfjs_kernel: decodeGflopsTfjs / matmul,
          threads_wasm: getThreadsCount(),
          decode_kernels_per_step_wasm: decodeProf.kernel_calls,
          decode_attention_kernel_gain_b16: attention[0].gain as number,
          decode_attention_kernel_gain_b64: attention[1].gain as number,
          decode_kernels_per_step_wasm_tfjs_kernel: decodeProfTfjs.kernel_calls,
        });
        console.log(`wasm matmul ${matmul.toFixed(1)} GFLOP/s (the engine's kernel ${engineMatmul.toFixed(1)}${fma ? ', fused multiply-adds' : ''}); training ${trainGflops.toFixed(2)}, decoding ${decodeGflops.toFixed(2)} (batch 64: ${decodeGflops64.toFixed(2)}); threads ${getThreadsCount()}`);
        console.log(`a decoding step's 2-D products alone, with the model's weights: ${(products.gflops as number).toFixed(1)} GFLOP/s`);
        console.log(`with tfjs's BatchMatMul instead: training ${trainGflopsTfjs.toFixed(2)}, decoding ${decodeGflopsTfjs.toFixed(2)} GFLOP/s`);
        console.log(`train step kernels: ${(profile.kernels as { name: string; share: number }[]).slice(0, 6).map((k) => `${k.name} ${(k.share * 100).toFixed(0)}%`).join(', ')}`);
      }
      if (backend === 'webgpu' && size === '10M') {
        const f16 = log(await packedWeights(model, plan));
        summary.f16_weight_mem_ratio = f16.mem_ratio as number;
        summary.f16_logits_max_rel_diff = (f16.logits_max_abs_diff as number) / Math.max(1, f16.logits_max_abs as number);
        summary.decode_tok_s_b16_webgpu_f16 = f16.decode_tok_s_b16 as number;
        console.log(`webgpu float16 weights: ${((f16.mem_ratio as number) * 100).toFixed(1)}% of the float32 bytes; logits max |diff| ${(f16.logits_max_abs_diff as number).toExponential(2)}`);
      }
      if (size === '10M') {
        if (kv[16] && re[16] && plan.newTokens === 256) summary[`kv_speedup_b16_256${suffix}`] = (re[16].total_s as number) / (kv[16].total_s as number);
        for (const b of [1, 16, 64]) if (kv[b]) summary[`decode_tok_s_b${b}${suffix}`] = kv[b].decode_tok_s as number;
        summary[`prefill_tok_s${suffix}`] = pre.tok_s as number;
        summary[`train_tok_s${suffix}`] = tr.tok_s as number;
      }
      if (backend === 'wasm' && size === '10M' && !args.includes('--no-torch')) {
        const rows = randomRows(2, 24, cfg.vocab_size, 11);
        const torchPlan = { batch: 16, promptLength: plan.promptLength, newTokens: plan.newTokens, train: plan.train };
        const t = await torchYardstick(model, rows, torchPlan);
        details.push({ ...base, ...t });
        if (t.error) console.log(`torch: ${t.error}`);
        else {
          summary.torch_decode_tok_s_b16 = t.decode_tok_s as number;
          summary.torch_train_tok_s = t.train_tok_s as number;
          summary.vs_torch_decode = (kv[16].decode_tok_s as number) / (t.decode_tok_s as number);
          summary.vs_torch_train = (tr.tok_s as number) / (t.train_tok_s as number);
          summary.torch_logits_max_abs_diff = t.logits_max_abs_diff as number;
          console.log(`torch: decode ${(t.decode_tok_s as number).toFixed(1)} tok/s, train ${(t.train_tok_s as number).toFixed(1)} tok/s, logits max |diff| ${(t.logits_max_abs_diff as number).toExponential(2)}`);
        }
      }
      model.dispose();
    }
    if (backend === 'webgpu') releaseNodeWebGPU();
  }
  details.push({ kind: 'run', quick: isQuick, backends_run: ran, seconds: (performance.now() - started) / 1000, plans: isQuick ? 'quick' : PLANS });
  machine.load_avg_1m_end = loadavg()[0];
  writeResult('engine', summary, details, machineInfo({ backend: ran.join(', '), ...machine }));
}
