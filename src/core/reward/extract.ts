/**
 * Final-answer extraction from a response, as ToRL and THOR grade: the last brace-balanced \boxed{...}
 * (or \fbox{...}); GSM8K's "#### N"; "The answer is X".
 */

export type ExtractionMethod = 'boxed' | 'gsm8k' | 'answer_is';

/** Index just past the brace that closes the one at `open`, or -1 when unbalanced; escaped \{ \} do not count. */
function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') {
      i++;
      continue;
    }
    if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i + 1;
  }
  return -1;
}

/** Content of the last complete \boxed{...} / \fbox{...} (also "\boxed 5"), or undefined. */
export function extractBoxed(text: string): string | undefined {
  const starts = [...text.matchAll(/\\(?:boxed|fbox)(?![a-zA-Z])/g)].map((m) => m.index + m[0].length).reverse();
  for (const start of starts) {
    let i = start;
    while (text[i] === ' ') i++;
    if (text[i] === '{') {
      const end = closingBrace(text, i);
      if (end > 0) return text.slice(i + 1, end - 1).trim();
    } else if (i > start) {
      const token = /^[^\s$]+/.exec(text.slice(i));
      if (token) return token[0];
    }
  }
  return undefined;
}

/** The value after the last "####" (GSM8K reference format), up to the end of its line. */
export function extractGsm8kAnswer(text: string): string | undefined {
  const at = text.lastIndexOf('####');
  if (at < 0) return undefined;
  const value = text.slice(at + 4).split('\n')[0].trim();
  return value === '' ? undefined : value;
}

/** X in the last "The (final) answer is X", up to the end of the line, without a closing period or $/** wrappers. */
export function extractAnswerIs(text: string): string | undefined {
  const matches = [...text.matchAll(/answer is\s*:?\s*([^\n]+)/gi)];
  if (matches.length === 0) return undefined;
  let value = matches[matches.length - 1][1].trim();
  value = value.replace(/\.\s*$/, '').trim();
  value = value.replace(/^\*\*(.*)\*\*$/, '$1').trim();
  value = value.replace(/^\$+(.*?)\$+$/, '$1').trim();
  const boxed = extractBoxed(value);
  return boxed ?? (value === '' ? undefined : value);
}

export interface ExtractedAnswer {
  answer: string;
  method: ExtractionMethod;
}

/** First method that finds an answer, in the order given (boxed first by default, as both papers do). */
export function extractAnswer(
  text: string,
  methods: readonly ExtractionMethod[] = ['boxed', 'gsm8k', 'answer_is'],
): ExtractedAnswer | undefined {
  const extractors: Record<ExtractionMethod, (t: string) => string | undefined> = {
    boxed: extractBoxed,
    gsm8k: extractGsm8kAnswer,
    answer_is: extractAnswerIs,
  };
  for (const method of methods) {
    const answer = extractors[method](text);
    if (answer !== undefined && answer !== '') return { answer, method };
  }
  return undefined;
}
