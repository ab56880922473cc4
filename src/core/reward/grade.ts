/**
 * Grading of whole trajectories (docs/reward.md): the final answer is read from what the policy
 * wrote, never from tool output, checked against the reference and scored. Any record with these
 * fields can be graded; the rollout loop's TrajectoryRecord is one.
 */
import type { SymbolicChecker } from './equivalence';
import { gradeResponse, type RewardOptions } from './reward';

export interface Gradable {
  reference: string;
  /** The response in order: policy text, code blocks, and tool output ("output", never graded). */
  segments: readonly { kind: 'text' | 'code' | 'output'; text: string }[];
  executions: readonly { succeeded: boolean }[];
  finalAnswer: string | null;
  correct: boolean;
  reward: number;
}

/** The text the policy wrote: the response without its tool output. */
export function policyText(record: Pick<Gradable, 'segments'>): string {
  return record.segments
    .filter((seg) => seg.kind !== 'output')
    .map((seg) => seg.text)
    .join('');
}

/** Grades each record in place: final answer, correctness, reward. */
export async function gradeRecords(records: Gradable[], options: RewardOptions, checker?: SymbolicChecker): Promise<void> {
  await Promise.all(
    records.map(async (r) => {
      const g = await gradeResponse({ policyText: policyText(r), codeFailed: r.executions.some((e) => !e.succeeded) }, r.reference, options, { checker });
      r.finalAnswer = g.extracted?.answer ?? null;
      r.correct = g.correct;
      r.reward = g.reward;
    }),
  );
}
