/**
 * Answer equivalence, as math graders do it (MATH, Qwen2.5-Math evaluation, Math-Verify; see
 * docs/reward.md): exact text after normalisation, then structure (labels "x =", relations, tuples
 * and intervals element-wise, unordered lists and sets, matrices, ±), then numeric value, then
 * symbolic through an injected checker (sympy in the sandbox) for what the cheap checks cannot decide.
 *
 * List items are never joined: "6 and 8" is the list {6, 8}, never 68; "32, 349" is a list, never
 * 32349. A structure (list, set, tuple, relation) never equals one of its items.
 */
import { evaluateLatex, valuesEqual } from './evaluate';
import { hasPercent, normalizeAnswer, normalizeForm } from './normalize';

/** Decides symbolic equality of two normalised LaTeX atoms (or two relations); undefined when it cannot tell. */
export interface SymbolicChecker {
  equivalent(a: string, b: string): Promise<boolean | undefined>;
}

/** true / false, or undefined: "needs a symbolic check". */
export type Verdict = boolean | undefined;

type Op = '=' | '<' | '>' | '\\le' | '\\ge' | '\\ne';

type Answer =
  | { kind: 'atom'; text: string }
  /** Ordered: tuples, intervals, matrices (open "matrix") and their rows (open "row"). */
  | { kind: 'tuple'; open: string; close: string; items: Answer[] }
  /** Unordered; bare: written as a plain list ("1, 2"), not in braces. */
  | { kind: 'set'; items: Answer[]; bare: boolean }
  /** Values named by distinct labels: "AB=4, CD=5", "p=5, q=2". */
  | { kind: 'record'; items: Labelled[] }
  /** "x = 5", "(p,q) = (3,2)", "x \in [1,2]" (member). */
  | Labelled
  /** "x \le 5", "a < x < b", "2x+4y-3=0": parts joined by ops. */
  | { kind: 'relation'; parts: string[]; ops: Op[] };

interface Labelled {
  kind: 'labelled';
  label: string;
  value: Answer;
  member: boolean;
}

const OPENERS = '([{';
const CLOSERS = ')]}';

/** Splits at top-level matches of re (outside (), [], {} and \{ \}); only the source of re is used. */
function splitTopLevel(s: string, re: RegExp): { parts: string[]; seps: string[] } {
  const parts: string[] = [];
  const seps: string[] = [];
  let depth = 0;
  let start = 0;
  const sticky = new RegExp(re.source, 'y');
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\' && (s[i + 1] === '{' || s[i + 1] === '}')) {
      depth += s[i + 1] === '{' ? 1 : -1;
      i++;
      continue;
    }
    if (OPENERS.includes(ch)) depth++;
    else if (CLOSERS.includes(ch)) depth--;
    else if (depth === 0) {
      sticky.lastIndex = i;
      const m = sticky.exec(s);
      if (m && m[0].length > 0) {
        parts.push(s.slice(start, i));
        seps.push(m[0]);
        start = i + m[0].length;
        i += m[0].length - 1;
      }
    }
  }
  parts.push(s.slice(start));
  return { parts, seps };
}

