/**
 * Final-answer extraction from a response, as ToRL and THOR grade (docs/reward.md): the last
 * brace-balanced \boxed{...} (or \fbox{...}), with boxes that end the answer together read as one
 * list; GSM8K's "#### N"; "The answer is X". Two fallbacks the grader does not use read other
 * texts: the last math span and the last number.
 */

export type ExtractionMethod = 'boxed' | 'gsm8k' | 'answer_is' | 'final_math' | 'last_number';

/** What the grader reads by default: boxed, GSM8K's ####, "the answer is". */
export const GRADER_METHODS: readonly ExtractionMethod[] = ['boxed', 'gsm8k', 'answer_is'];
/** Every method, fallbacks included: the last math span, then the last number (docs/reward.md). */
export const ALL_METHODS: readonly ExtractionMethod[] = ['boxed', 'gsm8k', 'answer_is', 'final_math', 'last_number'];

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

interface Box {
  start: number;
  end: number;
  content: string;
}

/** Every complete \boxed{...} / \fbox{...} (also "\boxed 5"), in order. */
function boxes(text: string): Box[] {
  const found: Box[] = [];
  for (const m of text.matchAll(/\\(?:boxed|fbox)(?![a-zA-Z])/g)) {
    let i = m.index + m[0].length;
    while (text[i] === ' ') i++;
    if (text[i] === '{') {
      const end = closingBrace(text, i);
      if (end > 0) found.push({ start: m.index, end, content: text.slice(i + 1, end - 1).trim() });
    } else if (i > m.index + m[0].length) {
      const token = /^[^\s$]+/.exec(text.slice(i));
      if (token) found.push({ start: m.index, end: i + token[0].length, content: token[0] });
    }
  }
  return found;
}

/**
 * True when the text between two answers only joins them: nothing, or a connective ("and", "or", a
 * comma or semicolon) with at most four short words around it ("papers and", "for part (a) and"), math
 * delimiters, spacing and "x =" labels. Two boxes far apart (a first try and a final answer) are not joined.
 */
export function joinsAnswers(between: string): boolean {
  const s = between
    .replace(/\\text(?:bf|it|rm|normal)?\s*\{([^{}]*)\}/g, ' $1 ')
    .replace(/\\(?:q?quad|[,;:! ])/g, ' ')
    .replace(/\$|\\[()[\]]/g, ' ')
    .replace(/(?:[A-Za-z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=/g, ' ')
    .replace(/[,;.]/g, ' , ');
  const words = s.split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return true;
  const connective = words.some((w) => w === ',' || /^(?:and|or)$/i.test(w));
  return connective && words.filter((w) => w !== ',').length <= 4 && words.length <= 8;
}

interface Found {
  answer: string;
  /** Where the text the answer was read from ends: a later answer of the same rank wins. */
  end: number;
}

/** Joins consecutive answers that joinsAnswers accepts into one list ("1; 2"); the last group wins. */
function lastGroupAt<T extends { start: number; end: number; content: string }>(
  text: string,
  items: T[],
  together: (a: T, b: T) => boolean = () => false,
): Found | undefined {
  if (items.length === 0) return undefined;
  let k = items.length - 1;
  const group = [items[k]];
  while (k > 0 && items[k - 1].end <= items[k].start && (joinsAnswers(text.slice(items[k - 1].end, items[k].start)) || together(items[k - 1], items[k]))) {
    group.unshift(items[--k]);
  }
  const parts = group.map((g) => g.content).filter((c) => c !== '');
  return parts.length === 0 ? undefined : { answer: parts.join('; '), end: items[items.length - 1].end };
}

/**
 * Content of the last complete \boxed{...} / \fbox{...} (also "\boxed 5"), or undefined. Boxes that
 * end the answer together ("\boxed{-2} and \boxed{1}") are read as one list, "-2; 1".
 */
export function extractBoxed(text: string): string | undefined {
  return lastBoxesAt(text)?.answer;
}

/** The last group of boxes: boxes joined by a connective, or written in one math span ("$\boxed{1}\boxed{2}$"). */
function lastBoxesAt(text: string): Found | undefined {
  const found = boxes(text);
  if (found.length < 2) return lastGroupAt(text, found);
  const spans = mathSpans(text);
  const spanOf = (b: Box) => spans.findIndex((s) => s.start < b.start && b.end <= s.end);
  return lastGroupAt(text, found, (a, b) => spanOf(a) >= 0 && spanOf(a) === spanOf(b));
}

/** The value after the last "####" (GSM8K reference format), up to the end of its line. */
export function extractGsm8kAnswer(text: string): string | undefined {
  const at = text.lastIndexOf('####');
  if (at < 0) return undefined;
  const value = text.slice(at + 4).split('\n')[0].trim();
  return value === '' ? undefined : value;
}

interface MathSpan {
  start: number;
  end: number;
  content: string;
}

/**
 * The math spans of a text, in order: $$...$$ and \[...\] (may span lines), $...$ and \(...\) (one
 * line only, as in running text). An escaped \$ is a dollar sign, and a $ with no partner on its line
 * is text (a price).
 */
export function mathSpans(text: string): MathSpan[] {
  const spans: MathSpan[] = [];
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i, i + 2);
    let open = '';
    let close = '';
    if (rest === '$$') [open, close] = ['$$', '$$'];
    else if (rest === '\\[') [open, close] = ['\\[', '\\]'];
    else if (rest === '\\(') [open, close] = ['\\(', '\\)'];
    else if (text[i] === '$' && text[i - 1] !== '\\') [open, close] = ['$', '$'];
    else if (text[i] === '\\') {
      i += 2;
      continue;
    }
    if (!open) {
      i++;
      continue;
    }
    const from = i + open.length;
    const inline = open === '$' || open === '\\(';
    let j = from;
    let end = -1;
    while (j < text.length) {
      if (inline && text[j] === '\n') break;
      if (text.startsWith(close, j) && text[j - 1] !== '\\') {
        end = j;
        break;
      }
      if (close !== '$' && close !== '$$' && text[j] === '\\') j++;
      j++;
    }
    if (end < 0) {
      i = from;
      continue;
    }
    const content = text.slice(from, end).trim();
    if (content !== '') spans.push({ start: i, end: end + close.length, content });
    i = end + close.length;
  }
  return spans;
}

