/** GRPO's group figures of one step's episode-level trajectories: groups that carry no signal. */
import type { MetricValue } from '../eval/metrics';
import { groupBy } from '../stats';
import type { TrajectoryRecord } from '../tir/types';
import { isZeroVariance } from './advantages';

export function groupMetrics(records: readonly TrajectoryRecord[]): Record<string, MetricValue> {
  const groups = groupBy(
    records.filter((r) => r.level === 'trajectory'),
    (r) => r.groupId,
  );
  const sampled = groups.filter((g) => g.members.length > 1);
  const flat = sampled.filter((g) => isZeroVariance(g.members.map((m) => m.reward)));
  return {
    groups: groups.length,
    zero_variance_ratio: sampled.length === 0 ? null : flat.length / sampled.length,
    all_correct_groups: sampled.filter((g) => g.members.every((m) => m.correct)).length,
    all_wrong_groups: sampled.filter((g) => g.members.every((m) => !m.correct)).length,
  };
}
