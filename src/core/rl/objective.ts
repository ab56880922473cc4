/**
 * The GRPO objective as small named tensor functions, chosen by name as in verl's core_algos.py.
 * Each takes [B, T] per-token tensors of one micro-batch; `mask` is 1 where a token trains (sampled
 * by the policy and kept in the loss). The formulas are in docs/grpo.md, under the heading each
 * function names.
 *
 * A batch is split into micro-batches to bound memory, so an aggregation divides by counts of the
 * whole batch (BatchNorms), and the micro-batch losses add up to the batch loss.
 */
import * as tf from '@tensorflow/tfjs';
import type { KlEstimator, LossAggregation } from '../config/schema';

/** Log-ratios are clamped before exp (verl clamps to ±20) so a stray token cannot overflow. */
const LOG_RATIO_CLAMP = 20;
/** The k3 estimate is clamped to ±10, as verl's low_var_kl. */
const K3_CLAMP = 10;

export interface ClipOptions {
  /** ε_low: the ratio is clipped below at 1 - ε_low (0.2). */
  epsLow: number;
  /** ε_high: the ratio is clipped above at 1 + ε_high (DAPO clip-higher: 0.28). */
  epsHigh: number;
  /** Dual-clip cap c for negative advantages (verl: 3.0); null turns it off. */
  dualClipC: number | null;
}

/** Counts over the whole batch that an aggregation divides by. */
export interface BatchNorms {
  /** Σ mask: trained tokens. */
  tokens: number;
  /** B: sequences in the batch. */
  rows: number;
  /** B': sequences with at least one trained token. */
  rowsWithTokens: number;
  /** Dr. GRPO's constant L_max (the response budget). */
  maxLength: number;
  /** Trained tokens of sequences with a positive advantage (THOR's NLL term). */
  positiveTokens: number;
}

