/**
 * Evaluation on a fixed set of problems: k samples per question (greedy when temperature is 0),
 * optionally with THOR's self-correction; avg@k, maj@k, pass@k, ToRL's code and pass ratios, and
 * THOR's code-succeeded × answer-correct table.
 */
import type { Problem } from '../data/types';
import { LabError } from '../errors';
import { LocalPolicy, type PolicyModel } from '../llm/policy';
import type { Transformer } from '../model/transformer';
import type { SymbolicChecker } from '../reward/equivalence';
import type { RewardOptions } from '../reward/reward';
import type { Executor } from '../sandbox/types';
import type { Tokenizer } from '../tokenizer/types';
import {
  avgAtK,
  bestOfNAccuracy,
  chiSquarePValue,
  codeCorrectnessTable,
  majAtK,
  meanPassAtK,
  trajectoryMetrics,
  type CodeCorrectnessTable,
  type MetricValue,
} from './metrics';
import { gradeRecords } from '../reward/grade';
import { rolloutSettings, selfCorrectionSettings } from '../tir/settings';
import type { RolloutSettings } from '../tir/rollout';
import { rolloutPrompt, type PromptOptions } from '../tir/prompt';
import type { RunConfig } from '../config/schema';
import type { TrajectoryRecord } from '../tir/types';

export interface EvalSettings extends RolloutSettings {
  /** k samples per question. */
  samples: number;
  instruction: string | PromptOptions;
  /** Rollouts per local batch (bounds memory; the KV cache holds one row per rollout). */
  batchSize?: number;
}

/** One problem's evaluation: its k graded samples. One line of the per-problem log (JSON lines). */
export interface ProblemLog {
  problemId: string;
  question: string;
  reference: string;
  /** Index of the problem in the evaluated list. */
  index: number;
  records: TrajectoryRecord[];
}

export interface EvalEnv {
  /** The policy: the lab's model (a LocalPolicy) or an endpoint. */
  policy: PolicyModel;
  executor: Executor;
  checker?: SymbolicChecker;
  signal?: AbortSignal;
  onToken?: () => void;
  /** Samples finished so far, of all the evaluation's samples (resumed ones included). */
  onProgress?: (done: number, total: number) => void;
  /** A problem's samples are all graded: append it to the per-problem log. */
  onProblem?: (log: ProblemLog) => void | Promise<void>;
}

/** The old environment of a local model; wrapped into a LocalPolicy. */
export interface LocalEvalEnv extends Omit<EvalEnv, 'policy'> {
  model: Transformer;
  tokenizer: Tokenizer;
}

export interface EvalResult {
  questions: number;
  samples: number;
  /** avg@k; with k = 1 the accuracy. */
  accuracy: number;
  majAtK: number;
  passAtK: number;
  /** THOR's self-rewarded best-of-N with N = k (docs/evaluation.md). */
  bestOfN: number;
  metrics: Record<string, MetricValue>;
  table: CodeCorrectnessTable;
  records: TrajectoryRecord[];
  problems: ProblemLog[];
  /** Problems taken from an earlier, interrupted evaluation. */
  resumed: number;
  seconds: number;
}

/**
 * Evaluates a policy: k samples of each problem, graded, reported problem by problem as they finish
 * (so an interruption keeps every finished problem), then the figures over all of them. Problems in
 * `previous` (a per-problem log of an interrupted evaluation) are not sampled again.
 */
