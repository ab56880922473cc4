import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { answerKey, answersEquivalent, isEquivalent, type SymbolicChecker } from '../../src/core/reward/equivalence';
import { extractAnswer, extractAnswerIs, extractBoxed, extractGsm8kAnswer } from '../../src/core/reward/extract';
import { normalizeAnswer } from '../../src/core/reward/normalize';
import { computeReward, gradeResponse, hasRepetition, THOR_REWARD, type RewardOptions } from '../../src/core/reward/reward';

const TORL_REWARD: RewardOptions = { ...THOR_REWARD, scheme: 'torl', repetitionPenalty: false };
import { latexToSympy, parseSymbolicOutput, symbolicCheckCode } from '../../src/core/reward/sympy';

const jsonl = (file: string) =>
  readFileSync(new URL(`../../data/benchmarks/${file}`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('answer extraction', () => {
  it('takes the last brace-balanced \\boxed{} (or \\fbox{})', () => {
    expect(extractBoxed('so \\boxed{\\frac{1}{2}}.')).toBe('\\frac{1}{2}');
    expect(extractBoxed('first \\boxed{3} then \\boxed{4}')).toBe('4');
    expect(extractBoxed('\\fbox{7}')).toBe('7');
    expect(extractBoxed('\\boxed{\\{1,2\\}}')).toBe('\\{1,2\\}');
    expect(extractBoxed('\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}')).toBe('\\left( 3, \\frac{\\pi}{2} \\right)');
    // A truncated last box is not an answer: the last complete one is.
    expect(extractBoxed('\\boxed{12} and finally \\boxed{\\frac{1}{')).toBe('12');
    expect(extractBoxed('$\\boxed 5$')).toBe('5');
    expect(extractBoxed('no box here')).toBeUndefined();
    expect(extractBoxed('\\boxedx{3}')).toBeUndefined();
  });

  it('reads GSM8K "#### N" from every line of the real test set', () => {
    const rows = jsonl('gsm8k-test.jsonl');
    expect(rows.length).toBe(1319);
    expect(extractGsm8kAnswer(rows[0].answer as string)).toBe('18');
    const values = rows.map((r) => extractGsm8kAnswer(r.answer as string));
    expect(values.every((v) => v !== undefined && /^-?[\d,]+(\.\d+)?$/.test(v))).toBe(true);
    expect(values.filter((v) => v!.includes(',')).length).toBe(14);
    expect(values).toContain('1,450,000');
    expect(answersEquivalent('1450000', '1,450,000')).toBe(true);
  });

  it('reads "The answer is X" without closing period or wrappers', () => {
    expect(extractAnswerIs('Adding up, the answer is 42.')).toBe('42');
    expect(extractAnswerIs('So the final answer is $\\frac{1}{2}$.')).toBe('\\frac{1}{2}');
    expect(extractAnswerIs('The answer is: **7**')).toBe('7');
    expect(extractAnswerIs('The answer is 3.5.')).toBe('3.5');
    expect(extractAnswerIs('The answer is 1.\nWait, the answer is 2.')).toBe('2');
    expect(extractAnswerIs('nothing')).toBeUndefined();
  });

  it('tries boxed, then ####, then "the answer is"', () => {
    expect(extractAnswer('The answer is 3. \\boxed{4}')).toEqual({ answer: '4', method: 'boxed' });
    expect(extractAnswer('The answer is 3.\n#### 5')).toEqual({ answer: '5', method: 'gsm8k' });
    expect(extractAnswer('The answer is 3.')).toEqual({ answer: '3', method: 'answer_is' });
    expect(extractAnswer('\\boxed{}')).toBeUndefined();
  });
});

// [prediction, reference, equivalent]
const TABLE: [string, string, boolean][] = [
  // fractions
  ['\\frac{14}{3}', '14/3', true],
  ['\\dfrac{14}{3}', '\\frac{14}{3}', true],
  ['\\tfrac{1}{2}', '0.5', true],
  ['\\frac12', '\\frac{1}{2}', true],
  ['\\frac 34', '0.75', true],
  ['\\frac9{19}', '\\frac{9}{19}', true],
  ['-\\frac{35}{9}', '\\frac{-35}{9}', true],
  ['-\\frac{24}{25}', '-0.96', true],
  ['\\frac{14}{3}', '\\frac{3}{14}', false],
  ['-\\frac{35}{9}', '\\frac{35}{9}', false],
  ['0.333', '\\frac{1}{3}', false],
  // mixed numbers
  ['137 \\frac{1}{2}', '137.5', true],
  ['1\\frac{4}{5}', '\\frac{9}{5}', true],
  // multiple choice and words
  ['\\text{(C)}', 'C', true],
  ['(C)', '\\textbf{(C)}', true],
  ['\\text{(C)}', '(B)', false],
  ['\\text{Evelyn}', 'evelyn', true],
  ['\\text{Evelyn}', '\\text{Navin}', false],
  ['\\text{even}', '\\text{odd}', false],
  // tuples and intervals, element-wise and bracket-exact
  ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3,\\frac{\\pi}{2})', true],
  ['(8,-2)', '\\left(8, -2\\right)', true],
  ['(3, \\frac{\\pi}{2})', '(\\frac{\\pi}{2}, 3)', false],
  ['x \\in [-2,7]', '[-2, 7]', true],
  ['[-2,7]', '(-2,7)', false],
  ['(3,4]', '(3,4)', false],
  ['\\left(\\frac{3}{5},\\frac{8}{3}\\right]', '(0.6, \\frac83]', true],
  ['(-\\infty, 2) \\cup (3, \\infty)', '(3,\\infty)\\cup(-\\infty,2)', true],
  ['(-\\infty, 0]', '(-\\infty, 0)', false],
  ['\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]', '[\\frac{\\pi^2}{8},\\frac{5\\pi^2}{4}]', true],
  // unordered lists, sets and ±
  ['-2,1', '1, -2', true],
  ['3, 5, 7', '7,5,3', true],
  ['1,-2', '1,2', false],
  ['3, 5, 7', '3, 5', false],
  ['\\{1\\pm\\sqrt{5},-2\\}', '-2, 1+\\sqrt{5}, 1-\\sqrt{5}', true],
  ['3 \\pm 2 \\sqrt{2}', '3+2\\sqrt{2}, 3-2\\sqrt{2}', true],
  // complex numbers
  ['6 - 5i', '-5i+6', true],
  ['1+2i', '2i+1', true],
  ['6+9i', '9i+6', true],
  ['6-5i', '6+5i', false],
  ['1+274i', '1+247i', false],
  // money, thousands separators, percentages, degrees, units
  ['\\$32,\\!348', '32348', true],
  ['32,348', '32348', true],
  ['11,\\! 111,\\! 111,\\! 100', '11111111100', true],
  ['11111111100', '11111111101', false],
  ['\\$18.90', '18.9', true],
  ['\\$36', '36', true],
  ['10\\%', '10', true],
  ['10\\%', '0.1', true],
  ['0.5', '50\\%', true],
  ['10\\%', '1', false],
  ['145^\\circ', '145', true],
  ['30^{\\circ}', '30 degrees', true],
  ['145^\\circ', '135', false],
  ['90^\\circ', '180^\\circ', false],
  ['864 \\mbox{ inches}^2', '864', true],
  ['5.4 \\text{ cents}', '5.4', true],
  ['12\\mathrm{cm}', '12', true],
  ['\\mathrm{east}', '\\text{East}', true],
  ['\\frac{270}7\\text{ degrees}', '\\frac{270}{7}', true],
  // roots and π
  ['\\sqrt{51}', '51^{1/2}', true],
  ['2\\sqrt{5}', '\\sqrt{20}', true],
  ['11\\sqrt2', '11\\sqrt{2}', true],
  ['\\frac{\\sqrt{3}}{3}', '\\frac{1}{\\sqrt{3}}', true],
  ['\\frac{3\\sqrt{3}}{4}', '\\frac34\\sqrt3', true],
  ['-\\sqrt{3}', '-1.7320508075688772', true],
  ['\\sqrt{51}', '\\sqrt{52}', false],
  ['2\\sqrt{5}', '5\\sqrt{2}', false],
  ['12\\pi', '12 \\pi', true],
  ['-\\frac{\\pi}{6}', '-\\frac{1}{6}\\pi', true],
  ['\\frac{20000}{\\pi}', '6366.197723675814', true],
  ['\\pi', '3.14', false],
  // decimals, signs, powers, wrappers
  ['.35625', '0.35625', true],
  ['.0000672', '0.0000673', false],
  ['3.21', '3.2', false],
  ['18', '18.00', true],
  ['18', '-18', false],
  ['\u22127', '-7', true],
  ['10^{-3}', '0.001', true],
  ['2^{10}', '1024', true],
  ['1024', '1025', false],
  ['$5$', '5', true],
  ['5.', '5', true],
  ['x=5', '5', true],
  ['y = 2x + 3', 'y=2x+3', true],
  // bases and matrices
  ['204_5', '204_{5}', true],
  ['204_5', '204', false],
  ['\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}', '\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\\\ \\frac{5}{3} \\end{pmatrix}', true],
  ['\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}', '\\begin{pmatrix} -7 \\\\ 16 \\\\ -5 \\end{pmatrix}', false],
  ['\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}', '\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}', true],
  // nothing is never right
  ['', '5', false],
];

describe('answer equivalence', () => {
  it('has a table of at least 60 pairs, both ways', () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(60);
    expect(TABLE.filter(([, , e]) => e).length).toBeGreaterThan(30);
    expect(TABLE.filter(([, , e]) => !e).length).toBeGreaterThan(25);
  });

  it.each(TABLE)('%s ≡ %s is %s', (prediction, reference, expected) => {
    expect(answersEquivalent(prediction, reference)).toBe(expected);
    expect(answersEquivalent(reference, prediction)).toBe(expected);
  });

  it('finds every MATH500 answer equal to the last \\boxed{} of its own solution', () => {
    const rows = jsonl('math500-test.jsonl');
    expect(rows.length).toBe(500);
    const agree = rows.filter((r) => answersEquivalent(extractBoxed(r.solution as string) ?? '', r.answer as string) === true);
    expect(agree.length).toBe(500);
  });

  it('normalises to one canonical text', () => {
    expect(normalizeAnswer('\\left( 3, \\dfrac{\\pi}{2} \\right)')).toBe('(3,\\frac{\\pi}{2})');
    expect(normalizeAnswer('\\$32,\\!348')).toBe('32348');
    expect(normalizeAnswer('\\frac{270}7\\text{ degrees}')).toBe('\\frac{270}{7}');
    expect(normalizeAnswer('\\cot x')).toBe('\\cot x');
    expect(normalizeAnswer('x \\in [-2,7]')).toBe('[-2,7]');
  });

  it('leaves expressions with variables to the symbolic check', async () => {
    expect(answersEquivalent('x^3+3x-6', '3x-6+x^3')).toBeUndefined();
    expect(answersEquivalent('(a+5)(b+2)', '(b+2)(a+5)')).toBeUndefined();
    expect(answersEquivalent('p - q', '-q+p')).toBeUndefined();
    // Without a checker, undecided is not equivalent.
    expect(await isEquivalent('x^3+3x-6', '3x-6+x^3')).toBe(false);
  });

  it('sends only the undecided atoms to the checker and combines its verdicts', async () => {
    const asked: [string, string][] = [];
    const verdicts: Record<string, boolean | undefined> = { 'x^3+3x-6|3x-6+x^3': true, '2k+2|2(k+1)': true, 'x|5': false, 'y|7': undefined };
    const checker: SymbolicChecker = {
      equivalent: async (a, b) => {
        asked.push([a, b]);
        return verdicts[`${a}|${b}`];
      },
    };
    expect(await isEquivalent('x^3+3x-6', '3x-6+x^3', checker)).toBe(true);
    expect(await isEquivalent('(1, 2k+2)', '\\left(1, 2(k+1)\\right)', checker)).toBe(true);
    expect(asked).toEqual([
      ['x^3+3x-6', '3x-6+x^3'],
      ['2k+2', '2(k+1)'],
    ]);
    expect(await isEquivalent('x', '5', checker)).toBe(false);
    expect(await isEquivalent('y', '7', checker)).toBe(false);
    asked.length = 0;
    expect(await isEquivalent('\\frac{1}{2}', '0.5', checker)).toBe(true);
    expect(await isEquivalent('3', '4', checker)).toBe(false);
    expect(asked).toEqual([]);
  });

  it('gives equivalent simple answers one voting key', () => {
    expect(answerKey('\\frac{1}{2}')).toBe(answerKey('0.5'));
    expect(answerKey('\\$1,000')).toBe('1000');
    expect(answerKey('6 - 5i')).toBe('6-5i');
    expect(answerKey('x+1')).toBe('x+1');
  });
});

