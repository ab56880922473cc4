/** Grading of rollouts: the final answer from the policy's own text, correctness, reward. */
import { gradeResponse, type RewardOptions } from '../reward/reward';
import type { SymbolicChecker } from '../reward/equivalence';
import { policyText } from '../tir/rollout';
import { hasFailedExecution, type TrajectoryRecord } from './types';

/** Grades each record in place: final answer from the policy's own text, correctness, reward. */
export async function gradeRecords(records: TrajectoryRecord[], options: RewardOptions, checker?: SymbolicChecker): Promise<void> {
  await Promise.all(
    records.map(async (r) => {
      const g = await gradeResponse({ policyText: policyText(r), codeFailed: hasFailedExecution(r) }, r.reference, options, { checker });
      r.finalAnswer = g.extracted?.answer ?? null;
      r.correct = g.correct;
      r.reward = g.reward;
    }),
  );
}