/** ρ = exp(clamp(log π_new - log π_old, ±20)) on trained tokens (1 elsewhere): docs/grpo.md#clipped-policy-loss. */
export function importanceRatio(logp: tf.Tensor, oldLogp: tf.Tensor, mask: tf.Tensor): { ratio: tf.Tensor; logRatio: tf.Tensor } {
  const logRatio = tf.clipByValue(tf.mul(tf.sub(logp, oldLogp), mask), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
  return { ratio: tf.exp(logRatio), logRatio };
}

/** l = max(-A·ρ, -A·clip(ρ, 1-ε_low, 1+ε_high)) (PPO; DAPO clip-higher): docs/grpo.md#clipped-policy-loss. */
export function clippedPolicyLoss(ratio: tf.Tensor, advantage: tf.Tensor, epsLow: number, epsHigh: number): { loss: tf.Tensor; clipped: tf.Tensor } {
  const unclipped = tf.mul(tf.neg(advantage), ratio);
  const clippedLoss = tf.mul(tf.neg(advantage), tf.clipByValue(ratio, 1 - epsLow, 1 + epsHigh));
  return { loss: tf.maximum(unclipped, clippedLoss), clipped: tf.cast(tf.greater(clippedLoss, unclipped), 'float32') };
}

/** For A < 0: l = min(l, -c·A), so a very unlikely token cannot push without bound (verl clip_ratio_c): docs/grpo.md#dual-clip. */
export function dualClip(loss: tf.Tensor, advantage: tf.Tensor, c: number): { loss: tf.Tensor; capped: tf.Tensor } {
  const cap = tf.mul(tf.neg(advantage), c);
  const negative = tf.less(advantage, 0);
  return {
    loss: tf.where(negative, tf.minimum(loss, cap), loss),
    capped: tf.cast(tf.logicalAnd(negative, tf.greater(loss, cap)), 'float32'),
  };
}

/** Per-token KL(π_new ‖ π_ref) estimates (Schulman 2020; verl kl_penalty), with d = log π_ref - log π_new: docs/grpo.md#kl-estimators. */
export const KL_ESTIMATES: Record<KlEstimator, (logp: tf.Tensor, refLogp: tf.Tensor) => tf.Tensor> = {
  /** k1 = -d ("kl"). */
  k1: (logp, ref) => tf.sub(logp, ref),
  /** k2 = d²/2 ("mse"). */
  k2: (logp, ref) => tf.mul(0.5, tf.square(tf.sub(logp, ref))),
  /** k3 = exp(d) - d - 1, clamped to ±10 ("low_var_kl"). */
  k3: (logp, ref) => {
    const d = tf.sub(ref, logp);
    return tf.clipByValue(tf.sub(tf.sub(tf.exp(d), d), 1), -K3_CLAMP, K3_CLAMP);
  },
};

/** Per-row sums of masked values, [B]. */
const rowSums = (values: tf.Tensor, mask: tf.Tensor) => tf.sum(tf.mul(values, mask), -1);

/** Loss aggregations over the whole batch (the micro-batch's share of it): docs/grpo.md#aggregation. */
export const AGGREGATIONS: Record<LossAggregation, (values: tf.Tensor, mask: tf.Tensor, n: BatchNorms) => tf.Scalar> = {
  /** Σ_i Σ_t m·l / Σ_i Σ_t m (DAPO, THOR, verl's default). */
  'token-mean': (values, mask, n) => tf.div(tf.sum(tf.mul(values, mask)), Math.max(n.tokens, 1)),
  /** (1/B') Σ_i (Σ_t m·l / Σ_t m) (the original GRPO). */
  'seq-mean-token-mean': (values, mask, n) => tf.div(tf.sum(tf.div(rowSums(values, mask), tf.maximum(tf.sum(mask, -1), 1))), Math.max(n.rowsWithTokens, 1)),
  /** (1/B) Σ_i Σ_t m·l / L_max (Dr. GRPO). */
  'seq-mean-token-sum-norm': (values, mask, n) => tf.div(tf.sum(tf.mul(values, mask)), Math.max(n.rows * n.maxLength, 1)),
};

/** α·NLL over the tokens of positive-advantage sequences, a token mean over those tokens (THOR): docs/grpo.md#thors-nll-term. */
export function positiveAdvantageNll(logp: tf.Tensor, advantage: tf.Tensor, mask: tf.Tensor, n: BatchNorms): tf.Scalar {
  const positive = tf.mul(mask, tf.cast(tf.greater(advantage, 0), 'float32'));
  return tf.div(tf.neg(tf.sum(tf.mul(logp, positive))), Math.max(n.positiveTokens, 1));
}

export interface ObjectiveSettings {
  clip: ClipOptions;
  aggregation: LossAggregation;
  /** β of the KL term; 0 turns it off. */
  klCoef: number;
  klEstimator: KlEstimator;
  /** Entropy bonus coefficient; 0 turns it off. */
  entropyCoef: number;
  /** THOR's α; 0 turns the NLL term off. */
  nllAlpha: number;
}

/** One micro-batch's per-token inputs, [B, T]. */
export interface ObjectiveInputs {
  logp: tf.Tensor;
  oldLogp: tf.Tensor;
  advantage: tf.Tensor;
  mask: tf.Tensor;
  /** log π_ref, when the KL term is on. */
  refLogp?: tf.Tensor;
  /** Policy entropy per token, when the entropy bonus is on. */
  entropy?: tf.Tensor;
}

/** Sums over the micro-batch's trained tokens, for the step's statistics. */
export interface ObjectiveSums {
  clipped: tf.Scalar;
  dualClipped: tf.Scalar;
  /** Σ (log π_old - log π_new): verl's ppo_kl once divided by the tokens. */
  approxKl: tf.Scalar;
  refKl: tf.Scalar;
}

/**
 * L = agg(l_clip) + α·NLL⁺ + β·token-mean(KL) - c_ent·token-mean(H) (verl dp_actor with THOR's NLL
 * term): the micro-batch's share of the batch loss, and its statistics.
 */
export function grpoObjective(x: ObjectiveInputs, s: ObjectiveSettings, n: BatchNorms): { loss: tf.Scalar; sums: ObjectiveSums } {
  const { ratio, logRatio } = importanceRatio(x.logp, x.oldLogp, x.mask);
  let { loss: perToken, clipped } = clippedPolicyLoss(ratio, x.advantage, s.clip.epsLow, s.clip.epsHigh);
  let dualClipped: tf.Tensor = tf.zerosLike(perToken);
  if (s.clip.dualClipC !== null) ({ loss: perToken, capped: dualClipped } = dualClip(perToken, x.advantage, s.clip.dualClipC));
  let loss = AGGREGATIONS[s.aggregation](perToken, x.mask, n);
  if (s.nllAlpha > 0) loss = tf.add(loss, tf.mul(s.nllAlpha, positiveAdvantageNll(x.logp, x.advantage, x.mask, n)));
  let refKl: tf.Scalar = tf.scalar(0);
  if (s.klCoef > 0 && x.refLogp) {
    const kl = KL_ESTIMATES[s.klEstimator](x.logp, x.refLogp);
    refKl = tf.sum(tf.mul(kl, x.mask));
    loss = tf.add(loss, tf.mul(s.klCoef, AGGREGATIONS['token-mean'](kl, x.mask, n)));
  }
  if (s.entropyCoef > 0 && x.entropy) loss = tf.sub(loss, tf.mul(s.entropyCoef, AGGREGATIONS['token-mean'](x.entropy, x.mask, n)));
  return {
    loss: loss as tf.Scalar,
    sums: {
      clipped: tf.sum(tf.mul(clipped, x.mask)),
      dualClipped: tf.sum(tf.mul(dualClipped, x.mask)),
      approxKl: tf.sum(tf.mul(tf.neg(logRatio), x.mask)),
      refKl,
    },
  };
}
