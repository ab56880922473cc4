import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readProblemsJsonl } from '../../src/core/data/readers';
import { generateTask, generateTasks, MAX_DIFFICULTY, splitOf, TASK_KINDS, type Task } from '../../src/core/data/tasks';
import { LabError } from '../../src/core/errors';
import { evaluateLatex } from '../../src/core/reward/evaluate';
import { createRng, hashString } from '../../src/core/rng';
import { createNodePythonPool } from '../../src/node/python';

const benchmark = (file: string) => readFileSync(new URL(`../../data/benchmarks/${file}`, import.meta.url), 'utf8');

describe('seeded rng', () => {
  it('hashes with 32-bit FNV-1a', () => {
    expect(hashString('')).toBe(0x811c9dc5);
    expect(hashString('a')).toBe(0xe40c292c);
    expect(hashString('foobar')).toBe(0xbf9cf968);
  });

  it('repeats from a seed, differs across seeds, and restores its state', () => {
    const a = createRng(7);
    const first = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => createRng(7).next())[0]).toBe(first[0]);
    const again = createRng(7);
    expect(Array.from({ length: 5 }, () => again.next())).toEqual(first);
    expect(createRng(8).next()).not.toBe(first[0]);
    const saved = a.state();
    const next = a.next();
    a.setState(saved);
    expect(a.next()).toBe(next);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('draws integers over the whole inclusive range, uniformly enough', () => {
    const rng = createRng(1);
    const counts = new Map<number, number>();
    for (let i = 0; i < 6000; i++) {
      const v = rng.int(1, 6);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(120);
  });

  it('forks independent streams by label and shuffles a copy', () => {
    const x = createRng(3).fork('train').next();
    const rng = createRng(3);
    rng.next();
    expect(rng.fork('train').next()).toBe(x);
    expect(createRng(3).fork('test').next()).not.toBe(x);
    const items = [1, 2, 3, 4, 5];
    const shuffled = createRng(3).shuffle(items);
    expect(items).toEqual([1, 2, 3, 4, 5]);
    expect([...shuffled].sort()).toEqual(items);
  });
});

// ---- independent recomputation of every generated answer ----------------------------------

const ints = (s: string) => (s.match(/-?\d+/g) ?? []).map(Number);
const gcd = (a: number, b: number): number => (b === 0 ? Math.abs(a) : gcd(b, a % b));

function pascal(n: number, k: number): bigint {
  let row = [1n];
  for (let i = 0; i < n; i++) row = [1n, ...row.slice(1).map((v, j) => v + row[j]), 1n];
  return row[k];
}

/** Recomputes a task's answer from its question text alone, by a different route than the generator. */
function recompute(t: Task): string {
  const q = t.question;
  switch (t.kind) {
    case 'multiply': {
      const [a, b] = ints(q);
      return String(BigInt(a) * BigInt(b));
    }
    case 'modular': {
      const m = /What is (\d+)(?:\^(\d+))? mod (\d+)\?/.exec(q)!;
      const [a, e, mod] = [Number(m[1]), Number(m[2] ?? 1), Number(m[3])];
      let r = 1;
      for (let i = 0; i < e; i++) r = (r * a) % mod; // slow and simple
      return String(r % mod);
    }
    case 'gcd': {
      const [a, b] = ints(q);
      return String(gcd(a, b));
    }
    case 'lcm': {
      const [a, b] = ints(q);
      return String((a / gcd(a, b)) * b);
    }
    case 'combinations': {
      const [n, k] = ints(q);
      return String(pascal(n, k));
    }
    case 'series': {
      const expr = /What is (.*)\?/.exec(q)![1];
      const terms = expr.split('+');
      const last = terms[terms.length - 1];
      let sum = 0n;
      if (/\^2$/.test(last)) for (let k = 1; k <= Number(last.slice(0, -2)); k++) sum += BigInt(k * k);
      else if (/\^/.test(last)) {
        const [r, n] = last.split('^').map(Number);
        for (let k = 0; k <= n; k++) sum += BigInt(r) ** BigInt(k);
      } else {
        const [a, b] = terms.map(Number);
        for (let v = a; v <= Number(last); v += b - a) sum += BigInt(v);
      }
      return String(sum);
    }
    case 'linear': {
      // The answer must satisfy the equation: both sides evaluated at x.
      const [lhs, rhs] = /Solve (.*) for x\./.exec(q)![1].split('=');
      const at = (side: string, x: number) => evaluateLatex(side.replace(/(\d)x/g, `$1*(${x})`).replace(/x/g, `(${x})`))!.re;
      const x = Number(t.answer);
      expect(at(lhs, x)).toBe(at(rhs, x));
      return t.answer;
    }
    case 'factor': {
      let n = ints(q)[0];
      expect(Number(t.answer)).toBeLessThan(n); // composite: the largest factor is not n itself
      let largest = 1;
      for (let p = 2; p * p <= n; p++)
        while (n % p === 0) {
          largest = p;
          n /= p;
        }
      return String(Math.max(largest, n));
    }
    case 'fraction': {
      const value = evaluateLatex(/What is (.*)\?/.exec(q)![1])!.re;
      const [p, d] = t.answer.split('/').map(Number);
      expect(gcd(p, d ?? 1)).toBe(1);
      expect(Math.abs(value - p / (d ?? 1))).toBeLessThan(1e-12);
      return t.answer;
    }
  }
}

describe('synthetic tasks', () => {
  const train = generateTasks({ seed: 11, count: 900, split: 'train', difficulties: [1, 2, 3, 4, 5] });
  const test = generateTasks({ seed: 11, count: 300, split: 'test', difficulties: [1, 2, 3, 4, 5] });

  it('computes every answer exactly', () => {
    for (const t of [...train, ...test]) expect(recompute(t), t.question).toBe(t.answer);
  });

  it('covers every kind and difficulty, in short questions', () => {
    for (const kind of TASK_KINDS)
      for (let d = 1; d <= MAX_DIFFICULTY; d++) expect(train.some((t) => t.kind === kind && t.difficulty === d), `${kind} ${d}`).toBe(true);
    expect(Math.max(...train.map((t) => t.question.length))).toBeLessThanOrEqual(60);
    expect(train.every((t) => /^(What is .*\?|Solve .* for x\.)$/.test(t.question))).toBe(true);
  });

  it('never puts a question in both splits, and never twice in one', () => {
    const trainQuestions = new Set(train.map((t) => t.question));
    expect(trainQuestions.size).toBe(train.length);
    expect(test.filter((t) => trainQuestions.has(t.question))).toEqual([]);
    expect(train.every((t) => splitOf(t.question, 0.2) === 'train')).toBe(true);
    expect(test.every((t) => splitOf(t.question, 0.2) === 'test')).toBe(true);
    // Another seed draws other questions, but the split of a text never changes.
    const other = generateTasks({ seed: 12, count: 300, split: 'test', difficulties: [1, 2, 3, 4, 5] });
    expect(other.filter((t) => trainQuestions.has(t.question))).toEqual([]);
  });

  it('gives about testFraction of the question space to the test split', () => {
    const n = 20000;
    let inTest = 0;
    for (let i = 0; i < n; i++) if (splitOf(`What is ${i}*${i + 7}?`, 0.2) === 'test') inTest++;
    expect(Math.abs(inTest / n - 0.2)).toBeLessThan(0.015);
  });

  it('is deterministic from the seed', () => {
    const again = generateTasks({ seed: 11, count: 900, split: 'train', difficulties: [1, 2, 3, 4, 5] });
    expect(again).toEqual(train);
    expect(generateTasks({ seed: 99, count: 50, split: 'train' }).map((t) => t.question)).not.toEqual(train.slice(0, 50).map((t) => t.question));
  });

  it('grows harder with difficulty', () => {
    const size = (d: number) => {
      const rng = createRng(d);
      let total = 0;
      for (let i = 0; i < 50; i++) total += generateTask('multiply', d, rng).answer.length;
      return total / 50;
    };
    expect(size(1)).toBeLessThan(size(3));
    expect(size(3)).toBeLessThan(size(5));
    const t = generateTask('multiply', 2, createRng(5));
    expect(t.question).toMatch(/^What is \d\d\*\d\d\?$/);
    expect(t.program).toBe(`print(${t.question.slice(8, -1)})`);
    expect(t.id).toBe(`syn-${hashString(t.question).toString(16).padStart(8, '0')}`);
  });

  it("writes programs whose numbers are all copied from the question (a model learning them learns to copy, not to compute n+1)", async () => {
    const pool = await createNodePythonPool({ preload: ['sympy'] });
    const runPython = async (code: string) => (await pool.run(code, { timeoutMs: 20_000 })).stdout;
    try {
    for (const kind of TASK_KINDS)
      for (let d = 1; d <= MAX_DIFFICULTY; d++)
        for (let i = 0; i < 20; i++) {
          const t = generateTask(kind, d, createRng(1000 * d + i));
          const inQuestion = new Set(t.question.match(/\d+/g) ?? []);
          // "+1" closes a range: the one number a program may bring itself.
          const own = (t.program.match(/\d+/g) ?? []).filter((n) => n !== '1' && !inQuestion.has(n));
          expect(own, `${kind} ${d}: ${t.question} -> ${t.program}`).toEqual([]);
          if (i < 3) expect((await runPython(t.program)).trim(), `${kind} ${d}: ${t.program}`).toBe(t.answer);
          // Fractions and equations copy the question in its own order, not just its numbers.
          if (kind === 'fraction') expect(t.program).toContain(`sympify('${t.question.slice('What is '.length, -1)}')`);
          if (kind === 'linear') {
            const [left, right] = /^Solve (.+)=(.+) for x\.$/.exec(t.question)!.slice(1);
            expect(/Eq\((.+),(.+)\)\)\)$/.exec(t.program)!.slice(1).map((side) => side.replaceAll('*', ''))).toEqual([left, right]);
          }
        }
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('balances kinds and difficulties', () => {
    const tasks = generateTasks({ seed: 1, count: 180, split: 'train', kinds: ['gcd', 'fraction'], difficulties: [2, 4] });
    const cells = new Map<string, number>();
    for (const t of tasks) cells.set(`${t.kind}${t.difficulty}`, (cells.get(`${t.kind}${t.difficulty}`) ?? 0) + 1);
    expect([...cells.values()]).toEqual([45, 45, 45, 45]);
  });

  it('refuses impossible requests with a clear error', () => {
    expect(() => generateTasks({ seed: 1, count: 500, split: 'train', kinds: ['combinations'], difficulties: [1] })).toThrow(/field "count": not enough distinct questions .*expected at most 12 /);
    expect(() => generateTask('gcd', 6, createRng(1))).toThrow(LabError);
    expect(() => generateTasks({ seed: 1, count: 5, split: 'train', testFraction: 1 })).toThrow(/testFraction/);
  });
});

describe('benchmark readers', () => {
  it('reads the shipped benchmark files', () => {
    const gsm = readProblemsJsonl(benchmark('gsm8k-test.jsonl'), { file: 'gsm8k-test.jsonl' });
    expect(gsm.problems.length).toBe(1319);
    expect(gsm.skipped).toEqual([]);
    expect(gsm.problems[0]).toMatchObject({ id: 'gsm8k-test.jsonl:0', answer: '18', source: 'gsm8k-test.jsonl' });
    expect(gsm.problems[0].question).toMatch(/^Janet’s ducks lay 16 eggs/);
    expect(gsm.problems[0].solution).toMatch(/#### 18$/);

    const math = readProblemsJsonl(benchmark('math500-test.jsonl'), { file: 'math500-test.jsonl' });
    expect(math.problems.length).toBe(500);
    expect(math.problems[0]).toMatchObject({ question: 'If $2^8=4^x$, what is the value of $x$?', answer: '4', kind: 'Algebra', difficulty: 1 });

    const aime24 = readProblemsJsonl(benchmark('aime24.jsonl'), { file: 'aime24.jsonl' });
    const aime25 = readProblemsJsonl(benchmark('aime25.jsonl'), { file: 'aime25.jsonl' });
    const amc23 = readProblemsJsonl(benchmark('amc23.jsonl'), { file: 'amc23.jsonl' });
    expect([aime24.problems.length, aime25.problems.length, amc23.problems.length]).toEqual([30, 30, 40]);
    expect(aime24.problems[0].answer).toBe('204');
    expect(aime25.problems[0].answer).toBe('70'); // a JSON number
    expect(amc23.problems[0].answer).toBe('27'); // 27.0 in the file
    expect(amc23.problems.every((p) => /^-?\d+$/.test(p.answer))).toBe(true);
  });

  const messy = [
    '{"question": "What is 2+2?", "answer": "2+2=4\\n#### 4"}',
    'not json at all',
    '',
    '{"question": "No answer here", "answer": "just words"}',
    '{"problem": "   ", "answer": "3"}',
    '[1, 2]',
    `{"problem": "${'x'.repeat(300)}", "answer": "1"}`,
    '{"problem": "From the solution", "solution": "so it is $\\\\boxed{\\\\frac{1}{2}}$"}',
    '{"problem": "Nothing at all"}',
  ].join('\n');

  it('collects and counts bad lines in lenient mode', () => {
    const r = readProblemsJsonl(messy, { file: 'mine.jsonl', mode: 'lenient', format: 'auto', maxQuestionLength: 200 });
    expect(r.problems.map((p) => [p.question, p.answer])).toEqual([
      ['What is 2+2?', '4'],
      ['No answer here', 'just words'],
      ['From the solution', '\\frac{1}{2}'],
    ]);
    expect(r.skipped.map((s) => [s.line, s.reason])).toEqual([
      [2, 'not_json'],
      [5, 'empty_question'],
      [6, 'not_object'],
      [7, 'too_long'],
      [9, 'missing_answer'],
    ]);
    expect(r.counts).toEqual({ not_json: 1, bad_row: 0, not_object: 1, missing_question: 0, empty_question: 1, missing_answer: 1, list_answer: 0, too_long: 1 });
  });

  it('insists on "#### N" for GSM8K-format files', () => {
    const r = readProblemsJsonl(messy, { file: 'mine.jsonl', mode: 'lenient', format: 'gsm8k', maxQuestionLength: 200 });
    expect(r.problems.map((p) => p.answer)).toEqual(['4']);
    expect(r.counts.missing_answer).toBe(4);
  });

  it('throws in strict mode, naming file, line and field', () => {
    let error: unknown;
    try {
      readProblemsJsonl(messy, { file: 'mine.jsonl' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LabError);
    expect((error as LabError).details).toMatchObject({ file: 'mine.jsonl', line: 2 });
    expect((error as LabError).message).toMatch(/^mine\.jsonl, line 2: line is not valid JSON/);
    const noAnswer = '{"problem": "Q1", "answer": "1"}\n{"problem": "Q2", "answer": ""}';
    expect(() => readProblemsJsonl(noAnswer, { file: 'b.jsonl' })).toThrow(/b\.jsonl, line 2, field "answer": no reference answer/);
  });

  it('skips questions over the context budget, measured as the caller says', () => {
    const text = '{"question": "a b c d e", "answer": "1"}\n{"question": "a b", "answer": "2"}';
    const words = (q: string) => q.split(' ').length;
    const r = readProblemsJsonl(text, { file: 't.jsonl', mode: 'strict', maxQuestionLength: 3, measure: words });
    expect(r.problems.map((p) => p.answer)).toEqual(['2']);
    expect(r.skipped).toEqual([{ file: 't.jsonl', line: 1, reason: 'too_long', message: 'question longer than the context budget (5 > 3)' }]);
  });
});
