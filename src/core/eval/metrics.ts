/**
 * Figures of a set of trajectories (docs/evaluation.md): accuracy, ToRL's code ratio and pass ratio,
 * tool calls, lengths, truncation; and of evaluations: avg@k, maj@k, unbiased pass@k, THOR's
 * code-succeeded × answer-correct table with its χ². Undefined ratios (no code at all, say) are
 * null, so the JSON lines stay valid.
 */
import { answerKey } from '../reward/equivalence';
import { mean } from '../stats';
import { responseLength, type TrajectoryRecord } from '../tir/types';

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
  const lengths = episodes.map(responseLength);
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
  /** P(χ² ≥ chiSquare) with one degree of freedom: how likely so strong a link is by chance. */
  pValue: MetricValue;
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
  const chi = chiSquare2x2(sc, ok.length - sc, fc, failed.length - fc);
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
    chiSquare: chi,
    pValue: chiSquarePValue(chi),
  };
}

/**
 * Upper tail of the χ² distribution with one degree of freedom: P(X ≥ x) = erfc(√(x/2)). erfc by
 * the Chebyshev fit of Press et al., Numerical Recipes §6.2 (fractional error below 1.2e-7), which
 * keeps its relative accuracy far into the tail (THOR's χ² = 336 gives p ≈ 5e-75).
 */
export function chiSquarePValue(x: MetricValue): MetricValue {
  if (x === null || !Number.isFinite(x) || x < 0) return null;
  const z = Math.sqrt(x / 2);
  const t = 1 / (1 + 0.5 * z);
  const poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return Math.min(1, t * Math.exp(poly));
}

/** How a candidate's code went: calls made and calls that succeeded. */
export interface CodeTally {
  calls: number;
  passed: number;
}

/**
 * THOR's self-rewarded best-of-N (docs/evaluation.md): among a question's N candidates, the one whose
 * code calls passed most often, by pass rate (passed / calls; no code counts as 0), then by passed
 * calls, then the first sampled. No reference is used: the sandbox's verdicts are the reward.
 */
export function bestOfNIndex(candidates: readonly CodeTally[]): number {
  let best = -1;
  let bestRate = -1;
  let bestPassed = -1;
  candidates.forEach((c, i) => {
    const rate = c.calls > 0 ? c.passed / c.calls : 0;
    if (rate > bestRate || (rate === bestRate && c.passed > bestPassed)) {
      best = i;
      bestRate = rate;
      bestPassed = c.passed;
    }
  });
  return best;
}

/** Best-of-N accuracy: mean over questions of whether the self-rewarded pick is correct. */
export function bestOfNAccuracy(questions: readonly (readonly (CodeTally & { correct: boolean })[])[]): number {
  return mean(questions.map((c) => (c.length > 0 && c[bestOfNIndex(c)].correct ? 1 : 0)));
}

/** One problem's outcome in an evaluation, for comparing two evaluations. */
export interface ProblemOutcome {
  problemId: string;
  /** Share of its samples that were correct. */
  accuracy: number;
}

export interface RunComparison {
  /** Problems both evaluations have. */
  shared: number;
  onlyInA: number;
  onlyInB: number;
  /** Mean accuracy over the shared problems. */
  accuracyA: number | null;
  accuracyB: number | null;
  /** Shared problems where A scored higher, where B did, and ties. */
  aBetter: number;
  bBetter: number;
  ties: number;
  /**
   * Exact two-sided sign test on the problems that differ (McNemar's exact test when k = 1): the
   * chance of a split at least this uneven if neither were better.
   */
  pValue: number | null;
  /** The differing problems, largest difference first. */
  differences: { problemId: string; a: number; b: number }[];
}

/** Two evaluations problem by problem, matched by problem id. */
export function compareRuns(a: readonly ProblemOutcome[], b: readonly ProblemOutcome[]): RunComparison {
  const bById = new Map(b.map((p) => [p.problemId, p]));
  const aIds = new Set(a.map((p) => p.problemId));
  const pairs = a.flatMap((p) => {
    const q = bById.get(p.problemId);
    return q ? [{ problemId: p.problemId, a: p.accuracy, b: q.accuracy }] : [];
  });
  const aBetter = pairs.filter((p) => p.a > p.b).length;
  const bBetter = pairs.filter((p) => p.b > p.a).length;
  return {
    shared: pairs.length,
    onlyInA: a.length - pairs.length,
    onlyInB: b.filter((p) => !aIds.has(p.problemId)).length,
    accuracyA: pairs.length ? mean(pairs.map((p) => p.a)) : null,
    accuracyB: pairs.length ? mean(pairs.map((p) => p.b)) : null,
    aBetter,
    bBetter,
    ties: pairs.length - aBetter - bBetter,
    pValue: pairs.length ? signTestPValue(aBetter, bBetter) : null,
    differences: pairs.filter((p) => p.a !== p.b).sort((x, y) => Math.abs(y.a - y.b) - Math.abs(x.a - x.b)),
  };
}

/** Two-sided exact binomial test of x successes against y at p = 1/2 (1 when x = y = 0). */
export function signTestPValue(x: number, y: number): number {
  const n = x + y;
  if (n === 0) return 1;
  const k = Math.min(x, y);
  // P(X ≤ k) for X ~ Binomial(n, 1/2), summed in log space so large n does not underflow.
  let logC = 0;
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}