const split = (s: string, sep: string): string[] => splitTopLevel(s, new RegExp(sep.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&'))).parts;

/** True when s[0] is an opening bracket whose partner is the last character. */
function wrapped(s: string): boolean {
  if (!'(['.includes(s[0]) || !')]'.includes(s[s.length - 1])) return false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (OPENERS.includes(s[i])) depth++;
    else if (CLOSERS.includes(s[i]) && --depth === 0) return i === s.length - 1;
  }
  return false;
}

const NAME = String.raw`(?:\\angle|m\\angle|\\overline\{[A-Za-z]+\}|\\(?:alpha|beta|gamma|delta|epsilon|varepsilon|theta|vartheta|lambda|mu|nu|rho|sigma|tau|phi|varphi|psi|omega|xi|eta|zeta|kappa|chi|Delta|Omega|Theta|Phi|Gamma)(?![a-zA-Z])|[A-Za-z]{1,8})(?:[A-Za-z]{1,8})?(?:'+|_\{[\w,]+\}|_\w|\^\{?\*\}?)*`;
const NAME_RE = new RegExp(`^${NAME}$`);
const FUNCTION_CALL = new RegExp(String.raw`^[A-Za-z](?:_\w|_\{\w+\})?\((?:[A-Za-z0-9]+(?:,[A-Za-z0-9]+)*)\)$`);

/**
 * Is the left side of "L = value" a name rather than an expression? Names: x, a_3, \theta, AB, |AB|,
 * f(x), (p,q), V_1:V_2, \frac{NO}{BO}, \angle ABC. "2x", "x^2", "a+b" and "7" are expressions.
 */
function isLabel(s: string): boolean {
  if (s === '' || /^[+-]/.test(s)) return false;
  if (NAME_RE.test(s.replace(/^\\angle\s?/, '\\angle').replace(/\s/g, ''))) return !/^(?:\\angle|m\\angle)$/.test(s);
  if (FUNCTION_CALL.test(s)) return true;
  if (/^\|.+\|$/.test(s)) return isLabel(s.slice(1, -1));
  if (wrapped(s) && s[0] === '(') {
    const items = split(s.slice(1, -1), ',');
    return items.length > 1 && items.every((x) => NAME_RE.test(x));
  }
  const ratio = split(s, ':');
  if (ratio.length > 1) return ratio.every(isLabel);
  const frac = /^\\frac\{([A-Za-z_{}\d]+)\}\{([A-Za-z_{}\d]+)\}$/.exec(s);
  return frac !== null && isLabel(frac[1]) && isLabel(frac[2]);
}

const sameLabel = (a: string, b: string) => a.replace(/[{}\s]/g, '') === b.replace(/[{}\s]/g, '');

const RELATION = /\\(?:le|ge|ne)(?![a-zA-Z])|<|>|=/;
const MEMBER = /\\in(?![a-zA-Z])/;

function toOp(sep: string): Op {
  return sep.trim() as Op;
}

const set = (items: Answer[], bare: boolean): Answer => ({
  kind: 'set',
  bare,
  items: items.flatMap((a) => (a.kind === 'set' ? a.items : [a])),
});

/** Items that follow a labelled one without a label of their own take its label ("a=4, -8, -10"). */
function propagateLabels(items: Answer[]): Answer[] {
  let label: Labelled | undefined;
  return items.map((item) => {
    if (item.kind === 'labelled') {
      label = item;
      return item;
    }
    if (label && item.kind !== 'relation' && item.kind !== 'record') return { ...label, value: item };
    return item;
  });
}

/** A list of items: a record when every item has its own label, else an unordered list. */
function list(items: Answer[], bare: boolean): Answer {
  const withLabels = propagateLabels(items);
  const labels = withLabels.map((a) => (a.kind === 'labelled' ? a.label.replace(/[{}\s]/g, '') : undefined));
  if (withLabels.length > 1 && labels.every((l) => l !== undefined) && new Set(labels).size === labels.length) {
    return { kind: 'record', items: withLabels as Labelled[] };
  }
  return set(withLabels, bare);
}

const isConstant = (s: string) => evaluateLatex(s) !== undefined;

/** One item: a relation, a labelled value, a ± pair or an atom. */
function parseItem(s: string): Answer {
  // "x \approx 11" reads as "x = 11"; after a value ("1/3 \approx 0.33") the approximation is dropped.
  const approx = s.search(/\\approx(?![a-zA-Z])/);
  if (approx >= 0) {
    const before = s.slice(0, approx);
    s = isLabel(before) ? `${before}=${s.slice(approx + 7).replace(/\\approx(?![a-zA-Z])/g, '=')}` : before;
  }
  const member = splitTopLevel(s, MEMBER);
  if (member.parts.length === 2 && isLabel(member.parts[0])) {
    return { kind: 'labelled', label: member.parts[0], value: parseGroup(member.parts[1]), member: true };
  }
  const { parts, seps } = splitTopLevel(s, new RegExp(RELATION.source, 'g'));
  if (parts.length > 1 && parts.every((p) => p !== '')) {
    const ops = seps.map(toOp);
    if (ops.every((o) => o === '=')) {
      const last = parts[parts.length - 1];
      // A chain "x = 5+5+1 = 11" gives its last value; "1/2 = 0.5" (a computation) gives its result.
      if (isLabel(parts[0])) return { kind: 'labelled', label: parts[0], value: parseGroup(last), member: false };
      if (parts.length > 2 || (isConstant(parts[0]) && isConstant(last))) return parseGroup(last);
    }
    return { kind: 'relation', parts, ops };
  }
  const pm = split(s, '\\pm');
  if (pm.length === 2) return set([parseItem(`${pm[0]}+${pm[1]}`), parseItem(`${pm[0]}-${pm[1]}`)], false);
  return { kind: 'atom', text: s };
}

const MATRIX = /^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$/;

/** A group: a matrix, a set in braces, a tuple or interval, a union, a comma list, or one item. */
function parseGroup(s: string): Answer {
  if (s === '') return { kind: 'atom', text: s };
  if (wrapped(s) && MATRIX.test(s.slice(1, -1))) s = s.slice(1, -1);
  const matrix = MATRIX.exec(s);
  if (matrix) {
    const rows = split(matrix[2], '\\\\').filter((r) => r !== '');
    const row = (r: string): Answer => ({ kind: 'tuple', open: 'row', close: 'row', items: split(r, '&').map(parseGroup) });
    return { kind: 'tuple', open: 'matrix', close: 'matrix', items: rows.map(row) };
  }
  const member = splitTopLevel(s, MEMBER);
  if (member.parts.length === 2 && isLabel(member.parts[0])) {
    return { kind: 'labelled', label: member.parts[0], value: parseGroup(member.parts[1]), member: true };
  }
  const union = split(s, '\\cup');
  if (union.length > 1) return set(union.map(parseGroup), false);
  if (s.startsWith('\\{') && s.endsWith('\\}') && split(s.slice(2, -2), ',').length >= 1 && !s.slice(2, -2).includes('\\}')) {
    return list(splitTopLevel(s.slice(2, -2), /[,;]/g).parts.map(parseGroup), false);
  }
  if (wrapped(s)) {
    const items = splitTopLevel(s.slice(1, -1), /[,;]/g).parts;
    if (items.length > 1) return { kind: 'tuple', open: s[0], close: s[s.length - 1], items: items.map(parseGroup) };
  }
  const items = split(s, ',');
  if (items.length > 1) return list(items.map(parseGroup), true);
  return parseItem(s);
}

/** A whole normalised answer: groups separated by ";" (from ";", "and", "or"), each a group. */
function parseAnswer(s: string): Answer {
  const groups = split(s, ';').filter((g) => g !== '');
  if (groups.length > 1) return list(groups.map(parseGroup), true);
  return parseGroup(groups[0] ?? '');
}

/** Three-valued AND. */
function all(verdicts: Verdict[]): Verdict {
  if (verdicts.some((v) => v === false)) return false;
  return verdicts.every((v) => v === true) ? true : undefined;
}

/** Is there a one-to-one matching of a onto b using only edges accepted by ok? (augmenting paths, O(n^3)) */
function perfectMatching(n: number, ok: (i: number, j: number) => boolean): boolean {
  const owner = new Array<number>(n).fill(-1);
  const augment = (i: number, seen: boolean[]): boolean => {
    for (let j = 0; j < n; j++) {
      if (seen[j] || !ok(i, j)) continue;
      seen[j] = true;
      if (owner[j] < 0 || augment(owner[j], seen)) {
        owner[j] = i;
        return true;
      }
    }
    return false;
  };
  for (let i = 0; i < n; i++) if (!augment(i, new Array<boolean>(n).fill(false))) return false;
  return true;
}

/** Unordered comparison: sizes equal and a one-to-one matching (true), or one not ruled out (undefined). */
function matchAll(a: Answer[], b: Answer[], cmp: (x: Answer, y: Answer) => Verdict): Verdict {
  if (a.length !== b.length) return false;
  const v = a.map((x) => b.map((y) => cmp(x, y)));
  if (perfectMatching(a.length, (i, j) => v[i][j] === true)) return true;
  return perfectMatching(a.length, (i, j) => v[i][j] !== false) ? undefined : false;
}

/** Distinct items (by their parsed form). */
function distinct(items: Answer[]): Answer[] {
  const seen = new Set<string>();
  return items.filter((x) => {
    const key = JSON.stringify(x);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

type AtomCompare = (a: string, b: string) => Verdict;

const FLIP: Partial<Record<Op, Op>> = { '>': '<', '\\ge': '\\le' };

/** A relation written with < and \le only (a > b becomes b < a); mixed directions are left as they are. */
function canonical(r: { parts: string[]; ops: Op[] }): { parts: string[]; ops: Op[] } {
  if (r.ops.every((o) => o === '>' || o === '\\ge')) return { parts: [...r.parts].reverse(), ops: [...r.ops].reverse().map((o) => FLIP[o]!) };
  return r;
}

const relationText = (r: { parts: string[]; ops: Op[] }) => r.parts.map((p, i) => (i === 0 ? p : `${r.ops[i - 1]}${r.ops[i - 1].startsWith('\\') ? ' ' : ''}${p}`)).join('');

function compareRelations(a: { parts: string[]; ops: Op[] }, b: { parts: string[]; ops: Op[] }, atoms: AtomCompare): Verdict {
  const [ca, cb] = [canonical(a), canonical(b)];
  if (ca.parts.length !== cb.parts.length) return false;
  const strict = (o: Op) => (o === '<' || o === '>' ? 's' : o === '\\le' || o === '\\ge' ? 'w' : o);
  if (ca.ops.some((o, i) => strict(o) !== strict(cb.ops[i]))) return false;
  const sameOps = ca.ops.every((o, i) => o === cb.ops[i]);
  if (sameOps) {
    const pairwise = all(ca.parts.map((p, i) => atoms(p, cb.parts[i])));
    if (pairwise === true || ca.parts.length > 2) return pairwise;
  }
  if (ca.parts.length > 2) return false;
  // One relation each: sympy decides ("x < 1" and "-x > -1"; equations equal up to a factor).
  return atoms(relationText(a), relationText(b));
}

/** "a < x \le b", "x > 3", "x \le 5" as an interval on one variable; undefined for anything else. */
function relationInterval(r: { parts: string[]; ops: Op[] }): { variable: string; interval: Answer } | undefined {
  const c = canonical(r);
  if (!c.ops.every((o) => o === '<' || o === '\\le')) return undefined;
  const end = (s: string) => isConstant(s) || /^-?\\infty$/.test(s);
  const bracket = (o: Op, side: 'open' | 'close') => (o === '<' ? (side === 'open' ? '(' : ')') : side === 'open' ? '[' : ']');
  const atom = (text: string): Answer => ({ kind: 'atom', text });
  if (c.parts.length === 3 && isLabel(c.parts[1]) && end(c.parts[0]) && end(c.parts[2])) {
    return { variable: c.parts[1], interval: { kind: 'tuple', open: bracket(c.ops[0], 'open'), close: bracket(c.ops[1], 'close'), items: [atom(c.parts[0]), atom(c.parts[2])] } };
  }
  if (c.parts.length === 2 && isLabel(c.parts[0]) && end(c.parts[1])) {
    return { variable: c.parts[0], interval: { kind: 'tuple', open: '(', close: bracket(c.ops[0], 'close'), items: [atom('-\\infty'), atom(c.parts[1])] } };
  }
  if (c.parts.length === 2 && isLabel(c.parts[1]) && end(c.parts[0])) {
    return { variable: c.parts[1], interval: { kind: 'tuple', open: bracket(c.ops[0], 'open'), close: ')', items: [atom(c.parts[0]), atom('\\infty')] } };
  }
  return undefined;
}

/** An interval that cannot be a point: a square bracket or an infinite end ("(1, 2)" may be a point). */
function plainlyInterval(a: Answer): boolean {
  if (a.kind === 'labelled') return a.member;
  if (a.kind === 'set') return a.items.length > 0 && a.items.every(plainlyInterval);
  if (a.kind !== 'tuple' || a.items.length !== 2 || !'(['.includes(a.open)) return false;
  return a.open === '[' || a.close === ']' || a.items.some((x) => x.kind === 'atom' && /\\infty/.test(x.text));
}

/**
 * A relation against an interval: "-2 \le x \le 7" and "[-2, 7]". When the relation is the
 * prediction, the reference must be plainly an interval (a reference "(1, 2)" may be a point).
 */
function relationVersusSet(rel: { parts: string[]; ops: Op[] }, other: Answer, relationIsReference: boolean, atoms: AtomCompare): Verdict {
  const iv = relationInterval(rel);
  if (!iv) return false;
  if (!relationIsReference && !plainlyInterval(other)) return false;
  const value = other.kind === 'labelled' ? (other.member && sameLabel(other.label, iv.variable) ? other.value : undefined) : other;
  if (!value) return false;
  return relationIsReference ? compare(value, iv.interval, atoms) : compare(iv.interval, value, atoms);
}

const values = (a: Answer): Answer[] | undefined =>
  a.kind === 'record' ? a.items.map((x) => x.value) : (a.kind === 'tuple' && a.open === '(') || (a.kind === 'set' && a.bare) ? a.items : undefined;

/** Compares a prediction (a) with a reference (b). */
function compare(a: Answer, b: Answer, atoms: AtomCompare, reversed = false): Verdict {
  if (a.kind === 'atom' && b.kind === 'atom') return reversed ? atoms(b.text, a.text) : atoms(a.text, b.text);
  const again = (x: Answer, y: Answer) => compare(x, y, atoms, reversed);
  const flipped = () => compare(b, a, atoms, !reversed);

  if (a.kind === 'labelled' && b.kind === 'labelled') {
    if (sameLabel(a.label, b.label)) return a.member === b.member ? again(a.value, b.value) : false;
    // Two equations in different names ("y = 2x+1", "x = (y-1)/2"); "x = 5" and "y = 5" differ.
    if (a.value.kind === 'atom' && b.value.kind === 'atom' && !a.member && !b.member && !isConstant(a.value.text) && !isConstant(b.value.text)) {
      const rel = (l: Labelled) => ({ parts: [l.label, (l.value as { text: string }).text], ops: ['=' as Op] });
      return reversed ? compareRelations(rel(b), rel(a), atoms) : compareRelations(rel(a), rel(b), atoms);
    }
    return false;
  }
  if (a.kind === 'relation' && b.kind === 'relation') return reversed ? compareRelations(b, a, atoms) : compareRelations(a, b, atoms);
  if (a.kind === 'relation' && b.kind === 'labelled') return flipped();
  if (a.kind === 'labelled' && b.kind === 'relation') {
    if (a.member) return relationVersusSet(b, a, !reversed, atoms);
    // "y = -x/2 + 3/4" against "2x + 4y - 3 = 0"; a value ("x = 3") is not the equation "2x = 6".
    if (a.value.kind !== 'atom' || isConstant(a.value.text)) return false;
    const rel = { parts: [a.label, a.value.text], ops: ['=' as Op] };
    return reversed ? compareRelations(b, rel, atoms) : compareRelations(rel, b, atoms);
  }
  if (a.kind === 'relation' && b.kind !== 'atom') return relationVersusSet(a, b, reversed, atoms);
  if (b.kind === 'labelled' || b.kind === 'relation') return flipped();
  if (a.kind === 'labelled') return again(a.value, b);
  if (a.kind === 'relation') return false;

  if (a.kind === 'record' && b.kind === 'record') {
    if (a.items.length !== b.items.length) return false;
    return matchAll(a.items, b.items, (x, y) => (sameLabel((x as Labelled).label, (y as Labelled).label) ? again((x as Labelled).value, (y as Labelled).value) : false));
  }
  if (a.kind === 'record' || b.kind === 'record') {
    // Named values against a plain tuple or list: in the order written.
    const [va, vb] = [values(a), values(b)];
    if (!va || !vb || va.length !== vb.length) return false;
    return all(va.map((x, i) => again(x, vb[i])));
  }
  if (a.kind === 'tuple' && b.kind === 'tuple') {
    if (a.open !== b.open || a.close !== b.close || a.items.length !== b.items.length) return false;
    return all(a.items.map((x, i) => again(x, b.items[i])));
  }
  if (a.kind === 'set' && b.kind === 'set') {
    // A prediction that lists a solution twice lists the same set; but a reference list with a
    // repeated item ("1, 1, 2": roots with multiplicity) is compared item for item.
    const reference = reversed ? a : b;
    const multiset = reference.bare && distinct(reference.items).length < reference.items.length;
    return multiset ? matchAll(a.items, b.items, again) : matchAll(distinct(a.items), distinct(b.items), again);
  }
  // One value written several ways ("15\frac{39}{40}, or \frac{639}{40}"): every item must equal the
  // reference; never the other way round, and never for a set in braces.
  if (!reversed && a.kind === 'set' && a.bare && a.items.length > 1 && b.kind === 'atom') return all(a.items.map((x) => again(x, b)));
  // A plain list "1, 3" against the tuple "(1, 3)": in order.
  const [la, lb] = [a.kind === 'set' && a.bare ? a.items : undefined, b.kind === 'set' && b.bare ? b.items : undefined];
  if ((la && b.kind === 'tuple' && b.open === '(' && b.close === ')') || (lb && a.kind === 'tuple' && a.open === '(' && a.close === ')')) {
    const [xa, xb] = [values(a)!, values(b)!];
    return xa.length === xb.length ? all(xa.map((x, i) => again(x, xb[i]))) : false;
  }
  return false;
}

const LETTERS = /^[A-Za-z]+$/;
const KNOWN_COMMANDS =
  /\\(?:sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan|sinh|cosh|tanh|exp|ln|log|pi|infty|frac|sqrt|le|ge|ne|alpha|beta|gamma|delta|epsilon|theta|lambda|mu|phi|psi|omega|rho|sigma|tau)(?![a-zA-Z])/g;

/** Could sympy have something to say? Expressions with variables, not words or subscripted bases. */
function symbolicCandidate(s: string): boolean {
  const bare = s.replace(KNOWN_COMMANDS, '');
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

/**
 * "1000,99" written for the reference 1000.99 (a decimal comma); only in this direction, since "1,2"
 * may be a list, and never with three digits after the comma ("1,234" is 1234).
 */
function decimalComma(prediction: string, reference: string): boolean {
  return /^-?\d+,(?:\d{1,2}|\d{4,})$/.test(prediction) && /^-?\d+\.\d+$/.test(reference) && prediction.replace(',', '.') === reference;
}

function verdictWith(prediction: string, reference: string, atoms: AtomCompare): Verdict {
  const a = normalizeForm(prediction);
  const b = normalizeForm(reference);
  if (a === '' || b === '') return false;
  if (a === b || decimalComma(a, b)) return true;
  return compare(parseAnswer(a), parseAnswer(b), atoms);
}

/** At most this many undecided pairs go to the symbolic checker for one comparison. */
const MAX_SYMBOLIC_PAIRS = 64;

/**
 * Factors each side's value may carry: a percentage written against a plain number may be read as a
 * fraction (10% = 0.1) or as the number of percent (10); two percentages compare as written.
 */
function scalePair(prediction: string, reference: string): [number[], number[]] {
  const [pa, pb] = [hasPercent(prediction), hasPercent(reference)];
  if (pa && pb) return [[1], [1]];
  return [pa ? [1, 0.01] : [1], pb ? [1, 0.01] : [1]];
}

/** Equivalence from the cheap checks alone: true, false, or undefined when only a symbolic check can tell. */
export function answersEquivalent(prediction: string, reference: string): Verdict {
  const [sa, sb] = scalePair(prediction, reference);
  return verdictWith(prediction, reference, (a, b) => atomVerdict(a, b, sa, sb));
}

/**
 * Full equivalence: the cheap checks, then the symbolic checker on the atom pairs they left open.
 * Without a checker (or when it cannot decide), undecided counts as not equivalent.
 */
export async function isEquivalent(prediction: string, reference: string, checker?: SymbolicChecker): Promise<boolean> {
  const cheap = answersEquivalent(prediction, reference);
  if (cheap !== undefined || !checker) return cheap ?? false;
  const [sa, sb] = scalePair(prediction, reference);
  const pending = new Map<string, [string, string]>();
  verdictWith(prediction, reference, (a, b) => {
    const v = atomVerdict(a, b, sa, sb);
    if (v === undefined) pending.set(`${a}\u0000${b}`, [a, b]);
    return v;
  });
  // A long list of expressions against another would ask for every pair: beyond this many, undecided.
  if (pending.size > MAX_SYMBOLIC_PAIRS) return false;
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
