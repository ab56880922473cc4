/**
 * Chain-of-thought demonstrations: for every synthetic task kind (src/core/data/tasks.ts), a short
 * step-by-step solution in plain text, no code, one step a line, each computation written out in
 * symbols ("347*829 = 347*800 + 347*29."), ending in `So \boxed{N}.`. They train the offline actor of
 * TIRGen (docs/tirgen.md, "The chain-of-thought actor"): a tiny model that writes such steps with
 * unreliable arithmetic, whose computations a critic moves into code. The demonstrations themselves
 * are exact (BigInt and exact fractions). The computations the answer rests on are written as
 * expressions of numbers copied from the question or from earlier steps (`20*(20+1)`, `84 mod 36`,
 * `360/2`, not `20*21`), so that the code a critic makes of exact steps computes the question asked
 * and one of its calls prints the answer. Some intermediate numbers are still stated without their
 * computation: the list of squares of a modular power, the factors of the product formula for
 * combinations, the numerators over a common denominator.
 */
import type { Task } from '../data/tasks';

export interface CotDemonstration {
  question: string;
  response: string;
}

const big = (s: string): bigint => BigInt(s);
const abs = (v: bigint): bigint => (v < 0n ? -v : v);
function gcdBig(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}
/** "a-b" written so that a negative b reads as an addition: 20-5, 20+5 for b = -5. */
const minus = (a: bigint, b: bigint): string => (b < 0n ? `${a}+${-b}` : `${a}-${b}`);
const boxed = (answer: string): string => `So \\boxed{${answer}}.`;

/** Euclid's steps, "84 mod 36 = 12.", until the remainder is 0; returns the lines and the gcd. */
function euclid(a: bigint, b: bigint): { lines: string[]; g: bigint } {
  const lines: string[] = [];
  if (a < b) [a, b] = [b, a];
  while (b > 0n) {
    lines.push(`${a} mod ${b} = ${a % b}.`);
    [a, b] = [b, a % b];
  }
  return { lines, g: a };
}

function multiply(a: bigint, b: bigint): string[] {
  if (b < 10n) return [`${a}*${b} = ${a * b}.`];
  const scale = 10n ** BigInt(`${b}`.length - 1);
  const high = (b / scale) * scale;
  const low = b - high;
  if (low === 0n) return [`${a}*${b} = ${a * b}.`];
  return [`${a}*${b} = ${a}*${high} + ${a}*${low}.`, `${a}*${high} = ${a * high}.`, `${a}*${low} = ${a * low}.`, `So ${a * high} + ${a * low} = ${a * b}.`];
}

function modPowSteps(a: bigint, e: bigint, m: bigint): string[] {
  // Squares a^1, a^2, a^4, ... reduced mod m, then the powers of two that make up e multiplied in.
  const squares: bigint[] = [a % m];
  for (let p = 2n; p <= e; p *= 2n) squares.push((squares[squares.length - 1] ** 2n) % m);
  const parts: bigint[] = [];
  for (let i = squares.length - 1; i >= 0; i--) if ((e >> BigInt(i)) & 1n) parts.push(1n << BigInt(i));
  const lines = [`Squares of ${a} mod ${m}: ${squares.join(', ')}.`];
  if (parts.length > 1) lines.push(`${e} = ${parts.join('+')}.`);
  // e a power of two: the answer is the last square, written as its own computation.
  else if (squares.length > 1) lines.push(`${squares[squares.length - 2]}^2 mod ${m} = ${squares[squares.length - 1]}.`);
  let acc: bigint | undefined;
  for (const p of parts) {
    const v = squares[p.toString(2).length - 1];
    if (acc === undefined) acc = v;
    else {
      const product = acc * v;
      lines.push(`${acc}*${v} mod ${m} = ${product % m}.`);
      acc = product % m;
    }
  }
  return lines;
}

function combinations(n: bigint, k: bigint): string[] {
  const j = k < n - k ? k : n - k;
  const lines = j !== k ? [`${n} choose ${k} = ${n} choose ${j}.`] : [];
  let acc = 1n;
  for (let i = 1n; i <= j; i++) {
    const next = (acc * (n - j + i)) / i;
    lines.push(`${acc}*${n - j + i}/${i} = ${next}.`);
    acc = next;
  }
  return lines;
}

