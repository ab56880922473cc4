/**
 * TIRGen's parts that need no model and no sandbox (docs/tirgen.md): the rule critic on hand-written
 * steps, the model critic's reply parser, each filter on hand-made samples, settings, the report's
 * counts, and resuming from what an interrupted run left on disk.
 */
import { describe, expect, it } from 'vitest';
import {
  addCounts,
  checkResume,
  codeBlocks,
  dollarsPaired,
  emptyCounts,
  failedFilters,
  findComputations,
  hasBoxedAnswer,
  hasCodeInThinking,
  makeReport,
  messagesLine,
  parseCriticReply,
  parseTirgenSettings,
  problemsOfFile,
  passesPaperCodeRule,
  passesThorCodeRule,
  progressHeaderLine,
  progressLine,
  resumeState,
  RuleCritic,
  sameOutput,
  sampleLine,
  TIRGEN_DEFAULTS,
  type ProgressHeader,
  type QuestionResult,
  type TirgenSample,
} from '../../src/core/tirgen';
import { readProblems } from '../../src/core/data/readers';
import { readDemonstrationsJsonl } from '../../src/core/tir/demonstrations';

const critic = new RuleCritic();
const python = (line: string) => findComputations(line).map((c) => c.python);

describe('the rule critic', () => {
  it('leaves steps with no computation unchanged', async () => {
    for (const step of [
      'Let x be the number of apples Tom has.',
      'Directly: \\boxed{158}.',
      'Solve 3x+5=20 for x: first move the constant.',
      'Step 1: read the problem carefully.',
      'So the answer is \\boxed{28*7}.',
      'x - 3*4 is part of the expression.',
      'Three quarters, 3/4 of the class, came.',
      '',
    ])
      expect(await critic.revise(step), step).toEqual({ kind: 'unchanged' });
  });

  it('finds computations written in symbols', () => {
    expect(python('First compute 347*829 = 287663.')).toEqual(['347 * 829']);
    expect(python('So $347 \\times 829 = 287663$ apples.')).toEqual(['347 * 829']);
    expect(python('2^10 = 1024 and 17 mod 5 = 2')).toEqual(['2 ** 10', '17 % 5']);
    expect(python('We need 3^25 mod 5.')).toEqual(['pow(3, 25, 5)']);
    expect(python('gcd(66,82) = 2, lcm(4, 6) = 12')).toEqual(['gcd(66, 82)', 'lcm(4, 6)']);
    expect(python('\\frac{3}{4}+\\frac{5}{6} = \\frac{19}{12}')).toEqual(['Fraction(3) / 4 + Fraction(5) / 6']);
    expect(python('1+2+...+50 = 1275')).toEqual(['sum(range(1, 51))']);
    expect(python('1^2+2^2+...+10^2')).toEqual(['sum(k**2 for k in range(1, 11))']);
    expect(python('1+3+3^2+...+3^6')).toEqual(['sum(3**k for k in range(0, 7))']);
    expect(python('7! = 5040 and \\binom{10}{3} = 120')).toEqual(['factorial(7)', 'comb(10, 3)']);
    expect(python('(12-4)*3 = 24, and -3*4 = -12')).toEqual(['(12 - 4) * 3', '-3 * 4']);
    expect(python('100 / 4 = 25')).toEqual(['Fraction(100) / 4']);
    // An irregular "series" is not read as its first terms.
    expect(python('1+2+4+...+7')).toEqual([]);
  });

  it('reads "= expression" as another computation, never as a claimed result cut from it', () => {
    const found = findComputations('66*37 = 66*30 + 66*7.');
    expect(found.map((c) => c.python)).toEqual(['66 * 37', '66 * 30 + 66 * 7']);
    expect(found.map((c) => c.claim)).toEqual([undefined, undefined]);
    expect(findComputations('66*30 = 1980.')[0].claim).toBe('1980');
    expect(findComputations('So 3/4 = 0.75 here')[0].claim).toBe('0.75');
  });

  it('finds computations written in words', () => {
    expect(python('347 times 829 is 287663')).toEqual(['347 * 829']);
    expect(python('The remainder of 17 divided by 5 is 2.')).toEqual(['17 % 5']);
    expect(python('the remainder when 100 is divided by 7')).toEqual(['100 % 7']);
    expect(python('Now 17 modulo 5.')).toEqual(['17 % 5']);
    expect(python('2 to the power of 10 modulo 7')).toEqual(['pow(2, 10, 7)']);
    expect(python('2 raised to the 10th power')).toEqual(['2 ** 10']);
    expect(python('the greatest common divisor of 12 and 18')).toEqual(['gcd(12, 18)']);
    expect(python('the least common multiple of 4 and 6')).toEqual(['lcm(4, 6)']);
    expect(python('10 choose 3, or the number of ways to choose 3 students from 10')).toEqual(['comb(10, 3)', 'comb(10, 3)']);
    expect(python('the sum of 45 and 67, then 90 minus 12')).toEqual(['45 + 67', '90 - 12']);
    expect(python('12 divided by 5')).toEqual(['Fraction(12) / 5']);
    expect(python('5 factorial, and 9 squared')).toEqual(['factorial(5)', '9 ** 2']);
    expect(python('We need the largest prime factor of 7174.')).toEqual(['max(primefactors(7174))']);
    expect(python('The greatest prime divisor of 66 is 11')).toEqual(['max(primefactors(66))']);
    expect(findComputations('The greatest prime divisor of 66 is 11')[0]).toMatchObject({ claim: '11', imports: ['from sympy import primefactors'] });
    // "prime factors" without "largest" is no single number; nor is a decimal's largest prime factor.
    expect(python('the prime factors of 66')).toEqual([]);
    expect(python('the largest prime factor of 12.5')).toEqual([]);
  });

  it('rewrites each line with computation as its words, a printing block and the claimed result as the expected output', async () => {
    const v = await critic.revise('Let me work it out.\nFirst, 347 times 829 = 287663.\nThen 287663 + 5 = 287668.\nSo \\boxed{287668}.');
    expect(v.kind).toBe('rewrite');
    const text = (v as { text: string }).text;
    expect(text).toBe(
      'Let me work it out.\nFirst, 347 times 829\n```python\nprint(347 * 829)\n```\n```output\n287663\n```\nThen 287663 + 5\n```python\nprint(287663 + 5)\n```\n```output\n287668\n```\nSo \\boxed{287668}.',
    );
    // Imports come first, one line per module; a $ left open by the cut is closed.
    const v2 = await critic.revise('We have $gcd(12, 18) \\cdot lcm(4, 6) = 72$ here.');
    expect((v2 as { text: string }).text).toBe('We have $gcd(12, 18) \\cdot lcm(4, 6)$\n```python\nfrom math import gcd, lcm\nprint(gcd(12, 18) * lcm(4, 6))\n```\n```output\n72\n```\n');
  });

  it("keeps the actor's own code block as it is", async () => {
    expect(await critic.revise('Use Python.\n```python\nprint(169*70)\n```')).toEqual({ kind: 'rewrite', text: 'Use Python.\n```python\nprint(169*70)\n```\n' });
  });
});

