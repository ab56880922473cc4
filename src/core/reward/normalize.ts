/**
 * String normalisation of final answers, in the spirit of the MATH grader's strip_string
 * (hendrycks/math) and Qwen2.5-Math's evaluation: both sides of a comparison go through the same
 * steps, so formatting differences ($, \text{}, units, \left, spaces, \dfrac...) vanish.
 */

/** Argument starting at i: a {...} group (content), a \command, or one character; with the index after it. */
export function readArgument(s: string, i: number): { arg: string; end: number; braced: boolean } | undefined {
  if (i >= s.length) return undefined;
  if (s[i] === '{') {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      if (s[j] === '\\') {
        j++;
        continue;
      }
      if (s[j] === '{') depth++;
      else if (s[j] === '}' && --depth === 0) return { arg: s.slice(i + 1, j), end: j + 1, braced: true };
    }
    return undefined;
  }
  if (s[i] === '\\') {
    const m = /^\\[a-zA-Z]+/.exec(s.slice(i));
    if (m) return { arg: m[0], end: i + m[0].length, braced: false };
  }
  return { arg: s[i], end: i + 1, braced: false };
}

const TEXT_COMMANDS = /\\(?:text|textbf|textit|textrm|textnormal|textsf|texttt|mathrm|mathbf|mathit|mathsf|mbox|hbox|operatorname)\s*(?=\{)/g;
const UNIT_WORDS =
  'units?|cm|mm|km|m|meters?|metres?|inches|inch|in|feet|foot|ft|yards?|yd|miles?|mi|cents?|dollars?|degrees?|deg|radians?|hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|pounds?|lbs?|ounces?|oz|kg|grams?|g|liters?|litres?|ml|mph|sq|square|cubic|people|students|points';

/**
 * Unwraps \text{...}-like commands. A wrapper that follows an expression and holds only words is a
 * unit ("5\text{ cm}^2", "\frac{270}7\text{ degrees}") and is dropped with any ^2 / ^3 after it.
 */
function unwrapText(s: string): string {
  let out = '';
  let last = 0;
  for (const m of s.matchAll(TEXT_COMMANDS)) {
    if (m.index < last) continue;
    const group = readArgument(s, m.index + m[0].length);
    if (!group) continue;
    out += s.slice(last, m.index);
    last = group.end;
    const content = group.arg;
    const isUnit = /[\d}]\s*$/.test(out) && /^\s*[a-zA-Z][a-zA-Z\s.]*$/.test(content) && !/(?<![a-zA-Z])(?:and|or)(?![a-zA-Z])/i.test(content);
    if (isUnit) {
      const power = /^\s*\^\s*\{?\s*[23]\s*\}?/.exec(s.slice(last));
      if (power) last += power[0].length;
    } else {
      out += /^\s*[a-zA-Z][a-zA-Z\s.]*$/.test(content) ? ` ${content} ` : content;
    }
  }
  return out + s.slice(last);
}

/** Gives \frac and \sqrt braced arguments: \frac12 -> \frac{1}{2}, \frac 34 -> \frac{3}{4}, \sqrt2 -> \sqrt{2}. */
function braceArguments(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const cmd = /^\\(frac|sqrt)(?![a-zA-Z])/.exec(s.slice(i));
    if (!cmd) {
      out += s[i++];
      continue;
    }
    out += cmd[0];
    i += cmd[0].length;
    if (cmd[1] === 'sqrt' && s[i] === '[') {
      const close = s.indexOf(']', i);
      if (close < 0) continue;
      out += s.slice(i, close + 1);
      i = close + 1;
    }
    for (let k = 0; k < (cmd[1] === 'frac' ? 2 : 1); k++) {
      const a = readArgument(s, i);
      if (!a) break;
      out += `{${a.braced ? braceArguments(a.arg) : a.arg}}`;
      i = a.end;
    }
  }
  return out;
}

