import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeLab } from '../../src/node/lab';
import { generateTask, generateTasks, MAX_DIFFICULTY, TASK_KINDS } from '../../src/core/data/tasks';
import { buildCotDemonstrations, checkSteps, cotResponse, cotSteps, evalExpression } from '../../src/core/tir/cot';
import { computationCode, findComputations } from '../../src/core/tirgen/rule-critic';
import { copyAccuracyOfCalls } from '../../src/core/eval/copy';
import { createNodePythonPool } from '../../src/node/python';
import { evaluateCot, followsCotFormat } from '../../src/core/eval/cot';
import { createRng } from '../../src/core/rng';
import { sftSequence } from '../../src/core/rl/sft';
import { CharTokenizer } from '../../src/core/tokenizer/char';
import { loadModelFolder } from '../../src/core/model/checkpoint';
import { Transformer } from '../../src/core/model/transformer';
import { selectNodeBackend } from '../../src/node/backend';
import { folderSource } from '../../src/node/files';
import { readingPieces } from '../../scripts/pretrain-cot';

const ROOT = join(__dirname, '../..');
const MODEL = join(ROOT, 'public/models/thor-tiny-cot');
const CONTEXT = 256;
const tokenizer = CharTokenizer.fromCharset();
const length = (question: string, response: string) => {
  const s = sftSequence(tokenizer, question, response, '');
  return s.promptTokens.length + s.tokens.length;
};

