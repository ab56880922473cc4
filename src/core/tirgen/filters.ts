/**
 * TIRGen's sample filters (docs/tirgen.md#filters), each a pure check of one finished sample, so the
 * report can say how many samples each one failed. The answer check is the lab's grader
 * (src/core/reward); the others read the TIR text with the one fence parser.
 */
import type { SymbolicChecker } from '../reward/equivalence';
import { extractBoxed } from '../reward/extract';
import { gradeResponse, hasRepetition, THOR_REWARD } from '../reward/reward';
import { splitFences } from '../tir/format';
import type { TirgenSettings } from './settings';

/** The per-sample filters, in the order a sample's first failure is counted. */
export const SAMPLE_FILTERS = ['answer', 'execution', 'boxed', 'dollars', 'code', 'codeQuality', 'repetition'] as const;
export type SampleFilter = (typeof SAMPLE_FILTERS)[number];

/** What a filter needs of a sample. */
export interface FilterInput {
  /** The response in the TIR text format. */
  response: string;
  reference: string;
  /** Whether each executed call succeeded (ran, printed something). */
  executions: readonly { succeeded: boolean }[];
}

/** The text the policy wrote: the response without its ```output blocks. */
export function policyTextOf(response: string): string {
  return splitFences(response)
    .filter((p) => p.kind !== 'output')
    .map((p) => response.slice(p.start, p.end))
    .join('');
}

/** The closed ```python blocks of a text (their bodies). */
export function codeBlocks(text: string): string[] {
  return splitFences(text)
    .filter((p) => p.kind === 'code' && p.closed)
    .map((p) => p.body);
}

/** A non-empty \boxed{} in what the policy wrote. */
export function hasBoxedAnswer(response: string): boolean {
  const boxed = extractBoxed(policyTextOf(response));
  return boxed !== undefined && boxed.trim() !== '';
}

/**
 * Dollar signs pair up in the prose (code and tool output are not math). THOR's released filter
 * rejects an odd count of unescaped `$` except a single one (a price, say); so does the lab.
 */
export function dollarsPaired(response: string): boolean {
  const prose = splitFences(response)
    .filter((p) => p.kind === 'text')
    .map((p) => p.body)
    .join('\n');
  const n = (prose.match(/(?<!\\)\$/g) ?? []).length;
  return n % 2 === 0 || n === 1;
}

/**
 * At least one code block, in the one thinking section when the response has one (`<think>…</think>`
 * for reasoning models: exactly one section, with code in it).
 */
export function hasCodeInThinking(response: string): boolean {
  if (!response.includes('<think>')) return codeBlocks(response).length > 0;
  const sections = [...response.matchAll(/<think>([\s\S]*?)<\/think>/g)];
  return sections.length === 1 && codeBlocks(sections[0][1]).length > 0;
}

/** The non-blank lines of a block that are not comments. */
export function codeLines(block: string): string[] {
  return block.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

/** THOR's code rule: a block of at most `maxLines` lines is low quality; more than ceil(share × blocks) of them rejects the sample. */
export function passesThorCodeRule(blocks: readonly string[], maxLines: number, share: number): boolean {
  const low = blocks.filter((b) => codeLines(b).length <= maxLines).length;
  return low <= Math.ceil(share * blocks.length);
}

/** A block imports a library (every block is independent, so a library call needs an import) or has control flow. */
export function usesLibraryOrControlFlow(block: string): boolean {
  const lines = codeLines(block).join('\n');
  return /^\s*(?:import\s+\w|from\s+[\w.]+\s+import\b)/m.test(lines) || /\b(?:for|while|if|def|lambda|try)\b/.test(lines);
}

/** The paper's rule: every block has a library call or control flow. */
export function passesPaperCodeRule(blocks: readonly string[]): boolean {
  return blocks.every(usesLibraryOrControlFlow);
}

export function passesCodeQuality(response: string, s: Pick<TirgenSettings, 'codeQuality' | 'lowQualityMaxLines' | 'lowQualityMaxShare'>): boolean {
  const blocks = codeBlocks(response);
  const thor = () => passesThorCodeRule(blocks, s.lowQualityMaxLines, s.lowQualityMaxShare);
  const paper = () => passesPaperCodeRule(blocks);
  switch (s.codeQuality) {
    case 'off':
      return true;
    case 'thor':
      return thor();
    case 'paper':
      return paper();
    case 'both':
      return thor() && paper();
  }
}

/** Whether the answer the policy wrote matches the reference, by the lab's grader. */
export async function answerVerified(response: string, reference: string, checker?: SymbolicChecker): Promise<boolean> {
  const g = await gradeResponse({ policyText: policyTextOf(response), codeFailed: false }, reference, { ...THOR_REWARD, repetitionPenalty: false }, { checker });
  return g.correct;
}

/** Every filter a sample fails, in SAMPLE_FILTERS order (empty: it passes). */
export async function failedFilters(sample: FilterInput, s: TirgenSettings, checker?: SymbolicChecker): Promise<SampleFilter[]> {
  const failed: SampleFilter[] = [];
  if (!(await answerVerified(sample.response, sample.reference, checker))) failed.push('answer');
  if (sample.executions.some((e) => !e.succeeded)) failed.push('execution');
  if (!hasBoxedAnswer(sample.response)) failed.push('boxed');
  if (!dollarsPaired(sample.response)) failed.push('dollars');
  if (!hasCodeInThinking(sample.response)) failed.push('code');
  if (!passesCodeQuality(sample.response, s)) failed.push('codeQuality');
  if (hasRepetition(sample.response, s.repetitionNgram, s.repetitionMaxCount)) failed.push('repetition');
  return failed;
}
