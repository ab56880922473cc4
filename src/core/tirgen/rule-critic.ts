/**
 * The rule critic (docs/tirgen.md#the-rule-critic): a critic without a model, for the synthetic tasks.
 * It finds explicit computations in a step, written in symbols (`347*829`, `2^10`, `17 mod 5`,
 * `gcd(12,18)`, `\frac{3}{4}+\frac{5}{6}`, `1+2+...+50`, `7!`) or in words ("347 times 829", "the
 * remainder of 17 divided by 5", "10 choose 3", "the largest prime factor of 7174"), and writes each
 * line that has some as the line's words up to the computation, then a ```python block printing each
 * result, then, when the step claimed results ("= 287663"), those claims as the expected ```output
 * (the lab replaces them with the real output and stops the rewrite where a claim was wrong). A step
 * with no computation is unchanged; code blocks the step already has are kept as they are.
 */
import { CODE_OPEN, FENCE_CLOSE, OUTPUT_OPEN, splitFences } from '../tir/format';
import type { Critic, CriticVerdict } from './critic';

type Node =
  | { t: 'num'; text: string }
  | { t: 'bin'; op: '+' | '-' | '*' | '/' | '%'; l: Node; r: Node }
  | { t: 'neg'; x: Node }
  | { t: 'pow'; b: Node; e: Node }
  | { t: 'fact'; x: Node }
  /** The largest prime factor of a whole number. */
  | { t: 'lpf'; x: Node }
  | { t: 'call'; f: 'gcd' | 'lcm' | 'comb' | 'sqrt'; args: Node[] }
  | { t: 'series'; code: string };

/** One computation found in a line: where it is, the Python expression, what it needs imported, and the result the line claims for it. */
export interface Computation {
  start: number;
  end: number;
  /** The computation as the step wrote it. */
  source: string;
  python: string;
  imports: string[];
  /** The result written after it ("= 287663", "is 4"), if any, and where that claim ends. */
  claim?: string;
  claimEnd?: number;
}

// ---- the symbolic parser ----------------------------------------------------------------------

class Fail extends Error {
  constructor(readonly at: number) {
    super('no expression');
  }
}

const MUL = /^(?:\*\*|\*|×|·|⋅|\\times|\\cdot)/;
const DIV = /^(?:\/|÷|\\div)/;
const MOD = /^(?:%|\\bmod\b|\\mod\b|modulo\b|mod\b)/;
const ADD = /^(?:\+|-|−)/;
const ELLIPSIS = /^(?:\.\.\.|…|\\ldots|\\cdots|\\dots)/;

