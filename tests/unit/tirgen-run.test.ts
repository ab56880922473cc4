/**
 * TIRGen with real parts (docs/tirgen.md): the shipped tiny model as the actor, Pyodide running the
 * critic's code, the rule critic, and model critics behind HTTP (the lab's own OpenAI server, and test
 * servers that send bad replies or fail midway). Checked: the counts add up, kept samples hold real
 * outputs and load as SFT data, an interrupted run resumes to the same data without duplicates, a
 * critic endpoint that dies stops the run with what it had, and bad input is counted, never fatal.
 */
import { mkdtemp, readFile, appendFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTasks } from '../../src/core/data/tasks';
import { EndpointModel } from '../../src/core/llm/client';
import { LocalModel } from '../../src/core/llm/local';
import type { TextModel } from '../../src/core/llm/types';
import type { PythonPool } from '../../src/core/sandbox/pool';
import { readDemonstrationsJsonl } from '../../src/core/tir/demonstrations';
import { splitFences } from '../../src/core/tir/format';
import {
  codeBlocks,
  ModelCritic,
  parseTirgenSettings,
  RuleCritic,
  ruleRewrite,
  runTirgen,
  sameOutput,
  sampleLine,
  type Critic,
  type QuestionResult,
  type StepEvent,
  type TirgenCounts,
  type TirgenProblem,
  type TirgenReport,
} from '../../src/core/tirgen';
import { selectNodeBackend } from '../../src/node/backend';
import { loadModel } from '../../src/node/lab';
import { startOpenAIServer, type RunningServer } from '../../src/node/openai-server';
import { createNodePythonPool } from '../../src/node/python';
import { openTirgenFolder } from '../../src/node/tirgen';

let actor: LocalModel;
let pool: PythonPool;
let server: RunningServer;
let dir: string;

beforeAll(async () => {
  await selectNodeBackend(['wasm', 'cpu']);
  const { model, tokenizer } = await loadModel();
  actor = new LocalModel(model, tokenizer, 'thor-tiny');
  [pool, server, dir] = await Promise.all([createNodePythonPool({ size: 1, preload: [] }), startOpenAIServer({ model: actor, name: 'thor-tiny', port: 0, contextLength: 256 }), mkdtemp(join(tmpdir(), 'tirgen-'))]);
});