const PERCENT_WORD = /(\d|\})\s*(?:percent(?:age)?|pct)(?![a-zA-Z])/gi;

/** True when the written answer is a percentage ("10\%", "28 percent"): it then also matches its value / 100. */
export function hasPercent(raw: string): boolean {
  return /%/.test(raw) || new RegExp(PERCENT_WORD.source, 'i').test(raw);
}

const NUMBER_WORDS: Record<string, number> = {
  zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10,
  eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15, sixteen: 16, seventeen: 17, eighteen: 18, nineteen: 19,
};
const TENS: Record<string, number> = { twenty: 20, thirty: 30, forty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90 };

/** "five" -> 5, "twenty-one" -> 21, "one hundred" -> 100: a whole answer that is one number below 1000 in words, else undefined. */
export function numberFromWords(text: string): number | undefined {
  const words = text.trim().toLowerCase().replace(/-/g, ' ').split(/\s+/).filter((w) => w !== 'and');
  if (words.length === 0 || words.length > 5) return undefined;
  let total = 0;
  let current = 0;
  let seen = false;
  for (const w of words) {
    // Own keys only: "constructor" or "__proto__" is not a number word.
    if (Object.hasOwn(NUMBER_WORDS, w)) {
      if (current % 10 !== 0 || (current !== 0 && current % 100 !== 0 && NUMBER_WORDS[w] >= 10)) return undefined;
      current += NUMBER_WORDS[w];
    } else if (Object.hasOwn(TENS, w)) {
      if (current % 100 !== 0) return undefined;
      current += TENS[w];
    } else if (w === 'hundred') {
      if (current === 0 || current >= 10) return undefined;
      total += current * 100;
      current = 0;
    } else return undefined;
    seen = true;
  }
  return seen ? total + current : undefined;
}

/** Relation signs in one spelling each: \le, \ge, \ne, <, >. */
function canonicalRelations(s: string): string {
  return s
    .replace(/\\(?:leqslant|leq|le)(?![a-zA-Z])|<=|\u2264/g, '\\le ')
    .replace(/\\(?:geqslant|geq|ge)(?![a-zA-Z])|>=|\u2265/g, '\\ge ')
    .replace(/\\(?:neq|ne)(?![a-zA-Z])|!=|\u2260/g, '\\ne ')
    .replace(/\\lt(?![a-zA-Z])/g, '<')
    .replace(/\\gt(?![a-zA-Z])/g, '>');
}

/** Commands a doubled backslash may stand for ("\\frac" written for "\frac"); a row break is never followed by one of these. */
const REPAIRABLE = 'left|right|frac|dfrac|tfrac|sqrt|pi|le|leq|ge|geq|lt|gt|neq|ne|cdot|times|infty|text|in|cup|pm|boxed|approx';

/** Removes an outer {...} that wraps the whole string. */
function stripOuterBraces(s: string): string {
  while (s.startsWith('{')) {
    const g = readArgument(s, 0);
    if (!g || g.end !== s.length) break;
    s = g.arg;
  }
  return s;
}

const ROW_BREAK = '\u0002';

/**
 * The canonical text of an answer with its structure kept: labels ("x ="), relations and list
 * separators stay; "and" / "or" between items become ";". Used by the structural comparison.
 */