class Parser {
  i: number;
  ops = 0;
  constructor(
    readonly s: string,
    start: number,
  ) {
    this.i = start;
  }
  /** Skips blanks, and LaTeX's spacing commands (\\, \\; \\! and a backslash-space). */
  private space(): void {
    for (;;) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t') this.i++;
      else if (c === '\\' && /[,;! ]/.test(this.s[this.i + 1] ?? '')) this.i += 2;
      else break;
    }
  }
  private peek(re: RegExp): string | undefined {
    this.space();
    return re.exec(this.s.slice(this.i))?.[0];
  }
  private take(re: RegExp): string | undefined {
    const m = this.peek(re);
    if (m !== undefined) this.i += m.length;
    return m;
  }
  private need(re: RegExp): string {
    const m = this.take(re);
    if (m === undefined) throw new Fail(this.i);
    return m;
  }

  expr(): Node {
    const terms: Node[] = [this.term()];
    const ops: string[] = [];
    for (;;) {
      const save = this.i;
      const op = this.take(ADD);
      if (op === undefined) break;
      if (this.peek(ELLIPSIS) !== undefined) {
        // "1+2+...+50": a series, only when every operator so far is a plus.
        this.take(ELLIPSIS);
        this.take(/^\+/);
        if (op !== '+' || ops.some((o) => o !== '+')) throw new Fail(this.i);
        const last = this.term();
        const series = seriesOf(terms, last);
        if (!series) throw new Fail(this.i);
        this.ops++;
        return series;
      }
      // A minus or plus followed by something that is no operand ends the expression before it.
      let next: Node;
      try {
        next = this.term();
      } catch (e) {
        if (!(e instanceof Fail)) throw e;
        this.i = save;
        break;
      }
      terms.push(next);
      ops.push(op === '−' ? '-' : op);
      this.ops++;
    }
    let node = terms[0];
    ops.forEach((op, k) => (node = { t: 'bin', op: op as '+' | '-', l: node, r: terms[k + 1] }));
    return node;
  }

  private term(): Node {
    let node = this.unary();
    for (;;) {
      const save = this.i;
      const mul = this.peek(MUL);
      const div = mul === undefined ? this.peek(DIV) : undefined;
      const mod = mul === undefined && div === undefined ? this.peek(MOD) : undefined;
      const op = mul ?? div ?? mod;
      if (op === undefined || op === '**') break;
      this.i += op.length;
      let right: Node;
      try {
        right = this.unary();
      } catch (e) {
        if (!(e instanceof Fail)) throw e;
        this.i = save;
        break;
      }
      this.ops++;
      node = mul !== undefined ? { t: 'bin', op: '*', l: node, r: right } : div !== undefined ? { t: 'bin', op: '/', l: node, r: right } : { t: 'bin', op: '%', l: node, r: right };
    }
    return node;
  }

  private unary(): Node {
    if (this.take(/^(?:-|−)/) !== undefined) return { t: 'neg', x: this.unary() };
    return this.power();
  }

  private power(): Node {
    const base = this.postfix();
    const op = this.take(/^(?:\^|\*\*)/);
    if (op === undefined) return base;
    const e = this.peek(/^\{/) !== undefined ? this.braced() : this.unary();
    this.ops++;
    return { t: 'pow', b: base, e };
  }

  private postfix(): Node {
    let node = this.primary();
    // "7!" (not "7!=", a comparison).
    while (this.s[this.i] === '!' && this.s[this.i + 1] !== '=') {
      this.i++;
      this.ops++;
      node = { t: 'fact', x: node };
    }
    return node;
  }

  private braced(): Node {
    this.need(/^\{/);
    const x = this.expr();
    this.need(/^\}/);
    return x;
  }

  private primary(): Node {
    const num = this.take(/^\d+(?:\.\d+)?(?![\d.]*[A-Za-z_])/);
    if (num !== undefined) return { t: 'num', text: num };
    if (this.take(/^\(/) !== undefined) {
      const x = this.expr();
      this.need(/^\)/);
      return x;
    }
    if (this.peek(/^\{/) !== undefined) return this.braced();
    const frac = this.take(/^\\[dt]?frac(?=\s*\{)/);
    if (frac !== undefined) {
      const n = this.braced();
      const d = this.braced();
      this.ops++;
      return { t: 'bin', op: '/', l: n, r: d };
    }
    if (this.take(/^\\binom(?=\s*\{)/) !== undefined) {
      const n = this.braced();
      const k = this.braced();
      this.ops++;
      return { t: 'call', f: 'comb', args: [n, k] };
    }
    if (this.take(/^\\sqrt(?=\s*\{)/) !== undefined) {
      const x = this.braced();
      this.ops++;
      return { t: 'call', f: 'sqrt', args: [x] };
    }
    const fn = this.take(/^(?:\\gcd|\\operatorname\{(?:gcd|lcm)\}|gcd|lcm|GCD|LCM|sqrt|C|comb|binom)(?=\s*\()/);
    if (fn !== undefined) {
      this.need(/^\(/);
      const args = [this.expr()];
      while (this.take(/^,/) !== undefined) args.push(this.expr());
      this.need(/^\)/);
      const name = fn.replace(/\\operatorname\{|\}|\\/g, '').toLowerCase();
      const f = name === 'c' || name === 'binom' ? 'comb' : (name as 'gcd' | 'lcm' | 'comb' | 'sqrt');
      const arity = f === 'sqrt' ? 1 : f === 'comb' ? 2 : args.length;
      if (args.length !== arity || args.length < (f === 'sqrt' ? 1 : 2)) throw new Fail(this.i);
      this.ops++;
      return { t: 'call', f, args };
    }
    throw new Fail(this.i);
  }
}

/** The value of a node made only of numbers and powers, for series terms. */
function valueOf(n: Node): number | undefined {
  if (n.t === 'num') return Number(n.text);
  if (n.t === 'neg') {
    const v = valueOf(n.x);
    return v === undefined ? undefined : -v;
  }
  return undefined;
}

const isInt = (v: number | undefined): v is number => v !== undefined && Number.isInteger(v);

/** "a + (a+d) + ... + z", "1^2 + 2^2 + ... + n^2", "1 + r + r^2 + ... + r^n" as Python, or undefined when the pattern is not one of these. */
function seriesOf(first: Node[], last: Node): Node | undefined {
  if (first.length < 2) return undefined;
  const nums = [...first, last].map(valueOf);
  if (nums.every(isInt)) {
    const [a, b] = nums;
    const z = nums[nums.length - 1];
    const d = b - a;
    if (d === 0 || (z - a) % d !== 0 || (z - a) / d < first.length - 1) return undefined;
    for (let k = 2; k < first.length; k++) if (nums[k] !== a + k * d) return undefined;
    return { t: 'series', code: `sum(range(${a}, ${z + Math.sign(d)}${d === 1 ? '' : `, ${d}`}))` };
  }
  // Powers with one exponent: k^p for k in an arithmetic run.
  const powers = [...first, last].map((n) => (n.t === 'pow' ? [valueOf(n.b), valueOf(n.e)] : undefined));
  if (powers.every((p) => p && isInt(p[0]) && isInt(p[1]))) {
    const bases = powers.map((p) => p![0]!);
    const exps = powers.map((p) => p![1]!);
    if (exps.every((e) => e === exps[0])) {
      const d = bases[1] - bases[0];
      const z = bases[bases.length - 1];
      if (d !== 0 && (z - bases[0]) % d === 0 && bases.slice(0, -1).every((b, k) => b === bases[0] + k * d))
        return { t: 'series', code: `sum(k**${exps[0]} for k in range(${bases[0]}, ${z + Math.sign(d)}${d === 1 ? '' : `, ${d}`}))` };
    }
  }
  // Powers of one base, "1 + r + r^2 + ... + r^n": 1 is r^0, r is r^1.
  const base = powers.find((p) => p)?.[0];
  if (isInt(base)) {
    const exps = [...first, last].map((n) => {
      if (n.t === 'pow' && valueOf(n.b) === base) return valueOf(n.e);
      const v = valueOf(n);
      return v === 1 ? 0 : v === base ? 1 : undefined;
    });
    if (exps.every(isInt)) {
      const d = exps[1] - exps[0];
      const z = exps[exps.length - 1];
      if (d > 0 && (z - exps[0]) % d === 0 && exps.slice(0, -1).every((e, k) => e === exps[0] + k * d))
        return { t: 'series', code: `sum(${base}**k for k in range(${exps[0]}, ${z + 1}${d === 1 ? '' : `, ${d}`}))` };
    }
  }
  return undefined;
}

// ---- Python -----------------------------------------------------------------------------------

const PREC: Record<string, number> = { '+': 1, '-': 1, '*': 2, '/': 2, '%': 2 };

function precedence(n: Node): number {
  switch (n.t) {
    case 'bin':
      return PREC[n.op];
    case 'neg':
      return 3;
    case 'pow':
      return 4;
    default:
      return 5;
  }
}

function hasDecimal(n: Node): boolean {
  switch (n.t) {
    case 'num':
      return n.text.includes('.');
    case 'bin':
      return hasDecimal(n.l) || hasDecimal(n.r);
    case 'neg':
    case 'fact':
    case 'lpf':
      return hasDecimal(n.x);
    case 'pow':
      return hasDecimal(n.b) || hasDecimal(n.e);
    case 'call':
      return n.args.some(hasDecimal);
    case 'series':
      return false;
  }
}

/** Python text of a node; `imports` collects what it needs. Division of whole numbers is exact (Fraction). */
function toPython(n: Node, imports: Set<string>, exact: boolean): string {
  const wrap = (child: Node, min: number) => {
    const text = toPython(child, imports, exact);
    return precedence(child) < min ? `(${text})` : text;
  };
  switch (n.t) {
    case 'num':
      return n.text;
    case 'series':
      return n.code;
    case 'neg':
      return `-${wrap(n.x, 3)}`;
    case 'fact':
      imports.add('from math import factorial');
      return `factorial(${toPython(n.x, imports, exact)})`;
    case 'lpf':
      imports.add('from sympy import primefactors');
      return `max(primefactors(${toPython(n.x, imports, exact)}))`;
    case 'pow':
      return `${wrap(n.b, 5)} ** ${wrap(n.e, 4)}`;
    case 'call':
      imports.add(`from math import ${n.f}`);
      return `${n.f}(${n.args.map((a) => toPython(a, imports, exact)).join(', ')})`;
    case 'bin': {
      const p = PREC[n.op];
      // "a^b mod m": Python's three-argument pow.
      if (n.op === '%' && n.l.t === 'pow') return `pow(${toPython(n.l.b, imports, exact)}, ${toPython(n.l.e, imports, exact)}, ${toPython(n.r, imports, exact)})`;
      if (n.op === '/' && exact) {
        imports.add('from fractions import Fraction');
        return `Fraction(${toPython(n.l, imports, exact)}) / ${wrap(n.r, p + 1)}`;
      }
      // The right operand keeps its parentheses unless regrouping cannot change the value (a + (b - c), a * (b * c)).
      const loose = (n.op === '+' && n.r.t === 'bin' && (n.r.op === '+' || n.r.op === '-')) || (n.op === '*' && n.r.t === 'bin' && n.r.op === '*');
      return `${wrap(n.l, p)} ${n.op} ${wrap(n.r, loose ? p : p + 1)}`;
    }
  }
}

// ---- computations in a line ---------------------------------------------------------------------

const N = String.raw`(\d+(?:\.\d+)?)`;
const num = (text: string): Node => ({ t: 'num', text });

/** Computations written in words; each makes a node from its captured numbers. */
const WORDS: { re: RegExp; node: (m: RegExpExecArray) => Node }[] = [
  { re: new RegExp(String.raw`\b(?:the )?remainder (?:of|when|after) ${N} (?:is )?divided by ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '%', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`\b(?:the )?(?:product|multiplication) of ${N} and ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '*', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`\b(?:the )?sum of ${N} and ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '+', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`\b(?:the )?difference (?:of|between) ${N} and ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '-', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`\b(?:the )?quotient of ${N} (?:and|by) ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '/', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`\b(?:the )?(?:gcd|gcf|hcf|greatest common (?:divisor|factor)|highest common factor) of ${N} and ${N}`, 'gi'), node: (m) => ({ t: 'call', f: 'gcd', args: [num(m[1]), num(m[2])] }) },
  { re: new RegExp(String.raw`\b(?:the )?(?:lcm|least common multiple|lowest common multiple) of ${N} and ${N}`, 'gi'), node: (m) => ({ t: 'call', f: 'lcm', args: [num(m[1]), num(m[2])] }) },
  { re: new RegExp(String.raw`\b(?:the number of ways to )?choose ${N} (?:[a-z]+ )?(?:from|out of|among) ${N}`, 'gi'), node: (m) => ({ t: 'call', f: 'comb', args: [num(m[2]), num(m[1])] }) },
  // Whole numbers only ("of 12.5" is no such question).
  { re: /\b(?:the )?(?:largest|greatest|biggest) prime (?:factor|divisor) of (\d+)(?!\d|\.\d)/gi, node: (m) => ({ t: 'lpf', x: num(m[1]) }) },
  { re: new RegExp(String.raw`\b(?:the )?factorial of ${N}`, 'gi'), node: (m) => ({ t: 'fact', x: num(m[1]) }) },
  { re: new RegExp(String.raw`\b(?:the )?square root of ${N}`, 'gi'), node: (m) => ({ t: 'call', f: 'sqrt', args: [num(m[1])] }) },
  { re: new RegExp(String.raw`\b(?:the )?square of ${N}`, 'gi'), node: (m) => ({ t: 'pow', b: num(m[1]), e: num('2') }) },
  { re: new RegExp(String.raw`\b(?:the )?cube of ${N}`, 'gi'), node: (m) => ({ t: 'pow', b: num(m[1]), e: num('3') }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} (?:times|multiplied by) ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '*', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} (?:plus|added to) ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '+', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} minus ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '-', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} subtracted from ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '-', l: num(m[2]), r: num(m[1]) }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} divided by ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '/', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} (?:mod|modulo) ${N}`, 'gi'), node: (m) => ({ t: 'bin', op: '%', l: num(m[1]), r: num(m[2]) }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} (?:raised )?to the (?:power(?: of)? ${N}|${N}(?:st|nd|rd|th)(?: power)?)`, 'gi'), node: (m) => ({ t: 'pow', b: num(m[1]), e: num(m[2] ?? m[3]) }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} squared\b`, 'gi'), node: (m) => ({ t: 'pow', b: num(m[1]), e: num('2') }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} cubed\b`, 'gi'), node: (m) => ({ t: 'pow', b: num(m[1]), e: num('3') }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} choose ${N}`, 'gi'), node: (m) => ({ t: 'call', f: 'comb', args: [num(m[1]), num(m[2])] }) },
  { re: new RegExp(String.raw`(?<![\w.])${N} factorial\b`, 'gi'), node: (m) => ({ t: 'fact', x: num(m[1]) }) },
];

/** The result a line claims right after a computation: "= 287663", "is 4", "equals 3/4", "\approx 2.5"; not the start of an expression ("= 66*30 + 66*7"). */
const CLAIM = /^\s*\$?\s*(?:=|\\approx|≈|is|equals|gives|makes)\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?(?:\s*\/\s*\d+)?|\\[dt]?frac\{\d+\}\{\d+\})(?![\d.]*[A-Za-z(^_])(?!\d)(?!\s*[-+*/×·^%]\s*[\d(])/;

function claimAfter(line: string, end: number): { value: string; length: number } | undefined {
  const m = CLAIM.exec(line.slice(end));
  if (!m) return undefined;
  const frac = /^\\[dt]?frac\{(\d+)\}\{(\d+)\}$/.exec(m[1]);
  return { value: frac ? `${frac[1]}/${frac[2]}` : m[1].replace(/,/g, '').replace(/\s+/g, ''), length: m[0].length };
}

/** Whether the character at `k` ends an operand: a digit, a closing bracket, or a one-letter variable ("x", not "and"). */
function operandEndsAt(line: string, k: number): boolean {
  if (k < 0) return false;
  if (/[\d)}\]_]/.test(line[k])) return true;
  if (!/[A-Za-z]/.test(line[k])) return false;
  return k === 0 || !/[A-Za-z]/.test(line[k - 1]);
}

/** The last non-blank character before `at`. */
function previousChar(line: string, at: number): number {
  let k = at - 1;
  while (k >= 0 && /[ \t]/.test(line[k])) k--;
  return k;
}

/** A start where an expression may begin: not inside a word or a number, not in the middle of algebra ("3x + 2*5", "x - 3*4"). */
function canStart(line: string, at: number): boolean {
  const before = line[at - 1];
  if (before !== undefined && /[\w.)}\]]/.test(before)) return false;
  const k = previousChar(line, at);
  if (line[at] === '-') return !operandEndsAt(line, k);
  if (k < 0 || !/[+\-*/^×·÷%−]/.test(line[k])) return true;
  return !operandEndsAt(line, previousChar(line, k));
}

