/**
 * The answer checker against two tables (docs/reward.md, "Agreement"): Math-Verify's own test cases
 * (data/equivalence/math-verify.jsonl) and the lab's hostile cases (data/equivalence/hostile.jsonl),
 * with the real sympy in one Pyodide sandbox worker deciding what the cheap checks cannot.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { caseAnswer, isBareAnswer, measureAgreement, parseEquivalenceCases, type AgreementResult, type EquivalenceCase } from '../../src/core/reward/agreement';
import { answersEquivalent, isEquivalent, type SymbolicChecker } from '../../src/core/reward/equivalence';
import { extractAnswer, extractBoxed } from '../../src/core/reward/extract';
import { sandboxChecker } from '../../src/core/reward/sandbox-checker';
import type { PythonPool } from '../../src/core/sandbox/pool';
import { createNodePythonPool } from '../../src/node/python';

const load = (name: string): EquivalenceCase[] => {
  const file = `data/equivalence/${name}`;
  return parseEquivalenceCases(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'), file);
};

const MATH_VERIFY = load('math-verify.jsonl');
const HOSTILE = load('hostile.jsonl');

let pool: PythonPool;
let checker: SymbolicChecker;

beforeAll(async () => {
  pool = await createNodePythonPool({ size: 1 });
  checker = sandboxChecker(pool);
});

afterAll(async () => {
  await pool?.close();
});

/** One line per disagreement: where it comes from, the two answers read and the expected verdict. */
function report(title: string, r: AgreementResult): string {
  const line = (c: EquivalenceCase) =>
    `  ${c.expected ? 'miss' : 'FALSE POSITIVE'}  ${c.source}\n      gold ${JSON.stringify(caseAnswer(c.gold, c))}  prediction ${JSON.stringify(caseAnswer(c.prediction, c))}`;
  return [
    `${title}: ${r.agree}/${r.total} agree (${(100 * r.agreement).toFixed(1)} %), ${r.falsePositives.length} false positives, ${r.misses.length} misses`,
    ...r.falsePositives.map(line),
    ...r.misses.map(line),
  ].join('\n');
}

describe('equivalence tables', () => {
  it('hold enough cases of both kinds', () => {
    expect(MATH_VERIFY.length).toBeGreaterThanOrEqual(250);
    expect(MATH_VERIFY.filter((c) => !c.expected).length).toBeGreaterThanOrEqual(30);
    expect(HOSTILE.filter((c) => !c.expected).length).toBeGreaterThanOrEqual(60);
    expect(HOSTILE.filter((c) => c.expected).length).toBeGreaterThanOrEqual(50);
  });

  it('has sympy in the sandbox', async () => {
    const info = pool.info()!;
    expect(info.packages.find((p) => p.name === 'sympy'), 'build the bundle first: npm run build:python').toMatchObject({ available: true });
    expect(await checker.equivalent('(x+1)^2', 'x^2+2x+1')).toBe(true);
  });

  it("agrees with at least 95 % of Math-Verify's cases and calls none of its different pairs equal", async () => {
    const cheap = await measureAgreement(MATH_VERIFY);
    const full = await measureAgreement(MATH_VERIFY, checker);
    console.log(`${report('Math-Verify table, cheap checks only', cheap).split('\n')[0]}\n${report('Math-Verify table, with sympy', full)}`);
    expect(full.falsePositives.map((c) => c.source)).toEqual([]);
    expect(cheap.falsePositives.map((c) => c.source)).toEqual([]);
    expect(full.agreement).toBeGreaterThanOrEqual(0.95);
    // sympy decides pairs the cheap checks leave open (equations, inequalities, identities).
    expect(full.agree).toBeGreaterThan(cheap.agree);
  });

  it('judges every hostile case right', async () => {
    const r = await measureAgreement(HOSTILE, checker);
    console.log(report('hostile table', r));
    expect(r.falsePositives.map((c) => `${c.source}: ${c.gold} / ${c.prediction}`)).toEqual([]);
    expect(r.misses.map((c) => `${c.source}: ${c.gold} / ${c.prediction}`)).toEqual([]);
  });
});