describe("the model critic's reply parser", () => {
  const step = 'We multiply 347 by 829 to get 287663, so the total is 287663.';
  it('reads NO COMPUTATION, or the step given back, as unchanged', () => {
    expect(parseCriticReply('NO COMPUTATION', step, 0.5).kind).toBe('unchanged');
    expect(parseCriticReply('<think>nothing to do</think>\n**No computation**', step, 0.5).kind).toBe('unchanged');
    expect(parseCriticReply(`  ${step}\n`, step, 0.5).kind).toBe('unchanged');
  });

  it('takes a rewrite with code, dropping thinking, a label and a block cut off at the end', () => {
    const v = parseCriticReply('<think>easy</think>Rewrite:\nWe multiply 347 by 829:\n```py\nprint(347*829)\n```\n```output\n287663\n```\n```python\nprint(', step, 0.5);
    expect(v).toMatchObject({ kind: 'rewrite', text: 'We multiply 347 by 829:\n```python\nprint(347*829)\n```\n```output\n287663\n```\n' });
  });

  it('counts a reply with no code, only an unclosed block, words of its own, or nothing', () => {
    expect(parseCriticReply('The product is quite large, about three hundred thousand.', step, 0.5)).toMatchObject({ kind: 'invalid', reason: 'no-code' });
    expect(parseCriticReply('We multiply:\n```python\nprint(347*829', step, 0.5)).toMatchObject({ kind: 'invalid', reason: 'unclosed-code' });
    expect(parseCriticReply('Sure! Here is a poem about cats and their fondness for boxes:\n```python\nprint("meow")\n```', step, 0.5)).toMatchObject({ kind: 'invalid', reason: 'not-a-rewrite' });
    expect(parseCriticReply('<think>hmm', step, 0.5)).toMatchObject({ kind: 'invalid', reason: 'empty' });
  });
});