/** "p/q" of an exact fraction, reduced, with an integer written plainly. */
function fracText(p: bigint, q: bigint): string {
  if (q < 0n) [p, q] = [-p, -q];
  const g = gcdBig(p, q) || 1n;
  return q / g === 1n ? `${p / g}` : `${p / g}/${q / g}`;
}

function addFractions(p1: bigint, q1: bigint, p2: bigint, q2: bigint, sign: 1n | -1n): string {
  const l = (q1 * q2) / gcdBig(q1, q2);
  const a = p1 * (l / q1);
  const b = p2 * (l / q2);
  const op = sign > 0n ? '+' : '-';
  const sum = a + sign * b;
  const reduced = fracText(sum, l);
  return `${p1}/${q1}${op}${p2}/${q2} = ${a}/${l}${op}${b}/${l} = ${sum}/${l}${reduced === `${sum}/${l}` ? '' : ` = ${reduced}`}.`;
}

const NUM = '(-?\\d+)';

/**
 * The opening line of a solution whose steps do not begin with the question's computation: that
 * computation stated whole with the question's numbers ("We need lcm(60,108)."), as a solution starts by
 * saying what it computes. A critic makes it one call that computes the question asked; the steps
 * after it work the computation out (docs/tirgen.md#the-chain-of-thought-actor).
 */
const plan = (question: string): string => `We need ${question.replace(/^What is /, '').replace(/\?$/, '')}.`;

