/**
 * Group-relative advantages (GRPO, DeepSeekMath), as verl's compute_grpo_outcome_advantage:
 * every token of trajectory i gets A_i = (R_i - mean(R_group)) / (std(R_group) + eps).
 */

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation with Bessel's correction (n - 1), as torch.std in verl and TRL. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

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

export interface Group<T> {
  id: string;
  members: T[];
}

/** Groups in order of first appearance, members in their original order. */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Group<T>[] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const members = groups.get(k);
    if (members) members.push(item);
    else groups.set(k, [item]);
  }
  return [...groups].map(([id, members]) => ({ id, members }));
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

/** The per-token advantage row of a trajectory: A on tokens in the loss, 0 elsewhere. */
export function tokenAdvantages(advantage: number, lossMask: readonly number[]): number[] {
  return lossMask.map((m) => (m ? advantage : 0));
}
