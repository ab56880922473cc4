/**
 * Outcome rewards. ToRL: +1 correct, -1 wrong or missing, optionally -0.5 more
 * when code did not run (ToRL's ablation found it pushed the model to trivial code). THOR: 1 / 0,
 * and 0 when the response degenerates into repetition (THOR's 20-character n-gram test).
 */
import { isEquivalent, type SymbolicChecker } from './equivalence';
import { extractAnswer, type ExtractedAnswer, type ExtractionMethod } from './extract';

export type RewardScheme = 'thor' | 'torl';

export interface RewardOptions {
  scheme: RewardScheme;
  /** ToRL: subtract 0.5 when a code block failed to execute. */
  codeFailurePenalty: boolean;
  /** THOR: reward 0 when some n-gram repeats too often. */
  repetitionPenalty: boolean;
  /** n-gram length in characters (THOR: 20). */
  repetitionNgram: number;
  /** A response repeats when one n-gram occurs more than this many times (THOR: 20). */
  repetitionMaxCount: number;
}

export const THOR_REWARD: RewardOptions = { scheme: 'thor', codeFailurePenalty: false, repetitionPenalty: true, repetitionNgram: 20, repetitionMaxCount: 20 };

/** THOR's repetition test: some n-character substring occurs more than maxCount times (overlaps count). */
export function hasRepetition(text: string, n = 20, maxCount = 20): boolean {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= text.length; i++) {
    const gram = text.slice(i, i + n);
    const c = (counts.get(gram) ?? 0) + 1;
    if (c > maxCount) return true;
    counts.set(gram, c);
  }
  return false;
}

export interface RewardInput {
  correct: boolean;
  /** Some code block of the response failed to execute. */
  codeFailed: boolean;
  /** Text the policy wrote (tool outputs left out), for the repetition test. */
  policyText: string;
}

/** THOR: R = 1[correct] (0 on repetition). ToRL: R = ±1, minus 0.5 when code failed if the penalty is on. */
export function computeReward(input: RewardInput, options: RewardOptions): number {
  if (options.scheme === 'thor') {
    if (options.repetitionPenalty && hasRepetition(input.policyText, options.repetitionNgram, options.repetitionMaxCount)) return 0;
    return input.correct ? 1 : 0;
  }
  const base = input.correct ? 1 : -1;
  return options.codeFailurePenalty && input.codeFailed ? base - 0.5 : base;
}

export interface Grade {
  extracted: ExtractedAnswer | undefined;
  correct: boolean;
  reward: number;
}

/** Extracts the final answer from what the policy wrote (never from tool output), checks it and scores it. */
export async function gradeResponse(
  response: { policyText: string; codeFailed: boolean },
  reference: string,
  options: RewardOptions,
  extras: { checker?: SymbolicChecker; methods?: readonly ExtractionMethod[] } = {},
): Promise<Grade> {
  const extracted = extractAnswer(response.policyText, extras.methods);
  const correct = extracted !== undefined && (await isEquivalent(extracted.answer, reference, extras.checker));
  return { extracted, correct, reward: computeReward({ correct, codeFailed: response.codeFailed, policyText: response.policyText }, options) };
}
