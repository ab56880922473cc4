/**
 * The policy network: a decoder-only transformer of the Llama / Qwen2 / Qwen3 family on tfjs ops
 * (docs/models.md, "Architectures").
 *
 *   ids → embed_tokens → L × [x += attn(rms_norm(x)); x += mlp(rms_norm(x))] → norm → lm_head → logits
 *
 * attn: grouped-query attention (num_key_value_heads ≤ num_attention_heads), optional projection
 * biases (Qwen2: q/k/v), an RMSNorm on each query and key head (Qwen3), rotary embeddings in HF's
 * rotate_half convention. mlp: SwiGLU, down(silu(gate(x)) · up(x)).
 * Parameters are tf.Variables under their Hugging Face names, so HF checkpoints load as they are.
 *
 * Layout: Linear weights are held transposed, [in, out] (HF stores [out, in]), because wasm multiplies
 * a plain x·W with XNNPACK but x·Wᵀ about ten times slower. loadWeights / exportWeights speak HF layout.
 */
import * as tf from '@tensorflow/tfjs';
import { LabError } from '../errors';
import { parameterShapes, type ModelConfig } from './config';
import { initWeights, type InitOptions } from './init';
import { logprobsOfTargets, maskedNLL } from './logprobs';
import { frozenLinear } from './frozen-linear';
import { ATTENTION_MAX_HEAD_DIM, attentionWebGPU, rmsNormWebGPU, ropeWebGPU, swigluWebGPU, webgpuKernels } from './webgpu-kernels';
import { attendWasm, gatherRows, kvWriteWasm, rmsNormWasm, ropeWasm, swigluWasm, wasmAttention, wasmKernels } from './wasm-kernels';
import { embedding, linear, matMul } from './ops';
import { cannotPack, f16Unavailable, packedEmbedding, packedLinear, packF16, unpackF16, type PackedMatrix } from './packed-f16';
import { applyRope, ropeTables, rotateHalfMatrix } from './rope';
import { transposeData, type NamedTensor, type WeightMap } from './weights';

/** Keys and values of one layer in a KV cache, [B, num_key_value_heads, capacity, head_dim]. */
export interface LayerKV {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/** One forward step over a KV cache (built by the engine; see src/core/engine/kvcache.ts). */
export interface CachedStep {
  /** [B, T] int32 new tokens; rows with fewer than T new tokens are padded. */
  ids: tf.Tensor2D;
  /** [B·T] int32 position of each new token (its RoPE angle). */
  positions: tf.Tensor1D;
  /** [B·nKV·T, 3] int32 (row, kv head, slot): where each new key and value is written, in [B, nKV, T] order. */
  slots: tf.Tensor2D;
  /** [B, 1, T, capacity]: 0 where a new token may attend a slot, MASKED where it may not. */
  maskBias: tf.Tensor4D;
  /** [B] int32 flat index b·T + t of the token whose next-token logits are wanted. */
  pick: tf.Tensor1D;
  /** Slots 0..attended-1 hold every slot a real token of the step attends (maskBias masks the rest for them). */
  attended: number;
}

/** Additive attention bias of a masked slot: exp(-1e9) is 0 in float32, and never NaN. */
export const MASKED = -1e9;

const EMBED = 'model.embed_tokens.weight';
const LM_HEAD = 'lm_head.weight';
/** Checkpoint entries that are buffers, not parameters (old HF Llama files carry them). */
const IGNORED_SUFFIXES = ['.rotary_emb.inv_freq'];

/** Rank-2 parameters other than the embedding are Linear weights, held [in, out] on the device. */
function isLinearWeight(name: string, shape: number[]): boolean {
  return shape.length === 2 && name !== EMBED;
}

/** A parameter's values on the device in the model's layout (Linear weights transposed to [in, out]). */
function toDevice(name: string, t: NamedTensor): tf.Tensor {
  const [rows, cols] = t.shape;
  return isLinearWeight(name, t.shape) ? tf.tensor2d(transposeData(t.data, rows!, cols!), [cols!, rows!]) : tf.tensor(t.data, t.shape);
}

/** A parameter on the device in the model's layout. */
function toVariable(name: string, t: NamedTensor): tf.Variable {
  const device = toDevice(name, t);
  const variable = tf.variable(device, true);
  device.dispose();
  return variable;
}


/**
 * HF LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · w (Zhang & Sennrich 2019); one kernel each way on
 * WebGPU and on wasm (docs/engine.md#webgpu-kernels, docs/engine.md#fused-wasm-kernels).
 */
function rmsNorm<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number): T {
  if (webgpuKernels()) return rmsNormWebGPU(x, w, eps);
  if (wasmKernels() && x.shape[x.rank - 1] % 4 === 0) return rmsNormWasm(x, w, eps);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
}

