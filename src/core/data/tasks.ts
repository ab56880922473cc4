/**
 * Seeded generators of short problems where exact computation matters (the kind a small model gets
 * wrong by itself and gets right with one line of Python). Each task is graded by difficulty
 * 1..MAX_DIFFICULTY, has a canonical answer string and a reference program that prints it.
 *
 * Train and test splits never overlap: the split of a question is a function of its text alone
 * (a hash), so no seed or count can put the same question in both.
 */
import { LabError } from '../errors';
import { createRng, hashString, type Rng } from '../rng';
import type { Problem } from './types';

export const TASK_KINDS = ['multiply', 'modular', 'gcd', 'lcm', 'combinations', 'series', 'linear', 'factor', 'fraction'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];
export const MAX_DIFFICULTY = 5;

export interface Task extends Problem {
  kind: TaskKind;
  difficulty: number;
  /** A Python program that prints the answer (for building tool-use demonstrations). */
  program: string;
}

export type Split = 'train' | 'test';

/** Test if the question's hash falls in the first testFraction of the hash space. */
export function splitOf(question: string, testFraction: number): Split {
  return hashString(question) % 10000 < Math.round(testFraction * 10000) ? 'test' : 'train';
}

export function taskId(question: string): string {
  return `syn-${hashString(question).toString(16).padStart(8, '0')}`;
}

// ---- small exact helpers -------------------------------------------------------------------

const digits = (rng: Rng, n: number): number => rng.int(10 ** (n - 1), 10 ** n - 1);

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b) [a, b] = [b, a % b];
  return a;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n % mod;
  base %= mod;
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % mod;
    base = (base * base) % mod;
    exp >>= 1n;
  }
  return result;
}

function binomial(n: number, k: number): bigint {
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}

const PRIMES: number[] = (() => {
  const out: number[] = [];
  for (let n = 2; out.length < 400; n++) if (out.every((p) => p * p > n || n % p !== 0)) out.push(n);
  return out;
})();

/** A reduced fraction p/q with q > 0. */
interface Frac {
  p: bigint;
  q: bigint;
}
function frac(p: bigint, q: bigint): Frac {
  if (q < 0n) [p, q] = [-p, -q];
  const g = gcd(p, q) || 1n;
  return { p: p / g, q: q / g };
}
const fracText = (f: Frac): string => (f.q === 1n ? `${f.p}` : `${f.p}/${f.q}`);

/** "3x+5", "-x-7", "12x": a linear term as a person writes it. */
function linearText(a: number, b: number): string {
  const ax = a === 1 ? 'x' : a === -1 ? '-x' : `${a}x`;
  if (b === 0) return ax;
  return `${ax}${b > 0 ? '+' : '-'}${Math.abs(b)}`;
}

/**
 * A linear equation's program: the equation as the question writes it, with `*` before each x, handed
 * to sympy. Copying the question in order is what a small model can learn to do reliably; a program
 * that reorders the coefficients (`(e-b)//(a-c)`) made it copy the wrong one.
 */
function linearProgram(left: string, right: string): string {
  const py = (side: string) => side.replace(/(\d)x/g, '$1*x');
  return `from sympy import Eq, solve, symbols\nx = symbols('x')\nprint(*solve(Eq(${py(left)},${py(right)})))`;
}

// ---- one generator per kind: (rng, difficulty) -> question, answer, program ----------------------

interface Draft {
  question: string;
  answer: string;
  program: string;
}

