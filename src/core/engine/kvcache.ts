/**
 * The KV cache: per layer, keys and values of every row in fixed-size buffers
 * [B, num_key_value_heads, capacity, head_dim]. Slot s of a row holds the token at position s, so rows
 * of different lengths share one buffer and each row's mask is simply "slots up to my position".
 * New keys and values are scattered into their slots (tensorScatterUpdate), never concatenated: the
 * buffers keep their shape, and capacities and step lengths come from a few fixed buckets, so WebGPU's
 * buffer pool (which keeps every size it ever saw) stays bounded.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config';
import { MASKED, type CachedStep, type LayerKV } from '../model/transformer';

/** Smallest KV capacity. */
export const MIN_CAPACITY = 64;

/**
 * Capacity for `needed` slots: 64, 96, 128, 192, 256, 384, ... (powers of two and their 1.5×: at
 * most a third of the slots attended in vain), or the model's limit (max positions + 1 spare slot).
 */
export function capacityBucket(needed: number, maxPositions: number): number {
  let c = MIN_CAPACITY;
  while (c < needed) c = c % 3 === 0 ? (c / 3) * 4 : (c / 2) * 3;
  return Math.min(c, maxPositions + 1);
}

/**
 * A step's fixed cost (op launches, sampling, a read back) in units of one fed position, per backend
 * kind; see chooseStepLength. On the CPU (wasm) compute grows with every position; on a GPU the
 * fixed cost dominates, so longer steps pay off sooner.
 */
export const STEP_OVERHEAD = { cpu: 3, gpu: 16 } as const;

/**
 * Positions fed per row this step, given how many tokens each row has waiting (0: none). Every row
 * of the batch computes `length` positions, so a long step for one row's tool output would make every
 * decoding row pay for it; the length that feeds the most waiting tokens per unit of cost
 * (length + overhead) wins, the longer one on ties. Candidates are the step-length buckets.
 */
export function chooseStepLength(waiting: readonly number[], chunk: number, overhead: number = STEP_OVERHEAD.cpu): number {
  const most = Math.max(0, ...waiting);
  if (most === 0) return 0;
  let best = 1;
  let bestScore = -1;
  for (let t = 1; ; t = t * 4 < chunk ? t * 4 : chunk) {
    const fed = waiting.reduce((sum, w) => sum + Math.min(w, t), 0);
    const score = fed / (t + overhead);
    if (score >= bestScore) [best, bestScore] = [t, score];
    if (t >= chunk || t >= most) break;
  }
  return best;
}

/** What one row feeds in a step: `tokens` starting at position `start` (none: the row sits this step out). */
export interface RowFeed {
  start: number;
  tokens: number[];
}

/**
 * The step's inputs as plain arrays (see CachedStep). Real tokens of row b go to slots start..start+n-1
 * and attend slots ≤ their position; padding tokens write the last slot, which capacity keeps free of
 * real tokens (capacity > every row's length), and are never read by a real token.
 */
export function stepArrays(feeds: RowFeed[], length: number, capacity: number, kvHeads: number) {
  const B = feeds.length;
  const T = length;
  const ids = new Int32Array(B * T);
  const positions = new Int32Array(B * T);
  const slots = new Int32Array(B * kvHeads * T * 3);
  const maskBias = new Float32Array(B * T * capacity);
  const pick = new Int32Array(B);
  const spare = capacity - 1;
  let attended = 1;
  for (let b = 0; b < B; b++) {
    const { start, tokens } = feeds[b];
    const n = tokens.length;
    if (n > T) throw new RangeError(`row ${b} feeds ${n} tokens in a step of ${T}`);
    if (n > 0 && start + n > spare) throw new RangeError(`row ${b} needs slot ${start + n - 1} but capacity ${capacity} keeps slot ${spare} spare`);
    pick[b] = b * T + Math.max(n - 1, 0);
    if (n > 0) attended = Math.max(attended, start + n);
    for (let t = 0; t < T; t++) {
      const real = t < n;
      ids[b * T + t] = real ? tokens[t] : 0;
      positions[b * T + t] = real ? start + t : 0;
      if (real) maskBias.fill(MASKED, (b * T + t) * capacity + start + t + 1, (b * T + t + 1) * capacity);
      for (let h = 0; h < kvHeads; h++) {
        const i = ((b * kvHeads + h) * T + t) * 3;
        slots[i] = b;
        slots[i + 1] = h;
        slots[i + 2] = real ? start + t : spare;
      }
    }
  }
  return { ids, positions, slots, maskBias, pick, attended };
}

/** The step's inputs as tensors; the caller disposes them. */
export function stepTensors(feeds: RowFeed[], length: number, capacity: number, kvHeads: number): CachedStep {
  const a = stepArrays(feeds, length, capacity, kvHeads);
  const B = feeds.length;
  return {
    ids: tf.tensor2d(a.ids, [B, length], 'int32'),
    positions: tf.tensor1d(a.positions, 'int32'),
    slots: tf.tensor2d(a.slots, [B * kvHeads * length, 3], 'int32'),
    maskBias: tf.tensor4d(a.maskBias, [B, 1, length, capacity]),
    pick: tf.tensor1d(a.pick, 'int32'),
    attended: a.attended,
  };
}

export class KVCache {
  readonly batch: number;
  private readonly cfg: ModelConfig;
  layers: LayerKV[];
  capacity: number;

  constructor(cfg: ModelConfig, batch: number, needed = 1) {
    this.cfg = cfg;
    this.batch = batch;
    this.capacity = capacityBucket(needed, cfg.max_position_embeddings);
    const shape: [number, number, number, number] = [batch, cfg.num_key_value_heads, this.capacity, cfg.head_dim];
    this.layers = Array.from({ length: cfg.num_hidden_layers }, () => ({ k: tf.zeros(shape) as tf.Tensor4D, v: tf.zeros(shape) as tf.Tensor4D }));
  }

  /** Grows the buffers (zero-padded along the slot axis) to hold `needed` slots. */
  ensure(needed: number): void {
    if (needed <= this.capacity) return;
    const capacity = capacityBucket(needed, this.cfg.max_position_embeddings);
    if (capacity < needed) throw new RangeError(`the KV cache cannot hold ${needed} slots: the model has ${this.cfg.max_position_embeddings} positions`);
    const pad: [number, number][] = [[0, 0], [0, 0], [0, capacity - this.capacity], [0, 0]];
    this.replace(this.layers.map(({ k, v }) => ({ k: tf.pad(k, pad), v: tf.pad(v, pad) })));
    this.capacity = capacity;
  }

  /** Takes the buffers a forward step returned and frees the previous ones. */
  replace(next: LayerKV[]): void {
    for (const { k, v } of this.layers) {
      k.dispose();
      v.dispose();
    }
    this.layers = next;
  }

  dispose(): void {
    this.replace([]);
  }
}
