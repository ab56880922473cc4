/**
 * The memory budget of a model, from its config.json alone (docs/models.md#memory-budget): what the
 * weights, the KV cache, the activations, the LM head's logits and the optimiser need, compared with
 * what the device can hold, before any weights are downloaded or loaded. Every figure is an estimate
 * of what tfjs allocates (float32 throughout: tfjs has no float16 tensors), meant to refuse what
 * cannot fit, not to predict the last megabyte.
 */
import * as tf from '@tensorflow/tfjs';
import { LabError } from '../errors';
import { countParameters, type ModelConfig } from './config';
import { WASM_PACK_LIMIT } from './ops';
import type { WeightFormat } from './transformer';

const F32 = 4;

/**
 * tfjs-backend-wasm 4.22's heap is one wasm32 linear memory; its emscripten build allows it to grow to
 * 4 GiB less one 64 KiB page (getHeapMax() in the package's built .js returns 4294901760).
 */
export const WASM_HEAP_MAX_BYTES = 4_294_901_760;

/** The largest right operand packed whole on wasm, in bytes (WASM_PACK_LIMIT float32 values in ops.ts). */
const WASM_PACK_BYTES = WASM_PACK_LIMIT * F32;

/** The Linear layers of a decoder layer, by their Hugging Face module names. */
export type LinearModule = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';

/** What the model will be used for: a shape of work, not a run config (the caller maps its settings). */
export interface MemoryUse {
  /** 'infer': generation (KV cache); 'train': generation then a forward/backward with an optimiser. */
  mode: 'infer' | 'train';
  /** Rows at once: sequences generated together (group size × prompts), or a training micro-batch. */
  batch: number;
  /** Tokens per row: prompt + response (the KV cache and attention are sized by it). */
  context: number;
  /** Rows of a training micro-batch, each `context` tokens long (default: `batch`). */
  updateBatch?: number;
  /** A low-rank adapter on the frozen weights: only its parameters get gradients and AdamW moments. */
  lora?: { rank: number; targetModules: readonly LinearModule[] };
  /** A frozen copy of the starting weights for a KL term (GRPO with a reference model). */
  reference?: boolean;
  /**
   * 'f16': the matrices held as float16 pairs (WebGPU; src/core/model/packed-f16.ts), 2 bytes a
   * value; norms and biases stay float32. Only for weights that do not train (inference, LoRA).
   */
  weights?: WeightFormat;
}

/** What the device can hold. */
export interface DeviceLimits {
  backend: string;
  /** All tensors together: the wasm heap, or the memory a GPU / process is allowed. Undefined: not known. */
  totalBytes?: number;
  /** Largest single tensor (WebGPU: min of the adapter's maxBufferSize and maxStorageBufferBindingSize). */
  bufferBytes?: number;
  /** Where the limits come from, for messages. */
  source: string;
}

export interface MemoryEstimate {
  parameters: number;
  /** How the matrices are held. */
  weightFormat: WeightFormat;
  /** Parameters that get gradients and AdamW moments (all of them, or the adapter's). */
  trainable: number;
  weights: number;
  /** wasm: the packed copy of each weight matrix multiplied (the engine's kept panels or XNNPACK's copy; kept while the weight lives). */
  packedWeights: number;
  reference: number;
  kvCache: number;
  activations: number;
  logits: number;
  gradients: number;
  optimizer: number;
  total: number;
  /** The largest single tensor and what it is. */
  largestTensor: { name: string; bytes: number };
}

/** LoRA adapter parameters: r × (in + out) for each target module in each layer (Hu et al. 2021, A: r×in, B: out×r). */
export function loraParameters(cfg: ModelConfig, rank: number, targets: readonly LinearModule[]): number {
  const dims = linearDims(cfg);
  return cfg.num_hidden_layers * targets.reduce((sum, m) => sum + rank * (dims[m][0] + dims[m][1]), 0);
}

/** [in, out] of each Linear layer. */
function linearDims(cfg: ModelConfig): Record<LinearModule, [number, number]> {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  const i = cfg.intermediate_size;
  return { q_proj: [h, q], k_proj: [h, kv], v_proj: [h, kv], o_proj: [q, h], gate_proj: [h, i], up_proj: [h, i], down_proj: [i, h] };
}

/** Tokens a generation step feeds per row at most (the engine's default prefill chunk, src/core/engine/generation.ts). */
export const PREFILL_CHUNK = 64;

/**
 * Bytes of one decoder layer's intermediates for one row of `tokens` tokens attending over `span`
 * positions. Per token: the residual stream and its two norms (about 6·h values), q, k, v before and
 * after RoPE (2·(q + 2·kv)), the attention output and o_proj (q + h), the MLP's gate, up, SiLU(gate)
 * and their product (4·I); per head, the scores and their softmax over the span (2·heads·span).
 */
