/**
 * Group-relative advantages (GRPO, DeepSeekMath; docs/grpo.md#group-advantages), as verl's
 * compute_grpo_outcome_advantage: every token of trajectory i gets
 * A_i = (R_i - mean(R_group)) / (std(R_group) + eps).
 */
import { groupBy, mean, sampleStd } from '../stats';

/** All rewards equal: the group carries no learning signal (DAPO's dynamic sampling drops it). */
export function isZeroVariance(rewards: readonly number[]): boolean {
  return rewards.every((r) => r === rewards[0]);
}

/**
 * GRPO: A_i = (R_i - mean) / (std + eps); Dr. GRPO (normalizeStd false): A_i = R_i - mean.
 * A group of one uses mean 0 and std 1, as verl does.
 */
export function groupAdvantages(rewards: readonly number[], normalizeStd: boolean, eps = 1e-6): number[] {
  if (rewards.length === 1) return [normalizeStd ? rewards[0] / (1 + eps) : rewards[0]];
  const m = mean(rewards);
  const s = sampleStd(rewards);
  return rewards.map((r) => (normalizeStd ? (r - m) / (s + eps) : r - m));
}

/** Advantages for a whole batch, each reward normalised within its own group. */
export function batchAdvantages(rewards: readonly number[], groupIds: readonly string[], normalizeStd: boolean, eps = 1e-6): number[] {
  if (rewards.length !== groupIds.length) throw new RangeError(`batchAdvantages: ${rewards.length} rewards but ${groupIds.length} group ids`);
  const out = new Array<number>(rewards.length);
  const indices = groupBy(rewards.map((_, i) => i), (i) => groupIds[i]);
  for (const { members } of indices) {
    const advantages = groupAdvantages(members.map((i) => rewards[i]), normalizeStd, eps);
    members.forEach((i, k) => (out[i] = advantages[k]));
  }
  return out;
}
