/**
 * THOR's step level (docs/step-level.md): failed code actions become new prompts — the trajectory cut
 * L_suf tokens before the action's opening fence — from which G continuations with one tool call are
 * sampled; a continuation's reward is 1 when its code ran (exit ok, non-empty stdout), else 0.
 */
import type { Rng } from '../rng';
import type { TrajectoryRecord } from '../tir/types';

export interface FailedAction {
  record: TrajectoryRecord;
  executionIndex: number;
}

/**
 * The code actions to regenerate: every failed execution of the batch (at most `max`, chosen at
 * random); when none failed, one random execution of one random trajectory that used code (THOR).
 */
export function selectFailedActions(records: readonly TrajectoryRecord[], max: number, rng: Rng): FailedAction[] {
  const failed: FailedAction[] = [];
  for (const record of records) record.executions.forEach((e, i) => !e.succeeded && failed.push({ record, executionIndex: i }));
  if (failed.length > 0) return rng.shuffle(failed).slice(0, max);
  const withCode = records.filter((r) => r.executions.length > 0);
  if (withCode.length === 0) return [];
  const record = rng.pick(withCode);
  return [{ record, executionIndex: rng.int(0, record.executions.length - 1) }];
}

/**
 * Where to cut: L_suf tokens before the action's opening fence, but not into the observation of an
 * earlier call (those tokens were forced, not sampled, so the regenerated part stays policy text).
 */
export function stepCut(record: TrajectoryRecord, executionIndex: number, suffixTokens: number): number {
  const fence = record.executions[executionIndex].codeTokenStart;
  const floor = Math.max(0, ...record.segments.filter((s) => s.kind === 'output' && s.tokenEnd <= fence).map((s) => s.tokenEnd));
  return Math.max(floor, fence - suffixTokens);
}

/** The new prompt (q, r_1, c_1, o_1, ..., r_pre) as tokens: the original prompt plus the kept response prefix. */
export function stepPrompt(record: TrajectoryRecord, cutAt: number): number[] {
  return [...record.promptTokens, ...record.tokens.slice(0, cutAt)];
}

/** Step-level reward: the regenerated code ran. Continuations without a code block are discarded (null). */
export function stepReward(continuation: TrajectoryRecord): number | null {
  if (continuation.executions.length === 0) return null;
  return continuation.executions[0].succeeded ? 1 : 0;
}
