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
    const isUnit = /[\d}]\s*$/.test(out) && /^\s*[a-zA-Z][a-zA-Z\s.]*$/.test(content);
    if (isUnit) {
      const power = /^\s*\^\s*\{?\s*[23]\s*\}?/.exec(s.slice(last));
      if (power) last += power[0].length;
    } else {
      out += content;
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

/** True when the written answer is a percentage ("10\%"): it then also matches its value / 100. */
export function hasPercent(raw: string): boolean {
  return /%/.test(raw);
}

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

export function normalizeAnswer(raw: string): string {
  // Matrix row breaks (\\) are set aside so that the spacing rules below cannot eat them.
  let s = raw
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

  s = s.replace(/\\displaystyle/g, '').replace(/\\[dt]frac(?![a-zA-Z])/g, '\\frac');
  s = s.replace(/\\(?:left|right)\./g, '').replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![a-zA-Z])/g, '');
  s = s.replace(/\\[!,;:> ]/g, ' ').replace(/\\q?quad(?![a-zA-Z])/g, ' ').replace(/~/g, ' ');
  s = s.replace(/\\\$/g, '').replace(/\$/g, '').replace(/\\[()[\]]/g, '');
  s = s.replace(/\^\s*\{?\s*\\circ\s*\}?/g, '').replace(/\\(?:circ|degree)(?![a-zA-Z])/g, '');
  s = s.replace(/\\%/g, '').replace(/%/g, '');
  s = unwrapText(s);
  s = s.replace(new RegExp(`(\\d|\\})\\s+(?:${UNIT_WORDS})(?:\\s*\\^\\s*\\{?[23]\\}?)?\\.?$`), '$1');
  s = s.replace(/[\s.]+$/, '');

  // Drop spaces, but keep one between a command and a letter ("\cot x" must not become "\cotx").
  s = s.replace(/(\\[a-zA-Z]+)\s+(?=[a-zA-Z])/g, '$1\u0001').replace(/\s+/g, '').replace(/\u0001/g, ' ');

  // "x=5", "x \in [-2,7]", "\theta=..." -> the value, when it is the only relation.
  const lhs = /^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?(?:=|\\in(?![a-zA-Z]))/.exec(s);
  if (lhs && !/=/.test(s.slice(lhs[0].length))) s = s.slice(lhs[0].length);

  if (/^-?\d{1,3}(,\d{3})+(\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
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
