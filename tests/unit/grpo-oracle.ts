/**
 * The tests' oracle: the GRPO objective on plain arrays (PPO clip, DAPO clip-higher, Dr. GRPO),
 * following verl's core_algos.py (compute_policy_loss, agg_loss, kl_penalty) and THOR's actor (α·NLL
 * on positive-advantage samples), written from docs/grpo.md independently of the tensor code. Rows
 * are trajectories, columns response tokens; a mask row marks the tokens that train.
 */
import type { KlEstimator, LossAggregation } from '../../src/core/config/schema';
import type { ClipOptions } from '../../src/core/rl/objective';

export type Row = ArrayLike<number>;

function maskedSums(values: readonly Row[], mask: readonly Row[]): { sums: number[]; counts: number[] } {
  const sums: number[] = [];
  const counts: number[] = [];
  values.forEach((row, i) => {
    let s = 0;
    let c = 0;
    for (let t = 0; t < row.length; t++) {
      if (!mask[i][t]) continue;
      s += row[t] * mask[i][t];
      c += mask[i][t];
    }
    sums.push(s);
    counts.push(c);
  });
  return { sums, counts };
}

/** Σ mask·v / Σ mask over the whole batch (0 when nothing is masked in). */
export function maskedMean(values: readonly Row[], mask: readonly Row[]): number {
  const { sums, counts } = maskedSums(values, mask);
  const n = counts.reduce((a, b) => a + b, 0);
  return n === 0 ? 0 : sums.reduce((a, b) => a + b, 0) / n;
}

/**
 * token-mean (DAPO, THOR, verl's default): Σ_i Σ_t l / Σ_i |o_i|.
 * seq-mean-token-mean (original GRPO): (1/B') Σ_i (Σ_t l / |o_i|), over the B' rows with tokens.
 * seq-mean-token-sum-norm (Dr. GRPO): (1/B) Σ_i Σ_t l / L_max, with L_max a constant (the response budget).
 */
export function aggregateLoss(values: readonly Row[], mask: readonly Row[], mode: LossAggregation, maxLength?: number): number {
  if (mode === 'token-mean') return maskedMean(values, mask);
  const { sums, counts } = maskedSums(values, mask);
  if (mode === 'seq-mean-token-mean') {
    const perRow = sums.flatMap((s, i) => (counts[i] > 0 ? [s / counts[i]] : []));
    return perRow.length === 0 ? 0 : perRow.reduce((a, b) => a + b, 0) / perRow.length;
  }
  const lMax = maxLength ?? Math.max(0, ...values.map((r) => r.length));
  if (values.length === 0 || lMax === 0) return 0;
  return sums.reduce((a, b) => a + b, 0) / (values.length * lMax);
}

export interface TokenLoss {
  loss: number;
  ratio: number;
  /** The clipped branch was taken (verl's pg_clipfrac counts these). */
  clipped: boolean;
  /** A < 0 and the dual-clip cap -c·A was taken (verl's pg_clipfrac_lower). */
  dualClipped: boolean;
}

/** ρ = exp(logp_new - logp_old), the log-ratio clamped to ±20 as verl does against overflow. */
export function importanceRatio(logpNew: number, logpOld: number): number {
  return Math.exp(Math.min(20, Math.max(-20, logpNew - logpOld)));
}

/**
 * PPO clipped loss with clip-higher and dual clip (verl compute_policy_loss):
 * l = max(-Aρ, -A·clip(ρ, 1-ε_low, 1+ε_high)); for A < 0 also l = min(l, -c·A).
 */
export function clippedTokenLoss(logpNew: number, logpOld: number, advantage: number, o: ClipOptions): TokenLoss {
  const ratio = importanceRatio(logpNew, logpOld);
  const unclipped = -advantage * ratio;
  const clippedLoss = -advantage * Math.min(1 + o.epsHigh, Math.max(1 - o.epsLow, ratio));
  let loss = Math.max(unclipped, clippedLoss);
  const clipped = clippedLoss > unclipped;
  let dualClipped = false;
  if (advantage < 0 && o.dualClipC !== null) {
    const cap = -advantage * o.dualClipC;
    dualClipped = loss > cap;
    loss = Math.min(loss, cap);
  }
  return { loss, ratio, clipped, dualClipped };
}

export interface PolicyBatch {
  logpNew: readonly Row[];
  /** log π_old from the rollout policy. */
  logpOld: readonly Row[];
  /** One advantage per row (trajectory), the same for all its tokens. */
  advantages: readonly number[];
  mask: readonly Row[];
}

export interface PolicyLossResult {
  loss: number;
  tokenLosses: number[][];
  /** Share of masked tokens where the clip was active. */
  clipFraction: number;
  /** Share of masked tokens where the dual clip capped a negative-advantage loss. */
  dualClipFraction: number;
  /** verl's ppo_kl: token mean of logp_old - logp_new. */
  approxKl: number;
}

