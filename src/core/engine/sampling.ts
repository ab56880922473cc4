/** Choosing the next token from logits: greedy, temperature, top-k, top-p; seeded, on plain arrays. */
import type { Rng } from '../rng';

export interface SamplingParams {
  /** Softmax temperature; 0 takes the most likely token (greedy). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 keeps all. */
  topK: number;
  /** Nucleus: keep the most likely tokens until their probability reaches p (Holtzman et al. 2020); 1 keeps all. */
  topP: number;
  /**
   * CTRL's repetition penalty (Keskar et al. 2019), before the temperature: the logit of every id
   * already in the row is divided by it when positive, multiplied when negative. Absent or 1: none.
   */
  repetitionPenalty?: number;
}

export const DEFAULT_SAMPLING: SamplingParams = { temperature: 1, topK: 0, topP: 1 };

/** Next-token candidates of one row: logits already divided by the temperature, and logsumexp over the whole vocabulary. */
export interface Candidates {
  /** Scaled logits: the whole vocabulary (ids absent), or the best candidates sorted descending (ids given). */
  values: ArrayLike<number>;
  ids?: ArrayLike<number>;
  /** log Σ_v exp(scaled logit v) over the whole vocabulary. */
  logSumExp: number;
}

export interface Sampled {
  token: number;
  /** log-probability of the token under softmax(logits / temperature) over the whole vocabulary (before top-k / top-p). */
  logprob: number;
}

/** log Σ exp(x_i), computed stably. */
export function logSumExp(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i] - max);
  return max + Math.log(sum);
}

/**
 * Samples one token. Order as in HF's logits processors: temperature (already applied), top-k, then
 * top-p over the renormalised top-k set. The reported log-probability is that of the untruncated
 * tempered distribution, the quantity a policy-gradient ratio recomputes.
 */
export function sampleToken(c: Candidates, params: SamplingParams, rng: Rng): Sampled {
  const n = c.values.length;
  const idOf = (i: number) => (c.ids ? c.ids[i] : i);
  const result = (i: number): Sampled => ({ token: idOf(i), logprob: c.values[i] - c.logSumExp });
  if (params.temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (c.values[i] > c.values[best]) best = i;
    return result(best);
  }
  const topK = params.topK > 0 ? Math.min(params.topK, n) : n;
  let order: number[] | undefined;
  if (c.ids) order = Array.from({ length: topK }, (_, i) => i); // already sorted descending
  else if (topK < n || params.topP < 1) order = Array.from({ length: n }, (_, i) => i).sort((a, b) => c.values[b] - c.values[a]).slice(0, topK);
  if (!order) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (c.values[i] > max) max = c.values[i];
    return result(drawWeighted(Float64Array.from(c.values, (v) => Math.exp(v - max)), n, rng));
  }
  const max = c.values[order[0]];
  const weights = order.map((i) => Math.exp(c.values[i] - max));
  let kept = weights.length;
  if (params.topP < 1) {
    const total = weights.reduce((a, b) => a + b, 0);
    let cumulative = 0;
    for (let j = 0; j < weights.length; j++) {
      cumulative += weights[j] / total;
      if (cumulative >= params.topP) {
        kept = j + 1;
        break;
      }
    }
  }
  return result(order[drawWeighted(weights, kept, rng)]);
}

/** Index i < n drawn with probability ∝ weights[i] (inverse CDF of one uniform draw). */
function drawWeighted(weights: ArrayLike<number>, n: number, rng: Rng): number {
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i];
  let u = rng.next() * total;
  for (let i = 0; i < n; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return n - 1;
}
