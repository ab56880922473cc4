/**
 * Which trajectories train: DAPO's overlong handling and dynamic sampling, and
 * THOR's filter of trajectories whose code failed (a group stays only if at least half survives).
 * Order as in THOR's trainer: rewards (with any overlong penalty), code-failure filter, then
 * zero-variance groups, then advantages on what is left.
 */
import { groupBy, type Group } from '../stats';
import { isZeroVariance } from './advantages';
import { hasFailedExecution, type TrajectoryRecord } from '../tir/types';

export type OverlongMode = 'none' | 'mask' | 'penalty';

/**
 * DAPO's soft overlong punishment: 0 up to L_max - L_cache, then ((L_max - L_cache) - L) / L_cache
 * down to -1 at L_max, and -1 beyond.
 */
export function overlongPenalty(length: number, maxLength: number, cacheLength: number): number {
  const free = maxLength - cacheLength;
  if (length <= free) return 0;
  if (length > maxLength) return -1;
  return (free - length) / cacheLength;
}

/**
 * mask: truncated responses leave the loss (DAPO overlong filtering); penalty: the soft punishment
 * is added to the reward; none: unchanged. Returns a new record.
 */
export function applyOverlong(record: TrajectoryRecord, mode: OverlongMode, maxLength: number, cacheLength: number): TrajectoryRecord {
  if (mode === 'mask' && record.truncated) return { ...record, lossMask: record.lossMask.map(() => 0) };
  if (mode === 'penalty') return { ...record, reward: record.reward + overlongPenalty(record.tokens.length, maxLength, cacheLength) };
  return record;
}

/** Splits groups into those with a reward spread and those whose rewards are all equal (singletons count as informative, as in THOR). */
export function splitZeroVariance<T extends { reward: number }>(groups: readonly Group<T>[]): { kept: Group<T>[]; dropped: Group<T>[] } {
  const kept: Group<T>[] = [];
  const dropped: Group<T>[] = [];
  for (const g of groups) (g.members.length > 1 && isZeroVariance(g.members.map((m) => m.reward)) ? dropped : kept).push(g);
  return { kept, dropped };
}

/**
 * THOR's trajectory filter: trajectories with any failed execution are left out; a group is kept
 * only if the survivors are at least minSurvival of it.
 */
export function filterFailedTrajectories(
  groups: readonly Group<TrajectoryRecord>[],
  minSurvival = 0.5,
): { kept: Group<TrajectoryRecord>[]; droppedTrajectories: number; droppedGroups: number } {
  const kept: Group<TrajectoryRecord>[] = [];
  let droppedTrajectories = 0;
  let droppedGroups = 0;
  for (const g of groups) {
    const survivors = g.members.filter((r) => !hasFailedExecution(r));
    droppedTrajectories += g.members.length - survivors.length;
    if (survivors.length > 0 && survivors.length >= minSurvival * g.members.length) kept.push({ id: g.id, members: survivors });
    else droppedGroups++;
  }
  return { kept, droppedTrajectories, droppedGroups };
}

export interface SelectionOptions {
  overlong: OverlongMode;
  maxResponseTokens: number;
  overlongCacheTokens: number;
  failureFilter: boolean;
  minGroupSurvival: number;
  dropZeroVariance: boolean;
}

export interface Selection {
  groups: Group<TrajectoryRecord>[];
  zeroVarianceGroups: number;
  failedTrajectoriesDropped: number;
  groupsDroppedBySurvival: number;
}

/** The episode-level pipeline: overlong handling, failure filter, zero-variance groups. */
export function selectTrainingGroups(records: readonly TrajectoryRecord[], o: SelectionOptions): Selection {
  const adjusted = records.map((r) => applyOverlong(r, o.overlong, o.maxResponseTokens, o.overlongCacheTokens));
  let groups = groupBy(adjusted, (r) => r.groupId);
  let failedTrajectoriesDropped = 0;
  let groupsDroppedBySurvival = 0;
  if (o.failureFilter) {
    const f = filterFailedTrajectories(groups, o.minGroupSurvival);
    groups = f.kept;
    failedTrajectoriesDropped = f.droppedTrajectories;
    groupsDroppedBySurvival = f.droppedGroups;
  }
  const { kept, dropped } = splitZeroVariance(groups);
  return {
    groups: o.dropZeroVariance ? kept : groups,
    zeroVarianceGroups: dropped.length,
    failedTrajectoriesDropped,
    groupsDroppedBySurvival,
  };
}

/** DAPO dynamic sampling: sample another round while the batch is short of groups and rounds remain. */
export function needsAnotherRound(keptGroups: number, targetGroups: number, extraRoundsDone: number, maxExtraRounds: number): boolean {
  return keptGroups < targetGroups && extraRoundsDone < maxExtraRounds;
}

/** The first `target` groups (DAPO trims the surplus of the last sampling round). */
export function fillBatch<T>(groups: readonly Group<T>[], target: number): Group<T>[] {
  return groups.slice(0, target);
}
