/**
 * Answer equivalence, as math graders do it (MATH, Qwen2.5-Math evaluation): exact string after normalisation, then structure (tuples
 * and intervals element-wise, unordered lists and sets, matrices, ±), then numeric value, then
 * symbolic through an injected checker (sympy in the sandbox) for what the cheap checks cannot decide.
 */
import { evaluateLatex, valuesEqual } from './evaluate';
import { hasPercent, normalizeAnswer } from './normalize';

/** Decides symbolic equality of two normalised LaTeX atoms; undefined when it cannot tell. */
export interface SymbolicChecker {
  equivalent(a: string, b: string): Promise<boolean | undefined>;
}

/** true / false, or undefined: "needs a symbolic check". */
export type Verdict = boolean | undefined;

type Answer =
  | { kind: 'atom'; text: string }
  | { kind: 'tuple'; open: string; close: string; items: Answer[] }
  | { kind: 'set'; items: Answer[] };

/** Splits at top-level occurrences of sep (outside (), [], {}). */
function splitTopLevel(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      parts.push(s.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** True when s[0] is an opening bracket whose partner is the last character. */
function wrapped(s: string): boolean {
  if (!'(['.includes(s[0]) || !')]'.includes(s[s.length - 1])) return false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if ('([{'.includes(s[i])) depth++;
    else if (')]}'.includes(s[i]) && --depth === 0) return i === s.length - 1;
  }
  return false;
}

const set = (items: Answer[]): Answer => ({ kind: 'set', items: items.flatMap((a) => (a.kind === 'set' ? a.items : [a])) });

function parseAnswer(s: string): Answer {
  const union = splitTopLevel(s, '\\cup');
  if (union.length > 1) return set(union.map(parseAnswer));
  const matrix = /^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$/.exec(s);
  if (matrix) {
    const rows = splitTopLevel(matrix[2], '\\\\').filter((r) => r !== '');
    const row = (r: string): Answer => ({ kind: 'tuple', open: 'row', close: 'row', items: splitTopLevel(r, '&').map(parseAnswer) });
    return { kind: 'tuple', open: 'matrix', close: 'matrix', items: rows.map(row) };
  }
  if (s.startsWith('\\{') && s.endsWith('\\}')) return set(splitTopLevel(s.slice(2, -2), ',').map(parseAnswer));
  if (wrapped(s)) {
    const items = splitTopLevel(s.slice(1, -1), ',');
    if (items.length > 1) return { kind: 'tuple', open: s[0], close: s[s.length - 1], items: items.map(parseAnswer) };
  }
  const list = splitTopLevel(s, ',');
  if (list.length > 1) return set(list.map(parseAnswer));
  const pm = splitTopLevel(s, '\\pm');
  if (pm.length === 2) return set([parseAnswer(`${pm[0]}+${pm[1]}`), parseAnswer(`${pm[0]}-${pm[1]}`)]);
  return { kind: 'atom', text: s };
}

/** Three-valued AND. */
function all(verdicts: Verdict[]): Verdict {
  if (verdicts.some((v) => v === false)) return false;
  return verdicts.every((v) => v === true) ? true : undefined;
}

/** Is there a one-to-one matching of a onto b using only edges accepted by ok? */
function perfectMatching(n: number, ok: (i: number, j: number) => boolean): boolean {
  const used = new Array<boolean>(n).fill(false);
  const go = (i: number): boolean => {
    if (i === n) return true;
    for (let j = 0; j < n; j++) {
      if (used[j] || !ok(i, j)) continue;
      used[j] = true;
      if (go(i + 1)) return true;
      used[j] = false;
    }
    return false;
  };
  return go(0);
}

type AtomCompare = (a: string, b: string) => Verdict;

function compare(a: Answer, b: Answer, atoms: AtomCompare): Verdict {
  if (a.kind === 'atom' && b.kind === 'atom') return atoms(a.text, b.text);
  if (a.kind === 'tuple' && b.kind === 'tuple') {
    if (a.open !== b.open || a.close !== b.close || a.items.length !== b.items.length) return false;
    return all(a.items.map((x, i) => compare(x, b.items[i], atoms)));
  }
  if (a.kind === 'set' && b.kind === 'set') {
    if (a.items.length !== b.items.length) return false;
    const v = a.items.map((x) => b.items.map((y) => compare(x, y, atoms)));
    if (perfectMatching(a.items.length, (i, j) => v[i][j] === true)) return true;
    return perfectMatching(a.items.length, (i, j) => v[i][j] !== false) ? undefined : false;
  }
  return false;
}

const LETTERS = /^[A-Za-z]+$/;
const FUNCTION_NAMES = /\\(?:sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan|sinh|cosh|tanh|exp|ln|log|pi|infty|frac|sqrt)(?![a-zA-Z])/g;

/** Could sympy have something to say? Expressions with variables, not words or subscripted bases. */
function symbolicCandidate(s: string): boolean {
  const bare = s.replace(FUNCTION_NAMES, '');
  return /[a-zA-Z]/.test(bare) && !/\\[a-zA-Z]/.test(bare) && !/_/.test(bare) && !/[a-zA-Z]{3,}/.test(bare);
}

/** Cheap verdict on two normalised atoms; scales are the factors a percentage may carry (10% = 10 or 0.1). */
function atomVerdict(a: string, b: string, scalesA: number[], scalesB: number[]): Verdict {
  if (a === b) return true;
  // Words ("Evelyn", "even") ignore case; distinct single letters (choices, variables) differ.
  if (LETTERS.test(a) && LETTERS.test(b)) return a.length > 1 && a.toLowerCase() === b.toLowerCase();
  const va = evaluateLatex(a);
  const vb = evaluateLatex(b);
  if (va && vb)
    return scalesA.some((sa) => scalesB.some((sb) => valuesEqual({ re: va.re * sa, im: va.im * sa }, { re: vb.re * sb, im: vb.im * sb })));
  if ((va && symbolicCandidate(b)) || (vb && symbolicCandidate(a)) || (symbolicCandidate(a) && symbolicCandidate(b))) return undefined;
  return false;
}

function verdictWith(prediction: string, reference: string, atoms: (a: string, b: string) => Verdict): Verdict {
  const a = normalizeAnswer(prediction);
  const b = normalizeAnswer(reference);
  if (a === '' || b === '') return false;
  if (a === b) return true;
  return compare(parseAnswer(a), parseAnswer(b), atoms);
}

const scales = (raw: string): number[] => (hasPercent(raw) ? [1, 0.01] : [1]);

/** Equivalence from the cheap checks alone: true, false, or undefined when only a symbolic check can tell. */
export function answersEquivalent(prediction: string, reference: string): Verdict {
  return verdictWith(prediction, reference, (a, b) => atomVerdict(a, b, scales(prediction), scales(reference)));
}

/**
 * Full equivalence: the cheap checks, then the symbolic checker on the atom pairs they left open.
 * Without a checker (or when it cannot decide), undecided counts as not equivalent.
 */
export async function isEquivalent(prediction: string, reference: string, checker?: SymbolicChecker): Promise<boolean> {
  const cheap = answersEquivalent(prediction, reference);
  if (cheap !== undefined || !checker) return cheap ?? false;
  const [sa, sb] = [scales(prediction), scales(reference)];
  const pending = new Map<string, [string, string]>();
  verdictWith(prediction, reference, (a, b) => {
    const v = atomVerdict(a, b, sa, sb);
    if (v === undefined) pending.set(`${a}\u0000${b}`, [a, b]);
    return v;
  });
  const decided = new Map<string, Verdict>();
  await Promise.all(
    [...pending].map(async ([key, [a, b]]) => decided.set(key, await checker.equivalent(a, b).catch(() => undefined))),
  );
  return verdictWith(prediction, reference, (a, b) => atomVerdict(a, b, sa, sb) ?? decided.get(`${a}\u0000${b}`)) ?? false;
}

/** Key for majority voting: equivalent simple answers share it (numbers by value, the rest by normal form). */
export function answerKey(answer: string): string {
  const s = normalizeAnswer(answer);
  const v = evaluateLatex(s);
  if (!v) return s;
  const round = (x: number) => String(Number(x.toPrecision(12)));
  return v.im === 0 ? round(v.re) : `${round(v.re)}${v.im < 0 ? '-' : '+'}${round(Math.abs(v.im))}i`;
}