/** The solution steps of one task, without the final boxed line; undefined for a question it cannot read. */
export function cotSteps(task: Pick<Task, 'kind' | 'question' | 'answer'>): string[] | undefined {
  const q = task.question;
  let m: RegExpMatchArray | null;
  switch (task.kind) {
    case 'multiply':
      if ((m = q.match(/^What is (\d+)\*(\d+)\?$/))) return multiply(big(m[1]), big(m[2]));
      return undefined;
    case 'modular':
      if ((m = q.match(/^What is (\d+) mod (\d+)\?$/))) {
        const [a, md] = [big(m[1]), big(m[2])];
        return [`${a} mod ${md} = ${a % md}.`];
      }
      if ((m = q.match(/^What is (\d+)\^(\d+) mod (\d+)\?$/))) return [plan(m[0]), ...modPowSteps(big(m[1]), big(m[2]), big(m[3]))];
      return undefined;
    case 'gcd':
      if ((m = q.match(/^What is gcd\((\d+),(\d+)\)\?$/))) {
        const { lines, g } = euclid(big(m[1]), big(m[2]));
        return [plan(m[0]), ...lines, `So the gcd is ${g}.`];
      }
      return undefined;
    case 'lcm':
      if ((m = q.match(/^What is lcm\((\d+),(\d+)\)\?$/))) {
        const [a, b] = [big(m[1]), big(m[2])];
        const { lines, g } = euclid(a, b);
        return [plan(m[0]), ...lines, `So gcd(${a},${b}) = ${g}.`, `${a}/${g} = ${a / g}.`, `${a / g}*${b} = ${(a / g) * b}.`];
      }
      return undefined;
    case 'combinations':
      if ((m = q.match(/^What is (\d+) choose (\d+)\?$/))) return [plan(m[0]), ...combinations(big(m[1]), big(m[2]))];
      return undefined;
    case 'series': {
      if ((m = q.match(/^What is 1\+2\+\.\.\.\+(\d+)\?$/))) {
        const n = big(m[1]);
        return [plan(m[0]), `The sum is n*(n+1)/2 with n = ${n}.`, `${n}*(${n}+1) = ${n * (n + 1n)}.`, `${n * (n + 1n)}/2 = ${(n * (n + 1n)) / 2n}.`];
      }
      if ((m = q.match(/^What is 1\^2\+2\^2\+\.\.\.\+(\d+)\^2\?$/))) {
        const n = big(m[1]);
        const p = n * (n + 1n);
        return [plan(m[0]), `The sum is n*(n+1)*(2n+1)/6 with n = ${n}.`, `${n}*(${n}+1) = ${p}.`, `${p}*(2*${n}+1) = ${p * (2n * n + 1n)}.`, `${p * (2n * n + 1n)}/6 = ${(p * (2n * n + 1n)) / 6n}.`];
      }
      if ((m = q.match(/^What is (\d+)\+(\d+)\+\d+\+\.\.\.\+(\d+)\?$/))) {
        const [a, second, last] = [big(m[1]), big(m[2]), big(m[3])];
        const step = second - a;
        const count = (last - a) / step + 1n;
        return [
          plan(m[0]),
          `The step is ${second}-${a} = ${step}.`,
          `${last}-${a} = ${last - a}.`,
          `${last - a}/${step} = ${(last - a) / step}.`,
          `${(last - a) / step}+1 = ${count} terms.`,
          `${a}+${last} = ${a + last}.`,
          `${a + last}*${count} = ${(a + last) * count}.`,
          `${(a + last) * count}/2 = ${((a + last) * count) / 2n}.`,
        ];
      }
      if ((m = q.match(/^What is 1\+(\d+)\+\d+\^2\+\.\.\.\+\d+\^(\d+)\?$/))) {
        const [r, n] = [big(m[1]), big(m[2])];
        const power = r ** (n + 1n);
        return [plan(m[0]), `The sum is (r^(n+1)-1)/(r-1) with r = ${r}, n = ${n}.`, `${r}^(${n}+1) = ${power}.`, `${power}-1 = ${power - 1n}.`, `${power - 1n}/(${r}-1) = ${(power - 1n) / (r - 1n)}.`];
      }
      return undefined;
    }
    case 'linear': {
      const term = `${NUM}?(-?)x([+-]\\d+)?`;
      const side = (coef: string | undefined, neg: string, rest: string | undefined): [bigint, bigint] => [
        coef === undefined || coef === '' ? (neg === '-' ? -1n : 1n) : big(coef),
        rest === undefined ? 0n : big(rest),
      ];
      if ((m = q.match(new RegExp(`^Solve ${term}=${NUM} for x\\.$`)))) {
        const [a, b] = side(m[1], m[2], m[3]);
        const c = big(m[4]);
        // "x = 12 / 3." with spaces: a bare "12/3" is a number, not a computation, to the critic.
        const solved = b === 0n ? (a === 1n ? [] : [`x = ${c} / ${a < 0n ? `(${a})` : a}.`]) : [`x = (${minus(c, b)})/${a < 0n ? `(${a})` : a}.`];
        return [...solved, ...isolate(a, b, c)];
      }
      if ((m = q.match(new RegExp(`^Solve ${term}=${term} for x\\.$`)))) {
        const [a, b] = side(m[1], m[2], m[3]);
        const [c, e] = side(m[4], m[5], m[6]);
        const solved = `x = ${b === 0n ? e : `(${minus(e, b)})`}/(${minus(a, c)}).`;
        const lines = [solved, `Move the x terms left and the numbers right.`, `${minus(a, c)} = ${a - c}.`];
        return [...lines, ...isolate(a - c, b, e)];
      }
      return undefined;
    }
    case 'factor':
      if ((m = q.match(/^What is the largest prime factor of (\d+)\?$/))) {
        let n = big(m[1]);
        const lines: string[] = [`We need the largest prime factor of ${n}.`];
        for (let p = 2n; p * p <= n; p++)
          while (n % p === 0n && n > p) {
            lines.push(`${n}/${p} = ${n / p}.`);
            n /= p;
          }
        lines.push(`${n} is prime.`);
        return lines;
      }
      return undefined;
    case 'fraction': {
      const F = '(\\d+)/(\\d+)';
      if ((m = q.match(new RegExp(`^What is ${F}([+-])${F}\\?$`)))) return [addFractions(big(m[1]), big(m[2]), big(m[4]), big(m[5]), m[3] === '+' ? 1n : -1n)];
      if ((m = q.match(new RegExp(`^What is \\(${F}\\)\\*\\(${F}\\)\\?$`)))) {
        const [p, r] = [big(m[1]) * big(m[3]), big(m[2]) * big(m[4])];
        const reduced = fracText(p, r);
        return [`(${m[1]}/${m[2]})*(${m[3]}/${m[4]}) = (${m[1]}*${m[3]})/(${m[2]}*${m[4]}).`, `${m[1]}*${m[3]} = ${p}.`, `${m[2]}*${m[4]} = ${r}.`, `${p}/${r}${reduced === `${p}/${r}` ? '' : ` = ${reduced}`}.`];
      }
      if ((m = q.match(new RegExp(`^What is \\(${F}\\)/\\(${F}\\)\\?$`)))) {
        const [p, r] = [big(m[1]) * big(m[4]), big(m[2]) * big(m[3])];
        const reduced = fracText(p, r);
        return [`(${m[1]}/${m[2]})/(${m[3]}/${m[4]}) = (${m[1]}*${m[4]})/(${m[2]}*${m[3]}).`, `${m[1]}*${m[4]} = ${p}.`, `${m[2]}*${m[3]} = ${r}.`, `${p}/${r}${reduced === `${p}/${r}` ? '' : ` = ${reduced}`}.`];
      }
      if ((m = q.match(new RegExp(`^What is ${F}\\+${F}\\*${F}\\?$`)))) {
        const [p1, q1, p2, q2, p3, q3] = m.slice(1, 7).map(big);
        const [pp, qq] = [p2 * p3, q2 * q3];
        const g = gcdBig(pp, qq);
        const lines = [plan(m[0]), `First ${p2}/${q2}*${p3}/${q3} = ${pp}/${qq}${g > 1n ? ` = ${pp / g}/${qq / g}` : ''}.`];
        return [...lines, addFractions(p1, q1, pp / g, qq / g, 1n)];
      }
      return undefined;
    }
  }
}