function layerActivationBytes(cfg: ModelConfig, tokens: number, span: number): number {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  const perToken = 6 * h + 2 * (q + 2 * kv) + q + h + 4 * cfg.intermediate_size;
  return F32 * tokens * (perToken + 2 * cfg.num_attention_heads * span);
}

/** Parameters in matrices (the embedding, every Linear weight, an untied head): what float16 packing halves. */
export function matrixParameters(cfg: ModelConfig): number {
  const dims = linearDims(cfg);
  const linear = cfg.num_hidden_layers * Object.values(dims).reduce((s, [i, o]) => s + i * o, 0);
  return cfg.vocab_size * cfg.hidden_size * (cfg.tie_word_embeddings ? 1 : 2) + linear;
}

/** Bytes of the weights on the device: float32, or with the matrices as float16 pairs. */
export function weightBytes(cfg: ModelConfig, format: WeightFormat = 'f32'): number {
  const parameters = countParameters(cfg);
  if (format === 'f32') return parameters * F32;
  const matrices = matrixParameters(cfg);
  return matrices * 2 + (parameters - matrices) * F32;
}

/** The estimate for a use on a backend ('wasm' adds the weights' packed copies). */
export function estimateMemory(cfg: ModelConfig, use: MemoryUse, backend = 'wasm'): MemoryEstimate {
  const parameters = countParameters(cfg);
  const weights = weightBytes(cfg, use.weights);
  const L = cfg.num_hidden_layers;
  const dims = linearDims(cfg);
  const embed = cfg.vocab_size * cfg.hidden_size * F32;
  // On wasm a weight multiplied as a 2-D product's right operand is held packed as well, once, until
  // that tensor is disposed: in the engine's kept panels (wasm-matmul.ts, at most 1 GiB of them) or
  // in XNNPACK's copy (tfjs-backend-wasm), whichever took it first: every layer's Linear weights. An
  // LM head larger than WASM_PACK_LIMIT never is whole (ops.ts): an untied one is packed a 64 MB block
  // of rows at a time (docs/models.md#what-fits-where).
  const linearBytes = L * Object.values(dims).reduce((s, [i, o]) => s + i * o, 0) * F32;
  // A tied head's embedding, multiplied transposed, is kept in panels too when it is no larger than
  // that limit (a small model's; Qwen's and SmolLM's are larger).
  const headBlock = cfg.tie_word_embeddings ? (embed <= WASM_PACK_BYTES ? embed : 0) : Math.min(embed, WASM_PACK_BYTES);
  const packedWeights = backend === 'wasm' ? linearBytes + headBlock : 0;
  const trainable = use.mode === 'train' ? (use.lora ? loraParameters(cfg, use.lora.rank, use.lora.targetModules) : parameters) : 0;
  const { batch: B, context: T } = use;
  // K and V for every layer, kv head and position: layers × 2 × kv_heads × head_dim × context × batch × 4.
  const kvCache = L * 2 * cfg.num_key_value_heads * cfg.head_dim * T * B * F32;
  // Generation frees each layer's intermediates as the layer ends (one tidy per layer) and feeds at
  // most a prefill chunk per row; only the rows that sample leave the trunk for the LM head.
  const generation = kvCache + B * layerActivationBytes(cfg, Math.min(T, PREFILL_CHUNK), T) + B * cfg.vocab_size * F32;
  // An update keeps every layer's intermediates on tfjs' tape for the backward pass (nothing is
  // recomputed), and the logits [rows × length × vocab] three times: logits, log-softmax, gradient.
  const U = use.updateBatch ?? B;
  const logitsOne = U * T * cfg.vocab_size * F32;
  const update = use.mode === 'train' ? L * U * layerActivationBytes(cfg, T, T) + 3 * logitsOne : 0;
  // On wasm an update also passes transient tensors of about the embedding's size: the LM head's
  // backward multiplies by the embedding in 64 MB blocks, each sliced and packed by XNNPACK in turn, and
  // the logits' temporaries come and go; the heap keeps the high-water mark (docs/models.md#memory-budget,
  // measured by `npm run bench -- models`).
  const transient = use.mode === 'train' && backend === 'wasm' ? embed : 0;
  const gradients = trainable * F32;
  const optimizer = 2 * trainable * F32; // AdamW: first and second moments (Loshchilov & Hutter 2019)
  const reference = use.mode === 'train' && use.reference && !use.lora ? weights : 0;
  // A training step holds the KV cache of its rollouts or the tape of its update, not both at once.
  const working = Math.max(generation, update + transient);
  const activations = use.mode === 'train' ? working - 3 * logitsOne : working - kvCache - B * cfg.vocab_size * F32;
  const logits = use.mode === 'train' ? 3 * logitsOne : B * cfg.vocab_size * F32;
  const total = weights + packedWeights + reference + gradients + optimizer + working;
  const candidates = [
    { name: 'the embedding [vocab × hidden]', bytes: use.weights === 'f16' ? embed / 2 : embed },
    ...(use.mode === 'train'
      ? [
          { name: `the logits [rows × length × vocab] = [${U} × ${T} × ${cfg.vocab_size}]`, bytes: logitsOne },
          { name: `the attention scores [rows × heads × length × length] = [${U} × ${cfg.num_attention_heads} × ${T} × ${T}]`, bytes: U * cfg.num_attention_heads * T * T * F32 },
        ]
      : []),
    { name: `the KV cache of one layer [batch × kv heads × context × head_dim] = [${B} × ${cfg.num_key_value_heads} × ${T} × ${cfg.head_dim}]`, bytes: kvCache / (2 * L) },
    { name: 'the MLP weights [hidden × intermediate]', bytes: cfg.hidden_size * cfg.intermediate_size * F32 },
  ];
  const largestTensor = candidates.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return { parameters, weightFormat: use.weights ?? 'f32', trainable, weights, packedWeights, reference, kvCache, activations, logits, gradients, optimizer, total, largestTensor };
}

