/**
 * The tensor side of GRPO and SFT: recomputing old log-probabilities, the clipped policy loss with
 * THOR's α·NLL, optional k3 KL and entropy bonus, over micro-batches whose per-token weights realise
 * the chosen aggregation over the whole batch (batch.ts). The arithmetic is the same as the
 * plain-array reference in losses.ts, which the tests compare it to.
 */
import * as tf from '@tensorflow/tfjs';
import { LabError } from '../errors';
import type { Transformer } from '../model/transformer';
import { logprobsOfTargets } from '../model/logprobs';
import type { AdamW } from '../optim/adamw';
import { trainStep } from '../optim/step';
import {
  aggregationWeights,
  microBatches,
  packIds,
  perTokenFromResponses,
  perTokenFromRows,
  positiveNllWeights,
  responsesFromPerToken,
  type PackedIds,
  type TrainingSequence,
} from './batch';
import type { ClipOptions, KlEstimator, LossAggregation } from './losses';

/** Log-ratios are clamped before exp (verl clamps to ±20) so a stray token cannot overflow. */
const LOG_RATIO_CLAMP = 20;

/** The temperature log-probabilities are taken at: the sampling one, or 1 for greedy rollouts (T = 0). */
const scoringTemperature = (t: number | undefined) => (t !== undefined && t > 0 ? t : 1);

/** Logits [B·(T-1), V] predicting tokens 1..T-1, divided by the sampling temperature (as verl does). */
function shiftedLogits(model: Transformer, ids: tf.Tensor2D, temperature: number): tf.Tensor2D {
  const [B, T] = ids.shape;
  const V = model.cfg.vocab_size;
  const logits = tf.reshape(tf.slice(model.logits(ids), [0, 0, 0], [B, T - 1, V]), [-1, V]) as tf.Tensor2D;
  const t = scoringTemperature(temperature);
  return t === 1 ? logits : tf.div(logits, t);
}

/**
 * Log-probabilities [B, T-1] and per-token entropy [B, T-1] of the packed ids, without gradients,
 * under the policy that sampled them (logits / temperature).
 */
export function scoreTensors(model: Transformer, packed: PackedIds, temperature = 1): { logp: tf.Tensor2D; entropy: tf.Tensor2D } {
  return tf.tidy(() => {
    const [B, T] = [packed.batch, packed.length];
    const ids = tf.tensor2d(packed.ids, [B, T], 'int32');
    const logits = shiftedLogits(model, ids, temperature);
    const targets = tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [-1]) as tf.Tensor1D;
    const logSoft = tf.logSoftmax(logits);
    const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logSoft), logSoft), -1));
    return {
      logp: tf.reshape(logprobsOfTargets(logits, targets), [B, T - 1]) as tf.Tensor2D,
      entropy: tf.reshape(entropy, [B, T - 1]) as tf.Tensor2D,
    };
  });
}

/** Per response token: log π(token) and the entropy of π at that position, for each sequence. */
export async function scoreSequences(model: Transformer, seqs: readonly TrainingSequence[], maxTokens = 8192, temperature = 1): Promise<{ logp: number[][]; entropy: number[][] }> {
  const logp: number[][] = new Array(seqs.length);
  const entropy: number[][] = new Array(seqs.length);
  const maxPos = model.cfg.max_position_embeddings;
  for (const rows of microBatches(seqs.map((s) => s.promptTokens.length + s.tokens.length), maxTokens, maxPos)) {
    const part = rows.map((i) => seqs[i]);
    const packed = packIds(part, maxPos);
    const t = scoreTensors(model, packed, temperature);
    const [lp, en] = await Promise.all([t.logp.data(), t.entropy.data()]);
    tf.dispose([t.logp, t.entropy]);
    const lpRows = responsesFromPerToken(packed, part, lp);
    const enRows = responsesFromPerToken(packed, part, en);
    rows.forEach((i, k) => {
      logp[i] = lpRows[k];
      entropy[i] = enRows[k];
    });
  }
  return { logp, entropy };
}

export interface PolicySample extends TrainingSequence {
  /** One advantage per sample (trajectory- or step-level, group-normalised). */
  advantage: number;
  /** log π_old per response token (the rollout policy). */
  oldLogprobs: number[];
  /** log π_ref per response token, when the KL term is on. */
  refLogprobs?: number[];
}

export interface PolicyLossSettings {
  clip: ClipOptions;
  aggregation: LossAggregation;
  /** Dr. GRPO's constant L_max (the response budget). */
  maxLength?: number;
  klCoef: number;
  klEstimator: KlEstimator;
  entropyCoef: number;
  nllAlpha: number;
  /** The rollouts' sampling temperature: log-probabilities are those of logits / temperature (default 1). */
  temperature?: number;
}

/** Statistics of one update, token means over the trained tokens. */
export interface UpdateStats {
  loss: number;
  gradNorm: number;
  lr: number;
  clipFraction: number;
  dualClipFraction: number;
  /** verl's ppo_kl: mean of log π_old - log π_new. */
  approxKl: number;
  /** k-estimate of KL to the reference when klCoef > 0, else null. */
  refKl: number | null;
  tokens: number;
}