/** The last math span of a text, joined with the spans just before it that end the answer with it ("$1$ and $2$"). */
export function extractFinalMath(text: string): string | undefined {
  return lastGroupAt(text, mathSpans(text))?.answer;
}

const NUMBER = String.raw`-?(?:\d{1,3}(?:[ ,]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)`;

function lastNumberAt(text: string): Found | undefined {
  const re = new RegExp(String.raw`(?<![\w.,\d])(${NUMBER}(?:/${NUMBER})?)(?:\s*(%|percent(?:age)?|pct)(?![a-zA-Z]))?(?!\d)`, 'gi');
  const all = [...text.matchAll(re)];
  if (all.length === 0) return undefined;
  const last = all[all.length - 1];
  return { answer: last[1] + (last[2] ? '%' : ''), end: last.index + last[0].length };
}

/** The last number of a plain text ("1,000.99", "2,74", "2/3", "28 percent"), with its percent sign; digits inside words do not count. */
export function extractLastNumber(text: string): string | undefined {
  return lastNumberAt(text)?.answer;
}

/** Cuts a value read after "answer is" at the end of its first sentence, or takes its leading math span. */
function answerValue(raw: string): string | undefined {
  // Quotes and bold around the value go: "$12$ and $13$", **7**.
  let value = raw.trim().replace(/^\*\*\s*/, '').replace(/^\\?["\u201c]/, '');
  const span = mathSpans(value)[0];
  if (span && span.start === 0) {
    const spans = mathSpans(value);
    let k = 0;
    while (k + 1 < spans.length && joinsAnswers(value.slice(spans[k].end, spans[k + 1].start))) k++;
    value = spans.slice(0, k + 1).map((s) => s.content).join('; ');
    const boxed = extractBoxed(value);
    return boxed ?? value;
  }
  value = value.split('\n')[0];
  const boxed = extractBoxed(value);
  if (boxed !== undefined) return boxed;
  value = value.replace(/\.(?:\s.*)?$/, '').trim();
  value = value.replace(/^\*\*(.*?)\*\*.*$/, '$1').replace(/\*\*$/, '').trim();
  value = value.replace(/^\$+(.*?)\$+$/, '$1').trim();
  return value === '' ? undefined : value;
}

/** The last "answer is X" or "Final Answer: ... is X"; final tells the second kind (and "final answer is") apart. */
function answerIsAt(text: string): (Found & { final: boolean }) | undefined {
  // The values are read in lookaheads, so that each match is short and a later one is still found.
  const plain = [...text.matchAll(/answer is\s*:?\s*(?=([^\n]+))/gi)];
  const final = [...text.matchAll(/final answer\s*:?[^\n]{0,100}?\s(?:is|are)\s*:?\s*(?=([$\\\d(\[-][^\n]*))/gi)];
  const matches = [...plain, ...final];
  if (matches.length > 0) {
    const last = matches.reduce((a, b) => (b.index + b[0].length > a.index + a[0].length ? b : a));
    const answer = answerValue(last[1]);
    const isFinal = /final answer/i.test(last[0]) || /final\s*$/i.test(text.slice(Math.max(0, last.index - 8), last.index));
    if (answer !== undefined) return { answer, end: last.index + last[0].length, final: isFinal };
  }
  return undefined;
}

/**
 * X in the last "The (final) answer is X" (also "Final Answer: The largest $n$ is X"),
 * up to the end of its sentence, without a closing period or $ / ** wrappers; a leading math span is
 * taken whole.
 */
export function extractAnswerIs(text: string): string | undefined {
  return answerIsAt(text)?.answer;
}

export interface ExtractedAnswer {
  answer: string;
  method: ExtractionMethod;
}

/**
 * First method that finds an answer, in the order given (boxed first by default, as both papers do).
 * Two exceptions keep the answer the text ends on: a "final answer is X" written after the last box
 * wins over the box, and of the last math span and the last number, the later one wins.
 */
export function extractAnswer(text: string, methods: readonly ExtractionMethod[] = GRADER_METHODS): ExtractedAnswer | undefined {
  const finders: Record<ExtractionMethod, (t: string) => Found | undefined> = {
    boxed: lastBoxesAt,
    gsm8k: (t) => {
      const answer = extractGsm8kAnswer(t);
      return answer === undefined ? undefined : { answer, end: t.lastIndexOf('####') };
    },
    answer_is: answerIsAt,
    final_math: (t) => lastGroupAt(t, mathSpans(t)),
    last_number: lastNumberAt,
  };
  for (const method of methods) {
    const found = finders[method](text);
    if (found === undefined || found.answer === '') continue;
    if (method === 'boxed' && methods.includes('answer_is')) {
      const final = answerIsAt(text);
      if (final?.final && final.end > found.end) return { answer: final.answer, method: 'answer_is' };
    }
    const rival = method === 'final_math' ? 'last_number' : method === 'last_number' ? 'final_math' : undefined;
    if (rival && methods.includes(rival)) {
      const other = finders[rival](text);
      if (other && other.answer !== '' && other.end > found.end) return { answer: other.answer, method: rival };
    }
    return { answer: found.answer, method };
  }
  return undefined;
}