/** Bytes in GB (10^9, as model cards and vendors count) with two decimals; small sizes in MB or kB. */
export function gb(bytes: number): string {
  if (bytes >= 1e8) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e5) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(1)} kB`;
}

/** One line per part of an estimate. */
export function describeEstimate(e: MemoryEstimate): string {
  const parts: [string, number][] = [
    [`weights (${e.weightFormat === 'f16' ? 'matrices as f16' : 'f32'})`, e.weights],
    ['packed copies of the weights', e.packedWeights],
    ['reference weights', e.reference],
    ['KV cache', e.kvCache],
    ['activations', e.activations],
    ['logits', e.logits],
    ['gradients', e.gradients],
    ['AdamW moments', e.optimizer],
  ];
  return parts.filter(([, b]) => b > 0).map(([n, b]) => `${n} ${gb(b)}`).join(', ') + `; total ${gb(e.total)}`;
}

export interface BudgetResult {
  fits: boolean;
  estimate: MemoryEstimate;
  /** Why it does not fit, in words with both numbers. */
  problems: string[];
  /** Settings that would fit (empty when nothing would: the weights alone are too big). */
  suggestions: string[];
}

function problemsOf(e: MemoryEstimate, limits: DeviceLimits): string[] {
  const problems: string[] = [];
  if (limits.totalBytes !== undefined && e.total > limits.totalBytes) problems.push(`needs about ${gb(e.total)} (${describeEstimate(e)}) against the ${gb(limits.totalBytes)} limit of ${limits.source}`);
  if (limits.bufferBytes !== undefined && e.largestTensor.bytes > limits.bufferBytes)
    problems.push(`its largest tensor, ${e.largestTensor.name}, needs ${gb(e.largestTensor.bytes)} in one buffer against the ${gb(limits.bufferBytes)} buffer limit of ${limits.source}`);
  return problems;
}

/** Compares the estimate with the limits and, when it does not fit, looks for settings that would. */
export function checkBudget(cfg: ModelConfig, use: MemoryUse, limits: DeviceLimits): BudgetResult {
  const estimate = estimateMemory(cfg, use, limits.backend);
  const problems = problemsOf(estimate, limits);
  if (problems.length === 0) return { fits: true, estimate, problems, suggestions: [] };
  const fits = (u: MemoryUse) => problemsOf(estimateMemory(cfg, u, limits.backend), limits).length === 0;
  const suggestions: string[] = [];
  const fixed = estimate.weights + estimate.packedWeights + estimate.reference;
  const embed = cfg.vocab_size * cfg.hidden_size * F32;
  if ((limits.totalBytes !== undefined && fixed >= limits.totalBytes) || (limits.bufferBytes !== undefined && embed > limits.bufferBytes)) {
    return { fits: false, estimate, problems, suggestions };
  }
  // The largest setting that fits, halving from the one asked for.
  const largest = (from: number, make: (v: number) => MemoryUse): number | undefined => {
    for (let v = Math.floor(from / 2); v >= 1; v = Math.floor(v / 2)) if (fits(make(v))) return v;
    return undefined;
  };
  const context = largest(use.context, (v) => ({ ...use, context: v }));
  if (context !== undefined) suggestions.push(`a context of ${context} tokens (instead of ${use.context})`);
  const batch = largest(use.batch, (v) => ({ ...use, batch: v, updateBatch: Math.min(v, use.updateBatch ?? v) }));
  if (batch !== undefined) suggestions.push(`${batch} rows generated at once (group size × prompts; instead of ${use.batch})`);
  if (use.mode === 'train' && (use.updateBatch ?? use.batch) > 1) {
    const rows = largest(use.updateBatch ?? use.batch, (v) => ({ ...use, updateBatch: v }));
    if (rows !== undefined) suggestions.push(`a training micro-batch of ${rows} rows (instead of ${use.updateBatch ?? use.batch})`);
  }
  if (use.mode === 'train') {
    const targets = use.lora?.targetModules ?? (['q_proj', 'v_proj'] as const);
    for (const rank of [64, 32, 16, 8, 4, 2, 1]) {
      if (use.lora && rank >= use.lora.rank) continue;
      if (fits({ ...use, lora: { rank, targetModules: targets } })) {
        suggestions.push(`LoRA of rank ${rank} on ${targets.join(', ')}`);
        break;
      }
    }
  }
  if (suggestions.length === 0 && fits({ ...use, context: Math.max(1, Math.floor(use.context / 2)), batch: 1 })) {
    suggestions.push(`a batch of 1 row and a context of ${Math.max(1, Math.floor(use.context / 2))} tokens`);
  }
  return { fits: false, estimate, problems, suggestions };
}

/**
 * Refuses, before anything big is downloaded or loaded, a use the device cannot hold: both numbers
 * and what would fit. `r` is checkBudget's result for the same use, when the caller already has it.
 */
export function assertBudget(cfg: ModelConfig, use: MemoryUse, limits: DeviceLimits, file = 'config.json', r: BudgetResult = checkBudget(cfg, use, limits)): MemoryEstimate {
  if (r.fits) return r.estimate;
  const fixed = r.estimate.weights + r.estimate.packedWeights + r.estimate.reference;
  const hint =
    r.suggestions.length > 0
      ? `These would fit: ${r.suggestions.join('; or ')}`
      : limits.totalBytes !== undefined && fixed >= limits.totalBytes
        ? `No setting fits: the weights alone need ${gb(fixed)}${r.estimate.packedWeights > 0 ? ` (${gb(r.estimate.weights)} in float32 and ${gb(r.estimate.packedWeights)} of their packed copies)` : ''} against the ${gb(limits.totalBytes)} limit; pick a smaller model${limits.backend === 'wasm' ? ' or a WebGPU backend' : ''}`
        : `No setting fits: the embedding alone needs ${gb(cfg.vocab_size * cfg.hidden_size * F32)} in one buffer against the ${gb(limits.bufferBytes ?? 0)} limit; pick a smaller model or another backend`;
  throw new LabError('memory', `the model does not fit: ${r.problems.join('; and ')}`, {
    file,
    field: `${use.mode}: batch ${use.batch}${use.updateBatch !== undefined ? `, micro-batch ${use.updateBatch}` : ''}, context ${use.context}${use.lora ? `, LoRA rank ${use.lora.rank}` : ''}`,
    expected: limits.totalBytes !== undefined ? `at most ${gb(limits.totalBytes)}` : `tensors of at most ${gb(limits.bufferBytes ?? 0)}`,
    found: gb(r.estimate.total),
    hint,
  });
}

/** A GPUDevice's limits, as tfjs-backend-webgpu requested them from the adapter (the adapter's maxima). */
interface GpuLimits {
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
}

/**
 * The limits of the backend tfjs runs on now: the wasm heap's maximum, or the WebGPU device's
 * buffer limits (their total memory is not exposed: pass `totalBytes` where it is known).
 */
export function currentDeviceLimits(totalBytes?: number): DeviceLimits {
  const backend = tf.getBackend();
  if (backend === 'wasm') return { backend, totalBytes: Math.min(WASM_HEAP_MAX_BYTES, totalBytes ?? Infinity), source: 'the wasm heap (wasm32: 4 GiB less one page)' };
  if (backend === 'webgpu') {
    const limits = (tf.backend() as unknown as { device?: { limits?: GpuLimits } }).device?.limits;
    const sizes = [limits?.maxBufferSize, limits?.maxStorageBufferBindingSize].filter((n): n is number => typeof n === 'number');
    return { backend, totalBytes, bufferBytes: sizes.length ? Math.min(...sizes) : undefined, source: "the WebGPU adapter's limits" };
  }
  return { backend, totalBytes, source: totalBytes !== undefined ? 'the memory given' : 'no known limit' };
}