const sample = (response: string, executions = codeBlocks(response).map(() => ({ succeeded: true })), reference = '12') => ({ response, reference, executions });
const run = (response: string, reference = '12', executions?: { succeeded: boolean }[]) => failedFilters(sample(response, executions, reference), TIRGEN_DEFAULTS);
const GOOD = 'Use Python.\n```python\nprint(3*4)\n```\n```output\n12\n```\nSo \\boxed{12}.';

describe('the filters', () => {
  it('passes a good sample', async () => {
    expect(await run(GOOD)).toEqual([]);
  });

  it('answer: verified against the reference by the grader (never read from tool output)', async () => {
    expect(await run(GOOD, '13')).toEqual(['answer']);
    expect(await run('Use Python.\n```python\nprint(3*4)\n```\n```output\n\\boxed{12}\n```\nSo it is twelve.')).toEqual(['answer', 'boxed']);
  });

  it('execution: every call ran', async () => {
    expect(await run(GOOD, '12', [{ succeeded: false }])).toEqual(['execution']);
  });

  it('boxed: a non-empty \\boxed{}', async () => {
    expect(hasBoxedAnswer('So \\boxed{ }.')).toBe(false);
    expect(await run(GOOD.replace('\\boxed{12}', '\\boxed{}'))).toEqual(['answer', 'boxed']);
  });

  it('dollars: paired in the prose, a single one allowed (THOR)', async () => {
    expect(dollarsPaired('It costs $5.')).toBe(true);
    expect(dollarsPaired('$x$ and $y$')).toBe(true);
    expect(dollarsPaired('$x$ and $y')).toBe(false);
    expect(dollarsPaired('an escaped \\$ and $x$')).toBe(true);
    expect(await run(GOOD.replace('So', 'So $a$ and $b'))).toEqual(['dollars']);
  });

  it('code: at least one block, inside the one thinking section when there is one', async () => {
    expect(await run('Directly: \\boxed{12}.')).toEqual(['code']);
    expect(hasCodeInThinking(`<think>\n${GOOD}\n</think>\nSo \\boxed{12}.`)).toBe(true);
    expect(hasCodeInThinking(`<think>just thinking</think>\n${GOOD}`)).toBe(false);
    expect(hasCodeInThinking(`<think>${GOOD}</think><think>again</think>`)).toBe(false);
  });

  it("code quality: THOR's five-line rule and the paper's library-or-control-flow rule", async () => {
    const short = 'print(1)';
    const long = 'a = 1\nb = 2\nc = a + b\nd = c * 2\ne = d - 1\nprint(e)';
    // One short block of one: ceil(0.4) = 1, so one low-quality block is allowed; two of two are not.
    expect(passesThorCodeRule([short], 5, 0.4)).toBe(true);
    expect(passesThorCodeRule([short, short], 5, 0.4)).toBe(false);
    expect(passesThorCodeRule([short, long], 5, 0.4)).toBe(true);
    // Blank lines and comments do not count as lines.
    expect(passesThorCodeRule(['# a\n\nprint(1)\n# b\n#c\n#d', short], 5, 0.4)).toBe(false);
    expect(passesPaperCodeRule(['from math import comb\nprint(comb(5, 2))', 'for k in range(3):\n    print(k)'])).toBe(true);
    expect(passesPaperCodeRule(['print(3*4)'])).toBe(false);
    const two = 'A.\n```python\nprint(3)\n```\n```output\n3\n```\nB.\n```python\nprint(4)\n```\n```output\n4\n```\nSo \\boxed{12}.';
    expect(await run(two)).toEqual(['codeQuality']);
    expect(await failedFilters(sample(GOOD), { ...TIRGEN_DEFAULTS, codeQuality: 'paper' })).toEqual(['codeQuality']);
    expect(await failedFilters(sample(two), { ...TIRGEN_DEFAULTS, codeQuality: 'off' })).toEqual([]);
  });

  it('repetition: no 20-character n-gram more than 20 times', async () => {
    expect(await run(GOOD.replace('So', 'and again and again '.repeat(22) + 'So'))).toEqual(['repetition']);
    expect(await run(GOOD.replace('So', 'and again and again '.repeat(5) + 'So'))).toEqual([]);
  });

  it('compares an expected output with the real one by line and by value', () => {
    expect(sameOutput('287663', '287663\n')).toBe(true);
    expect(sameOutput('10', '10.0')).toBe(true);
    expect(sameOutput('0.75', '3/4')).toBe(true);
    expect(sameOutput('1,024', '1024')).toBe(true);
    expect(sameOutput('12', '13')).toBe(false);
    expect(sameOutput('1\n2', '1')).toBe(false);
  });
});

