/**
 * What a TIRGen run did, in counts (docs/tirgen.md#the-report). Each question adds its own counts
 * when it finishes; the report is their sum, so a resumed run (whose earlier questions come back from
 * the progress log) reports the same numbers as one run straight through.
 */
import { CRITIC_INVALID_REASONS, type CriticInvalidReason } from './critic';
import { SAMPLE_FILTERS, type SampleFilter } from './filters';
import type { TirgenSettings } from './settings';

/** The questions of a file as TIRGen reads them, and what the file's reader skipped (a line with no answer, …), for the report. */
export function problemsOfFile(read: { problems: readonly { id: string; question: string; answer: string }[]; counts: Record<string, number>; total: number }, source: string): { problems: { id: string; question: string; answer: string }[]; input: TirgenInput } {
  const skipped = Object.fromEntries(Object.entries(read.counts).filter(([, n]) => n > 0));
  return { problems: read.problems.map((p) => ({ id: p.id, question: p.question, answer: p.answer })), input: { source, records: read.total, skipped } };
}

/** Why an attempt ended before reaching an answer. */
export const FAILURE_REASONS = [
  /** The actor filled a window with no line end to cut at: it never finished a step. */
  'actor-no-step-end',
  /** The answer ran past the response budget or the actor's context before it ended. */
  'actor-budget',
  /** The critic's reply could not be used (criticInvalid says why). */
  'critic-invalid',
  /** Code from the critic failed (error, timeout, or printed nothing). */
  'code-failed',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export const SELECTION_DROPS = ['onePerQuestion', 'oneCallHalving'] as const;
export type SelectionDrop = (typeof SELECTION_DROPS)[number];

export interface TirgenCounts {
  /** Questions finished, skipped ones included. */
  questions: number;
  skipped: {
    /** Problems with no reference answer (nothing to verify against). */
    noAnswer: number;
    /** Questions a pure chain-of-thought answer already solved (tirgen.dropSolvedWithoutTools). */
    solvedWithoutTools: number;
  };
  /** Attempts made. */
  attempts: number;
  /** Attempts that reached the end of an answer (the filters then judge them). */
  finished: number;
  /** Attempts that ended early, by reason. */
  failures: Record<FailureReason, number>;
  /** Critic replies that could not be used, by reason (each ended its attempt). */
  criticInvalid: Record<CriticInvalidReason, number>;
  /** Finished samples failing each filter, each filter counted on its own. */
  filters: Record<SampleFilter, number>;
  /** Finished samples dropped by their first failing filter, then by the selection. */
  droppedBy: Record<SampleFilter | SelectionDrop, number>;
  /** Samples passing every filter. */
  passed: number;
  /** Samples written. */
  kept: number;
  /** Questions with a sample written. */
  questionsKept: number;
  /** Written samples by their number of code calls. */
  calls: Record<string, number>;
  steps: {
    /** Steps the actor wrote. */
    total: number;
    /** Kept as written: no computation. */
    unchanged: number;
    /** Rewritten as code with real output. */
    rewritten: number;
    /** The critic's reply was unusable. */
    invalid: number;
    /** Shorter than tirgen.criticMinTokens: kept without the critic. */
    short: number;
    /** After a reasoning model's thinking ended (`</think>`): kept without the critic. */
    afterThinking: number;
    /** Its code failed: the attempt was abandoned. */
    codeFailed: number;
  };
  executions: { total: number; failed: number };
  /** The critic's expected outputs, checked against the real ones; a wrong one cuts the rewrite there. */
  predictions: { checked: number; wrong: number };
  /** Rewrites with more blocks than tirgen.maxRounds, cut after that many. */
  roundLimit: number;
}

const zeros = <K extends string>(keys: readonly K[]): Record<K, number> => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export function emptyCounts(): TirgenCounts {
  return {
    questions: 0,
    skipped: { noAnswer: 0, solvedWithoutTools: 0 },
    attempts: 0,
    finished: 0,
    failures: zeros(FAILURE_REASONS),
    criticInvalid: zeros(CRITIC_INVALID_REASONS),
    filters: zeros(SAMPLE_FILTERS),
    droppedBy: zeros([...SAMPLE_FILTERS, ...SELECTION_DROPS]),
    passed: 0,
    kept: 0,
    questionsKept: 0,
    calls: {},
    steps: { total: 0, unchanged: 0, rewritten: 0, invalid: 0, short: 0, afterThinking: 0, codeFailed: 0 },
    executions: { total: 0, failed: 0 },
    predictions: { checked: 0, wrong: 0 },
    roundLimit: 0,
  };
}

/** Adds `b` into `a` (numbers summed, records key by key); returns `a`. Unknown keys of `b` are added too. */
export function addCounts<T extends object>(a: T, b: Readonly<T>): T {
  const x = a as Record<string, unknown>;
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === 'number') x[k] = ((x[k] as number | undefined) ?? 0) + v;
    else if (v && typeof v === 'object') x[k] = addCounts((x[k] as object | undefined) ?? {}, v as object);
  }
  return a;
}

