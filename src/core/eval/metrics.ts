/**
 * Figures of a set of trajectories (docs/evaluation.md): accuracy, ToRL's code ratio and pass ratio,
 * tool calls, lengths, truncation; and of evaluations: avg@k, maj@k, unbiased pass@k, THOR's
 * code-succeeded × answer-correct table with its χ². Undefined ratios (no code at all, say) are
 * null, so the JSON lines stay valid.
 */
import { answerKey } from '../reward/equivalence';
import { mean } from '../stats';
import type { TrajectoryRecord } from '../tir/types';

export type MetricValue = number | null;

const ratio = (num: number, den: number): MetricValue => (den === 0 ? null : num / den);

/** Share of executions that succeeded among the given records (null when none ran code). */
function passRatio(records: readonly TrajectoryRecord[]): MetricValue {
  const executions = records.flatMap((r) => r.executions);
  return ratio(executions.filter((e) => e.succeeded).length, executions.length);
}

/** Figures of episode-level trajectories, plus step_* figures of THOR's step-level samples. */
export function trajectoryMetrics(records: readonly TrajectoryRecord[]): Record<string, MetricValue> {
  const episodes = records.filter((r) => r.level === 'trajectory');
  const steps = records.filter((r) => r.level === 'step');
  const n = episodes.length;
  const lengths = episodes.map((r) => r.tokens.length);
  return {
    trajectories: n,
    reward_mean: n ? mean(episodes.map((r) => r.reward)) : null,
    accuracy: ratio(episodes.filter((r) => r.correct).length, n),
    answer_ratio: ratio(episodes.filter((r) => r.finalAnswer !== null).length, n),
    code_ratio: ratio(episodes.filter((r) => r.executions.length > 0).length, n),
    pass_ratio: passRatio(episodes),
    pass_ratio_correct: passRatio(episodes.filter((r) => r.correct)),
    pass_ratio_incorrect: passRatio(episodes.filter((r) => !r.correct)),
    tool_calls_per_response: ratio(episodes.reduce((a, r) => a + r.executions.length, 0), n),
    response_length_mean: n ? mean(lengths) : null,
    response_length_max: n ? Math.max(...lengths) : null,
    truncation_ratio: ratio(episodes.filter((r) => r.truncated).length, n),
    self_corrections: episodes.reduce((a, r) => a + r.discarded.length, 0),
    step_samples: steps.length,
    step_reward_mean: steps.length ? mean(steps.map((r) => r.reward)) : null,
  };
}

// ---- evaluation ---------------------------------------------------------------------------

/** avg@k: mean over questions of the share of its k samples that are correct. */
export function avgAtK(correct: readonly (readonly boolean[])[]): number {
  return mean(correct.map((samples) => samples.filter(Boolean).length / samples.length));
}

/** Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), as a stable product. */
export function passAtK(n: number, c: number, k: number): number {
  if (k > n) throw new RangeError(`passAtK: k = ${k} > n = ${n}`);
  if (n - c < k) return 1;
  let missAll = 1;
  for (let i = n - c + 1; i <= n; i++) missAll *= 1 - k / i;
  return 1 - missAll;
}

/** Mean unbiased pass@k over questions, each with its own samples. */
export function meanPassAtK(correct: readonly (readonly boolean[])[], k: number): number {
  return mean(correct.map((s) => passAtK(s.length, s.filter(Boolean).length, k)));
}

/**
 * Index of the majority answer's first sample: answers are grouped by answerKey (equivalent simple
 * forms vote together); ties go to the answer seen first; -1 when no sample has an answer.
 */
export function majorityIndex(answers: readonly (string | null)[], key: (a: string) => string = answerKey): number {
  const votes = new Map<string, { first: number; count: number }>();
  answers.forEach((a, i) => {
    if (a === null) return;
    const k = key(a);
    const v = votes.get(k);
    if (v) v.count++;
    else votes.set(k, { first: i, count: 1 });
  });
  let best: { first: number; count: number } | undefined;
  for (const v of votes.values()) if (!best || v.count > best.count) best = v;
  return best ? best.first : -1;
}

/** maj@k: mean over questions of whether the majority answer is correct. */
export function majAtK(questions: readonly (readonly { answer: string | null; correct: boolean }[])[]): number {
  return mean(
    questions.map((samples) => {
      const i = majorityIndex(samples.map((s) => s.answer));
      return i >= 0 && samples[i].correct ? 1 : 0;
    }),
  );
}

/** Pearson's χ² for the 2×2 table [[a, b], [c, d]] without continuity correction; null if a margin is empty. */
export function chiSquare2x2(a: number, b: number, c: number, d: number): MetricValue {
  const n = a + b + c + d;
  const den = (a + b) * (c + d) * (a + c) * (b + d);
  return den === 0 ? null : (n * (a * d - b * c) ** 2) / den;
}

export interface CodeCorrectnessTable {
  succeededCorrect: number;
  succeededIncorrect: number;
  failedCorrect: number;
  failedIncorrect: number;
  /** Trajectories without code (outside the table). */
  noCode: number;
  pCorrectGivenSucceeded: MetricValue;
  pCorrectGivenFailed: MetricValue;
  chiSquare: MetricValue;
}

/**
 * THOR App. D: episode-level trajectories that used code, by "all their code succeeded" × "answer correct"
 * (THOR's runs: 3950 / 1549 / 139 / 318, P(correct | succeeded) 71.8%, P(correct | failed) 30.4%, χ² 336).
 */
export function codeCorrectnessTable(records: readonly TrajectoryRecord[]): CodeCorrectnessTable {
  const episodes = records.filter((r) => r.level === 'trajectory');
  const withCode = episodes.filter((r) => r.executions.length > 0);
  const ok = withCode.filter((r) => r.executions.every((e) => e.succeeded));
  const failed = withCode.filter((r) => !r.executions.every((e) => e.succeeded));
  const sc = ok.filter((r) => r.correct).length;
  const fc = failed.filter((r) => r.correct).length;
  const table = {
    succeededCorrect: sc,
    succeededIncorrect: ok.length - sc,
    failedCorrect: fc,
    failedIncorrect: failed.length - fc,
  };
  return {
    ...table,
    noCode: episodes.length - withCode.length,
    pCorrectGivenSucceeded: ratio(sc, ok.length),
    pCorrectGivenFailed: ratio(fc, failed.length),
    chiSquare: chiSquare2x2(table.succeededCorrect, table.succeededIncorrect, table.failedCorrect, table.failedIncorrect),
  };
}