describe('settings', () => {
  it('has THOR numbers as defaults where the tiny model allows, and reads --set values', () => {
    expect(TIRGEN_DEFAULTS).toMatchObject({ attempts: 8, maxRounds: 5, toolTimeoutMs: 30_000, lowQualityMaxLines: 5, lowQualityMaxShare: 0.4, repetitionNgram: 20, repetitionMaxCount: 20, oneCallKeep: 0.5, temperature: 0.6, topK: 30 });
    const s = parseTirgenSettings(['tirgen.stepTokens=512', 'attempts=2', 'tirgen.codeQuality=paper', 'tirgen.dropSolvedWithoutTools=true', 'tirgen.actorInstruction=Reason step by step.']);
    expect(s).toMatchObject({ stepTokens: 512, attempts: 2, codeQuality: 'paper', dropSolvedWithoutTools: true, actorInstruction: 'Reason step by step.' });
  });

  it('refuses unknown keys and bad values, naming them', () => {
    expect(() => parseTirgenSettings(['tirgen.steps=3'])).toThrow(/no such setting.*tirgen\.stepTokens/);
    expect(() => parseTirgenSettings(['tirgen.attempts=0'])).toThrow(/tirgen\.attempts.*whole number ≥ 1/);
    expect(() => parseTirgenSettings(['tirgen.codeQuality=strict'])).toThrow(/thor \| paper \| both \| off/);
    expect(() => parseTirgenSettings(['tirgen.oneCallKeep=1.5'])).toThrow(/oneCallKeep/);
    expect(() => parseTirgenSettings(['stepTokens'])).toThrow(/tirgen\.key=value/);
  });
});

