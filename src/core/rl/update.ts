/**
 * Updates of the policy: recomputing old log-probabilities, one optimiser step of the GRPO objective
 * (objective.ts) over micro-batches, and one of SFT. The tests check the objective against a
 * plain-array oracle of the same formulas.
 */
import * as tf from '@tensorflow/tfjs';
import { LabError } from '../errors';
import type { Transformer } from '../model/transformer';
import { beginAdapterStep, withAdapterDropout } from '../model/lora';
import { logprobsOfTargets } from '../model/logprobs';
import { entropyWebGPU, webgpuKernels } from '../model/webgpu-kernels';
import type { AdamW } from '../optim/adamw';
import { trainStep } from '../optim/step';
import { microBatches, packIds, perTokenFromResponses, perTokenFromRows, responsesFromPerToken, type PackedIds, type TrainingSequence } from './batch';
import { AGGREGATIONS, grpoObjective, type BatchNorms, type ObjectiveSettings } from './objective';

/** The temperature log-probabilities are taken at: the sampling one, or 1 for greedy rollouts (T = 0). */
const scoringTemperature = (t: number | undefined) => (t !== undefined && t > 0 ? t : 1);

/**
 * Log-probabilities [B, T-1] of the next tokens and the policy's entropy [B, T-1] at each position,
 * under logits / temperature (the sampling distribution, as verl scores it).
 */
function logpAndEntropy(model: Transformer, ids: tf.Tensor2D, temperature: number): { logp: tf.Tensor2D; entropy: tf.Tensor2D } {
  const [B, T] = ids.shape;
  const V = model.cfg.vocab_size;
  let logits = tf.reshape(tf.slice(model.logits(ids), [0, 0, 0], [B, T - 1, V]), [-1, V]) as tf.Tensor2D;
  if (temperature !== 1) logits = tf.div(logits, temperature);
  const targets = tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [-1]) as tf.Tensor1D;
  // On WebGPU one kernel per row (docs/engine.md#webgpu-kernels); elsewhere from the log-softmax.
  let entropy: tf.Tensor;
  if (webgpuKernels()) entropy = entropyWebGPU(logits);
  else {
    const logSoft = tf.logSoftmax(logits);
    entropy = tf.neg(tf.sum(tf.mul(tf.exp(logSoft), logSoft), -1));
  }
  return {
    logp: tf.reshape(logprobsOfTargets(logits, targets), [B, T - 1]) as tf.Tensor2D,
    entropy: tf.reshape(entropy, [B, T - 1]) as tf.Tensor2D,
  };
}