export interface TirgenReport {
  type: 'tirgen-report';
  version: 1;
  actor: string;
  critic: string;
  seed: number;
  settings: TirgenSettings;
  /** Questions given to the run. */
  total: number;
  /** Of the finished questions, how many were finished by an earlier run (resume). */
  resumed: number;
  counts: TirgenCounts;
  /** Samples written per question attempted (not skipped). */
  keptRatio: number;
  /** Samples written per attempt made. */
  keptPerAttempt: number;
  /** Wall time of this run (not of earlier ones). */
  elapsedMs: number;
  /** Why the run ended before every question was done, when it did. */
  stopped?: string;
  /** Where the questions came from, and the records of a file that could not be used (by the reader's reason: missing_answer, …). */
  input?: TirgenInput;
}

export interface TirgenInput {
  source: string;
  /** Records in the file. */
  records?: number;
  /** Records skipped, by reason. */
  skipped?: Record<string, number>;
}

export function makeReport(meta: Pick<TirgenReport, 'actor' | 'critic' | 'seed' | 'settings' | 'total' | 'resumed' | 'elapsedMs' | 'stopped' | 'input'>, counts: TirgenCounts): TirgenReport {
  const attempted = counts.questions - counts.skipped.noAnswer - counts.skipped.solvedWithoutTools;
  return {
    type: 'tirgen-report',
    version: 1,
    ...meta,
    counts,
    keptRatio: attempted > 0 ? counts.kept / attempted : 0,
    keptPerAttempt: counts.attempts > 0 ? counts.kept / counts.attempts : 0,
  };
}

/** A few lines for a terminal: questions, attempts, kept, each filter, failures, calls. */
export function reportSummary(r: TirgenReport): string {
  const c = r.counts;
  const nonzero = (rec: Record<string, number>) =>
    Object.entries(rec)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  const input = r.input?.records !== undefined ? [`input: ${r.input.source}, ${r.input.records} record(s); skipped: ${nonzero(r.input.skipped ?? {})}`] : [];
  return [
    ...input,
    `questions: ${c.questions} of ${r.total} done${r.resumed ? ` (${r.resumed} before this run)` : ''}; skipped: no answer ${c.skipped.noAnswer}, solved without tools ${c.skipped.solvedWithoutTools}`,
    `attempts: ${c.attempts}, finished ${c.finished}; failed: ${nonzero(c.failures)}${c.failures['critic-invalid'] ? ` (critic: ${nonzero(c.criticInvalid)})` : ''}`,
    `steps: ${c.steps.total} (unchanged ${c.steps.unchanged}, rewritten ${c.steps.rewritten}, invalid ${c.steps.invalid}, code failed ${c.steps.codeFailed}, short ${c.steps.short}, after thinking ${c.steps.afterThinking}); code runs ${c.executions.total}, failed ${c.executions.failed}; predictions wrong ${c.predictions.wrong} of ${c.predictions.checked}`,
    `filters failed (each on its own): ${nonzero(c.filters)}`,
    `dropped by (first failure, then selection): ${nonzero(c.droppedBy)}`,
    `passed ${c.passed}, kept ${c.kept} (${(r.keptRatio * 100).toFixed(1)}% of questions attempted); calls per kept sample: ${nonzero(c.calls)}`,
    ...(r.stopped ? [`stopped: ${r.stopped}`] : []),
  ].join('\n');
}