export function normalizeForm(raw: string): string {
  // Matrix row breaks (\\) are set aside so that the spacing rules below cannot eat them.
  let s = raw
    .replace(new RegExp(String.raw`(?<!\\)\\\\(?=(?:${REPAIRABLE})(?![a-zA-Z]))`, 'g'), '\\')
    .replace(/\\\\/g, ROW_BREAK)
    .replace(/\u2212/g, '-')
    .replace(/\u00d7/g, '\\times ')
    .replace(/\u00b7/g, '\\cdot ')
    .replace(/\u03c0/g, '\\pi ')
    .replace(/\u221e/g, '\\infty ')
    .replace(/\u221a/g, '\\sqrt')
    .replace(/\u00b0/g, '^\\circ')
    .replace(/\s+/g, ' ')
    .trim();

  s = s.replace(/\\varnothing(?![a-zA-Z])|\\\{\s*\\\}/g, '\\emptyset').replace(/\\displaystyle/g, '').replace(/\\[dtc]frac(?![a-zA-Z])/g, '\\frac').replace(/\\[dt]binom(?![a-zA-Z])/g, '\\binom');
  s = s.replace(/\\(?:left|right)\./g, '').replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![a-zA-Z])/g, '');
  // \! glues ("32,\!349"); a thin space between digit groups separates thousands ("1\,000").
  s = s.replace(/\\!\s*/g, '').replace(/(\d)\\,(?=\d{3}(?!\d))/g, '$1,').replace(/(\d)\s*\{\s*,\s*\}\s*(?=\d)/g, '$1,');
  s = s.replace(/\\[,;:> ]/g, ' ').replace(/\\q?quad/g, ' ').replace(/~/g, ' ');
  s = s.replace(/\\\$/g, '').replace(/\$/g, '').replace(/\\[()[\]]/g, '');
  s = s.replace(/\^\s*\{?\s*\\circ\s*\}?/g, '').replace(/\\(?:circ|degree)(?![a-zA-Z])/g, '');
  s = s.replace(/\\%/g, '').replace(/%/g, '').replace(PERCENT_WORD, '$1');
  s = canonicalRelations(s);
  s = unwrapText(s);
  s = s.replace(new RegExp(`(\\d|\\})\\s+(?:${UNIT_WORDS})(?:\\s*\\^\\s*\\{?[23]\\}?)?\\.?$`), '$1');
  s = s.replace(/[\s.]+$/, '').trim();
  const spelled = numberFromWords(s);
  if (spelled !== undefined) s = String(spelled);

  // "and" / "or" between items, with any comma before them, separate list items.
  s = s.replace(/\s*[,;]?\s*(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])\s*/g, ';');
  // Thousands separators, for a whole answer only: "1,234,567" (no space after a comma, so "32, 349"
  // stays a list) and "1 234 567".
  if (/^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$/.test(s) || /^-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/[, ]/g, '');

  // Drop spaces, but keep one between a command and a letter ("\cot x" must not become "\cotx") and
  // between two digits ("3 2" is not 32).
  s = s
    .replace(/(\\[a-zA-Z]+)\s+(?=[a-zA-Z])/g, '$1\u0001')
    .replace(/(\d)\s+(?=\d)/g, '$1\u0001')
    .replace(/\s+/g, '')
    .replace(/\u0001/g, ' ');

  s = braceArguments(s);
  s = s.replace(/([\^_])\{(\w)\}/g, '$1$2');
  s = s.replace(/(^|[^\d}])\.(\d)/g, '$10.$2');
  s = s.replace(/\\(?:cdot|times)(?![a-zA-Z])/g, '*');
  s = s.replace(/^\+/, '').replace(/(^|[^a-zA-Z\\])(?:infinity|inf)(?![a-zA-Z])/g, '$1\\infty').replace(/\+\\infty/g, '\\infty');
  s = stripOuterBraces(s);
  const choice = /^\(([A-Ea-e])\)$/.exec(s);
  if (choice) s = choice[1].toUpperCase();
  return s.replace(new RegExp(ROW_BREAK, 'g'), '\\\\');
}

/**
 * The canonical text of a simple answer: normalizeForm, then a leading "x =" or "x \in" dropped when
 * it is the only relation ("x=5" -> "5"). Used for voting keys and exact matches.
 */
export function normalizeAnswer(raw: string): string {
  const s = normalizeForm(raw);
  const lhs = /^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?(?:=|\\in(?![a-zA-Z]))/.exec(s);
  return lhs && !/=|\\[lg]e|\\ne|[<>]/.test(s.slice(lhs[0].length)) ? s.slice(lhs[0].length) : s;
}
