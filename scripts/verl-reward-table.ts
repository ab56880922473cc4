/**
 * Builds tests/fixtures/verl/reward-cases.json, the shared table that keeps verl's reward module
 * (server/verl/thor_reward.py) equal to the lab's TypeScript reward (docs/verl.md#the-reward): the
 * lab's own cases below, and every pair of data/equivalence/ (the hostile table and Math-Verify's),
 * each as a verl response string with its ground truth. The expected column is what the TypeScript
 * reward gives, with sympy in a Pyodide sandbox deciding what the cheap checks cannot.
 *
 *     npx tsx scripts/verl-reward-table.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseEquivalenceCases } from '../src/core/reward/agreement';
import { sandboxChecker } from '../src/core/reward/sandbox-checker';
import { verlScore, type VerlRewardSettings, type VerlScore } from '../src/core/verl/reward';
import { createNodePythonPool } from '../src/node/python';

const OUT = new URL('../tests/fixtures/verl/reward-cases.json', import.meta.url);

interface Case {
  id: string;
  group: string;
  solution: string;
  ground_truth: string;
  extra_info?: { reward?: Partial<VerlRewardSettings>; code_failed?: boolean };
  expected?: VerlScore;
}

const code = (program: string, output: string) => `\`\`\`python\n${program}\n\`\`\`\n\`\`\`output\n${output}\n\`\`\`\n`;
const TORL = { reward: { scheme: 'torl' as const } };
const TORL_PENALTY = { reward: { scheme: 'torl' as const, code_failure_penalty: true } };
const nested = (depth: number, inner: string) => '('.repeat(depth) + inner + ')'.repeat(depth);

/** [group, solution, ground truth, extra_info?] */
const OWN: [string, string, string, Case['extra_info']?][] = [
  ['integer', 'So the total is \\boxed{42}.', '42'],
  ['integer', 'So the total is \\boxed{42}.', '43'],
  ['integer', '\\boxed{1,234}', '1234'],
  ['integer', '\\boxed{1,2}', '12'],
  ['integer', '\\boxed{007}', '7'],
  ['integer', '\\boxed{32, 349}', '32349'],
  ['integer', '\\boxed{32,349}', '32349'],
  ['integer', '\\boxed{1\\,000}', '1000'],
  ['integer', '\\boxed{999999999999999999999}', '1000000000000000000000'],
  ['integer', '\\boxed{9007199254740993}', '9007199254740992'],
  ['integer', '\\boxed 5', '5'],
  ['integer', '\\fbox{12}', '12'],
  ['negative', '\\boxed{-7}', '-7'],
  ['negative', '\\boxed{\u22127}', '-7'],
  ['negative', '\\boxed{- 3}', '-3'],
  ['negative', '\\boxed{-\\frac{1}{2}}', '-0.5'],
  ['negative', '\\boxed{-----5}', '-5'],
  ['negative', '\\boxed{--5}', '5'],
  ['negative', '\\boxed{7}', '-7'],
  ['fraction', '\\boxed{\\frac{1}{2}}', '0.5'],
  ['fraction', '\\boxed{\\dfrac{3}{4}}', '\\frac34'],
  ['fraction', '\\boxed{\\tfrac12}', '1/2'],
  ['fraction', '\\boxed{2/4}', '\\frac{1}{2}'],
  ['fraction', '\\boxed{1\\frac{4}{5}}', '9/5'],
  ['fraction', '\\boxed{\\frac{1}{3}}', '0.333'],
  ['fraction', '\\boxed{0.3333333}', '\\frac13'],
  ['fraction', '\\boxed{\\frac{639}{40}}', '15\\frac{39}{40}'],
  ['fraction', '\\boxed{\\cfrac{2}{3}}', '\\frac{4}{6}'],
  ['fraction', '\\boxed{\\frac{\\sqrt{3}}{2}}', '\\frac{1}{2}\\sqrt{3}'],
  ['decimal', '\\boxed{3.14}', '3.140'],
  ['decimal', '\\boxed{.5}', '0.5'],
  ['decimal', '\\boxed{1000,99}', '1000.99'],
  ['decimal', '\\boxed{1,22}', '1.22'],
  ['decimal', '\\boxed{1.22}', '1,22'],
  ['decimal', '\\boxed{3.14159}', '\\pi'],
  ['decimal', '\\boxed{3.1415926536}', '\\pi'],
  ['decimal', '\\boxed{0.1+0.2}', '0.3'],
  ['sqrt', '\\boxed{2\\sqrt{3}}', '\\sqrt{12}'],
  ['sqrt', '\\boxed{\\sqrt2}', '\\sqrt{2}'],
  ['sqrt', '\\boxed{\\sqrt[3]{27}}', '3'],
  ['sqrt', '\\boxed{\\sqrt{-4}}', '2i'],
  ['sqrt', '\\boxed{\u221a2}', '\\sqrt{2}'],
  ['sqrt', '\\boxed{\\sqrt{2}}', '1.41421'],
  ['percent', '\\boxed{10\\%}', '10'],
  ['percent', '\\boxed{10\\%}', '0.1'],
  ['percent', 'The answer is 28 percent.', '28'],
  ['percent', '\\boxed{28\\%}', '0.28\\%'],
  ['percent', '\\boxed{50}', '50\\%'],
  ['units', '\\boxed{5\\text{ cm}}', '5'],
  ['units', '\\boxed{5\\text{ cm}^2}', '5'],
  ['units', '\\boxed{12 \\text{ dollars}}', '12'],
  ['units', '\\boxed{\\$18.90}', '18.9'],
  ['units', '\\boxed{90^\\circ}', '90'],
  ['units', '\\boxed{90\u00b0}', '90'],
  ['units', '\\boxed{5 meters}', '5'],
  ['text', '\\boxed{\\text{Evelyn}}', 'Evelyn'],
  ['text', '\\boxed{\\text{even}}', 'Even'],
  ['text', '\\boxed{(B)}', 'B'],
  ['text', '\\boxed{B}', 'C'],
  ['text', '\\boxed{\\text{five}}', '5'],
  ['text', '\\boxed{twenty-one}', '21'],
  ['text', '\\boxed{one hundred}', '100'],
  ['text', '\\boxed{constructor}', 'Constructor'],
  ['text', '\\boxed{constructor}', '00functionObject(){[nativecode]}'],
  ['text', '\\boxed{ten constructor}', '10functionObject(){[nativecode]}'],
  ['text', '\\boxed{__proto__}', '0[objectObject]'],
  ['text', '\\boxed{one hundred constructor}', 'NaN'],
  ['list', '\\boxed{6 \\text{ and } 8}', '68'],
  ['list', '\\boxed{6 \\text{ and } 8}', '6, 8'],
  ['list', '\\boxed{1, 2}', '2, 1'],
  ['list', '\\boxed{1, 1, 2}', '1, 2'],
  ['list', '\\boxed{1, 2}', '1, 1, 2'],
  ['list', '\\boxed{x=2 \\text{ or } x=3}', '2, 3'],
  ['list', '\\boxed{a=4, -8, -10}', 'a = 4, a = -8, a = -10'],
  ['set', '\\boxed{\\{1, 2\\}}', '\\{2,1\\}'],
  ['set', '\\boxed{\\{1, 2, 3\\}}', '\\{1,2\\}'],
  ['set', '\\boxed{\\pm 2}', '2, -2'],
  ['set', '\\boxed{(-\\infty, 1) \\cup (2, \\infty)}', '(2, \\infty) \\cup (-\\infty, 1)'],
  ['set', '\\boxed{\\emptyset}', '\\varnothing'],
  ['tuple', '\\boxed{(1, 2)}', '(1,2)'],
  ['tuple', '\\boxed{(2, 1)}', '(1,2)'],
  ['tuple', '\\boxed{\\left( 1, 2 \\right)}', '(1,2)'],
  ['tuple', '\\boxed{(1, 2, 3)}', '(1,2)'],
  ['tuple', '\\boxed{1, 3}', '(1, 3)'],
  ['tuple', '\\boxed{p=5, q=2}', '(5,2)'],
  ['tuple', '\\boxed{(p,q)=(3,2)}', '(3,2)'],
  ['interval', '\\boxed{[1, 3)}', '[1,3)'],
  ['interval', '\\boxed{(1, 3]}', '[1,3]'],
  ['interval', '\\boxed{x \\in [-2, 7]}', '[-2,7]'],
  ['interval', '\\boxed{-2 \\le x \\le 7}', '[-2, 7]'],
  ['interval', '\\boxed{-2 \\leq x \\leq 7}', '[-2, 7)'],
  ['interval', '\\boxed{x > 3}', '(3, \\infty)'],
  ['interval', '\\boxed{1 < x < 2}', '(1, 2)'],
  ['label', '\\boxed{x = 5}', '5'],
  ['label', '\\boxed{y = 5}', 'x = 5'],
  ['label', '\\boxed{x = 5+5+1 = 11}', '11'],
  ['label', '\\boxed{x \\approx 11}', '11'],
  ['label', '\\boxed{\\frac13 \\approx 0.33}', '\\frac{1}{3}'],
  ['label', '\\boxed{x = 3}', '2x = 6'],
  ['matrix', '\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}', '\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}'],
  ['matrix', '\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}}', '\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}'],
  ['complex', '\\boxed{6-5i}', '-5i+6'],
  ['complex', '\\boxed{3i}', '3'],
  ['numeric', '\\boxed{\\binom{10}{3}}', '120'],
  ['numeric', '\\boxed{5!}', '120'],
  ['numeric', '\\boxed{2^10}', '1024'],
  ['numeric', '\\boxed{2^{10}}', '1024'],
  ['numeric', '\\boxed{10^{400}}', '10^{400}'],
  ['numeric', '\\boxed{10^{400}}', '10^{401}'],
  ['numeric', '\\boxed{171!}', '171!'],
  ['numeric', '\\boxed{170!}', '7.257415615307994e306'],
  ['numeric', '\\boxed{1/0}', '\\infty'],
  ['numeric', '\\boxed{0/0}', '0'],
  ['numeric', '\\boxed{1\\frac{1}{0}}', '\\infty'],
  ['numeric', '\\boxed{2^{-1\\frac{1}{0}}}', '0'],
  ['numeric', '\\boxed{inf}', '\\infty'],
  ['numeric', '\\boxed{\\infty}', 'infinity'],
  ['numeric', '\\boxed{NaN}', 'NaN'],
  ['numeric', `\\boxed{${nested(40, '5')}}`, '5'],
  ['numeric', `\\boxed{${nested(40, '5')}}`, '6'],
  ['symbolic', '\\boxed{x^2+2x}', 'x(x+2)'],
  ['symbolic', '\\boxed{(x+1)^2}', 'x^2+2x+1'],
  ['symbolic', '\\boxed{x^2-1}', '(x-1)(x+2)'],
  ['symbolic', '\\boxed{\\frac{x}{2}}', '0.5x'],
  ['symbolic', '\\boxed{a+b}', 'b+a'],
  ['symbolic', '\\boxed{2x+4y-3=0}', 'y = -\\frac12x+\\frac34'],
  ['symbolic', '\\boxed{x < 1}', '-x > -1'],
  ['symbolic', '\\boxed{x \\ge 5}', 'x \\le 5'],
  ['symbolic', '\\boxed{\\sqrt{x^2}}', 'x'],
  ['symbolic', '\\boxed{\\lambda + 1}', '1 + \\lambda'],
  ['symbolic', '\\boxed{\\pi r^2}', 'r^2\\pi'],
  ['symbolic', '\\boxed{e^{i\\pi}}', '-1'],
  ['no answer', 'I think it is 5.', '5'],
  ['no answer', '', '5'],
  ['no answer', 'The answer is', '5'],
  ['no answer', '\\boxed{}', '5'],
  ['no answer', 'So $x = 5$.', '5'],
  ['several boxed', '\\boxed{3} ... wait, that was wrong. Redoing every step with care shows the total is \\boxed{5}', '5'],
  ['several boxed', '\\boxed{5} or \\boxed{6}', '5'],
  ['several boxed', '\\boxed{-2} and \\boxed{1}', '1, -2'],
  ['several boxed', '$\\boxed{1}\\boxed{2}$', '1,2'],
  ['several boxed', '$x = \\boxed{1}$, $y = \\boxed{2}$', '1, 2'],
  ['several boxed', '\\boxed{4} is my first try; checking it again with the formula gives a different value, \\boxed{5}', '4'],
  ['answer is', 'The final answer is $\\frac{3}{5}$.', '0.6'],
  ['answer is', 'Final Answer: The largest $n$ is 12.', '12'],
  ['answer is', 'So \\boxed{7}. The final answer is 8.', '8'],
  ['answer is', 'So \\boxed{7}. The final answer is 8.', '7'],
  ['answer is', 'The answer is **42**.', '42'],
  ['answer is', 'The answer is: $12$ and $13$', '12, 13'],
  ['answer is', 'The answer is \u201c17\u201d.', '17'],
  ['gsm8k', 'She pays 8*9 = 72 dollars.\n#### 72', '72'],
  ['gsm8k', '#### 1,000', '1000'],
  ['malformed', '\\boxed{\\frac{1}{2}', '1/2'],
  ['malformed', '\\boxed{5} then \\boxed{6', '5'],
  ['malformed', '\\boxed{\\frac{1}{}}', '1'],
  ['malformed', '\\boxed{\\sqrt{}}', '0'],
  ['malformed', '\\boxed{{{{{5}}}}}', '5'],
  ['malformed', '\\boxed{\\\\frac{1}{2}}', '0.5'],
  ['malformed', '\\boxed{5}}}}', '5'],
  ['malformed', '\\boxed{\\left(1,2\\right.}', '(1,2)'],
  ['malformed', '\\boxed{$5$}', '5'],
  ['malformed', '\\boxed{\\frac{1}{2}}', '\\frac{1}{'],
  ['malformed', '\\boxed{x^}', 'x^'],
  ['hostile', "\\boxed{__import__('os').system('echo hi')}", '0'],
  ['hostile', '\\boxed{eval(x)}', 'x'],
  ['hostile', '\\boxed{x}', '\\constructor'],
  ['hostile', '\\boxed{\\toString}', '\\toString'],
  ['hostile', '\\boxed{x.__class__}', 'x.__class__'],
  ['hostile', '\\boxed{\ud83d\ude00}', '\ud83d\ude00'],
  ['hostile', '\\boxed{5}\ud83d\ude00\ud83d\ude00', '5'],
  ['hostile', '\\boxed{5\u00a0000}', '5000'],
  ['hostile', '\\boxed{5}\u2028', '5'],
  ['hostile', '\\boxed{5\u200b}', '5'],
  ['hostile', '\\boxed{\ufeff5}', '5'],
  ['hostile', '\\boxed{5\u001f}', '5'],
  ['hostile', 'The answer is 5\u00855', '5'],
  ['hostile', '\\boxed{\u0002}', '\u0002'],
  ['hostile', '\\boxed{$$$}', '$'],
  ['hostile', '\\boxed{\\boxed{\\boxed{9}}}', '9'],
  ['hostile', '\\boxed{1;2;3}', '123'],
  ['hostile', '\\boxed{1e3}', '1000'],
  ['hostile', '\\boxed{0x10}', '16'],
  ['hostile', '\\boxed{\u0661\u0662}', '12'],
  ['hostile', 'final answer \ud83d\ude00'.repeat(1) + '\ud83d\ude00'.repeat(45) + ' is 5', '5'],
  ['hostile', 'final answer ' + 'x'.repeat(95) + ' is 5', '5'],
  ['repetition', 'ab'.repeat(300) + ' \\boxed{5}', '5'],
  ['repetition', 'ab'.repeat(300) + ' \\boxed{5}', '5', TORL],
  ['repetition', 'abcdefghij'.repeat(3) + ' \\boxed{5}', '5'],
  ['repetition', '\ud83d\ude00'.repeat(25) + ' \\boxed{5}', '5'],
  ['repetition', 'x'.repeat(40) + ' \\boxed{5}', '5', { reward: { repetition_ngram: 20, repetition_max_count: 30 } }],
  ['repetition', 'ab'.repeat(300) + ' \\boxed{5}', '5', { reward: { repetition_penalty: false } }],
  ['tool output', `Compute it.\n${code("print('\\\\boxed{7}')", '\\boxed{7}')}So \\boxed{8}`, '7'],
  ['tool output', `Compute it.\n${code("print('\\\\boxed{7}')", '\\boxed{7}')}So \\boxed{8}`, '8'],
  ['tool output', `Compute it.\n${code('print(7)', '\\boxed{7}')}`, '7'],
  ['tool output', `Compute it.\n${code('print(347*829)', '287663')}So the product is \\boxed{287663}.`, '287663'],
  ['tool output', 'Compute it.\n```python\nprint(1)\n```\n```output\n\\boxed{1}', '1'],
  ['tool output', 'Compute it.\n```python\nprint(1)\n``````output\n1\n```\nSo \\boxed{1}', '1'],
  ['tool output', 'The answer is in the output.\n```output\nThe answer is 9\n```\n', '9'],
  ['torl', '\\boxed{5}', '5', TORL],
  ['torl', '\\boxed{6}', '5', TORL],
  ['torl', 'no answer here', '5', TORL],
  ['torl', `Try.\n${code('print(x)', "NameError: name 'x' is not defined")}So \\boxed{5}`, '5', TORL_PENALTY],
  ['torl', `Try.\n${code('print(x)', "NameError: name 'x' is not defined")}So \\boxed{6}`, '5', TORL_PENALTY],
  ['torl', `Try.\n${code('x = 1', 'The code ran without errors but printed nothing. Use print() to show results.')}So \\boxed{5}`, '5', TORL_PENALTY],
  ['torl', `Try.\n${code('while True: pass', 'TimeoutError: the code did not finish within the time limit.')}So \\boxed{5}`, '5', TORL_PENALTY],
  ['torl', `Try.\n${code('print(5)', '5')}So \\boxed{5}`, '5', TORL_PENALTY],
  ['torl', `Try.\n${code('print(5)', '5')}So \\boxed{5}`, '5', { ...TORL_PENALTY, code_failed: true }],
  ['torl', `Try.\n${code('print(x)', "NameError: name 'x' is not defined")}So \\boxed{5}`, '5', { ...TORL_PENALTY, code_failed: false }],
  ['torl', `Try.\n${code('print(x)', "NameError: name 'x' is not defined")}So \\boxed{5}`, '5', TORL],
];

