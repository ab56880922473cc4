/**
 * Dataset files in the shapes public suites use (docs/datasets.md): the five benchmark files the lab
 * ships read whole, fixtures in other suites' shapes and file forms, field mapping, lists of answers,
 * the error for a file with no usable line, and the context-fit check.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkContextFit, describeFit, minNewTokensFor } from '../../src/core/data/fit';
import { answerFrom, detectFields, valueAt } from '../../src/core/data/fields';
import { parquetToJsonLines } from '../../src/core/data/records';
import { describeRead, readProblems, unusableFileError, whereSkipped, type ReadResult } from '../../src/core/data/readers';
import { LabError } from '../../src/core/errors';
import { readProblemsFile } from '../../src/node/lab';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'tests/fixtures/datasets');
const fixture = (name: string, mapping?: Parameters<typeof readProblems>[1]['mapping']) => readProblems(readFileSync(join(FIXTURES, name), 'utf8'), { file: name, mode: 'lenient', mapping });
const pairs = (r: ReadResult) => r.problems.map((p) => [p.question, p.answer]);
const CLI = { question: '--question-field', answer: '--answer-field' };

describe('the shipped benchmark files', () => {
  const files = readdirSync(join(ROOT, 'data/benchmarks')).filter((f) => f.endsWith('.jsonl'));

  it('are the five files, and each reads whole, with no line rejected, in strict mode too', () => {
    expect(files.sort()).toEqual(['aime24.jsonl', 'aime25.jsonl', 'amc23.jsonl', 'gsm8k-test.jsonl', 'math500-test.jsonl']);
    for (const f of files) {
      const text = readFileSync(join(ROOT, 'data/benchmarks', f), 'utf8');
      const lines = text.split('\n').filter((l) => l.trim() !== '').length;
      const r = readProblems(text, { file: f, mode: 'strict' });
      expect(r.skipped, f).toEqual([]);
      expect(r.problems.length, f).toBe(lines);
      expect(r.total, f).toBe(lines);
      expect(new Set(r.problems.map((p) => p.id)).size, `${f}: ids are unique`).toBe(lines);
    }
  });

  it('keep their answers as written (MATH500, AIME, AMC) and GSM8K the number after ####', () => {
    for (const f of ['math500-test.jsonl', 'aime24.jsonl', 'aime25.jsonl', 'amc23.jsonl']) {
      const text = readFileSync(join(ROOT, 'data/benchmarks', f), 'utf8');
      const raw = text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { answer: unknown });
      const r = readProblems(text, { file: f });
      expect(r.problems.map((p) => p.answer), f).toEqual(raw.map((row) => String(row.answer)));
    }
    const gsm = readProblems(readFileSync(join(ROOT, 'data/benchmarks/gsm8k-test.jsonl'), 'utf8'), { file: 'gsm8k-test.jsonl' });
    expect(gsm.detection.answer).toMatchObject({ field: 'answer', how: 'text after ####' });
    expect(gsm.problems.every((p) => /^-?[\d,]+(\.\d+)?$/.test(p.answer))).toBe(true);
  });
});

describe('suites in other shapes', () => {
  it('SVAMP: a JSON array, Body + Question joined, numbers as answers', () => {
    const r = fixture('svamp.json');
    expect(r.form).toBe('json-array');
    expect(r.detection.question?.field).toBe('Body+Question');
    expect(pairs(r)[0]).toEqual(['Jack had 8 pens and Mary had 5 pens. Jack gave 3 pens to Mary. How many pens does Jack have now?', '5']);
    expect(r.problems.map((p) => p.answer)).toEqual(['5', '5', '24']);
    expect(r.problems[0].id).toBe('svamp.json:chal-1');
  });

  it('ASDiv: body + question, the unit after the number left out', () => {
    const r = fixture('asdiv.jsonl');
    expect(pairs(r)).toEqual([
      ['Seven red apples and two green apples are in the basket. How many apples are in the basket?', '9'],
      ['Ellen has six more balls than Marin. Marin has nine balls. How many balls does Ellen have?', '15'],
    ]);
  });

  it('AIME 2024 with capitalised fields (ID, Problem, Answer)', () => {
    const r = fixture('aime2024.jsonl');
    expect(r.detection).toMatchObject({ question: { field: 'Problem' }, answer: { field: 'Answer' }, id: { field: 'ID' } });
    expect(r.problems.map((p) => [p.id, p.answer])).toEqual([
      ['aime2024.jsonl:2024-I-1', '1'],
      ['aime2024.jsonl:2024-I-2', '30'],
    ]);
  });

  it('MATH500 as published: unique_id, and the \\boxed{} of the solution where an answer is missing', () => {
    const r = fixture('math500-hf.jsonl');
    expect(r.problems.map((p) => [p.id, p.answer, p.kind, p.difficulty])).toEqual([
      ['math500-hf.jsonl:test/prealgebra/1.json', '10', 'Prealgebra', 1],
      ['math500-hf.jsonl:test/algebra/2.json', '\\frac{9}{2}', 'Algebra', 2],
    ]);
  });

  it('Minerva: only a solution, whose last \\boxed{} is the answer', () => {
    const r = fixture('minerva.jsonl');
    expect(r.detection.answer).toMatchObject({ field: 'solution', marked: true });
    expect(r.problems.map((p) => p.answer)).toEqual(['10^{28}', '2']);
  });

  it('Omni-MATH: answer with a float difficulty', () => {
    const r = fixture('omni-math.jsonl');
    expect(r.problems.map((p) => [p.answer, p.difficulty])).toEqual([
      ['5', 4.5],
      ['8', 6],
    ]);
  });

  it('OlympiadBench: final_answer lists of one item read as the item; several items and proofs are skipped, counted and named', () => {
    const r = fixture('olympiadbench.json');
    expect(r.problems.map((p) => [p.id, p.answer])).toEqual([
      ['olympiadbench.json:1601', '3'],
      ['olympiadbench.json:1602', '1, 4'],
    ]);
    expect(r.skipped.map((s) => [s.unit, s.line, s.reason])).toEqual([
      ['item', 3, 'list_answer'],
      ['item', 4, 'missing_answer'],
    ]);
    expect(r.skipped[0]).toMatchObject({ field: 'final_answer', message: expect.stringMatching(/several different answers.*found \["\$6\$","\$8\$"\]/) });
    expect(whereSkipped(r.skipped[0])).toBe('olympiadbench.json, item 3, field "final_answer"');
    expect(r.counts.list_answer).toBe(1);
  });

  it('TheoremQA in a JSON object holding an array: booleans, numbers, one-item lists', () => {
    const r = fixture('theoremqa.json');
    expect(r.form).toBe('json-object');
    expect(r.arrayKey).toBe('data');
    expect(pairs(r).map(([, a]) => a)).toEqual(['False', '12', '3']);
    expect(r.skipped.map((s) => [s.line, s.reason])).toEqual([[3, 'list_answer']]);
  });

  it('verl: the prompt as chat messages, reward_model.ground_truth, extra_info.index', () => {
    const r = fixture('verl.jsonl');
    expect(r.detection).toMatchObject({ question: { field: 'prompt', how: 'last user turn' }, answer: { field: 'reward_model.ground_truth' }, id: { field: 'extra_info.index' } });
    expect(r.problems.map((p) => [p.id, p.question.slice(0, 30), p.answer])).toEqual([
      ['verl.jsonl:0', 'Tom has 3 bags with 4 marbles ', '12'],
      ['verl.jsonl:1', 'A book costs 9 dollars. How mu', '45'],
    ]);
  });

  it('chat messages: the user turn is the question, the assistant turn\'s \\boxed{} the answer', () => {
    const r = fixture('chat.jsonl');
    expect(pairs(r)).toEqual([
      ['What is $3 \\times 14$?', '42'],
      ['What is $100 - 37$?', '63'],
    ]);
    expect(r.skipped.map((s) => [s.line, s.reason])).toEqual([[3, 'missing_answer']]);
    expect(r.skipped[0].message).toMatch(/marks no final answer/);
  });

  it('the Hugging Face viewer\'s rows, unwrapped', () => {
    const r = fixture('hf-rows.json');
    expect(r.arrayKey).toBe('rows');
    expect(r.problems.map((p) => p.answer)).toEqual(['8', '7']);
  });

  it('CSV with quoted commas, quotes and newlines; TSV with a bad row named by its line', () => {
    const csv = fixture('collegemath.csv');
    expect(csv.form).toBe('csv');
    expect(pairs(csv)).toEqual([
      ['Compute $\\int_0^1 2x\\,dx$.', '1'],
      ['A line passes through (0, 0) and (2, 6).\nWhat is its slope?', '3'],
      ['He said "ten", then added 5. What is 10 + 5?', '15'],
    ]);
    // ids are the line each row starts on
    expect(csv.problems.map((p) => p.id)).toEqual(['collegemath.csv:2', 'collegemath.csv:3', 'collegemath.csv:5']);
    const tsv = fixture('gaokao.tsv');
    expect(tsv.problems.map((p) => p.answer)).toEqual(['1024', '7']);
    expect(tsv.skipped.map((s) => [s.line, s.reason])).toEqual([[4, 'bad_row']]);
  });

  it('Parquet: rows read through hyparquet, 64-bit integers as numbers, a bad row named by its number', async () => {
    const text = await parquetToJsonLines(readFileSync(join(FIXTURES, 'math-rows.parquet')), 'math-rows.parquet');
    const r = readProblems(text, { file: 'math-rows.parquet', mode: 'lenient' });
    expect(r.form).toBe('parquet');
    expect(r.problems.map((p) => [p.id, p.question, p.answer, p.difficulty])).toEqual([
      ['math-rows.parquet:10', 'What is $3^4$?', '81', 1],
      ['math-rows.parquet:11', 'What is the remainder of $100$ divided by $7$?', '2', 2],
    ]);
    expect(r.skipped.map((s) => whereSkipped(s))).toEqual(['math-rows.parquet, row 3, field "answer"']);
    expect(describeRead(r)).toMatch(/^2 of 3 rows usable/);
    await expect(parquetToJsonLines(new TextEncoder().encode('{"not": "parquet"}'), 'x.parquet')).rejects.toThrow(/x\.parquet: not a Parquet file this reader can read/);
    // the command line's reader takes the same path by the file's extension
    const fromDisk = await readProblemsFile(join(FIXTURES, 'math-rows.parquet'));
    expect(fromDisk.problems.map((p) => p.answer)).toEqual(['81', '2']);
  });

  it('mixed files: a record without the detected field is read from the other known field it has', () => {
    const text = ['{"question": "A?", "answer": "1"}', '{"problem": "B?", "answer": "2"}', '{"problem": "C?", "solution": "so \\\\boxed{3}"}', '{"problem": "D?", "ground_truth": 4}'].join('\n');
    const r = readProblems(text, { file: 'mixed.jsonl' });
    expect(pairs(r)).toEqual([
      ['A?', '1'],
      ['B?', '2'],
      ['C?', '3'],
      ['D?', '4'],
    ]);
  });
});

describe('GSM8K style files', () => {
  it('a worked solution without "#### N" gives no answer; a one-line answer is still an answer', () => {
    const text = [
      JSON.stringify({ question: 'A?', answer: '2 + 2 = 4\n#### 4' }),
      JSON.stringify({ question: 'B?', answer: '3 + 3 = 6\n#### 6' }),
      JSON.stringify({ question: 'C?', answer: 'First 5 + 5 = 10.\nThen 10 + 1 = 11.' }),
      JSON.stringify({ question: 'D?', answer: '7' }),
    ].join('\n');
    const r = readProblems(text, { file: 'g.jsonl', mode: 'lenient' });
    expect(pairs(r)).toEqual([
      ['A?', '4'],
      ['B?', '6'],
      ['D?', '7'],
    ]);
    expect(r.skipped).toMatchObject([{ line: 3, field: 'answer', reason: 'missing_answer', message: expect.stringMatching(/has no "#### N"/) }]);
    // read as GSM8K, every answer needs it
    expect(readProblems(text, { file: 'g.jsonl', mode: 'lenient', format: 'gsm8k' }).problems.map((p) => p.answer)).toEqual(['4', '6']);
  });
});

describe('lists of answers', () => {
  it('a one-item list is its item; the same answer repeated is that answer; different answers are never joined', () => {
    expect(answerFrom(['$6$'])).toEqual({ answer: '6', how: 'its one item' });
    expect(answerFrom([6, '6'])).toMatchObject({ answer: '6' });
    expect(answerFrom(['6', '8'])).toEqual({ problem: 'list', found: '["6","8"]' });
    expect(answerFrom([['6'], '8'])).toMatchObject({ problem: 'object' });
    expect(answerFrom([])).toMatchObject({ problem: 'empty' });
    const r = readProblems('{"question": "Sides?", "answer": ["6", "8"]}\n{"question": "Side?", "answer": ["6"]}', { file: 'l.jsonl', mode: 'lenient' });
    expect(r.problems.map((p) => p.answer)).toEqual(['6']);
    expect(r.problems.some((p) => /6.*8|68/.test(p.answer))).toBe(false);
  });

  it('answers as text are kept as written but for enclosing $...$, a \\boxed{} wrapper, #### N and a unit in brackets', () => {
    expect(answerFrom('$\\frac{1}{2}$')).toMatchObject({ answer: '\\frac{1}{2}' });
    expect(answerFrom('\\boxed{(1,2)}')).toMatchObject({ answer: '(1,2)' });
    expect(answerFrom('so 4\n#### 4')).toMatchObject({ answer: '4' });
    expect(answerFrom('12 (marbles)')).toMatchObject({ answer: '12' });
    expect(answerFrom('\\$1.50')).toMatchObject({ answer: '\\$1.50' });
    expect(answerFrom('(3, 4)')).toMatchObject({ answer: '(3, 4)' });
    expect(answerFrom('x \\in [-2,7]')).toMatchObject({ answer: 'x \\in [-2,7]' });
    expect(answerFrom(27.0)).toEqual({ answer: '27' });
    expect(answerFrom(true)).toEqual({ answer: 'True' });
  });
});

describe('field mapping', () => {
  it('names fields detection cannot find, with dot paths; a named field is read alone', () => {
    const unmapped = fixture('custom.jsonl');
    expect(unmapped.problems).toEqual([]);
    const r = fixture('custom.jsonl', { question: 'prompt_text', answer: 'meta.gold', id: 'uid' });
    expect(r.problems.map((p) => [p.id, p.question, p.answer])).toEqual([
      ['custom.jsonl:a1', 'What is 6 times 7?', '42'],
      ['custom.jsonl:a2', 'What is 81 divided by 9?', '9'],
    ]);
    expect(r.detection).toMatchObject({ question: { field: 'prompt_text', mapped: true, found: 3 }, answer: { field: 'meta.gold', mapped: true, found: 2 }, id: { field: 'uid', mapped: true } });
    expect(r.skipped.map((s) => [s.line, s.reason])).toEqual([[3, 'missing_answer']]);
    expect(describeRead(r)).toBe('2 of 3 lines usable (question: prompt_text [mapped], answer: meta.gold [mapped], id: uid [mapped]); 1 skipped: 1 has no usable answer in "meta.gold"');
  });

  it('overrides detection, joins fields with +, and reaches into arrays', () => {
    const svamp = fixture('svamp.json', { question: 'Question', answer: 'Equation' });
    expect(pairs(svamp)[0]).toEqual(['How many pens does Jack have now?', '( 8.0 - 3.0 )']);
    const chat = fixture('chat.jsonl', { question: 'messages.0.content', answer: 'messages' });
    expect(chat.problems.map((p) => p.answer)).toEqual(['42', '63']);
    expect(valueAt({ 'a.b': 1, a: { b: 2 } }, 'a.b')).toBe(1);
    expect(valueAt({ a: [{ b: 3 }] }, 'a.0.b')).toBe(3);
    expect(valueAt({}, 'constructor')).toBeUndefined();
  });

  it('lists the fields a file has, nested ones as dot paths', () => {
    expect(detectFields([{ q: 'x', meta: { gold: 1, split: 't' } }]).fields).toEqual(['q', 'meta', 'meta.gold', 'meta.split']);
  });
});

describe('a file with no usable line', () => {
  it('is an error that says how many lines, why, the fields found, and which flag maps them', () => {
    const noAnswer = fixture('no-answer.jsonl');
    expect(noAnswer.problems).toEqual([]);
    const e = unusableFileError('data/no-answer.jsonl', noAnswer, CLI);
    expect(e).toBeInstanceOf(LabError);
    expect(e.message).toBe('data/no-answer.jsonl: 0 of 3 lines usable: 3 have no answer field (fields found: question, foo, bar); map one with --answer-field');
    expect(unusableFileError('data/custom.jsonl', fixture('custom.jsonl'), CLI).message).toBe(
      'data/custom.jsonl: 0 of 3 lines usable: 3 have no question field and no answer field (fields found: uid, prompt_text, meta, meta.gold, meta.split); map them with --question-field and --answer-field',
    );
    const lists = readProblems('{"question": "a", "answer": [1, 2]}\nnot json', { file: 'l.jsonl', mode: 'lenient' });
    expect(unusableFileError('l.jsonl', lists, { question: 'the Question field control', answer: 'the Answer field control' }).message).toBe(
      'l.jsonl: 0 of 2 lines usable: 1 is not JSON; 1 has a list of several different answers, which is not one reference answer; map another field with the Answer field control',
    );
    expect(unusableFileError('e.jsonl', readProblems('\n', { file: 'e.jsonl', mode: 'lenient' }), CLI).message).toMatch(/^e\.jsonl: the file holds no questions \(0 lines\)/);
  });

  it('throws in strict mode at the first record, naming the fields the file has', () => {
    expect(() => readProblems(readFileSync(join(FIXTURES, 'no-answer.jsonl'), 'utf8'), { file: 'no-answer.jsonl' })).toThrow(/no-answer\.jsonl, line 1: no reference answer: no answer field \(expected one of answer, .*found fields question, foo, bar\)/);
    expect(() => readProblems('[{"q": 1}]', { file: 'a.json' })).toThrow(/a\.json: item 1: no question field/);
  });
});

describe('context fit', () => {
  const chars = (q: string) => q.length + 4;

  it('splits questions by whether their prompt leaves the room asked for', () => {
    const r = checkContextFit(['a'.repeat(10), 'b'.repeat(28), 'c'.repeat(29), 'd'], { promptTokens: chars, contextLength: 64, minNewTokens: 32 });
    expect(r).toEqual({ total: 4, fit: 3, contextLength: 64, minNewTokens: 32, maxPromptTokens: 32, promptTokens: [14, 32, 33, 5], tooLong: [2] });
    expect(describeFit(r)).toBe("3 of 4 questions fit the loaded model's context (64 tokens, at least 32 left to generate); 1 longer than 32 prompt tokens (the longest 33) is skipped");
    expect(describeFit(checkContextFit(['a'], { promptTokens: chars, contextLength: 64, minNewTokens: 1 }))).toBe("1 of 1 question fit the loaded model's context (64 tokens, at least 1 left to generate)");
  });

  it('asks for no more room than the answers may take, and at least one token', () => {
    expect(minNewTokensFor(256)).toBe(32);
    expect(minNewTokensFor(8)).toBe(8);
    expect(minNewTokensFor(0)).toBe(1);
    expect(() => checkContextFit([], { promptTokens: chars, contextLength: 0, minNewTokens: 1 })).toThrow(/context length/);
  });
});