/**
 * [B, X, Y, d] → [B, Y, X, d] (tokens and heads trade places). With X or Y of 1 (one token a row
 * while decoding) the values keep their order, and a reshape does it without a copy.
 */
function swapAxes12(x: tf.Tensor): tf.Tensor4D {
  const [b, m, n, d] = x.shape as [number, number, number, number];
  return (m === 1 || n === 1 ? tf.reshape(x, [b, n, m, d]) : tf.transpose(x, [0, 2, 1, 3])) as tf.Tensor4D;
}

/** 0 on and below the diagonal, MASKED above: token t attends tokens 0..t. */
function causalBias(length: number): tf.Tensor4D {
  const bias = new Float32Array(length * length);
  for (let t = 0; t < length; t++) bias.fill(MASKED, t * length + t + 1, (t + 1) * length);
  return tf.tensor4d(bias, [1, 1, length, length]);
}

/** What attention needs besides the layer input: positions, masks, and where keys and values come from. */
interface AttentionContext {
  batch: number;
  length: number;
  /** RoPE tables for the new tokens, [B or 1, T, 1, head_dim]. */
  cos: tf.Tensor;
  sin: tf.Tensor;
  /** [B or 1, 1, T, S], added to the attention scores. */
  maskBias: tf.Tensor;
  /** Keys and values layer i attends over, [B, nKV, S, head_dim], given this step's new ones [B, nKV, T, head_dim]. */
  keysValues(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): LayerKV;
  /** A cached step (no gradient): the first slots every real token attends, all of them the rest masks. */
  attended?: number;
}

/** A trainable addition to the Linear layers (LoRA, docs/lora.md) while the base parameters stay frozen. */
export interface LinearAdapter {
  /** The output y of HF Linear `name` (without .weight) on input x, with the adapter's part added. */
  apply(x: tf.Tensor2D, name: string, y: tf.Tensor2D): tf.Tensor2D;
  variables(): tf.Variable[];
  nameOf(variable: tf.Variable): string | undefined;
  dispose(): void;
}

/** How the matrices are held: float32, or float16 pairs on WebGPU (docs/engine.md#packed-f16-weights). */
export type WeightFormat = 'f32' | 'f16';

export class Transformer {
  readonly cfg: ModelConfig;
  /** Parameters by HF name (Linear weights transposed to [in, out]; see the file comment). */
  readonly params: Map<string, tf.Variable>;
  private readonly rotate: tf.Tensor2D;
  private rope: { cos: tf.Tensor2D; sin: tf.Tensor2D; length: number } | undefined;
  private linearAdapter: LinearAdapter | undefined;
  /** Matrices held as float16 pairs instead of in `params` (packWeights; docs/engine.md#packed-f16-weights). */
  private readonly packed = new Map<string, PackedMatrix>();

  private constructor(cfg: ModelConfig, weights: WeightMap) {
    this.cfg = cfg;
    this.params = new Map();
    for (const [name, t] of weights) this.params.set(name, toVariable(name, t));
    this.rotate = tf.tensor2d(rotateHalfMatrix(cfg.head_dim), [cfg.head_dim, cfg.head_dim]);
  }

  /** A fresh model with seeded initial weights (see init.ts). */
  static create(cfg: ModelConfig, options: InitOptions = {}): Transformer {
    return new Transformer(cfg, initWeights(cfg, options));
  }

  /** A model holding the given weights (HF names and layout), checked against the config. */
  static fromWeights(cfg: ModelConfig, weights: WeightMap, source = 'weights'): Transformer {
    return new Transformer(cfg, Transformer.checkWeights(cfg, weights, source));
  }