describe('sympy snippet', () => {
  it('turns LaTeX into sympy syntax', () => {
    expect(latexToSympy('\\frac{1}{2}x^2')).toBe('((1)/(2))x**2');
    expect(latexToSympy('\\sqrt{2}+\\sqrt[3]{x}')).toBe('sqrt(2)+((x)**(1/(3)))');
    expect(latexToSympy('\\cot x')).toBe('cot x');
    expect(latexToSympy('2\\pi r')).toBe('2 pi r');
    expect(latexToSympy('5x-7y+11z+4=0')).toBe('5x-7y+11z+4=0');
    expect(latexToSympy('x^{n+1}')).toBe('x**(n+1)');
  });

  it('refuses what sympy should not see', () => {
    expect(latexToSympy('\\text{ellipse}')).toBeUndefined();
    expect(latexToSympy('204_5')).toBeUndefined();
    expect(latexToSympy('__import__')).toBeUndefined();
    expect(latexToSympy("x'")).toBeUndefined();
    expect(latexToSympy('a=b=c')).toBeUndefined();
    expect(symbolicCheckCode('\\text{A}', 'x')).toBeUndefined();
  });

  it('embeds both sides as Python string literals and prints one verdict', () => {
    const code = symbolicCheckCode('x^3+3x-6', '3x-6+x^3')!;
    expect(code).toContain('print(same("x**3+3x-6", "3x-6+x**3"))');
    expect(code).toContain('implicit_multiplication_application');
    expect(parseSymbolicOutput('True\n')).toBe(true);
    expect(parseSymbolicOutput('warning\nFalse')).toBe(false);
    expect(parseSymbolicOutput('None')).toBeUndefined();
    expect(parseSymbolicOutput('')).toBeUndefined();
  });
});

