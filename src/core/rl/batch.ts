/**
 * Packing trajectory records into padded training batches: prompt + response ids [B, T] and, aligned
 * with the model's next-token log-probabilities [B, T-1], the loss mask, per-token advantages and old
 * log-probabilities. Plain arrays only; the objective (objective.ts) reads them as tensors.
 */

/** A response to train on: what the batch needs of a TrajectoryRecord (or an SFT example). */
export interface TrainingSequence {
  promptTokens: number[];
  tokens: number[];
  lossMask: number[];
}

/**
 * Sequence lengths are padded to multiples of 32, so WebGPU's buffer pool sees at most
 * max_positions / 32 shapes, while padding (and attention's T² cost) stays under 32 tokens a row.
 */
export function lengthBucket(length: number, maxPositions: number): number {
  const t = Math.ceil(length / 32) * 32;
  return Math.max(length, Math.min(t, maxPositions));
}

export interface PackedIds {
  batch: number;
  /** Padded sequence length T. */
  length: number;
  /** [B, T] prompt + response + padding. */
  ids: Int32Array;
  /** [B, T-1]: 1 where the next-token log-probability at index t belongs to a trained response token. */
  mask: Float32Array;
  /** Index in the [B, T-1] layout of each row's first response token. */
  responseStart: number[];
}

/** Response token j of a row sits at position P + j, and its log-probability at index P + j - 1. */
export function packIds(seqs: readonly TrainingSequence[], maxPositions: number, padId = 0): PackedIds {
  const longest = Math.max(2, ...seqs.map((s) => s.promptTokens.length + s.tokens.length));
  const T = lengthBucket(longest, maxPositions);
  const B = seqs.length;
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Float32Array(B * (T - 1));
  const responseStart: number[] = [];
  seqs.forEach((s, b) => {
    const P = s.promptTokens.length;
    ids.set(s.promptTokens, b * T);
    ids.set(s.tokens, b * T + P);
    responseStart.push(P - 1);
    for (let j = 0; j < s.tokens.length; j++) mask[b * (T - 1) + P - 1 + j] = s.lossMask[j] ?? 0;
  });
  return { batch: B, length: T, ids, mask, responseStart };
}

/** Spreads one value per row over that row's response tokens in the [B, T-1] layout (0 elsewhere). */
export function perTokenFromRows(packed: PackedIds, seqs: readonly TrainingSequence[], rowValues: readonly number[]): Float32Array {
  const T1 = packed.length - 1;
  const out = new Float32Array(packed.batch * T1);
  seqs.forEach((s, b) => out.fill(rowValues[b], b * T1 + packed.responseStart[b], b * T1 + packed.responseStart[b] + s.tokens.length));
  return out;
}

/** Places each row's per-response-token values (e.g. old log-probabilities) in the [B, T-1] layout. */
export function perTokenFromResponses(packed: PackedIds, values: readonly ArrayLike<number>[]): Float32Array {
  const T1 = packed.length - 1;
  const out = new Float32Array(packed.batch * T1);
  values.forEach((row, b) => out.set(Array.from(row), b * T1 + packed.responseStart[b]));
  return out;
}

/** Reads back each row's response part from a [B, T-1] array. */
export function responsesFromPerToken(packed: PackedIds, seqs: readonly TrainingSequence[], values: ArrayLike<number>): number[][] {
  const T1 = packed.length - 1;
  return seqs.map((s, b) => Array.from({ length: s.tokens.length }, (_, j) => values[b * T1 + packed.responseStart[b] + j]));
}

/** Splits row indices into micro-batches of at most `maxTokens` padded tokens each (rows sorted by length). */
export function microBatches(lengths: readonly number[], maxTokens: number, maxPositions: number): number[][] {
  const order = lengths.map((l, i) => ({ l, i })).sort((a, b) => a.l - b.l);
  const out: number[][] = [];
  let current: number[] = [];
  let longest = 0;
  for (const { l, i } of order) {
    const nextLongest = Math.max(longest, l);
    if (current.length > 0 && lengthBucket(nextLongest, maxPositions) * (current.length + 1) > maxTokens) {
      out.push(current);
      current = [];
      longest = 0;
    }
    current.push(i);
    longest = Math.max(longest, l);
  }
  if (current.length > 0) out.push(current);
  return out;
}
