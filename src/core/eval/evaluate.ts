/**
 * Evaluation on a fixed set of problems: k samples per question (greedy when temperature is 0),
 * optionally with THOR's self-correction; avg@k, maj@k, pass@k, ToRL's code and pass ratios, and
 * THOR's code-succeeded × answer-correct table.
 */
import type { Problem } from '../data/types';
import { encodePrompt } from '../tir/prompt';
import { runRollouts, type RolloutEnv, type RolloutRequest, type RolloutSettings } from '../tir/rollout';
import type { SymbolicChecker } from '../reward/equivalence';
import type { RewardOptions } from '../reward/reward';
import { avgAtK, codeCorrectnessTable, majAtK, meanPassAtK, trajectoryMetrics, type CodeCorrectnessTable, type MetricValue } from './metrics';
import { gradeRecords } from '../reward/grade';
import { rolloutSettings, selfCorrectionSettings } from '../tir/settings';
import type { RunConfig } from '../config/schema';
import type { TrajectoryRecord } from '../tir/types';

export interface EvalSettings extends RolloutSettings {
  /** k samples per question. */
  samples: number;
  instruction: string;
  /** Rollouts per batch (bounds memory; the KV cache holds one row per rollout). */
  batchSize?: number;
}

export interface EvalResult {
  questions: number;
  samples: number;
  /** avg@k; with k = 1 the accuracy. */
  accuracy: number;
  majAtK: number;
  passAtK: number;
  metrics: Record<string, MetricValue>;
  table: CodeCorrectnessTable;
  records: TrajectoryRecord[];
  seconds: number;
}

export async function evaluate(
  env: RolloutEnv & { checker?: SymbolicChecker },
  problems: readonly Problem[],
  settings: EvalSettings,
  reward: RewardOptions,
): Promise<EvalResult> {
  const started = Date.now();
  const requests: RolloutRequest[] = problems.flatMap((p, q) => {
    const prompt = encodePrompt(env.tokenizer, p.question, settings.instruction);
    return Array.from({ length: settings.samples }, (_, k) => ({
      id: `eval-q${q}-k${k}`,
      groupId: `eval-q${q}`,
      level: 'trajectory' as const,
      problemId: p.id,
      question: p.question,
      reference: p.answer,
      promptTokens: prompt,
    }));
  });
  const batch = settings.batchSize ?? 64;
  const records: TrajectoryRecord[] = [];
  for (let i = 0; i < requests.length; i += batch) {
    const part = requests.slice(i, i + batch);
    const out = await runRollouts(
      { ...env, onProgress: (d) => env.onProgress?.(i + d, requests.length) },
      part,
      { ...settings, seed: settings.seed + i },
    );
    records.push(...out.records);
  }
  await gradeRecords(records, reward, env.checker);
  const perQuestion = problems.map((_, q) => records.filter((r) => r.groupId === `eval-q${q}`));
  const k = settings.samples;
  return {
    questions: problems.length,
    samples: k,
    accuracy: avgAtK(perQuestion.map((rs) => rs.map((r) => r.correct))),
    majAtK: majAtK(perQuestion.map((rs) => rs.map((r) => ({ answer: r.finalAnswer, correct: r.correct })))),
    passAtK: meanPassAtK(perQuestion.map((rs) => rs.map((r) => r.correct)), k),
    metrics: trajectoryMetrics(records),
    table: codeCorrectnessTable(records),
    records,
    seconds: (Date.now() - started) / 1000,
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
    instruction: c.rollout.instruction,
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
    code_ratio: r.metrics.code_ratio,
    pass_ratio: r.metrics.pass_ratio,
    tool_calls_per_response: r.metrics.tool_calls_per_response,
    response_length_mean: r.metrics.response_length_mean,
    self_corrections: r.metrics.self_corrections,
    p_correct_given_code_ok: r.table.pCorrectGivenSucceeded,
    p_correct_given_code_failed: r.table.pCorrectGivenFailed,
    seconds: r.seconds,
  };
}