/** a*x + b = c solved for x: the number moved over, then the division. */
function isolate(a: bigint, b: bigint, c: bigint): string[] {
  const lines: string[] = [];
  let rhs = c;
  if (b !== 0n) {
    rhs = c - b;
    lines.push(`${minus(c, b)} = ${rhs}.`);
  }
  const before = rhs;
  if (a < 0n) {
    lines.push(`Multiply both sides by -1.`);
    [a, rhs] = [-a, -rhs];
  }
  // -x = 7: the sign change is a computation too.
  if (a === 1n && rhs !== before) lines.push(`So x = -1*${before < 0n ? `(${before})` : before} = ${rhs}.`);
  else lines.push(a === 1n ? `So x = ${rhs}.` : `So ${a}x = ${rhs}.`);
  if (a !== 1n) lines.push(`x = ${rhs}/${a} = ${rhs / a}.`);
  return lines;
}

/** The full response text of a task's chain-of-thought solution, or undefined if the question is not understood. */
export function cotResponse(task: Pick<Task, 'kind' | 'question' | 'answer'>): string | undefined {
  const steps = cotSteps(task);
  return steps === undefined ? undefined : [...steps, boxed(task.answer)].join('\n');
}

/**
 * Chain-of-thought demonstrations of tasks, keeping those whose question plus response fit
 * `fits` (the caller measures tokens); the dropped ones are counted by kind.
 */
export function buildCotDemonstrations(
  tasks: readonly Task[],
  fits: (question: string, response: string) => boolean = () => true,
): { demonstrations: (CotDemonstration & { kind: Task['kind'] })[]; dropped: Record<string, number> } {
  const demonstrations: (CotDemonstration & { kind: Task['kind'] })[] = [];
  const dropped: Record<string, number> = {};
  for (const task of tasks) {
    const response = cotResponse(task);
    if (response !== undefined && fits(task.question, response)) demonstrations.push({ question: task.question, response, kind: task.kind });
    else dropped[task.kind] = (dropped[task.kind] ?? 0) + 1;
  }
  return { demonstrations, dropped };
}

// ---- checking written steps -------------------------------------------------------------------

interface Rat {
  p: bigint;
  q: bigint;
}