export async function evaluate(
  envIn: EvalEnv | LocalEvalEnv,
  problems: readonly Problem[],
  settings: EvalSettings,
  reward: RewardOptions,
  previous: readonly ProblemLog[] = [],
): Promise<EvalResult> {
  const env: EvalEnv = 'policy' in envIn ? envIn : { ...envIn, policy: new LocalPolicy(envIn.model, envIn.tokenizer, 'local model', settings.batchSize ?? 64) };
  const { policy } = env;
  const started = Date.now();
  const k = settings.samples;
  const kept = new Map<string, ProblemLog>();
  for (const log of previous) {
    const p = problems[log.index];
    if (p && p.id === log.problemId && log.records.length === k) kept.set(log.problemId, log);
  }
  const todo = problems.map((p, index) => ({ p, index })).filter(({ p }) => !kept.has(p.id));
  const total = problems.length * k;
  let done = kept.size * k;
  const logs: ProblemLog[] = [...kept.values()];
  env.onProgress?.(done, total);

  const requestsOf = ({ p, index }: { p: Problem; index: number }) =>
    Array.from({ length: k }, (_, j) => ({ id: `eval-q${index}-k${j}`, groupId: `eval-q${index}`, problemId: p.id, question: p.question, reference: p.answer }));
  const finish = async (item: { p: Problem; index: number }, records: TrajectoryRecord[]) => {
    await gradeRecords(records, reward, env.checker);
    const log = { problemId: item.p.id, question: item.p.question, reference: item.p.answer, index: item.index, records };
    logs.push(log);
    await env.onProblem?.(log);
  };

  if (policy.kind === 'local') {
    // Whole problems per batch, so each batch ends with problems to log.
    const perBatch = Math.max(1, Math.floor((settings.batchSize ?? policy.parallel) / k));
    for (let i = 0; i < todo.length; i += perBatch) {
      const chunk = todo.slice(i, i + perBatch);
      const base = done;
      const records = await policy.rollouts(chunk.flatMap(requestsOf), { ...settings, seed: settings.seed + chunk[0].index * k }, {
        executor: env.executor,
        signal: env.signal,
        onToken: env.onToken,
        onProgress: (d) => env.onProgress?.(base + d, total),
      });
      for (let c = 0; c < chunk.length; c++) await finish(chunk[c], records.slice(c * k, (c + 1) * k));
      done = base + chunk.length * k;
      env.onProgress?.(done, total);
    }
  } else {
    // A pool of problems in flight, enough to keep the endpoint's requests busy (twice its cap in
    // samples): each problem's follow-up requests do not wait behind every other problem's first
    // one, so problems finish, and are logged, steadily. The first failure stops the others; what
    // finished is already logged.
    const inner = new AbortController();
    const stopAll = () => inner.abort(env.signal?.reason);
    env.signal?.addEventListener('abort', stopAll, { once: true });
    let failure: unknown;
    const width = Math.max(1, Math.ceil((2 * policy.parallel) / k));
    let next = 0;
    const worker = async () => {
      while (failure === undefined && next < todo.length) {
        const item = todo[next++];
        try {
          const records = await policy.rollouts(requestsOf(item), { ...settings, seed: settings.seed + item.index * k }, {
            executor: env.executor,
            signal: inner.signal,
            onProgress: () => env.onProgress?.(++done, total),
          });
          await finish(item, records);
        } catch (e) {
          if (failure === undefined) failure = e;
          inner.abort(e);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(width, todo.length) }, worker));
    } finally {
      env.signal?.removeEventListener('abort', stopAll);
    }
    if (failure !== undefined) {
      if (env.signal?.aborted) throw env.signal.reason;
      const finished = logs.length;
      throw new LabError('eval', `the evaluation stopped after ${finished} of ${problems.length} problems: ${failure instanceof Error ? failure.message : String(failure)}`, {
        hint: finished > 0 ? 'the finished problems are kept in the per-problem log: run it again with resume to go on' : undefined,
      });
    }
  }
  return summarize(logs.sort((a, b) => a.index - b.index), k, kept.size, (Date.now() - started) / 1000);
}

/** The figures of an evaluation from its per-problem logs (also used to rebuild a finished one). */
export function summarize(logs: readonly ProblemLog[], k: number, resumed = 0, seconds = 0): EvalResult {
  const records = logs.flatMap((l) => l.records);
  const perQuestion = logs.map((l) => l.records);
  const tally = (r: TrajectoryRecord) => ({ calls: r.executions.length, passed: r.executions.filter((e) => e.succeeded).length, correct: r.correct });
  const table = codeCorrectnessTable(records);
  return {
    questions: logs.length,
    samples: k,
    accuracy: avgAtK(perQuestion.map((rs) => rs.map((r) => r.correct))),
    majAtK: majAtK(perQuestion.map((rs) => rs.map((r) => ({ answer: r.finalAnswer, correct: r.correct })))),
    passAtK: meanPassAtK(perQuestion.map((rs) => rs.map((r) => r.correct)), k),
    bestOfN: bestOfNAccuracy(perQuestion.map((rs) => rs.map(tally))),
    metrics: trajectoryMetrics(records),
    table,
    records,
    problems: [...logs],
    resumed,
    seconds,
  };
}

/** Evaluation settings of a run config: its eval section over its rollout settings. */
export function evalSettingsOf(c: RunConfig, overrides: Partial<EvalSettings> = {}): EvalSettings {
  return {
    ...rolloutSettings(c, c.seed),
    temperature: c.eval.temperature,
    topP: c.eval.topP,
    topK: 0,
    samples: c.eval.samples,
    instruction: rolloutPrompt(c),
    selfCorrection: selfCorrectionSettings(c, c.eval.selfCorrection),
    ...overrides,
  };
}

/** Held-out evaluation points of a run: before the first step (0), every `every` steps, and after the last. */
export function evaluationDue(step: number, steps: number, every: number): boolean {
  return step === 0 || step === steps || (every > 0 && step % every === 0);
}

/** The flat figures of an evaluation, for metrics files and reports. */
export function evalSummary(r: EvalResult): Record<string, number | null> {
  return {
    questions: r.questions,
    samples: r.samples,
    accuracy: r.accuracy,
    maj_at_k: r.majAtK,
    pass_at_k: r.passAtK,
    best_of_n: r.bestOfN,
    code_ratio: r.metrics.code_ratio,
    pass_ratio: r.metrics.pass_ratio,
    tool_calls_per_response: r.metrics.tool_calls_per_response,
    response_length_mean: r.metrics.response_length_mean,
    self_corrections: r.metrics.self_corrections,
    p_correct_given_code_ok: r.table.pCorrectGivenSucceeded,
    p_correct_given_code_failed: r.table.pCorrectGivenFailed,
    chi_square: r.table.chiSquare,
    chi_square_p: r.table.pValue,
    seconds: r.seconds,
  };
}