describe('the report and resuming', () => {
  it('sums question counts, and says the kept ratio', () => {
    const a = emptyCounts();
    a.questions = 1;
    a.attempts = 8;
    a.kept = 1;
    a.calls['1'] = 1;
    a.filters.answer = 3;
    const b = emptyCounts();
    b.questions = 1;
    b.skipped.noAnswer = 1;
    const total = addCounts(addCounts(emptyCounts(), a), b);
    expect(total).toMatchObject({ questions: 2, attempts: 8, kept: 1, calls: { '1': 1 }, filters: { answer: 3 }, skipped: { noAnswer: 1 } });
    const r = makeReport({ actor: 'a', critic: 'rule', seed: 0, settings: TIRGEN_DEFAULTS, total: 2, resumed: 0, elapsedMs: 1 }, total);
    expect(r.keptRatio).toBe(1);
    expect(r.keptPerAttempt).toBe(1 / 8);
  });

  const header: ProgressHeader = { type: 'tirgen-progress', version: 1, createdAt: 'now', actor: 'a', critic: 'rule', seed: 3, settings: { ...TIRGEN_DEFAULTS }, source: 'test' };
  const s = (id: string, attempt: number): TirgenSample => ({ id, question: `Q ${id}?`, reference: '1', response: `Use Python.\n\`\`\`python\nprint(1)\n\`\`\`\n\`\`\`output\n1\n\`\`\`\nSo \\boxed{1}.`, calls: 1, attempt, steps: 2 });
  const q = (id: string, samples: TirgenSample[]): QuestionResult => ({ id, counts: { ...emptyCounts(), questions: 1, kept: samples.length }, samples });

  it('keeps the questions with a progress line, once each, and drops cut lines and samples of unfinished questions', () => {
    const q1 = q('q1', [s('q1', 2)]);
    const q2 = q('q2', []);
    const data = sampleLine(s('q1', 2), header) + sampleLine(s('q1', 2), header) + sampleLine(s('q3', 0), header) + sampleLine(s('q3', 1), header).slice(0, 30);
    const messages = messagesLine(s('q1', 2), '') + messagesLine(s('q3', 0), '');
    const progress = progressHeaderLine(header) + progressLine(q1) + progressLine(q2) + progressLine(q1) + '{"type":"question","id":"q3","cou';
    const st = resumeState({ progress, data, messages });
    expect(st.header).toMatchObject({ seed: 3 });
    expect(st.done.map((r) => r.id)).toEqual(['q1', 'q2']);
    expect(st.done[0].counts.kept).toBe(1);
    expect(st.data).toBe(sampleLine(s('q1', 2), header));
    expect(st.messages).toBe(messagesLine(s('q1', 2), ''));
    expect(st.progress).toBe(progressHeaderLine(header) + progressLine(q1) + progressLine(q2));
    expect(st.dropped).toBe(3 + 1 + 2);
    // What remains is what the SFT reader takes.
    expect(readDemonstrationsJsonl(st.data, 'data.jsonl')).toMatchObject({ demonstrations: [{ question: 'Q q1?' }], skipped: [] });
    expect(JSON.parse(st.messages).messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
  });

  it('reads a file whose lines may lack an answer: those are skipped and counted for the report', () => {
    const text = ['{"question": "What is 2*3?", "answer": "6"}', '{"question": "What is 4*5?"}', 'not json', '{"question": "What is 7*8?", "answer": 56}'].join('\n');
    const { problems, input } = problemsOfFile(readProblems(text, { file: 'p.jsonl', mode: 'lenient' }), 'p.jsonl');
    expect(problems.map((p) => [p.question, p.answer])).toEqual([
      ['What is 2*3?', '6'],
      ['What is 7*8?', '56'],
    ]);
    expect(input).toEqual({ source: 'p.jsonl', records: 4, skipped: { missing_answer: 1, not_json: 1 } });
  });

  it('refuses to resume a run made with another seed or other settings', () => {
    expect(() => checkResume(header, { actor: 'a', critic: 'rule', seed: 3, settings: { ...TIRGEN_DEFAULTS, concurrency: 2 } }, 'out')).not.toThrow();
    expect(() => checkResume(header, { actor: 'a', critic: 'rule', seed: 4, settings: { ...TIRGEN_DEFAULTS, attempts: 2 } }, 'out')).toThrow(/seed 3 ≠ 4; tirgen\.attempts 8 ≠ 2/);
  });
});