describe('chain-of-thought demonstrations', () => {
  it('checks written steps exactly', () => {
    expect(checkSteps('347*829 = 347*800 + 347*29.\n347*800 = 277600.\n347*29 = 10063.\nSo 277600 + 10063 = 287663.\nSo \\boxed{287663}.')).toEqual({ checked: 4, wrong: [] });
    expect(checkSteps('84 = 2*36 + 12.\n36 = 3*12 + 1.').wrong).toEqual(['36 = 3*12 + 1.']);
    expect(checkSteps('1/2+1/3 = 3/6+2/6 = 5/6.\nx = 12/4 = 3.\nSo 4x = 12.').checked).toBe(2);
    expect(evalExpression('2^10-1')).toEqual({ p: 1023n, q: 1n });
    expect(evalExpression('n*(n+1)')).toBeUndefined();
    expect(evalExpression('20*(20+1)')).toEqual({ p: 420n, q: 1n });
    expect(evalExpression('84 mod 36')).toEqual({ p: 12n, q: 1n });
    expect(evalExpression('7*5 mod 11')).toEqual({ p: 2n, q: 1n });
    expect(evalExpression('(3^(4+1)-1)/(3-1)')).toEqual({ p: 121n, q: 1n });
    expect(evalExpression('-5-(-10)')).toEqual({ p: 5n, q: 1n });
    expect(evalExpression('1/0')).toBeUndefined();
    expect(evalExpression('(1+2')).toBeUndefined();
    expect(evalExpression('1+2)')).toBeUndefined();
    expect(evalExpression('7/2 mod 3')).toBeUndefined();
    expect(evalExpression('(6/3) mod 4')).toEqual({ p: 2n, q: 1n });
    expect(evalExpression('-7 mod 3')).toEqual({ p: 2n, q: 1n });
    expect(evalExpression('2^3^2')).toEqual({ p: 512n, q: 1n });
    expect(evalExpression('-2^2')).toEqual({ p: -4n, q: 1n });
    expect(evalExpression('1 2')).toBeUndefined();
    expect(evalExpression('((9^4096)^4096)^4096')).toBeUndefined();
    expect(evalExpression('')).toBeUndefined();
    expect(evalExpression('mod')).toBeUndefined();
    expect(checkSteps('84 mod 36 = 12.\n36 mod 12 = 1.').wrong).toEqual(['36 mod 12 = 1.']);
  });

  it('every kind at every difficulty: steps true, the boxed answer is the task answer, no code', () => {
    const rng = createRng(7);
    const checkedByKind = new Map<string, number>();
    for (const kind of TASK_KINDS)
      for (let d = 1; d <= MAX_DIFFICULTY; d++)
        for (let i = 0; i < 25; i++) {
          const task = generateTask(kind, d, rng);
          const response = cotResponse(task);
          expect(response, task.question).toBeDefined();
          const lines = response!.split('\n');
          expect(lines.at(-1)).toBe(`So \\boxed{${task.answer}}.`);
          expect(lines.length).toBeGreaterThanOrEqual(2);
          expect(response).not.toContain('```');
          expect(response).not.toMatch(/print\(|import /);
          const { checked, wrong } = checkSteps(response!);
          expect(wrong, task.question).toEqual([]);
          checkedByKind.set(kind, (checkedByKind.get(kind) ?? 0) + checked);
          expect(followsCotFormat(response!)).toBe(true);
        }
    // every kind writes computations that the check reads
    for (const kind of TASK_KINDS) expect(checkedByKind.get(kind), kind).toBeGreaterThan(25);
  });

  it("the rule critic's code of exact steps computes the question: its first call prints the answer, for every kind and difficulty", async () => {
    const pool = await createNodePythonPool({ preload: ['sympy'] });
    const rng = createRng(11);
    try {
      const misses: string[] = [];
      // Drawn tasks, and the cases a draw may miss: an exponent that is a power of two, -x = 7.
      const fixed = [
        { kind: 'modular', question: 'What is 3^8 mod 7?', answer: '2' },
        { kind: 'modular', question: 'What is 5^64 mod 97?', answer: '61' },
        { kind: 'linear', question: 'Solve 2x+5=3x+12 for x.', answer: '-7' },
        { kind: 'linear', question: 'Solve -x+5=12 for x.', answer: '-7' },
        { kind: 'linear', question: 'Solve -x-5=-12 for x.', answer: '7' },
        { kind: 'linear', question: 'Solve 3x=12 for x.', answer: '4' },
        { kind: 'linear', question: 'Solve -4x=12 for x.', answer: '-3' },
      ] as const;
      const tasks = [...fixed, ...TASK_KINDS.flatMap((kind) => Array.from({ length: MAX_DIFFICULTY * 4 }, (_, i) => generateTask(kind, 1 + (i % MAX_DIFFICULTY), rng)))];
      for (const task of tasks) {
        expect(cotResponse(task)?.endsWith(`So \\boxed{${task.answer}}.`), task.question).toBe(true);
        const steps = cotSteps(task)!;
        const code = steps.map((line) => findComputations(line)).filter((c) => c.length > 0).map((c) => computationCode(c));
        const printed: string[] = [];
        for (const program of code) printed.push((await pool.run(program, { timeoutMs: 20_000 })).stdout);
        // The figure's own rule (src/core/eval/copy.ts): one call printed the reference answer.
        // The first computation already does: every solution opens with the question's whole computation
        // (stated, "We need lcm(60,108).", or restated as its first step, "110*15 = 110*10 + 110*5.").
        const { computesQuestion } = await copyAccuracyOfCalls([{ problemId: task.question, reference: task.answer, printed: printed.slice(0, 1) }]);
        if (computesQuestion === 0) misses.push(`${task.question} -> ${printed.join(' | ')}`);
      }
      expect(misses).toEqual([]);
    } finally {
      await pool.close();
    }
  }, 300_000);

  it('reading demonstrations replace one computation, or each, with the rule critic\'s code and its real output, out of the loss', async () => {
    const pool = await createNodePythonPool();
    try {
      const tasks = generateTasks({ seed: 21, count: 40, split: 'train', difficulties: [1, 2, 3, 4, 5] });
      let checked = 0;
      for (const [i, task] of tasks.entries()) {
        const response = cotResponse(task);
        if (!response) continue;
        const lines = response.split('\n');
        const computational = lines.slice(0, -1).filter((l) => findComputations(l).length > 0).length;
        for (const every of [false, true]) {
          const pieces = await readingPieces(response, pool, createRng(i), every);
          if (computational === 0) {
            expect(pieces).toBeUndefined();
            continue;
          }
          expect(pieces, task.question).toBeDefined();
          const forced = pieces!.filter((p) => p.forced);
          for (const f of forced) {
            // Each inserted part is words, one python block and the output the sandbox printed for it.
            expect(f.text).toMatch(/```python\n[^`]+\n```\n```output\n[^`]*\n```\n$/);
          }
          // A real output that is the answer is followed by the answer line alone; otherwise every
          // computation (or the one drawn) is shown and the solution goes on.
          const lastForced = pieces!.lastIndexOf(forced.at(-1)!);
          const printsAnswer = (f: { text: string }) => /```output\n([^`]*)\n```\n$/.exec(f.text)![1].split('\n').at(-1) === task.answer;
          const printedAnswer = printsAnswer(forced.at(-1)!);
          if (printedAnswer) expect(pieces!.slice(lastForced + 1).map((p) => p.text)).toEqual([`So \\boxed{${task.answer}}.`]);
          // Otherwise the solution goes on in full: every line but the one shown as code is the model's.
          else if (!every) expect(pieces!.filter((p) => !p.forced).map((p) => p.text).join('').split('\n').length).toBe(lines.length - 1);
          if (every) {
            // Shown in order up to the first that prints the answer, or all of them when none does.
            expect(forced.slice(0, -1).some(printsAnswer)).toBe(false);
            if (!printedAnswer) expect(forced.length).toBe(computational);
            expect(forced.length).toBeLessThanOrEqual(computational);
          } else expect(forced.length).toBe(1);
          // A solution that opens by stating the question's computation shows it first, with the answer printed.
          if (every && /^(?:We need |x = )/.test(lines[0])) expect([forced.length, printedAnswer, pieces![0].forced], task.question).toEqual([1, true, true]);
          // What the model learns to write is the rest of its own solution, the answer line included.
          const learned = pieces!.filter((p) => !p.forced).map((p) => p.text).join('');
          expect(learned.endsWith(`So \\boxed{${task.answer}}.`), task.question).toBe(true);
          expect(learned).not.toContain('```');
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(40);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('fit the context: the training set keeps almost all, and none kept is longer than 256 tokens', () => {
    const train = generateTasks({ seed: 1, count: 2000, split: 'train', difficulties: [1, 2, 3] });
    const { demonstrations, dropped } = buildCotDemonstrations(train, (q, r) => length(q, r) <= CONTEXT);
    const droppedCount = Object.values(dropped).reduce((a, b) => a + b, 0);
    expect(demonstrations.length + droppedCount).toBe(train.length);
    expect(droppedCount / train.length).toBeLessThan(0.01);
    for (const d of demonstrations) expect(length(d.question, d.response)).toBeLessThanOrEqual(CONTEXT);
    expect(new Set(demonstrations.map((d) => d.kind))).toEqual(new Set(TASK_KINDS));
  });
});

describe.skipIf(!existsSync(join(MODEL, 'model.safetensors')))('the shipped chain-of-thought model', () => {
  it('answers held-out questions greedily in text steps, without code fences, ending with \\boxed{}', async () => {
    await selectNodeBackend(['wasm', 'cpu']);
    const folder = await loadModelFolder(folderSource(MODEL));
    const model = Transformer.fromWeights(folder.config, folder.weights);
    try {
      const test = generateTasks({ seed: 1, count: 9, split: 'test', difficulties: [1, 2] });
      const r = await evaluateCot(model, folder.tokenizer, test.slice(0, 4), folder.config.max_position_embeddings);
      for (const s of r.samples) {
        expect(s.response).not.toContain('```python');
        expect(s.response.split('\n').length).toBeGreaterThanOrEqual(2);
      }
      expect(r.samples.filter((s) => /\\boxed\{[^{}]*\}\.?\s*$/.test(s.response)).length).toBeGreaterThanOrEqual(3);
    } finally {
      model.dispose();
    }
  }, 120_000);

  it('reads a result TIRGen gives it: after a real output block it boxes that output', async () => {
    const lab = await nodeLab();
    try {
      await lab.loadModel({ kind: 'shipped', name: 'thor-tiny-cot' });
      const tasks = generateTasks({ seed: 3, count: 12, split: 'test', kinds: ['multiply'], difficulties: [1, 2] }).slice(0, 4);
      let read = 0;
      for (const t of tasks) {
        // As TIRGen leaves a step: the critic's code and the sandbox's output (the reference answer is what it prints).
        const prefix = `\`\`\`python\n${t.program}\n\`\`\`\n\`\`\`output\n${t.answer}\n\`\`\`\n`;
        const r = await lab.infer({ question: t.question, prefix, settings: { infer: { temperature: 0, selfCorrection: false } } });
        if (r.record.finalAnswer === t.answer) read++;
      }
      expect(read).toBeGreaterThanOrEqual(3);
    } finally {
      await lab.close();
    }
  }, 120_000);
});