/** An expression that runs on into algebra ("2*3x", "5*2 + x", "2^n") is no computation. */
function runsOn(line: string, end: number): boolean {
  const rest = line.slice(end);
  if (/^[A-Za-z_(^]/.test(rest)) return true;
  return /^\s*[+\-*/^×·÷−]\s*(?:[A-Za-z]|\\(?!frac|dfrac|tfrac|sqrt|binom)[A-Za-z])/.test(rest);
}

/** The parts of a line inside \boxed{...} (a final answer, not a computation to run). */
function boxedSpans(line: string): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  const re = /\\boxed\s*\{/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < line.length && depth > 0; i++) depth += line[i] === '{' ? 1 : line[i] === '}' ? -1 : 0;
    spans.push({ start: m.index, end: i });
  }
  return spans;
}

/** The explicit computations of one line, in order, not overlapping. */
export function findComputations(line: string): Computation[] {
  const found: { start: number; end: number; node: Node }[] = [];
  for (const { re, node } of WORDS) {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(line))) found.push({ start: m.index, end: m.index + m[0].length, node: node(m) });
  }
  // Symbols: an expression from each place one may start, with at least one operation.
  let at = 0;
  while (at < line.length) {
    const rest = line.slice(at);
    const startsHere = /^(?:-?\d|\(|\\[dt]?frac\{|\\binom\{|\\sqrt\{|\\gcd\s*\(|\\operatorname\{(?:gcd|lcm)\}\(|(?:gcd|lcm|GCD|LCM|sqrt|comb|binom|C)\s*\()/.test(rest);
    if (!startsHere || !canStart(line, at)) {
      at++;
      continue;
    }
    const p = new Parser(line, at);
    try {
      const node = p.expr();
      const end = at + line.slice(at, p.i).trimEnd().length;
      if (p.ops > 0 && !runsOn(line, end)) {
        found.push({ start: at, end, node });
        at = end;
      } else at = Math.max(end, at + 1);
    } catch (e) {
      if (!(e instanceof Fail)) throw e;
      // A series that is not one of the known kinds: none of its parts is a computation either.
      at = Math.max(at + 1, e.at);
    }
  }
  // Longest first, then earliest; drop what overlaps a chosen one or sits in a \boxed{}.
  const boxes = boxedSpans(line);
  found.sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start);
  const chosen: typeof found = [];
  for (const f of found) {
    if (chosen.some((c) => f.start < c.end && c.start < f.end)) continue;
    if (boxes.some((b) => f.start < b.end && b.start < f.end)) continue;
    chosen.push(f);
  }
  chosen.sort((a, b) => a.start - b.start);
  const out: Computation[] = [];
  for (const c of chosen) {
    let { end } = c;
    // A computation inside the result claimed for the one before ("= \\frac{19}{12}") is that result.
    const previous = out.at(-1);
    if (previous?.claimEnd !== undefined && c.start < previous.claimEnd) continue;
    // "the remainder of ... mod m" after a words computation, "2 to the power of 10 modulo 7".
    const mod = /^\s*(?:mod|modulo|\\bmod)\s*(\d+)\b/.exec(line.slice(end));
    let n = c.node;
    if (mod && n.t !== 'bin') {
      n = { t: 'bin', op: '%', l: n, r: num(mod[1]) };
      end += mod[0].length;
    }
    const claim = claimAfter(line, end);
    const source = line.slice(c.start, end);
    // A fraction alone ("3/4 of the class", "\\frac{3}{4}") is a number, unless a result is claimed for it or it is spaced as a division ("100 / 4").
    if (n.t === 'bin' && n.op === '/' && n.l.t === 'num' && n.r.t === 'num' && claim === undefined && !/\s|÷|\\div/.test(source.replace(/^\\[dt]?frac/, ''))) continue;
    const imports = new Set<string>();
    const python = toPython(n, imports, !hasDecimal(n));
    out.push({ start: c.start, end, source, python, imports: [...imports].sort(), ...(claim !== undefined && { claim: claim.value, claimEnd: end + claim.length }) });
  }
  return out;
}

/** A code block that prints each computation, imports first. */
export function computationCode(computations: readonly Computation[]): string {
  const imports = new Map<string, Set<string>>();
  for (const c of computations)
    for (const line of c.imports) {
      const m = /^from (\S+) import (.+)$/.exec(line)!;
      const names = imports.get(m[1]) ?? new Set<string>();
      m[2].split(/,\s*/).forEach((x) => names.add(x));
      imports.set(m[1], names);
    }
  const head = [...imports].sort(([a], [b]) => a.localeCompare(b)).map(([mod, names]) => `from ${mod} import ${[...names].sort().join(', ')}`);
  return [...head, ...computations.map((c) => `print(${c.python})`)].join('\n');
}

const oddDollars = (s: string) => (s.match(/(?<!\\)\$/g) ?? []).length % 2 === 1;

/** A step rewritten by the rules, or undefined when it has nothing to compute. */
export function ruleRewrite(step: string): string | undefined {
  let out = '';
  let code = false;
  const newline = () => {
    if (out !== '' && !out.endsWith('\n')) out += '\n';
  };
  for (const piece of splitFences(step)) {
    if (piece.kind === 'output') continue;
    if (piece.kind === 'code') {
      if (!piece.closed) break;
      newline();
      out += `${step.slice(piece.start, piece.end)}\n`;
      code = true;
      continue;
    }
    const lines = piece.body.split(/(?<=\n)/);
    for (const line of lines) {
      const body = line.replace(/\n$/, '');
      const found = findComputations(body);
      if (found.length === 0) {
        out += line;
        continue;
      }
      let prose = body.slice(0, found[found.length - 1].end).trimEnd();
      if (oddDollars(prose)) prose += '$';
      out += `${prose}\n${CODE_OPEN}${computationCode(found)}\n${FENCE_CLOSE}\n`;
      if (found.every((c) => c.claim !== undefined)) out += `${OUTPUT_OPEN}${found.map((c) => c.claim).join('\n')}\n${FENCE_CLOSE}\n`;
      code = true;
    }
  }
  return code ? out : undefined;
}

/** The rule critic: explicit computations become code, everything else is left alone. */
export class RuleCritic implements Critic {
  readonly label = 'rule';
  async revise(step: string): Promise<CriticVerdict> {
    const text = ruleRewrite(step);
    return text === undefined ? { kind: 'unchanged' } : { kind: 'rewrite', text };
  }
}