/** Per-token KL estimate as a tensor (k1, k2, k3 as in losses.ts klEstimate; k3 clamped to ±10). */
function klTensor(logp: tf.Tensor, ref: tf.Tensor, estimator: KlEstimator): tf.Tensor {
  const d = tf.sub(ref, logp);
  if (estimator === 'k1') return tf.neg(d);
  if (estimator === 'k2') return tf.mul(0.5, tf.square(d));
  return tf.clipByValue(tf.sub(tf.sub(tf.exp(d), d), 1), -10, 10);
}

interface MicroInputs {
  packed: PackedIds;
  adv: Float32Array;
  old: Float32Array;
  ref?: Float32Array;
  pgWeight: Float32Array;
  nllWeight: Float32Array;
  tokenWeight: Float32Array;
}

/** The GRPO loss as one closure per micro-batch (their sum is the batch loss), plus statistics sums they fill. */
export interface PolicyLoss {
  lossFns: (() => tf.Scalar)[];
  /** One [clipped, dual-clipped, Σ(old - new), Σ ref KL] tensor per evaluated closure, kept for reading after the step. */
  stats: tf.Tensor[];
  /** Trained (masked-in) tokens in the batch. */
  tokens: number;
}

/**
 * The GRPO objective over all samples, split into micro-batches of at most maxTokens padded tokens:
 * L = Σ w·max(-A·ρ, -A·clip(ρ, 1-ε_low, 1+ε_high)) (dual-clipped at -A·c for A < 0)
 *   + α·NLL⁺ + β·KL - c_ent·H, with ρ = exp(logp_new - logp_old), w the aggregation weights.
 */
export function buildPolicyLoss(model: Transformer, samples: readonly PolicySample[], s: PolicyLossSettings, maxTokens = 8192): PolicyLoss {
  const maxPos = model.cfg.max_position_embeddings;
  if (s.klCoef > 0) {
    const missing = samples.findIndex((x) => x.refLogprobs === undefined);
    if (missing >= 0) throw new LabError('grpo', 'the KL term needs the frozen reference policy\'s log-probabilities', { field: `samples[${missing}].refLogprobs`, expected: 'log-probabilities from the reference model when grpo.klCoef > 0', found: 'none', hint: 'score the samples with the reference model, or set grpo.klCoef to 0' });
  }
  const masks = samples.map((x) => x.lossMask);
  const pgW = aggregationWeights(masks, s.aggregation, s.maxLength);
  const nllW = positiveNllWeights(masks, samples.map((x) => x.advantage), s.nllAlpha);
  const tokW = aggregationWeights(masks, 'token-mean');
  const groups = microBatches(samples.map((x) => x.promptTokens.length + x.tokens.length), maxTokens, maxPos);
  const inputs: MicroInputs[] = groups.map((rows) => {
    const part = rows.map((i) => samples[i]);
    const packed = packIds(part, maxPos);
    return {
      packed,
      adv: perTokenFromRows(packed, part, part.map((x) => x.advantage)),
      old: perTokenFromResponses(packed, part.map((x) => x.oldLogprobs)),
      ref: s.klCoef > 0 ? perTokenFromResponses(packed, part.map((x) => x.refLogprobs!)) : undefined,
      pgWeight: perTokenFromResponses(packed, rows.map((i) => pgW[i])),
      nllWeight: perTokenFromResponses(packed, rows.map((i) => nllW[i])),
      tokenWeight: perTokenFromResponses(packed, rows.map((i) => tokW[i])),
    };
  });
  const stats: tf.Tensor[] = [];
  const lossFns = inputs.map((m) => () => microBatchLoss(model, m, s, stats));
  const tokens = masks.reduce((acc, m) => acc + m.reduce((a, b) => a + b, 0), 0);
  return { lossFns, stats, tokens };
}

