/**
 * Does the model's code compute the question it was asked? (docs/evaluation.md#code-that-computes-the-question)
 * A small model can write well-formed code with the wrong numbers in it (`print(373*87)` for "What is
 * 347*829?"): the code runs, its output is real, and the answer is still wrong. For the synthetic
 * tasks, whose reference answer is what the right program prints, an answer's code computes the
 * question when one of its calls printed the reference answer.
 */
import { isEquivalent } from '../reward/equivalence';
import type { TrajectoryRecord } from '../tir/types';

export interface CopyAccuracy {
  /** Answers that made at least one call. */
  withCode: number;
  /** Of those, answers one of whose calls printed the reference answer. */
  computesQuestion: number;
  /** computesQuestion / withCode; null without code. */
  share: number | null;
  /** The same, by task kind. */
  byKind: Record<string, { withCode: number; computesQuestion: number }>;
}

export async function copyAccuracy(records: readonly TrajectoryRecord[], kindOf: (problemId: string) => string | undefined = () => undefined): Promise<CopyAccuracy> {
  return copyAccuracyOfCalls(
    records.map((r) => ({ problemId: r.problemId, reference: r.reference, printed: r.executions.map((e) => e.stdout) })),
    kindOf,
  );
}

/**
 * The same from what each answer's calls printed: for an answer whose code the lab wrote from the
 * model's own steps (TIRGen's critic, for a model that writes no code), or the model's code.
 */
export async function copyAccuracyOfCalls(
  answers: readonly { problemId: string; reference: string; printed: readonly string[] }[],
  kindOf: (problemId: string) => string | undefined = () => undefined,
): Promise<CopyAccuracy> {
  const byKind: CopyAccuracy['byKind'] = {};
  let withCode = 0;
  let computesQuestion = 0;
  for (const a of answers) {
    if (a.printed.length === 0) continue;
    const kind = kindOf(a.problemId) ?? 'all';
    const k = (byKind[kind] ??= { withCode: 0, computesQuestion: 0 });
    withCode++;
    k.withCode++;
    if (await printedReference(a.printed, a.reference)) {
      computesQuestion++;
      k.computesQuestion++;
    }
  }
  return { withCode, computesQuestion, share: withCode === 0 ? null : computesQuestion / withCode, byKind };
}

/** Did one call print the reference? A call may print several results (the critic's code prints one a line): its whole output or any line counts. */
async function printedReference(printed: readonly string[], reference: string): Promise<boolean> {
  for (const out of printed)
    for (const candidate of new Set([out.trim(), ...out.split('\n').map((l) => l.trim())]))
      if (candidate !== '' && (await isEquivalent(candidate, reference))) return true;
  return false;
}