/** A pair of data/equivalence/ as a response: a text with a box or an "answer is" stays as it is; a bare answer goes in a box. */
function responseOf(prediction: string): string {
  return /\\boxed|\\fbox|answer is|####/i.test(prediction) ? prediction : `The final result is \\boxed{${prediction}}`;
}

const cases: Case[] = OWN.map(([group, solution, ground_truth, extra_info], i) => ({ id: `lab-${String(i + 1).padStart(3, '0')}`, group, solution, ground_truth, ...(extra_info && { extra_info }) }));
for (const [name, tag] of [['hostile.jsonl', 'hostile-table'], ['math-verify.jsonl', 'math-verify']] as const) {
  const file = `data/equivalence/${name}`;
  const table = parseEquivalenceCases(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'), file);
  table.forEach((c, i) => cases.push({ id: `${tag}-${String(i + 1).padStart(3, '0')}`, group: `${tag}: ${c.source}`, solution: responseOf(c.prediction), ground_truth: c.gold }));
}

const pool = await createNodePythonPool({ size: 1 });
try {
  const checker = sandboxChecker(pool);
  for (const c of cases) c.expected = await verlScore(c.solution, c.ground_truth, c.extra_info, checker);
} finally {
  await pool.close();
}
const header = {
  about: 'verl responses with their ground truth and what the lab\'s TypeScript reward gives for them (src/core/verl/reward.ts verlScore); server/verl/thor_reward.py must give the same. Built by scripts/verl-reward-table.ts; docs/verl.md#the-reward.',
  count: cases.length,
};
writeFileSync(OUT, `${JSON.stringify({ ...header, cases }, null, 1)}\n`);
console.log(`wrote ${cases.length} cases to ${OUT.pathname}`);