function microBatchLoss(model: Transformer, m: MicroInputs, s: PolicyLossSettings, stats: tf.Tensor[]): tf.Scalar {
  const [B, T] = [m.packed.batch, m.packed.length];
  const shape: [number, number] = [B, T - 1];
  const ids = tf.tensor2d(m.packed.ids, [B, T], 'int32');
  const mask = tf.tensor2d(m.packed.mask, shape);
  const adv = tf.tensor2d(m.adv, shape);
  const old = tf.tensor2d(m.old, shape);
  let logp: tf.Tensor2D;
  let entropy: tf.Tensor | undefined;
  const temperature = scoringTemperature(s.temperature);
  if (s.entropyCoef > 0) {
    const logits = shiftedLogits(model, ids, temperature);
    const targets = tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [-1]) as tf.Tensor1D;
    logp = tf.reshape(logprobsOfTargets(logits, targets), shape) as tf.Tensor2D;
    const ls = tf.logSoftmax(logits);
    entropy = tf.reshape(tf.neg(tf.sum(tf.mul(tf.exp(ls), ls), -1)), shape);
  } else logp = model.tokenLogprobs(ids, { temperature });
  const logRatio = tf.clipByValue(tf.mul(tf.sub(logp, old), mask), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
  const ratio = tf.exp(logRatio);
  const pg1 = tf.mul(tf.neg(adv), ratio);
  const pg2 = tf.mul(tf.neg(adv), tf.clipByValue(ratio, 1 - s.clip.epsLow, 1 + s.clip.epsHigh));
  const pgMax = tf.maximum(pg1, pg2);
  let pg: tf.Tensor = pgMax;
  let dual: tf.Tensor = tf.zerosLike(pgMax);
  if (s.clip.dualClipC !== null) {
    const pg3 = tf.mul(tf.neg(adv), s.clip.dualClipC);
    const negative = tf.less(adv, 0);
    pg = tf.where(negative, tf.minimum(pgMax, pg3), pgMax);
    dual = tf.cast(tf.logicalAnd(negative, tf.greater(pgMax, pg3)), 'float32');
  }
  let loss = tf.sum(tf.mul(tf.tensor2d(m.pgWeight, shape), pg));
  if (s.nllAlpha > 0) loss = tf.add(loss, tf.sum(tf.mul(tf.tensor2d(m.nllWeight, shape), tf.neg(logp))));
  const tokenWeight = tf.tensor2d(m.tokenWeight, shape);
  let refKl: tf.Tensor = tf.scalar(0);
  if (s.klCoef > 0 && m.ref) {
    const kl = klTensor(logp, tf.tensor2d(m.ref, shape), s.klEstimator);
    refKl = tf.sum(tf.mul(kl, mask));
    loss = tf.add(loss, tf.mul(s.klCoef, tf.sum(tf.mul(tokenWeight, kl))));
  }
  if (entropy) loss = tf.sub(loss, tf.mul(s.entropyCoef, tf.sum(tf.mul(tokenWeight, entropy))));
  const clipped = tf.cast(tf.greater(pg2, pg1), 'float32');
  stats.push(tf.keep(tf.stack([tf.sum(tf.mul(clipped, mask)), tf.sum(tf.mul(dual, mask)), tf.sum(tf.mul(tf.neg(logRatio), mask)), refKl])));
  return loss as tf.Scalar;
}

/** One optimiser step of the GRPO objective (buildPolicyLoss) with gradient clipping. */
export async function policyUpdate(
  model: Transformer,
  optimizer: AdamW,
  samples: readonly PolicySample[],
  s: PolicyLossSettings,
  opts: { lr: number; maxGradNorm: number; maxTokens?: number },
): Promise<UpdateStats> {
  const { lossFns, stats, tokens } = buildPolicyLoss(model, samples, s, opts.maxTokens);
  const step = await trainStep(model, optimizer, lossFns, { lr: opts.lr, maxGradNorm: opts.maxGradNorm });
  const sums = [0, 0, 0, 0];
  for (const t of stats) {
    const v = await t.data();
    for (let k = 0; k < 4; k++) sums[k] += v[k];
  }
  tf.dispose(stats);
  const per = (x: number) => (tokens > 0 ? x / tokens : 0);
  return {
    loss: step.loss,
    gradNorm: step.gradNorm,
    lr: step.lr,
    clipFraction: per(sums[0]),
    dualClipFraction: per(sums[1]),
    approxKl: per(sums[2]),
    refKl: s.klCoef > 0 ? per(sums[3]) : null,
    tokens,
  };
}

/** One optimiser step of supervised fine-tuning: token-mean NLL of the masked-in response tokens. */
export async function sftUpdate(
  model: Transformer,
  optimizer: AdamW,
  seqs: readonly TrainingSequence[],
  opts: { lr: number; maxGradNorm: number; maxTokens?: number },
): Promise<{ loss: number; gradNorm: number; lr: number; tokens: number }> {
  const maxPos = model.cfg.max_position_embeddings;
  const w = aggregationWeights(seqs.map((x) => x.lossMask), 'token-mean');
  const groups = microBatches(seqs.map((x) => x.promptTokens.length + x.tokens.length), opts.maxTokens ?? 8192, maxPos);
  const lossFns = groups.map((rows) => {
    const part = rows.map((i) => seqs[i]);
    const packed = packIds(part, maxPos);
    const weights = perTokenFromResponses(packed, rows.map((i) => w[i]));
    return () => {
      const ids = tf.tensor2d(packed.ids, [packed.batch, packed.length], 'int32');
      const logp = model.tokenLogprobs(ids);
      return tf.neg(tf.sum(tf.mul(tf.tensor2d(weights, [packed.batch, packed.length - 1]), logp))) as tf.Scalar;
    };
  });
  const step = await trainStep(model, optimizer, lossFns, { lr: opts.lr, maxGradNorm: opts.maxGradNorm });
  const tokens = seqs.reduce((acc, x) => acc + x.lossMask.reduce((a, b) => a + b, 0), 0);
  return { ...step, tokens };
}