const GENERATORS: Record<TaskKind, (rng: Rng, d: number) => Draft> = {
  multiply(rng, d) {
    const sizes = [
      [2, 1],
      [2, 2],
      [3, 2],
      [3, 3],
      [4, 3],
    ][d - 1];
    const a = digits(rng, sizes[0]);
    const b = digits(rng, sizes[1]);
    return { question: `What is ${a}*${b}?`, answer: `${BigInt(a) * BigInt(b)}`, program: `print(${a}*${b})` };
  },

  modular(rng, d) {
    if (d === 1) {
      const a = digits(rng, 3);
      const m = rng.int(3, 9);
      return { question: `What is ${a} mod ${m}?`, answer: `${a % m}`, program: `print(${a}%${m})` };
    }
    const [maxBase, minExp, maxExp, minMod, maxMod] = [
      [9, 5, 30, 3, 9],
      [9, 10, 99, 7, 99],
      [99, 100, 999, 10, 999],
      [99, 1000, 9999, 100, 9999],
    ][d - 2];
    const a = rng.int(2, maxBase);
    const e = rng.int(minExp, maxExp);
    const m = rng.int(minMod, maxMod);
    const r = modPow(BigInt(a), BigInt(e), BigInt(m));
    return { question: `What is ${a}^${e} mod ${m}?`, answer: `${r}`, program: `print(pow(${a},${e},${m}))` };
  },

  gcd(rng, d) {
    const g = rng.int(2, 10 ** Math.ceil(d / 2) * 3);
    const limit = 10 ** (d + 1) / g;
    const x = rng.int(2, Math.max(3, Math.floor(limit)));
    const y = rng.int(2, Math.max(3, Math.floor(limit)));
    const [a, b] = [g * x, g * y];
    const answer = gcd(BigInt(a), BigInt(b));
    return { question: `What is gcd(${a},${b})?`, answer: `${answer}`, program: `from math import gcd\nprint(gcd(${a},${b}))` };
  },

  lcm(rng, d) {
    const max = [20, 60, 200, 1000, 5000][d - 1];
    const a = rng.int(2, max);
    const b = rng.int(2, max);
    const answer = (BigInt(a) * BigInt(b)) / gcd(BigInt(a), BigInt(b));
    return { question: `What is lcm(${a},${b})?`, answer: `${answer}`, program: `from math import lcm\nprint(lcm(${a},${b}))` };
  },

  combinations(rng, d) {
    const n = rng.int(4 + 4 * (d - 1), 8 + 8 * (d - 1));
    const k = rng.int(2, Math.max(2, n - 2));
    return { question: `What is ${n} choose ${k}?`, answer: `${binomial(n, k)}`, program: `from math import comb\nprint(comb(${n},${k}))` };
  },

  series(rng, d) {
    if (d === 1 || d === 2) {
      const n = rng.int(10, d === 1 ? 50 : 500);
      return { question: `What is 1+2+...+${n}?`, answer: `${(n * (n + 1)) / 2}`, program: `print(sum(range(1,${n}+1)))` };
    }
    if (d === 3) {
      const n = rng.int(5, 60);
      return {
        question: `What is 1^2+2^2+...+${n}^2?`,
        answer: `${(n * (n + 1) * (2 * n + 1)) / 6}`,
        program: `print(sum(k**2 for k in range(1,${n}+1)))`,
      };
    }
    if (d === 4) {
      const a = rng.int(1, 20);
      const step = rng.int(2, 9);
      const count = rng.int(10, 60);
      const last = a + step * (count - 1);
      return {
        question: `What is ${a}+${a + step}+${a + 2 * step}+...+${last}?`,
        answer: `${(count * (a + last)) / 2}`,
        program: `print(sum(range(${a},${last}+1,${a + step}-${a})))`,
      };
    }
    const r = rng.int(2, 5);
    const n = rng.int(6, 16);
    const sum = (BigInt(r) ** BigInt(n + 1) - 1n) / BigInt(r - 1);
    return { question: `What is 1+${r}+${r}^2+...+${r}^${n}?`, answer: `${sum}`, program: `print(sum(${r}**k for k in range(${n}+1)))` };
  },

  linear(rng, d) {
    const range = 5 * 10 ** Math.floor((d - 1) / 2);
    const x = d >= 3 ? rng.int(-range, range) : rng.int(1, range * 4);
    const pick = (lo: number, hi: number, allowNegative: boolean): number => {
      const v = rng.int(lo, hi);
      return allowNegative && rng.next() < 0.3 ? -v : v;
    };
    if (d <= 3) {
      const a = d === 1 ? 1 : pick(2, 9 * d, d === 3);
      const b = pick(1, 20 * d, d === 3);
      const c = a * x + b;
      return { question: `Solve ${linearText(a, b)}=${c} for x.`, answer: `${x}`, program: linearProgram(linearText(a, b), `${c}`) };
    }
    let a = pick(2, 9 * d, true);
    const c = pick(1, 9 * d, true);
    if (a === c) a += 1;
    const b = pick(1, 50 * d, true);
    const e = a * x + b - c * x;
    return {
      question: `Solve ${linearText(a, b)}=${linearText(c, e)} for x.`,
      answer: `${x}`,
      program: linearProgram(linearText(a, b), linearText(c, e)),
    };
  },

  factor(rng, d) {
    const target = 10 ** (d + 1);
    let n = 1;
    // Random primes multiplied up into the grade's range; the first leaves room for a second, so n is composite.
    for (let factors = 0; n * 2 <= target && (factors < 2 || n <= target / 10 || rng.next() < 0.5); factors++) {
      const room = PRIMES.filter((p) => n * p * (factors === 0 ? 2 : 1) <= target);
      n *= rng.pick(room.slice(0, 10 + 40 * d));
    }
    const largest = Math.max(...PRIMES.filter((p) => n % p === 0));
    return {
      question: `What is the largest prime factor of ${n}?`,
      answer: `${largest}`,
      program: `from sympy import primefactors\nprint(max(primefactors(${n})))`,
    };
  },

  fraction(rng, d) {
    const maxDen = [6, 12, 15, 20, 30][d - 1];
    const draw = (): Frac => {
      const q = rng.int(2, maxDen);
      return { p: BigInt(rng.int(1, q * 2 - 1)), q: BigInt(q) };
    };
    const text = (f: Frac): string => `${f.p}/${f.q}`;
    const x = draw();
    const y = d === 1 ? { p: BigInt(rng.int(1, Number(x.q) * 2)), q: x.q } : draw();
    let question: string;
    let value: Frac;
    if (d <= 2) {
      const minus = d === 2 && rng.next() < 0.5;
      question = `What is ${text(x)}${minus ? '-' : '+'}${text(y)}?`;
      value = frac(x.p * y.q + (minus ? -1n : 1n) * y.p * x.q, x.q * y.q);
    } else if (d === 3) {
      question = `What is (${text(x)})*(${text(y)})?`;
      value = frac(x.p * y.p, x.q * y.q);
    } else if (d === 4) {
      question = `What is (${text(x)})/(${text(y)})?`;
      value = frac(x.p * y.q, x.q * y.p);
    } else {
      const z = draw();
      question = `What is ${text(x)}+${text(y)}*${text(z)}?`;
      value = frac(x.p * y.q * z.q + y.p * z.p * x.q, x.q * y.q * z.q);
    }
    // The question's expression, character for character: sympy reads "a/b" as an exact rational.
    const expression = question.slice('What is '.length, -1);
    return { question, answer: fracText(value), program: `from sympy import sympify\nprint(sympify('${expression}'))` };
  },
};

