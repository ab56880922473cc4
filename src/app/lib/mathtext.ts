/**
 * Model text with LaTeX in it: split into plain pieces (shown as escaped text) and math pieces
 * (rendered by KaTeX). Delimiters: $$…$$ and \[…\] (display), $…$ and \(…\) (inline), and a bare
 * \boxed{…} outside math, which is how TIR answers are written. Unclosed delimiters stay as text.
 */
import katex from 'katex';

export type MathPiece = { kind: 'text'; text: string } | { kind: 'math'; tex: string; display: boolean };

/** Index of the brace closing the one at `open`, or -1 (escaped braces do not count). */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Next unescaped occurrence of `close` at or after `from`, or -1. */
function findClosing(text: string, close: string, from: number): number {
  for (let i = from; i <= text.length - close.length; i++) {
    if (text[i] === '\\' && !close.startsWith('\\')) {
      i++;
      continue;
    }
    if (text.startsWith(close, i)) return i;
  }
  return -1;
}

/**
 * Closing "$" of an inline formula opened at `open` (Pandoc's rule, so prices like "$5 and $10"
 * stay text): the opener is followed by a non-space, the closer preceded by a non-space and not
 * followed by a digit, and no blank line lies between them.
 */
function inlineDollarEnd(text: string, open: number): number {
  const first = text[open + 1];
  if (first === undefined || /\s/.test(first)) return -1;
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '\n' && text[i + 1] === '\n') return -1;
    if (c === '$' && !/\s/.test(text[i - 1]) && !/[0-9]/.test(text[i + 1] ?? '')) return i > open + 1 ? i : -1;
  }
  return -1;
}

export function splitMath(text: string): MathPiece[] {
  const pieces: MathPiece[] = [];
  let plain = '';
  const math = (tex: string, display: boolean) => {
    if (plain) pieces.push({ kind: 'text', text: plain });
    plain = '';
    pieces.push({ kind: 'math', tex, display });
  };
  let i = 0;
  while (i < text.length) {
    const at = (s: string) => text.startsWith(s, i);
    if (at('\\$')) {
      plain += '$';
      i += 2;
      continue;
    }
    if (at('$$')) {
      const end = findClosing(text, '$$', i + 2);
      if (end > i + 2) {
        math(text.slice(i + 2, end), true);
        i = end + 2;
        continue;
      }
    } else if (text[i] === '$') {
      const end = inlineDollarEnd(text, i);
      if (end > 0) {
        math(text.slice(i + 1, end), false);
        i = end + 1;
        continue;
      }
    } else if (at('\\[') || at('\\(')) {
      const display = text[i + 1] === '[';
      const end = findClosing(text, display ? '\\]' : '\\)', i + 2);
      if (end > i + 2) {
        math(text.slice(i + 2, end), display);
        i = end + 2;
        continue;
      }
    } else if (at('\\boxed{')) {
      const close = matchingBrace(text, i + '\\boxed'.length);
      if (close > 0) {
        math(text.slice(i, close + 1), false);
        i = close + 1;
        continue;
      }
    }
    plain += text[i];
    i++;
  }
  if (plain) pieces.push({ kind: 'text', text: plain });
  return pieces;
}

// Rendering the same formula twice (re-renders, repeated answers) costs nothing after the first time.
const cache = new Map<string, string>();
const CACHE_SIZE = 500;

/**
 * KaTeX HTML for one formula. Bad TeX renders as its source in the error colour instead of throwing;
 * trust stays off, so commands that could emit links or raw HTML (\href, \htmlClass, …) are refused.
 */
export function renderTex(tex: string, display: boolean): string {
  const key = `${display ? 'D' : 'I'}${tex}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const html = katex.renderToString(tex, {
    displayMode: display,
    throwOnError: false,
    trust: false,
    strict: 'ignore',
    errorColor: '#e06c6c',
    maxExpand: 200,
    maxSize: 20,
  });
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(key, html);
  return html;
}