/** Log-probabilities and entropies of the packed ids, without gradients, under the policy that sampled them. */
export function scoreTensors(model: Transformer, packed: PackedIds, temperature = 1): { logp: tf.Tensor2D; entropy: tf.Tensor2D } {
  return tf.tidy(() => logpAndEntropy(model, tf.tensor2d(packed.ids, [packed.batch, packed.length], 'int32'), scoringTemperature(temperature)));
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

export interface PolicyLossSettings extends ObjectiveSettings {
  /** Dr. GRPO's constant L_max (the response budget); default: the longest response. */
  maxLength?: number;
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

/** The counts of the whole batch that the objective's aggregations divide by. */
export function batchNorms(samples: readonly PolicySample[], maxLength?: number): BatchNorms {
  const counts = samples.map((x) => x.lossMask.reduce((a, b) => a + b, 0));
  return {
    tokens: counts.reduce((a, b) => a + b, 0),
    rows: samples.length,
    rowsWithTokens: counts.filter((c) => c > 0).length,
    maxLength: maxLength ?? Math.max(0, ...samples.map((x) => x.tokens.length)),
    positiveTokens: counts.reduce((a, c, i) => a + (samples[i].advantage > 0 ? c : 0), 0),
  };
}

/** The GRPO loss as one closure per micro-batch (their sum is the batch loss), plus the statistics sums they fill. */
export interface PolicyLoss {
  lossFns: (() => tf.Scalar)[];
  /** One [clipped, dual-clipped, Σ(old - new), Σ ref KL] tensor per evaluated closure, kept for reading after the step. */
  stats: tf.Tensor[];
  /** Trained (masked-in) tokens in the batch. */
  tokens: number;
}

/** The GRPO objective (objective.ts) over all samples, in micro-batches of at most maxTokens padded tokens. */
export function buildPolicyLoss(model: Transformer, samples: readonly PolicySample[], s: PolicyLossSettings, maxTokens = 8192): PolicyLoss {
  const maxPos = model.cfg.max_position_embeddings;
  if (s.klCoef > 0) {
    const missing = samples.findIndex((x) => x.refLogprobs === undefined);
    if (missing >= 0) throw new LabError('grpo', 'the KL term needs the frozen reference policy\'s log-probabilities', { field: `samples[${missing}].refLogprobs`, expected: 'log-probabilities from the reference model when grpo.klCoef > 0', found: 'none', hint: 'score the samples with the reference model, or set grpo.klCoef to 0' });
  }
  const norms = batchNorms(samples, s.maxLength);
  const temperature = scoringTemperature(s.temperature);
  const stats: tf.Tensor[] = [];
  const lossFns = microBatches(samples.map((x) => x.promptTokens.length + x.tokens.length), maxTokens, maxPos).map((rows) => {
    const part = rows.map((i) => samples[i]);
    const packed = packIds(part, maxPos);
    const shape: [number, number] = [packed.batch, packed.length - 1];
    const advantage = perTokenFromRows(packed, part, part.map((x) => x.advantage));
    const old = perTokenFromResponses(packed, part.map((x) => x.oldLogprobs));
    const ref = s.klCoef > 0 ? perTokenFromResponses(packed, part.map((x) => x.refLogprobs!)) : undefined;
    return () => {
      const ids = tf.tensor2d(packed.ids, [packed.batch, packed.length], 'int32');
      // The differentiated forward: a LoRA adapter's dropout applies here, not where log π_old is scored.
      const scored = withAdapterDropout(model, () => (s.entropyCoef > 0 ? logpAndEntropy(model, ids, temperature) : { logp: model.tokenLogprobs(ids, { temperature }), entropy: undefined }));
      const { loss, sums } = grpoObjective(
        {
          logp: scored.logp,
          oldLogp: tf.tensor2d(old, shape),
          advantage: tf.tensor2d(advantage, shape),
          mask: tf.tensor2d(packed.mask, shape),
          refLogp: ref && tf.tensor2d(ref, shape),
          entropy: scored.entropy,
        },
        s,
        norms,
      );
      stats.push(tf.keep(tf.stack([sums.clipped, sums.dualClipped, sums.approxKl, sums.refKl])));
      return loss;
    };
  });
  return { lossFns, stats, tokens: norms.tokens };
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
  beginAdapterStep(model, optimizer.step);
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
  const tokens = seqs.reduce((acc, x) => acc + x.lossMask.reduce((a, b) => a + b, 0), 0);
  const norms: BatchNorms = { tokens, rows: seqs.length, rowsWithTokens: seqs.length, maxLength: 0, positiveTokens: 0 };
  const lossFns = microBatches(seqs.map((x) => x.promptTokens.length + x.tokens.length), opts.maxTokens ?? 8192, maxPos).map((rows) => {
    const packed = packIds(rows.map((i) => seqs[i]), maxPos);
    return () => {
      const logp = withAdapterDropout(model, () => model.tokenLogprobs(tf.tensor2d(packed.ids, [packed.batch, packed.length], 'int32')));
      return tf.neg(AGGREGATIONS['token-mean'](logp, tf.tensor2d(packed.mask, [packed.batch, packed.length - 1]), norms)) as tf.Scalar;
    };
  });
  beginAdapterStep(model, optimizer.step);
  const step = await trainStep(model, optimizer, lossFns, { lr: opts.lr, maxGradNorm: opts.maxGradNorm });
  return { ...step, tokens };
}