/** One task of a given kind and difficulty (no split filtering). */
export function generateTask(kind: TaskKind, difficulty: number, rng: Rng): Task {
  if (!Number.isInteger(difficulty) || difficulty < 1 || difficulty > MAX_DIFFICULTY)
    throw new LabError('BAD_DIFFICULTY', 'task difficulty out of range', {
      field: 'difficulty',
      expected: `an integer in 1..${MAX_DIFFICULTY}`,
      found: String(difficulty),
    });
  const draft = GENERATORS[kind](rng, difficulty);
  return { id: taskId(draft.question), source: 'synthetic', kind, difficulty, ...draft };
}

export interface TaskSetOptions {
  seed: number;
  count: number;
  split: Split;
  kinds?: readonly TaskKind[];
  difficulties?: readonly number[];
  /** Share of the question space that belongs to the test split. */
  testFraction?: number;
}

/**
 * `count` distinct tasks of one split, balanced over (kind, difficulty) cells in turn. A cell that
 * keeps producing duplicates (small spaces such as easy gcd) is retired and the others fill in.
 */
export function generateTasks(options: TaskSetOptions): Task[] {
  const kinds = options.kinds ?? TASK_KINDS;
  const difficulties = options.difficulties ?? Array.from({ length: MAX_DIFFICULTY }, (_, i) => i + 1);
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1))
    throw new LabError('BAD_SPLIT', 'test fraction must leave room for both splits', {
      field: 'testFraction',
      expected: 'a number strictly between 0 and 1',
      found: String(testFraction),
    });
  for (const kind of kinds)
    if (!TASK_KINDS.includes(kind))
      throw new LabError('BAD_TASK_KIND', 'unknown task kind', { field: 'kinds', expected: TASK_KINDS.join(' | '), found: String(kind) });

  const rng = createRng(options.seed).fork(options.split);
  let cells = kinds.flatMap((kind) => difficulties.map((difficulty) => ({ kind, difficulty })));
  const seen = new Set<string>();
  const tasks: Task[] = [];
  const maxMisses = 200;
  let turn = 0;
  while (tasks.length < options.count && cells.length > 0) {
    const cell = cells[turn++ % cells.length];
    let task: Task | undefined;
    for (let attempt = 0; attempt < maxMisses && !task; attempt++) {
      const candidate = generateTask(cell.kind, cell.difficulty, rng);
      if (!seen.has(candidate.question) && splitOf(candidate.question, testFraction) === options.split) task = candidate;
    }
    if (!task) {
      cells = cells.filter((c) => c !== cell);
      continue;
    }
    seen.add(task.question);
    tasks.push(task);
  }
  if (tasks.length < options.count)
    throw new LabError('TASKS_EXHAUSTED', 'not enough distinct questions for this task set', {
      field: 'count',
      expected: `at most ${tasks.length} for kinds ${kinds.join(',')} at difficulties ${difficulties.join(',')}`,
      found: String(options.count),
      hint: 'ask for fewer tasks or allow more kinds or harder difficulties',
    });
  return tasks;
}