export function policyLoss(batch: PolicyBatch, clip: ClipOptions, aggregation: LossAggregation, maxLength?: number): PolicyLossResult {
  const tokenLosses: number[][] = [];
  const clippedRows: number[][] = [];
  const dualRows: number[][] = [];
  const klRows: number[][] = [];
  batch.logpNew.forEach((row, i) => {
    const losses: number[] = [];
    const clipped: number[] = [];
    const dual: number[] = [];
    const kl: number[] = [];
    for (let t = 0; t < row.length; t++) {
      const r = clippedTokenLoss(row[t], batch.logpOld[i][t], batch.advantages[i], clip);
      losses.push(r.loss);
      clipped.push(r.clipped ? 1 : 0);
      dual.push(r.dualClipped ? 1 : 0);
      kl.push(batch.logpOld[i][t] - row[t]);
    }
    tokenLosses.push(losses);
    clippedRows.push(clipped);
    dualRows.push(dual);
    klRows.push(kl);
  });
  return {
    loss: aggregateLoss(tokenLosses, batch.mask, aggregation, maxLength),
    tokenLosses,
    clipFraction: maskedMean(clippedRows, batch.mask),
    dualClipFraction: maskedMean(dualRows, batch.mask),
    approxKl: maskedMean(klRows, batch.mask),
  };
}

/** k3 estimator of KL(π_new ‖ π_ref) (Schulman 2020; verl low_var_kl): exp(ref - new) - (ref - new) - 1, clamped to ±10. */
export function k3(logpNew: number, logpRef: number): number {
  const d = logpRef - logpNew;
  return Math.min(10, Math.max(-10, Math.exp(d) - d - 1));
}

/** Per-token KL estimate, as verl's kl_penalty: k1 = new - ref ("kl"), k2 = ½(new - ref)² ("mse"), k3 ("low_var_kl"). */
export function klEstimate(logpNew: number, logpRef: number, estimator: KlEstimator): number {
  if (estimator === 'k1') return logpNew - logpRef;
  if (estimator === 'k2') return 0.5 * (logpNew - logpRef) ** 2;
  return k3(logpNew, logpRef);
}

/** Token mean of the KL estimate over the loss mask (THOR and verl use masked_mean for the KL loss). */
export function klLoss(logpNew: readonly Row[], logpRef: readonly Row[], mask: readonly Row[], estimator: KlEstimator = 'k3'): number {
  const values = logpNew.map((row, i) => Array.from(row, (v, t) => klEstimate(v, logpRef[i][t], estimator)));
  return maskedMean(values, mask);
}

/** Token mean of the policy entropy over the loss mask; the loss subtracts coef × this (verl). */
export function meanEntropy(entropy: readonly Row[], mask: readonly Row[]): number {
  return maskedMean(entropy, mask);
}

/** THOR's α·NLL term: -Σ_{A>0} logp / #tokens with A>0 (0 when there are none), a token mean over positive-advantage samples. */
export function positiveAdvantageNll(logpNew: readonly Row[], advantages: readonly number[], mask: readonly Row[]): number {
  const selected = mask.map((row, i) => Array.from(row, (m) => (advantages[i] > 0 ? m : 0)));
  const { sums, counts } = maskedSums(logpNew, selected);
  const n = counts.reduce((a, b) => a + b, 0);
  return n === 0 ? 0 : -sums.reduce((a, b) => a + b, 0) / n;
}

export interface GrpoLossOptions {
  clip: ClipOptions;
  aggregation: LossAggregation;
  /** Dr. GRPO's constant L_max; defaults to the longest row. */
  maxLength?: number;
  klCoef: number;
  /** Default k3. */
  klEstimator?: KlEstimator;
  entropyCoef: number;
  /** THOR: α = 0.01. */
  nllAlpha: number;
}

export interface GrpoLossInput extends PolicyBatch {
  /** log π_ref, needed when klCoef > 0. */
  logpRef?: readonly Row[];
  /** Per-token policy entropy, needed when entropyCoef > 0. */
  entropy?: readonly Row[];
}

export interface GrpoLossResult extends PolicyLossResult {
  policyLoss: number;
  kl: number;
  entropy: number;
  nll: number;
}

/** L = L_policy + β·KL - c_ent·H + α·NLL⁺ (verl dp_actor.update_policy with THOR's select loss). */
export function grpoLoss(input: GrpoLossInput, o: GrpoLossOptions): GrpoLossResult {
  const policy = policyLoss(input, o.clip, o.aggregation, o.maxLength);
  if (o.klCoef > 0 && !input.logpRef) throw new RangeError('grpoLoss: klCoef > 0 needs logpRef');
  if (o.entropyCoef > 0 && !input.entropy) throw new RangeError('grpoLoss: entropyCoef > 0 needs entropy');
  const kl = input.logpRef ? klLoss(input.logpNew, input.logpRef, input.mask, o.klEstimator) : 0;
  const entropy = input.entropy ? meanEntropy(input.entropy, input.mask) : 0;
  const nll = o.nllAlpha > 0 ? positiveAdvantageNll(input.logpNew, input.advantages, input.mask) : 0;
  const loss = policy.loss + o.klCoef * kl - o.entropyCoef * entropy + o.nllAlpha * nll;
  return { ...policy, loss, policyLoss: policy.loss, kl, entropy, nll };
}
