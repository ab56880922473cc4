/**
 * The lab's reward on a verl response string (docs/verl.md#the-reward): verl hands its reward function
 * the decoded response, tool output included, so the policy's text is what remains once the
 * ```output blocks (with the newlines a rollout forces around them) are cut out, the text the lab
 * grades (docs/reward.md). The Python module
 * shipped for verl (server/verl/thor_reward.py) mirrors this function; a shared table of cases keeps
 * the two equal.
 */
import { LabError } from '../errors';
import { isEquivalent, type SymbolicChecker } from '../reward/equivalence';
import { extractAnswer } from '../reward/extract';
import { computeReward, THOR_REWARD, type RewardOptions } from '../reward/reward';
import { NO_OUTPUT_MESSAGE, TIMEOUT_MESSAGE } from '../sandbox/observation';
import { forcedSpans, splitFences } from '../tir/format';

/** The reward settings as a verl row carries them in extra_info.reward (snake_case, as Python reads them). */
export interface VerlRewardSettings {
  scheme: 'thor' | 'torl';
  code_failure_penalty: boolean;
  repetition_penalty: boolean;
  repetition_ngram: number;
  repetition_max_count: number;
}

export function verlRewardSettings(r: RewardOptions): VerlRewardSettings {
  return { scheme: r.scheme, code_failure_penalty: r.codeFailurePenalty, repetition_penalty: r.repetitionPenalty, repetition_ngram: r.repetitionNgram, repetition_max_count: r.repetitionMaxCount };
}

/** The lab's options from a row's settings; what a row leaves out is THOR's default. */
export function rewardOptionsOf(s: Partial<VerlRewardSettings> | undefined): RewardOptions {
  const scheme = s?.scheme ?? THOR_REWARD.scheme;
  if (scheme !== 'thor' && scheme !== 'torl') throw new LabError('verl', 'unknown reward scheme', { field: 'extra_info.reward.scheme', expected: '"thor" or "torl"', found: JSON.stringify(scheme) });
  return {
    scheme,
    codeFailurePenalty: s?.code_failure_penalty ?? THOR_REWARD.codeFailurePenalty,
    repetitionPenalty: s?.repetition_penalty ?? THOR_REWARD.repetitionPenalty,
    repetitionNgram: s?.repetition_ngram ?? THOR_REWARD.repetitionNgram,
    repetitionMaxCount: s?.repetition_max_count ?? THOR_REWARD.repetitionMaxCount,
  };
}

/**
 * The response without its tool output (forcedSpans: each closed ```output block with the line breaks a
 * rollout forces around it, docs/tir-format.md#forced-observation-block), and without an ```output block
 * left open at the end (a response cut by the length limit inside tool output): the text the lab grades.
 */
export function verlPolicyText(response: string): string {
  let text = '';
  let at = 0;
  for (const span of forcedSpans(response)) {
    text += response.slice(at, span.start);
    at = span.end;
  }
  text += response.slice(at);
  const last = splitFences(text).at(-1);
  return last && last.kind === 'output' && !last.closed ? text.slice(0, last.start) : text;
}

/** An observation the lab writes for a call that did not succeed (docs/tir-format.md#observation-text). */
export function failedObservation(body: string): boolean {
  return body === NO_OUTPUT_MESSAGE || body === TIMEOUT_MESSAGE || body.startsWith('Error: the ') || /^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)(?::|$)/.test(body);
}

/** Some code call of the response failed, read from its ```output blocks' text. */
export function verlCodeFailed(response: string): boolean {
  return splitFences(response).some((p) => p.kind === 'output' && p.closed && failedObservation(p.body));
}

export interface VerlScore {
  score: number;
  /** The answer was judged correct. */
  acc: boolean;
  /** The extracted answer ('' when none). */
  pred: string;
}

/**
 * What compute_score returns for a response: the reward under the row's settings, correctness and the
 * answer read (gradeResponse's steps). An answer nested deeper than the call stack allows is judged
 * different instead of failing the batch (docs/verl.md#the-reward).
 */
export async function verlScore(
  response: string,
  groundTruth: string,
  extraInfo: { reward?: Partial<VerlRewardSettings>; code_failed?: boolean } | undefined,
  checker?: SymbolicChecker,
): Promise<VerlScore> {
  const options = rewardOptionsOf(extraInfo?.reward);
  const codeFailed = typeof extraInfo?.code_failed === 'boolean' ? extraInfo.code_failed : verlCodeFailed(response);
  const policyText = verlPolicyText(response);
  const extracted = extractAnswer(policyText);
  let correct = false;
  try {
    correct = extracted !== undefined && (await isEquivalent(extracted.answer, groundTruth, checker));
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  return { score: computeReward({ correct, codeFailed, policyText }, options), acc: correct, pred: extracted?.answer ?? '' };
}