  /**
   * A model built tensor by tensor as `stream` hands them over (checkpoint.ts streamWeights): each one
   * goes to the device at once and its float32 copy can be dropped, so loading peaks near the model's
   * own size (docs/models.md#memory-budget). Shapes are checked as fromWeights checks them.
   */
  static async fromStream(
    cfg: ModelConfig,
    stream: (visit: (name: string, t: NamedTensor) => void) => Promise<void>,
    source = 'weights',
    options: { weights?: WeightFormat } = {},
  ): Promise<Transformer> {
    const model = new Transformer(cfg, new Map());
    if (options.weights === 'f16') model.assertPackable();
    const expected = parameterShapes(cfg);
    try {
      await stream((name, t) => {
        const shape = expected.get(name);
        if (!shape) {
          if (IGNORED_SUFFIXES.some((s) => name.endsWith(s)) || (cfg.tie_word_embeddings && name === LM_HEAD)) return;
          throw new LabError('weights', `unexpected tensor "${name}": this config has no such parameter`, { file: source, field: name, expected: 'no such tensor', found: `[${t.shape.join(', ')}]` });
        }
        if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) || t.data.length !== shape.reduce((a, b) => a * b, 1)) {
          throw new LabError('weights', `tensor "${name}" has the wrong shape`, { file: source, field: name, expected: `[${shape.join(', ')}]`, found: `[${t.shape.join(', ')}] holding ${t.data.length} values` });
        }
        model.params.get(name)?.dispose();
        model.params.set(name, toVariable(name, t));
        // Packed as it arrives: the float32 copy of one matrix at a time is all the load adds.
        if (options.weights === 'f16') model.packOne(name);
      });
      const missing = [...expected.keys()].filter((n) => !model.params.has(n) && !model.packed.has(n));
      if (missing.length > 0) throw new LabError('weights', `tensor "${missing[0]}" is missing`, { file: source, field: missing[0], expected: `[${expected.get(missing[0])!.join(', ')}]`, found: 'nothing' });
      // trainableVariables() is in parameterShapes order.
      const ordered = [...expected.keys()].filter((n) => model.params.has(n)).map((n) => [n, model.params.get(n)!] as const);
      model.params.clear();
      for (const [n, v] of ordered) model.params.set(n, v);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  /**
   * Every parameter of the config present with its HF shape, nothing unknown (a tied lm_head and
   * rotary buffers are skipped). Returns the weights to use, in parameterShapes order.
   */
  static checkWeights(cfg: ModelConfig, weights: WeightMap, source = 'weights'): WeightMap {
    const expected = parameterShapes(cfg);
    const hint = 'The weights belong to another config: load them with the config.json saved next to them';
    for (const name of weights.keys()) {
      const ignored = IGNORED_SUFFIXES.some((s) => name.endsWith(s)) || (cfg.tie_word_embeddings && name === LM_HEAD);
      if (!expected.has(name) && !ignored) {
        throw new LabError('weights', `unexpected tensor "${name}": this config has no such parameter`, { file: source, field: name, expected: 'no such tensor', found: `[${weights.get(name)!.shape.join(', ')}]`, hint });
      }
    }
    const out: WeightMap = new Map();
    for (const [name, shape] of expected) {
      const t = weights.get(name);
      if (!t) throw new LabError('weights', `tensor "${name}" is missing`, { file: source, field: name, expected: `[${shape.join(', ')}]`, found: 'nothing', hint });
      const size = shape.reduce((a, b) => a * b, 1);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) || t.data.length !== size) {
        throw new LabError('weights', `tensor "${name}" has the wrong shape`, { file: source, field: name, expected: `[${shape.join(', ')}]`, found: `[${t.shape.join(', ')}] holding ${t.data.length} values`, hint });
      }
      out.set(name, t);
    }
    return out;
  }

  /** Replaces every parameter with the given weights (HF names and layout), after checking them all. */
  loadWeights(weights: WeightMap, source = 'weights'): void {
    const checked = Transformer.checkWeights(this.cfg, weights, source);
    for (const [name, t] of checked) {
      const packed = this.packed.get(name);
      if (packed) {
        const device = toDevice(name, t) as tf.Tensor2D;
        this.packed.set(name, packF16(device));
        device.dispose();
        packed.bits.dispose();
      } else tf.tidy(() => this.params.get(name)!.assign(toDevice(name, t)));
    }
  }

  /** The parameters as plain data in HF names and layout (for safetensors and for other models). */
  async exportWeights(): Promise<WeightMap> {
    const out: WeightMap = new Map();
    for (const [name, hfShape] of parameterShapes(this.cfg)) {
      const packed = this.packed.get(name);
      const values = packed ? unpackF16(packed) : this.params.get(name)!;
      const data = (await values.data()) as Float32Array;
      if (packed) values.dispose();
      const [rows, cols] = hfShape;
      out.set(name, { shape: [...hfShape], data: isLinearWeight(name, hfShape) ? transposeData(data, cols, rows) : Float32Array.from(data) });
    }
    return out;
  }

  /** The tensors training updates: the adapter's when one is attached, else every parameter in parameterShapes order. */
  trainableVariables(): tf.Variable[] {
    if (this.linearAdapter) return this.linearAdapter.variables();
    if (this.packed.size > 0)
      throw new LabError('model', `the model's matrices are packed as float16 (${this.packed.size} of them), and packed weights do not train`, {
        field: 'weights',
        expected: 'float32 weights to train every parameter',
        found: 'f16',
        hint: 'train a LoRA adapter on the packed base, or load the model with float32 weights',
      });
    return [...this.params.values()];
  }

  /** 'f16' when the matrices are packed as float16 pairs (packWeights), else 'f32'. */
  get weightFormat(): WeightFormat {
    return this.packed.size > 0 ? 'f16' : 'f32';
  }

  /**
   * Holds every matrix (the embedding, the Linear weights, an untied head) as float16 pairs on
   * WebGPU, half their float32 bytes; norms and biases stay float32. For weights that do not
   * train: inference, or the frozen base under a LoRA adapter (docs/engine.md#packed-f16-weights).
   * Returns the bytes the model's tensors held before and after.
   */
  packWeights(): { before: number; after: number } {
    this.assertPackable();
    const before = this.deviceBytes();
    for (const name of [...this.params.keys()]) this.packOne(name);
    return { before, after: this.deviceBytes() };
  }

  /** Bytes of the parameters on the device (packed matrices at their packed size). */
  deviceBytes(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size * 4;
    for (const p of this.packed.values()) n += p.bits.size * 4;
    return n;
  }

  private assertPackable(): void {
    const why = f16Unavailable();
    if (why) throw new LabError('model', `cannot hold the weights as float16: ${why}`, { field: 'weights', expected: 'f32 on this backend', found: 'f16', hint: 'use float32 weights here, or the WebGPU backend' });
  }

  /** Packs parameter `name` when it is a matrix whose last axis holds pairs; others stay float32. */
  private packOne(name: string): void {
    const v = this.params.get(name);
    if (!v || cannotPack(v.shape) !== undefined) return;
    this.packed.set(name, packF16(v as tf.Tensor as tf.Tensor2D));
    this.params.delete(name);
    v.dispose();
  }

  /** The attached adapter, if any. */
  get adapter(): LinearAdapter | undefined {
    return this.linearAdapter;
  }

  /** Attaches an adapter (the model owns it from now on) and freezes the base parameters. */
  attachAdapter(adapter: LinearAdapter): void {
    if (this.linearAdapter) throw new LabError('model', 'the model already carries an adapter', { hint: 'detach it first, or merge it into a full checkpoint' });
    this.linearAdapter = adapter;
    for (const v of this.params.values()) v.trainable = false;
  }

  /** Detaches the adapter (the caller owns it again) and makes the base parameters trainable. */
  detachAdapter(): LinearAdapter | undefined {
    const adapter = this.linearAdapter;
    this.linearAdapter = undefined;
    for (const v of this.params.values()) v.trainable = true;
    return adapter;
  }

  /** HF name of a variable, or PEFT's name of an adapter variable (tf.variableGrads keys gradients by the variable's own name). */
  nameOf(variable: tf.Variable): string | undefined {
    const adapted = this.linearAdapter?.nameOf(variable);
    if (adapted !== undefined) return adapted;
    for (const [name, v] of this.params) if (v === variable) return name;
    return undefined;
  }

  numParameters(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    for (const p of this.packed.values()) n += p.rows * p.cols;
    return n;
  }

  dispose(): void {
    this.linearAdapter?.dispose();
    this.linearAdapter = undefined;
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    for (const p of this.packed.values()) p.bits.dispose();
    this.packed.clear();
    this.rotate.dispose();
    this.rope?.cos.dispose();
    this.rope?.sin.dispose();
    this.rope = undefined;
  }

  // ---------------------------------------------------------------- full forward (training, scoring)

  /** Logits [B, T, V] of a full causal forward over ids [B, T] (int32), positions 0..T-1. */
  logits(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = ids.shape;
      return tf.reshape(this.lmHead(this.trunk(ids)), [batch, length, this.cfg.vocab_size]) as tf.Tensor3D;
    });
  }

  /**
   * log p(ids[b, t+1] | ids[b, ..t]) for t < T-1: [B, T-1], differentiable. With a temperature τ the
   * distribution is softmax(logits / τ), the one sampling used.
   */
  tokenLogprobs(ids: tf.Tensor2D, options: { temperature?: number } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const [batch, length] = ids.shape;
      if (length < 2) throw new LabError('model', 'log-probabilities need at least two tokens per row', { field: 'ids', expected: 'shape [B, T] with T >= 2', found: `[${ids.shape.join(', ')}]` });
      const h = this.cfg.hidden_size;
      const hidden = tf.reshape(tf.slice(tf.reshape(this.trunk(ids), [batch, length, h]), [0, 0, 0], [batch, length - 1, h]), [-1, h]) as tf.Tensor2D;
      let logits = this.lmHead(hidden);
      const temperature = options.temperature ?? 1;
      if (temperature !== 1) logits = tf.div(logits, temperature);
      const targets = tf.reshape(tf.slice(ids, [0, 1], [batch, length - 1]), [-1]) as tf.Tensor1D;
      return tf.reshape(logprobsOfTargets(logits, targets), [batch, length - 1]) as tf.Tensor2D;
    });
  }

  /** Mean negative log-likelihood of the next tokens where mask [B, T-1] is 1 (mask 0: prompt, padding, tool output). */
  loss(ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => maskedNLL(this.tokenLogprobs(ids), mask));
  }

  /** Hidden states after the final norm, [B·T, h], for positions 0..T-1 with causal attention. */
  private trunk(ids: tf.Tensor2D): tf.Tensor2D {
    const [batch, length] = ids.shape;
    const hd = this.cfg.head_dim;
    const rope = this.ropeTables(length);
    const ctx: AttentionContext = {
      batch,
      length,
      cos: tf.reshape(tf.slice(rope.cos, [0, 0], [length, hd]), [1, length, 1, hd]),
      sin: tf.reshape(tf.slice(rope.sin, [0, 0], [length, hd]), [1, length, 1, hd]),
      maskBias: causalBias(length),
      keysValues: (_layer, k, v) => ({ k, v }),
    };
    return this.blocks(tf.reshape(ids, [-1]) as tf.Tensor1D, ctx);
  }

  // ---------------------------------------------------------------- cached forward (generation)

  /**
   * One generation step: writes the new tokens' keys and values into the cache at their slots,
   * attends over the cache, and returns the next-token logits of one token per row ([B, V]) with the
   * new cache. The caller owns both and disposes the old cache; on wasm the new cache is the old
   * one's buffers written in place (kvWriteWasm), so the old cache is not to be read again.
   */
  forwardCached(step: CachedStep, cache: LayerKV[]): { logits: tf.Tensor2D; cache: LayerKV[] } {
    const [batch, length] = step.ids.shape;
    const hd = this.cfg.head_dim;
    const capacity = cache[0].k.shape[2];
    const rope = this.ropeTables(capacity);
    const out = tf.tidy(() => {
      const next: LayerKV[] = [];
      const ctx: AttentionContext = {
        batch,
        length,
        cos: tf.reshape(gatherRows(rope.cos, step.positions), [batch, length, 1, hd]),
        sin: tf.reshape(gatherRows(rope.sin, step.positions), [batch, length, 1, hd]),
        maskBias: step.maskBias,
        attended: step.attended,
        keysValues: (layer, k, v) => {
          // Kept: they outlive the layer's scope (the caller owns the new cache).
          // On wasm the write is in place (the caller gives the old cache up: see kvWriteWasm), except
          // for a cache of one row and one kv head, whose product with the attention weights goes to
          // XNNPACK: it keeps a packed copy of its right-hand operand by tensor, which would go stale.
          const inPlace = wasmKernels() && batch * this.cfg.num_key_value_heads > 1;
          const write = (into: tf.Tensor4D, rows: tf.Tensor4D) =>
            inPlace ? kvWriteWasm(into, step.slots, tf.reshape(rows, [-1, hd])) : (tf.tensorScatterUpdate(into, step.slots, tf.reshape(rows, [-1, hd])) as tf.Tensor4D);
          const written = { k: tf.keep(write(cache[layer].k, k)), v: tf.keep(write(cache[layer].v, v)) };
          next.push(written);
          return written;
        },
      };
      const hidden = this.blocks(tf.reshape(step.ids, [-1]) as tf.Tensor1D, ctx, step.pick);
      return { logits: this.lmHead(hidden), cache: next.flatMap(({ k, v }) => [k, v]) };
    });
    const flat = out.cache as tf.Tensor4D[];
    return { logits: out.logits as tf.Tensor2D, cache: cache.map((_, i) => ({ k: flat[2 * i], v: flat[2 * i + 1] })) };
  }

  // ---------------------------------------------------------------- the network

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** Embedding, the decoder layers, the final norm; with `pick`, only those rows of [B·T, h] leave. */
  private blocks(ids: tf.Tensor1D, ctx: AttentionContext, pick?: tf.Tensor1D): tf.Tensor2D {
    const packedTable = this.packed.get(EMBED);
    let x = packedTable ? packedEmbedding(ids, packedTable) : embedding(ids, this.p(EMBED) as tf.Tensor2D, gatherRows);
    for (let i = 0; i < this.cfg.num_hidden_layers; i++) {
      const pre = `model.layers.${i}`;
      const input = x;
      // One scope per layer frees its intermediates as it ends (gradients keep their own copies),
      // so a forward holds one layer's activations at a time, not all of them.
      x = tf.tidy(() => {
        const h = tf.add(input, this.attention(i, rmsNorm(input, this.p(`${pre}.input_layernorm.weight`), this.cfg.rms_norm_eps), ctx)) as tf.Tensor2D;
        return tf.add(h, this.mlp(i, rmsNorm(h, this.p(`${pre}.post_attention_layernorm.weight`), this.cfg.rms_norm_eps))) as tf.Tensor2D;
      });
    }
    // A step of one token a row picks every row, in order: nothing to gather.
    if (pick && pick.shape[0] !== x.shape[0]) x = gatherRows(x, pick);
    return rmsNorm(x, this.p('model.norm.weight'), this.cfg.rms_norm_eps);
  }

  /** x·W (+ b) for HF Linear `name` (without the .weight suffix). */
  private proj(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const y = this.matrix(x, `${name}.weight`);
    const bias = this.params.get(`${name}.bias`);
    const out = bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
    return this.linearAdapter ? this.linearAdapter.apply(x, name, out) : out;
  }

  /** Grouped-query self-attention (Ainslie et al. 2023): query head j reads kv head ⌊j / (nH / nKV)⌋, as HF's repeat_kv. */
  private attention(layer: number, x: tf.Tensor2D, ctx: AttentionContext): tf.Tensor2D {
    const { batch: B, length: T } = ctx;
    const { num_attention_heads: nH, num_key_value_heads: nKV, head_dim: hd } = this.cfg;
    const pre = `model.layers.${layer}.self_attn`;
    // Qwen3 normalises each query and key head over head_dim (q_norm / k_norm) before RoPE.
    const heads = (y: tf.Tensor2D, n: number, norm: string) => {
      const split = tf.reshape(y, [B, T, n, hd]);
      const w = this.params.get(`${pre}.${norm}.weight`);
      const normed = w ? rmsNorm(split, w, this.cfg.rms_norm_eps) : split;
      if (webgpuKernels()) return ropeWebGPU(normed, ctx.cos, ctx.sin);
      return wasmKernels() && hd % 8 === 0 ? ropeWasm(normed, ctx.cos, ctx.sin) : applyRope(normed, ctx.cos, ctx.sin, this.rotate);
    };
    const q = swapAxes12(tf.mul(heads(this.proj(x, `${pre}.q_proj`), nH, 'q_norm'), 1 / Math.sqrt(hd)));
    const k = swapAxes12(heads(this.proj(x, `${pre}.k_proj`), nKV, 'k_norm'));
    const v = swapAxes12(tf.reshape(this.proj(x, `${pre}.v_proj`), [B, T, nKV, hd]));
    const kv = ctx.keysValues(layer, k, v);
    const S = kv.k.shape[2];
    const group = nH / nKV;
    let out: tf.Tensor;
    if (webgpuKernels() && hd <= ATTENTION_MAX_HEAD_DIM) {
      // One kernel from q, k, v and the mask to the output, nothing of size T × S kept (docs/engine.md#webgpu-kernels).
      out = attentionWebGPU(q as tf.Tensor4D, kv.k, kv.v, ctx.maskBias as tf.Tensor4D);
    } else if (ctx.attended !== undefined && hd % 8 === 0 && wasmAttention()) {
      // Generation on wasm: one kernel over the slots in use (docs/engine.md#fused-wasm-kernels).
      out = attendWasm(tf.reshape(q, [B, nKV, group * T, hd]), kv.k, kv.v, ctx.maskBias as tf.Tensor4D, ctx.attended);
    } else {
      // The heads sharing a kv head are stacked along the query axis: one batched matmul per kv head.
      const scores = matMul(tf.reshape(q, [B, nKV, group * T, hd]), kv.k, false, true);
      const probs = tf.softmax(tf.add(tf.reshape(scores, [B, nH, T, S]), ctx.maskBias));
      out = matMul(tf.reshape(probs, [B, nKV, group * T, S]), kv.v);
    }
    const merged = tf.reshape(swapAxes12(tf.reshape(out, [B, nH, T, hd])), [B * T, nH * hd]) as tf.Tensor2D;
    return this.proj(merged, `${pre}.o_proj`);
  }

  /** SwiGLU (Shazeer 2020): down(silu(gate(x)) · up(x)). */
  private mlp(layer: number, x: tf.Tensor2D): tf.Tensor2D {
    const pre = `model.layers.${layer}.mlp`;
    const gate = this.proj(x, `${pre}.gate_proj`);
    const up = this.proj(x, `${pre}.up_proj`);
    const gated: tf.Tensor2D = webgpuKernels() ? swigluWebGPU(gate, up) : wasmKernels() && gate.size % 4 === 0 ? swigluWasm(gate, up) : tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
    return this.proj(gated, `${pre}.down_proj`);
  }

  /** Logits from final hidden states [N, h]: h·Eᵀ with the tied embedding E [V, h], or h·lm_head. */
  private lmHead(hidden: tf.Tensor2D): tf.Tensor2D {
    if (this.cfg.tie_word_embeddings) return this.matrix(hidden, EMBED, true);
    return this.matrix(hidden, LM_HEAD);
  }

  /**
   * A product with base weight `name`: under an adapter the base is frozen, and no weight gradient is
   * formed (docs/lora.md#cost); a packed weight is always frozen, unpacked inside its kernel.
   */
  private matrix(x: tf.Tensor2D, name: string, transposed = false): tf.Tensor2D {
    const packed = this.packed.get(name);
    if (packed) return packedLinear(x, packed, transposed);
    const w = this.p(name) as tf.Tensor2D;
    return this.linearAdapter ? frozenLinear(x, w, transposed) : linear(x, w, transposed);
  }

  /** cos/sin tables covering positions 0..length-1, grown in powers of two and kept across tidy scopes. */
  private ropeTables(length: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    if (!this.rope || this.rope.length < length) {
      let size = 64;
      while (size < length) size *= 2;
      const { cos, sin } = ropeTables(this.cfg.head_dim, this.cfg.rope_theta, size);
      this.rope?.cos.dispose();
      this.rope?.sin.dispose();
      this.rope = {
        cos: tf.keep(tf.tensor2d(cos, [size, this.cfg.head_dim])),
        sin: tf.keep(tf.tensor2d(sin, [size, this.cfg.head_dim])),
        length: size,
      };
    }
    return this.rope;
  }
}