/**
 * The exact value of an arithmetic expression of integers: + - * / ^, `mod` (integers only, at the
 * level of * and /), parentheses and a leading minus; undefined for anything else ("n*(n+1)") or for a
 * division by zero.
 */
export function evalExpression(text: string): Rat | undefined {
  // "1 2" is two numbers, not 12.
  if (/\d\s+\d/.test(text)) return undefined;
  const s = text.replace(/\s+/g, '');
  if (!/^[-+*/^()\d]*(mod[-+*/^()\d]*)*$/.test(s) || s === '') return undefined;
  const tokens = s.match(/\d+|mod|[-+*/^()]/g)!;
  let i = 0;
  // Reduced at every step, so that (6/3) mod 4 is an integer mod an integer.
  const norm = (p: bigint, q: bigint): Rat => {
    if (q < 0n) [p, q] = [-p, -q];
    const g = gcdBig(p, q) || 1n;
    return { p: p / g, q: q / g };
  };
  const expr = (): Rat | undefined => {
    let acc = term();
    while (acc && (tokens[i] === '+' || tokens[i] === '-')) {
      const op = tokens[i++];
      const r = term();
      if (!r) return undefined;
      acc = norm(acc.p * r.q + (op === '+' ? 1n : -1n) * r.p * acc.q, acc.q * r.q);
    }
    return acc;
  };
  const term = (): Rat | undefined => {
    let acc = unary();
    while (acc && (tokens[i] === '*' || tokens[i] === '/' || tokens[i] === 'mod')) {
      const op = tokens[i++];
      const r = unary();
      if (!r) return undefined;
      if (op === '*') acc = norm(acc.p * r.p, acc.q * r.q);
      else if (op === '/') {
        if (r.p === 0n) return undefined;
        acc = norm(acc.p * r.q, acc.q * r.p);
      } else {
        if (acc.q !== 1n || r.q !== 1n || r.p === 0n) return undefined;
        // Python's sign convention: the remainder takes the divisor's sign.
        acc = { p: ((acc.p % r.p) + r.p) % r.p, q: 1n };
      }
    }
    return acc;
  };
  const unary = (): Rat | undefined => {
    if (tokens[i] === '-') {
      i++;
      const x = unary();
      return x && { p: -x.p, q: x.q };
    }
    return power();
  };
  const power = (): Rat | undefined => {
    const base = atom();
    if (!base || tokens[i] !== '^') return base;
    i++;
    const e = unary();
    if (!e || e.q !== 1n || e.p < 0n) return undefined;
    // A result of more than a million bits is no step a model writes (and BigInt has a size limit).
    const bits = BigInt((base.p < 0n ? -base.p : base.p).toString(2).length + base.q.toString(2).length);
    if (bits * e.p > 1_000_000n) return undefined;
    return { p: base.p ** e.p, q: base.q ** e.p };
  };
  const atom = (): Rat | undefined => {
    const t = tokens[i++];
    if (t === undefined) return undefined;
    if (/^\d+$/.test(t)) return { p: BigInt(t), q: 1n };
    if (t !== '(') return undefined;
    const x = expr();
    if (tokens[i++] !== ')') return undefined;
    return x;
  };
  const value = expr();
  return value && i === tokens.length ? value : undefined;
}

/**
 * The symbolic steps of a response that can be checked: in each line, the parts between " = " that
 * are pure expressions of integers ("347*800", "5/6", "84"); a line with two or more must have them all
 * equal. Returns how many such lines there are and the ones that are false.
 */
export function checkSteps(response: string): { checked: number; wrong: string[] } {
  let checked = 0;
  const wrong: string[] = [];
  for (const raw of response.split('\n')) {
    const line = raw.replace(/^So /, '').replace(/^First /, '').replace(/\.$/, '').replace(/ terms$/, '');
    const values = line
      .split(' = ')
      .map((part) => evalExpression(part))
      .filter((v): v is Rat => v !== undefined);
    if (values.length < 2) continue;
    checked++;
    if (values.some((v) => v.p * values[0].q !== values[0].p * v.q)) wrong.push(raw);
  }
  return { checked, wrong };
}
