/**
 * Context fit in the lab service, with the shipped tiny model (256 positions, a character tokenizer)
 * on the wasm backend: checkFit before a run, and an evaluation that skips and counts the questions
 * too long for the context instead of failing on them (docs/datasets.md#context-fit).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTasks } from '../../src/core/data/tasks';
import { readProblems } from '../../src/core/data/readers';
import type { LabEvent } from '../../src/core/lab/api';
import { LabService } from '../../src/core/lab/service';
import { encodePrompt } from '../../src/core/tir/prompt';
import { CharTokenizer } from '../../src/core/tokenizer/char';
import { nodeLabEnv } from '../../src/node/lab';

const ROOT = join(import.meta.dirname, '..', '..');
const service = new LabService(nodeLabEnv({ python: { size: 1, preload: [] } }));
const short = generateTasks({ seed: 11, count: 2, split: 'test', difficulties: [1] });
/** A question whose prompt alone is longer than the model's 256 positions. */
const long = { id: 'long', question: `Add up these numbers: ${Array.from({ length: 60 }, (_, i) => i + 1).join(' + ')}.`, answer: '1830', source: 'test' };
const SETTINGS = { eval: { samples: 1, temperature: 0 }, rollout: { maxResponseTokens: 16, maxToolCalls: 0 } };

beforeAll(async () => {
  await service.init({ order: ['wasm', 'cpu'] });
  await service.loadModel({ kind: 'shipped' });
});

afterAll(async () => {
  await service.close();
});

describe('context fit', () => {
  it('checkFit counts prompt tokens as evaluation builds them, against the loaded context', async () => {
    const tokenizer = CharTokenizer.fromJSON(readFileSync(join(ROOT, 'public/models/thor-tiny/char_tokenizer.json'), 'utf8'));
    const fit = await service.checkFit([...short, long], SETTINGS);
    expect(fit.contextLength).toBe(256);
    expect(fit.minNewTokens).toBe(16); // no more than the answers may take
    expect(fit.promptTokens).toEqual([...short, long].map((p) => encodePrompt(tokenizer, p.question, '').length));
    expect(fit.promptTokens[2]).toBeGreaterThan(256);
    expect(fit.tooLong).toEqual([2]);
    expect(fit.fit).toBe(2);
    // the default room to generate is 32 tokens
    expect((await service.checkFit([long], {})).minNewTokens).toBe(32);
  });

  it('GSM8K against the shipped model: some questions do not fit, and checkFit says which before any run', async () => {
    const gsm = readProblems(readFileSync(join(ROOT, 'data/benchmarks/gsm8k-test.jsonl'), 'utf8'), { file: 'gsm8k-test.jsonl' }).problems;
    const fit = await service.checkFit(gsm, {});
    expect(fit.total).toBe(1319);
    expect(fit.tooLong.length).toBeGreaterThan(0);
    expect(fit.fit + fit.tooLong.length).toBe(1319);
    for (const i of fit.tooLong) expect(fit.promptTokens[i]).toBeGreaterThan(fit.maxPromptTokens);
  });

  it('an evaluation skips the questions too long for the context, counts them and says so, and evaluates the rest', async () => {
    const events: LabEvent[] = [];
    const r = await service.evaluate({ problems: [short[0], long, short[1]], label: 'mixed', settings: SETTINGS }, (e) => events.push(e));
    expect(r.summary.questions).toBe(2);
    expect(r.summary.questions_given).toBe(3);
    expect(r.summary.skipped_too_long).toBe(1);
    expect(new Set(r.records.map((x) => x.question))).toEqual(new Set([short[0].question, short[1].question]));
    const messages = events.flatMap((e) => (e.type === 'message' ? [e.text] : []));
    expect(messages).toEqual([expect.stringMatching(/^2 of 3 questions fit the model's context \(256 tokens, at least 16 left to generate\); 1 longer than 240 prompt tokens \(the longest \d+\) is skipped$/)]);
  });

  it('an evaluation where no question fits is refused with the sizes, not run on nothing', async () => {
    await expect(service.evaluate({ problems: [long], label: 'long', settings: SETTINGS })).rejects.toThrow(/no question fits the model's context \(expected prompts of at most 240 tokens \(256 in the context, 16 left to generate\), found 1 question, the shortest \d+ tokens\)/);
  });
});