describe('rewards', () => {
  it('THOR: 1 / 0, and 0 on repetition', () => {
    expect(computeReward({ correct: true, codeFailed: false, policyText: 'ok' }, THOR_REWARD)).toBe(1);
    expect(computeReward({ correct: false, codeFailed: true, policyText: 'ok' }, THOR_REWARD)).toBe(0);
    const looping = 'let me compute again. '.repeat(30);
    expect(computeReward({ correct: true, codeFailed: false, policyText: looping }, THOR_REWARD)).toBe(0);
    expect(computeReward({ correct: true, codeFailed: false, policyText: looping }, { ...THOR_REWARD, repetitionPenalty: false })).toBe(1);
  });

  it('ToRL: +1 / -1, with the optional -0.5 when code failed', () => {
    expect(computeReward({ correct: true, codeFailed: false, policyText: '' }, TORL_REWARD)).toBe(1);
    expect(computeReward({ correct: false, codeFailed: true, policyText: '' }, TORL_REWARD)).toBe(-1);
    const penalised = { ...TORL_REWARD, codeFailurePenalty: true };
    expect(computeReward({ correct: false, codeFailed: true, policyText: '' }, penalised)).toBe(-1.5);
    expect(computeReward({ correct: true, codeFailed: true, policyText: '' }, penalised)).toBe(0.5);
    expect(computeReward({ correct: true, codeFailed: false, policyText: '' }, penalised)).toBe(1);
  });

  it('detects a 20-character n-gram occurring more than 20 times', () => {
    const unit = 'abcdefghijklmnopqrst'; // 20 distinct characters: each window occurs once per copy
    expect(hasRepetition(unit.repeat(20) + unit.slice(0, 19))).toBe(false); // "abcd...t" occurs 20 times
    expect(hasRepetition(unit.repeat(21))).toBe(true);
    expect(hasRepetition('The product is 4821*97 = 467637. '.repeat(3))).toBe(false);
  });

  it('grades a response end to end', async () => {
    const text = 'We compute.\n```python\nprint(28*7)\n```\nSo the result is \\boxed{196}.';
    const g = await gradeResponse({ policyText: text, codeFailed: false }, '196', THOR_REWARD);
    expect(g).toEqual({ extracted: { answer: '196', method: 'boxed' }, correct: true, reward: 1 });
    const wrong = await gradeResponse({ policyText: 'no answer', codeFailed: true }, '196', { ...TORL_REWARD, codeFailurePenalty: true });
    expect(wrong).toEqual({ extracted: undefined, correct: false, reward: -1.5 });
  });
});