describe('agreement measure', () => {
  it('counts false positives and misses against the expected verdicts', async () => {
    const cases: EquivalenceCase[] = [
      { gold: '5', prediction: '5', expected: true, source: 'a' },
      { gold: '5', prediction: '6', expected: true, source: 'b' },
      { gold: '5', prediction: '5.0', expected: false, source: 'c' },
      { gold: '5', prediction: '7', expected: false, source: 'd' },
    ];
    const r = await measureAgreement(cases);
    expect(r).toMatchObject({ total: 4, agree: 2, agreement: 0.5 });
    expect(r.misses.map((c) => c.source)).toEqual(['b']);
    expect(r.falsePositives.map((c) => c.source)).toEqual(['c']);
    expect(await measureAgreement([])).toMatchObject({ total: 0, agree: 0, agreement: 0 });
  });

  it('reads bare answers whole and responses through the extractor', () => {
    expect(isBareAnswer('\\frac{10}{9}')).toBe(true);
    expect(isBareAnswer('6 \\text{ and } 8')).toBe(true);
    expect(isBareAnswer('five')).toBe(true);
    expect(isBareAnswer('the number is not 10 which is 1,000.99')).toBe(false);
    expect(isBareAnswer('$9$')).toBe(false);
    expect(caseAnswer('\\frac{10}{9}')).toBe('\\frac{10}{9}');
    expect(caseAnswer('Thus $x = 5$.')).toBe('x = 5');
    expect(caseAnswer('so the number is 1,000.99m\u00b2 in all')).toBe('1,000.99');
    expect(caseAnswer('Answer $ \n 9 \n $', { targets: ['latex'] })).toBeUndefined();
    expect(caseAnswer('Answer \\[ \n 9 \n \\]', { targets: ['latex'] })).toBe('9');
  });

  it('names the file, line and field of a bad line', () => {
    const good = '{"gold":"1","prediction":"1","expected":true,"source":"s"}';
    expect(parseEquivalenceCases(`${good}\n\n${good}\n`, 'f.jsonl')).toHaveLength(2);
    const bad = (text: string) => {
      try {
        parseEquivalenceCases(text, 'cases.jsonl');
      } catch (e) {
        expect(e).toBeInstanceOf(LabError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(bad(`${good}\n{"gold":1,"prediction":"1","expected":true,"source":"s"}`)).toMatch(/^cases\.jsonl, line 2, field "gold": bad field \(expected a string, found 1\)/);
    expect(bad(`${good}\n${good}\n{"gold":"1","prediction":"1","expected":"yes","source":"s"}`)).toMatch(/line 3, field "expected".*true or false/);
    expect(bad('{"gold":"1","prediction":"1","expected":true}')).toMatch(/line 1, field "source"/);
    expect(bad('{"gold":"1","prediction":"1","expected":true,"source":"s","targets":["tex"]}')).toMatch(/field "targets"/);
    expect(bad('{"gold":"1","prediction":"1","expected":true,"source":"s","extra":1}')).toMatch(/field "extra": unknown field/);
    expect(bad('{"gold": "1",')).toMatch(/^cases\.jsonl, line 1: the line is not valid JSON/);
    expect(bad('[1]')).toMatch(/line 1: each line must be a JSON object/);
  });
});

describe('answers the checker reads and compares', () => {
  it('joins boxes that end the answer together, not boxes far apart', () => {
    expect(extractBoxed('so $n = \\boxed{-2}$ and $\\boxed{1}$.')).toBe('-2; 1');
    expect(extractBoxed('\\boxed{1} papers and \\boxed{2} bins')).toBe('1; 2');
    expect(extractBoxed('\\boxed{1} no no no no no \\boxed{2}')).toBe('2');
    expect(extractBoxed('$\\boxed{35} + \\boxed{4}$')).toBe('35; 4');
  });

  it('lets a final answer written after the last box win', () => {
    const text = 'so $x = \\boxed{200}$. Then ... Final Answer: The final answer is $10,455$. I hope it is correct.';
    expect(extractAnswer(text)).toEqual({ answer: '10,455', method: 'answer_is' });
    expect(extractAnswer('The final answer is 3. So \\boxed{4}.')).toEqual({ answer: '4', method: 'boxed' });
  });

  it('never joins list items into one number', () => {
    for (const [a, b] of [['68', '6 \\text{ and } 8'], ['32, 349', '32349'], ['1,2', '12'], ['3 2', '32'], ['1;2;3', '123']]) {
      expect(answersEquivalent(a, b), `${a} vs ${b}`).toBe(false);
      expect(answersEquivalent(b, a), `${b} vs ${a}`).toBe(false);
    }
    expect(answersEquivalent('32,349', '32349')).toBe(true);
    expect(answersEquivalent('32,\\!349', '32349')).toBe(true);
  });

  it('asks sympy about relations and equations and keeps its verdicts', async () => {
    expect(answersEquivalent('-x > -1', 'x < 1')).toBeUndefined();
    expect(await isEquivalent('-x > -1', 'x < 1', checker)).toBe(true);
    expect(await isEquivalent('x > -1', 'x < 1', checker)).toBe(false);
    expect(await isEquivalent('y=-\\frac{1}{2}x+\\frac{3}{4}', '2x+4y-3=0', checker)).toBe(true);
    expect(await isEquivalent('y=-\\frac{1}{2}x+\\frac{5}{4}', '2x+4y-3=0', checker)).toBe(false);
    expect(await isEquivalent('x \\ge 5', 'x \\le 5', checker)).toBe(false);
  });
});