afterAll(async () => {
  await server?.close();
  await pool?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const problems = (count: number, seed = 5): TirgenProblem[] => generateTasks({ seed, count, split: 'train' }).map((t) => ({ id: t.id, question: t.question, answer: t.answer }));

/** The report's counts agree with each other. */
function checkCounts(c: TirgenCounts): void {
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  expect(c.finished + sum(c.failures)).toBe(c.attempts);
  expect(c.failures['critic-invalid']).toBe(sum(c.criticInvalid));
  expect(c.steps.invalid).toBe(sum(c.criticInvalid));
  expect(c.steps.total).toBe(c.steps.unchanged + c.steps.rewritten + c.steps.invalid + c.steps.short + c.steps.afterThinking + c.steps.codeFailed);
  expect(c.steps.codeFailed).toBe(c.failures['code-failed']);
  const byFilter = c.droppedBy.answer + c.droppedBy.execution + c.droppedBy.boxed + c.droppedBy.dollars + c.droppedBy.code + c.droppedBy.codeQuality + c.droppedBy.repetition;
  expect(byFilter + c.passed).toBe(c.finished);
  expect(c.passed).toBe(c.kept + c.droppedBy.onePerQuestion + c.droppedBy.oneCallHalving);
  expect(sum(c.calls)).toBe(c.kept);
}

/** A test server for the critic's chat completions: `reply(n)` answers the n-th request (1-based), or fails it with a status. */
async function criticServer(reply: (n: number, body: { messages: { role: string; content: string }[] }) => string | { status: number }, tokensOf: (text: string) => number = () => 1) {
  let n = 0;
  const s: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const r = reply(++n, JSON.parse(Buffer.concat(chunks).toString('utf8')));
    if (typeof r !== 'string') {
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'the critic is down', type: 'server_error', param: null, code: null } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ id: `c${n}`, object: 'chat.completion', created: 0, model: 'critic', choices: [{ index: 0, message: { role: 'assistant', content: r }, finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: tokensOf(r), total_tokens: 1 + tokensOf(r) } }),
    );
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/v1`,
    requests: () => n,
    close: () => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))),
  };
}

async function generate(ps: TirgenProblem[], critic: Critic, sets: string[], extra: { signal?: AbortSignal; onQuestion?: (r: QuestionResult) => void | Promise<void>; previous?: QuestionResult[]; seed?: number; actor?: TextModel } = {}) {
  const events: StepEvent[] = [];
  const out = await runTirgen(
    { problems: ps, settings: parseTirgenSettings(sets), seed: extra.seed ?? 1, ...(extra.previous && { previous: extra.previous }) },
    { actor: extra.actor ?? actor, critic, executor: pool, onStep: (e) => events.push(e), ...(extra.signal && { signal: extra.signal }), ...(extra.onQuestion && { onQuestion: extra.onQuestion }) },
  );
  return { ...out, events };
}

describe('TIRGen with the shipped model and Pyodide', () => {
  it("the rule critic's code runs and prints what the steps claimed", async () => {
    const steps = [
      'First, 347 times 829 = 287663.',
      'So 3^25 mod 5 = 3 and the remainder of 17 divided by 5 is 2.',
      'Adding, \\frac{3}{4}+\\frac{5}{6} = \\frac{19}{12}.',
      'gcd(84, 36) = 12, the least common multiple of 4 and 6 is 12.',
      '1+2+...+50 = 1275, and 1^2+2^2+...+10^2 = 385.',
      '7! = 5040 and 10 choose 3 is 120.',
      '2 to the power of 10 modulo 7 = 2, and 1+3+3^2+...+3^4 = 121.',
      'The square root of 144 is 12.',
    ];
    for (const step of steps) {
      const pieces = splitFences(ruleRewrite(step)!);
      const code = pieces.filter((p) => p.kind === 'code');
      const expected = pieces.filter((p) => p.kind === 'output');
      expect(code.length, step).toBeGreaterThan(0);
      expect(expected.length, step).toBe(code.length);
      for (let i = 0; i < code.length; i++) {
        const r = await pool.run(code[i].body, { timeoutMs: 30_000 });
        expect(r.status, `${step}: ${r.stderr}`).toBe('ok');
        expect(sameOutput(expected[i].body, r.stdout), `${step}: ${expected[i].body} vs ${r.stdout}`).toBe(true);
      }
    }
  });

  it('runs end to end on synthetic problems with the rule critic: real outputs in the samples, counts that add up, SFT-ready lines', async () => {
    const ps = problems(4);
    const { report, results, events } = await generate(ps, new RuleCritic(), ['tirgen.attempts=4', 'tirgen.oneCallKeep=1']);
    const c = report.counts;
    expect(report.stopped).toBeUndefined();
    expect(c.questions).toBe(4);
    expect(c.attempts).toBe(16);
    checkCounts(c);
    expect(c.steps.rewritten).toBeGreaterThan(0);
    expect(c.kept).toBeGreaterThan(0);
    // Before and after of each step: a rewrite ran code and put its real output in the answer.
    const rewrite = events.find((e) => e.verdict === 'rewrite')!;
    expect(rewrite.executions.length).toBeGreaterThan(0);
    expect(rewrite.appended).toContain('```output\n');
    const samples = results.flatMap((r) => r.samples);
    expect(samples).toHaveLength(c.kept);
    for (const s of samples) {
      // Every output block is what its code prints when run again.
      const pieces = splitFences(s.response);
      const blocks = codeBlocks(s.response);
      const outputs = pieces.filter((p) => p.kind === 'output').map((p) => p.body);
      expect(outputs).toHaveLength(blocks.length);
      for (let i = 0; i < blocks.length; i++) expect((await pool.run(blocks[i], { timeoutMs: 30_000 })).stdout.trimEnd()).toBe(outputs[i]);
      expect(s.calls).toBe(blocks.length);
    }
    const read = readDemonstrationsJsonl(samples.map((s) => sampleLine(s, { actor: 'a', critic: 'rule' })).join(''), 'data.jsonl');
    expect(read.skipped).toEqual([]);
    expect(read.demonstrations.map((d) => d.question)).toEqual(samples.map((s) => s.question));
  });

  it('resumes an interrupted run to the same data as a run straight through, without duplicates', async () => {
    const ps = problems(5, 9);
    const sets = ['tirgen.attempts=2', 'tirgen.concurrency=2', 'tirgen.oneCallKeep=1'];
    const header = (d: string) => openTirgenFolder(d, { actor: actor.label, critic: 'rule', seed: 1, settings: parseTirgenSettings(sets), source: 'test' }, { resume: true, dataInstruction: '' });
    const straightDir = join(dir, 'straight');
    const straight = await header(straightDir);
    const whole = await generate(ps, new RuleCritic(), sets, { onQuestion: (r) => straight.write(r) });
    await straight.writeReport(whole.report);

    const cutDir = join(dir, 'cut');
    const first = await header(cutDir);
    const stop = new AbortController();
    let written = 0;
    const part = await generate(ps, new RuleCritic(), sets, {
      signal: stop.signal,
      onQuestion: async (r) => {
        await first.write(r);
        if (++written === 2) stop.abort(new Error('test stop'));
      },
    });
    expect(part.report.stopped).toMatch(/^interrupted: test stop/);
    expect(part.results).toHaveLength(2);
    // What a kill leaves: a line cut short, and the sample line of a question whose progress line never came.
    const lost = ps.find((p) => !part.results.some((r) => r.id === p.id))!;
    await appendFile(join(cutDir, 'data.jsonl'), sampleLine({ id: lost.id, question: lost.question, reference: lost.answer, response: 'x', calls: 1, attempt: 0, steps: 1 }, { actor: 'a', critic: 'rule' }) + '{"question": "What is');

    const again = await header(cutDir);
    expect(again.done.map((r) => r.id).sort()).toEqual(part.results.map((r) => r.id).sort());
    expect(again.dropped).toBe(2);
    const rest = await generate(ps, new RuleCritic(), sets, { previous: again.done, onQuestion: (r) => again.write(r) });
    expect(rest.results).toHaveLength(3);
    expect(rest.report.resumed).toBe(2);

    const lines = async (d: string, f: string) => (await readFile(join(d, f), 'utf8')).split('\n').filter((l) => l !== '').sort();
    for (const f of ['data.jsonl', 'messages.jsonl']) expect(await lines(cutDir, f)).toEqual(await lines(straightDir, f));
    const ids = (await lines(cutDir, 'data.jsonl')).map((l) => JSON.parse(l).id as string);
    expect(new Set(ids).size).toBe(ids.length);
    const progress = await lines(cutDir, 'progress.jsonl');
    expect(progress.filter((l) => l.includes('"type":"question"'))).toHaveLength(5);
    const countsOf = (r: TirgenReport) => r.counts;
    expect(countsOf(rest.report)).toEqual(countsOf(whole.report));
  });

  it('stops when the critic endpoint fails midway, keeping the questions it finished and saying why', async () => {
    const down = await criticServer((n) => (n <= 4 ? 'NO COMPUTATION' : { status: 500 }));
    try {
      const critic = new ModelCritic(new EndpointModel({ baseURL: down.url, model: 'critic', maxRetries: 0 }), { temperature: 0, maxTokens: 64, minOverlap: 0.5 });
      const done: QuestionResult[] = [];
      const { report, results } = await generate(problems(6, 11), critic, ['tirgen.attempts=1', 'tirgen.concurrency=1'], { onQuestion: (r) => void done.push(r) });
      expect(report.stopped).toMatch(/HTTP 500/);
      expect(report.stopped).toMatch(/the critic is down/);
      expect(results.length).toBeGreaterThan(0);
      expect(results.length).toBeLessThan(6);
      expect(done).toEqual(results);
      expect(report.counts.questions).toBe(results.length);
      checkCounts(report.counts);
    } finally {
      await down.close();
    }
  });

  it('counts bad critic replies, failing code, an actor that never ends a step or runs out of room, and a line with no answer; none is fatal', async () => {
    const replies = [
      'The product is large, so it needs care.',
      'Sure! Here is a poem about cats and boxes and their playful naps:\n```python\nprint("meow")\n```',
      'Use Python.\n```python\nprint(1/0)\n```',
      'Use Python:\n```python\nprint(1',
      '',
    ];
    const bad = await criticServer((n) => replies[n - 1] ?? 'NO COMPUTATION');
    try {
      const critic = new ModelCritic(new EndpointModel({ baseURL: bad.url, model: 'critic', maxRetries: 0 }), { temperature: 0, maxTokens: 64, minOverlap: 0.5 });
      const ps = [...problems(5, 13), { id: 'no-answer', question: 'What is 2+2?', answer: '' }];
      const { report, events } = await generate(ps, critic, ['tirgen.attempts=1', 'tirgen.concurrency=1']);
      const c = report.counts;
      expect(report.stopped).toBeUndefined();
      expect(c.questions).toBe(6);
      expect(c.skipped.noAnswer).toBe(1);
      expect(c.attempts).toBe(5);
      expect(c.criticInvalid).toEqual({ 'no-code': 1, 'not-a-rewrite': 1, 'unclosed-code': 1, empty: 1, 'too-long': 0 });
      expect(c.failures).toEqual({ 'actor-no-step-end': 0, 'actor-budget': 0, 'critic-invalid': 4, 'code-failed': 1 });
      expect(events.find((e) => e.verdict === 'code-failed')!.reason).toMatch(/ZeroDivisionError/);
      checkCounts(c);
    } finally {
      await bad.close();
    }
    // A window of 3 tokens never reaches a line end; a budget of 40 tokens runs out after the model's first line, before its code and answer.
    const tiny = await generate(problems(2, 13), new RuleCritic(), ['tirgen.attempts=2', 'tirgen.stepTokens=3']);
    expect(tiny.report.counts.failures['actor-no-step-end']).toBe(4);
    expect(tiny.events.every((e) => e.verdict === 'no-step-end')).toBe(true);
    const short = await generate(problems(2, 13), new RuleCritic(), ['tirgen.attempts=2', 'tirgen.maxResponseTokens=40']);
    expect(short.report.counts.failures['actor-budget']).toBeGreaterThan(0);
    checkCounts(short.report.counts);
  });

  it("counts against the budget the answer as it stands, not the part of a step a rewrite dropped", async () => {
    // A character-level actor: its first step is 103 tokens of lines, the first one wrong, so the
    // rewrite keeps that line's code and output and drops the rest. 103 tokens written is more than
    // the budget of 60; what the answer keeps is far less, and the actor finishes.
    const first = ['2*3 = 7.', '4*5 = 21.', '6*7 = 43.', '8*9 = 73.', '3*4 = 13.', '5*6 = 31.', '7*8 = 57.', '9*9 = 82.', '2*9 = 19.', '3*9 = 28.', '4*9'].join('\n') + '\n';
    expect(first.length).toBe(103);
    // The step after a rewrite (the answer so far goes back with its output) finishes.
    const steps = await criticServer((_, body) => (body.messages.some((m) => m.content.includes('```output')) ? 'So \\boxed{6}.' : first), (text) => text.length);
    try {
      const endpointActor = new EndpointModel({ baseURL: steps.url, model: 'actor', maxRetries: 0 });
      const ps = [{ id: 'six', question: 'What is 2*3?', answer: '6' }];
      const { report, events } = await generate(ps, new RuleCritic(), ['tirgen.attempts=1', 'tirgen.maxResponseTokens=60', 'tirgen.stepTokens=100', 'tirgen.codeQuality=off'], { actor: endpointActor });
      expect(report.counts.failures['actor-budget']).toBe(0);
      expect(report.counts).toMatchObject({ attempts: 1, finished: 1, kept: 1 });
      expect(events.map((e) => e.verdict)).toEqual(['rewrite', 'unchanged']);
      expect(events[0].appended).toContain('```output\n6\n```');
      expect(events[0].appended).not.toContain('4*5');
      expect(steps.requests()).toBe(2);
      // The same actor with a budget smaller than what the answer keeps still runs out.
      const short = await generate(ps, new RuleCritic(), ['tirgen.attempts=1', 'tirgen.maxResponseTokens=12', 'tirgen.stepTokens=100'], { actor: endpointActor });
      expect(short.report.counts.failures['actor-budget']).toBe(1);
      expect(steps.requests()).toBe(3);
    } finally {
      await steps.close();
    }
  });

  it('takes an endpoint actor, and drops the questions it already solves without tools', async () => {
    const direct = await criticServer(() => 'Directly: \\boxed{6}.');
    try {
      const endpointActor = new EndpointModel({ baseURL: direct.url, model: 'actor', maxRetries: 0 });
      const ps = [
        { id: 'six', question: 'What is 2*3?', answer: '6' },
        { id: 'eight', question: 'What is 2*4?', answer: '8' },
      ];
      const { report, results } = await generate(ps, new RuleCritic(), ['tirgen.attempts=2', 'tirgen.dropSolvedWithoutTools=true'], { actor: endpointActor });
      expect(report.actor).toBe(endpointActor.label);
      expect(results.find((r) => r.id === 'six')!.skipped).toBe('solved-without-tools');
      expect(report.counts.skipped.solvedWithoutTools).toBe(1);
      // The other question's answers end at once, with no code and a wrong answer.
      expect(report.counts).toMatchObject({ attempts: 2, finished: 2, filters: { answer: 2, code: 2 }, kept: 0 });
      expect(direct.requests()).toBe(2 + 2);
    } finally {
      await direct.close();
    }
    // A reasoning actor: the critic sees the thinking only, and the answer after it goes on without the critic.
    const reasoning = await criticServer((_, body) => (body.messages.some((m) => m.role === 'assistant') ? '</think>\nSo \\boxed{6}.' : '<think>\nWe need 2*3 = 6.\n</think>\nThe answer is \\boxed{6}.'));
    try {
      const { report, results } = await generate([{ id: 'six', question: 'What is 2*3?', answer: '6' }], new RuleCritic(), ['tirgen.attempts=1', 'tirgen.oneCallKeep=1'], { actor: new EndpointModel({ baseURL: reasoning.url, model: 'actor', maxRetries: 0 }) });
      expect(report.counts.steps).toMatchObject({ total: 2, rewritten: 1, afterThinking: 1 });
      expect(results[0].samples[0].response).toBe('<think>\nWe need 2*3\n```python\nprint(2 * 3)\n```\n```output\n6\n```\n</think>\nSo \\boxed{6}.');
    } finally {
      await reasoning.close();
    }
  });

  it("takes a model critic through the lab's OpenAI server: a prompt too long for its context, and the tiny model's own replies, are counted", async () => {
    const endpoint = new EndpointModel({ baseURL: server.baseURL, model: 'thor-tiny', maxRetries: 0 });
    const before = server.stats.requests;
    const long = await generate(problems(2, 17), new ModelCritic(endpoint, { temperature: 0.6, maxTokens: 64, minOverlap: 0.5 }), ['tirgen.attempts=2']);
    expect(long.report.stopped).toBeUndefined();
    expect(long.report.counts.criticInvalid['too-long']).toBe(long.report.counts.steps.total);
    expect(long.report.counts.failures['critic-invalid']).toBe(4);
    const own = await generate(problems(3, 17), new ModelCritic(endpoint, { temperature: 0.6, maxTokens: 64, minOverlap: 0.5, template: '{step}' }), ['tirgen.attempts=2']);
    expect(own.report.stopped).toBeUndefined();
    expect(own.report.counts.attempts).toBe(6);
    expect(own.report.counts.steps.total).toBeGreaterThan(0);
    checkCounts(own.report.counts);
    expect(server.stats.requests - before).toBeGreaterThanOrEqual(4 + own.report.counts.steps.total - own.report.counts.steps.short);
  });
});
