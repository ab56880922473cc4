/**
 * The lab service's TIRGen job (docs/tirgen.md#the-tirgen-panel), as the browser's panel drives it:
 * the shipped tiny model as the actor, the rule critic, the real Pyodide sandbox. Checked: step,
 * question and progress events arrive; the report's counts add up; the data lines are SFT data the
 * lab's reader accepts; a stop keeps the finished questions, and a resume from them does no question
 * twice and gives the same data as a run never stopped; a critic endpoint that answers without code
 * and then fails is counted and ends the run with what it made, never a failed job.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTasks } from '../../src/core/data/tasks';
import type { LabEvent, TirgenOutcome, TirgenRequest } from '../../src/core/lab/api';
import { CONTROL } from '../../src/core/lab/control';
import { LabService } from '../../src/core/lab/service';
import { readDemonstrationsJsonl } from '../../src/core/tir/demonstrations';
import type { TirgenCounts } from '../../src/core/tirgen';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';

const dir = mkdtempSync(join(os.tmpdir(), 'lab-tirgen-'));
const service = new LabService(nodeLabEnv({ store: new DiskRunStore(join(dir, 'runs')), python: { size: 1, preload: [] } }));

beforeAll(async () => {
  await service.init({ order: ['wasm', 'cpu'] });
  await service.loadModel({ kind: 'shipped' });
});

afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

const SETTINGS = { attempts: 4, oneCallKeep: 1, concurrency: 1 };
const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

function checkCounts(c: TirgenCounts): void {
  expect(c.finished + sum(c.failures)).toBe(c.attempts);
  expect(c.steps.total).toBe(c.steps.unchanged + c.steps.rewritten + c.steps.invalid + c.steps.short + c.steps.afterThinking + c.steps.codeFailed);
  expect(sum(c.droppedBy) - c.droppedBy.onePerQuestion - c.droppedBy.oneCallHalving + c.passed).toBe(c.finished);
  expect(c.passed).toBe(c.kept + c.droppedBy.onePerQuestion + c.droppedBy.oneCallHalving);
  expect(sum(c.calls)).toBe(c.kept);
}

async function run(request: TirgenRequest, on?: (e: LabEvent) => void): Promise<{ outcome: TirgenOutcome; events: LabEvent[] }> {
  const events: LabEvent[] = [];
  const outcome = await service.tirgen(request, (e) => {
    events.push(e);
    on?.(e);
  });
  return { outcome, events };
}

describe('the lab service runs TIRGen', () => {
  it('streams steps before and after, questions and progress; the counts add up and the data is SFT data', async () => {
    const { outcome, events } = await run({ source: { kind: 'synthetic', count: 3, seed: 4 }, critic: { kind: 'rule' }, settings: SETTINGS, seed: 1 });
    const { report } = outcome;
    expect(report.stopped).toBeUndefined();
    expect(report.critic).toBe('rule');
    expect(report.actor).toMatch(/shipped/);
    expect(report.counts.questions).toBe(3);
    expect(report.counts.attempts).toBe(12);
    checkCounts(report.counts);

    const steps = events.flatMap((e) => (e.type === 'tirgen-step' ? [e.step] : []));
    expect(steps.length).toBe(report.counts.steps.total);
    const rewrite = steps.find((s) => s.verdict === 'rewrite' && s.executions.length > 0);
    expect(rewrite).toBeDefined();
    expect(rewrite!.actor).not.toBe('');
    expect(rewrite!.critic).toContain('```python');
    expect(rewrite!.executions[0].observation).not.toBe('');
    expect(rewrite!.appended).toContain('```output');

    const questions = events.flatMap((e) => (e.type === 'tirgen-question' ? [e] : []));
    expect(questions.map((q) => q.result.id).sort()).toEqual(generateTasks({ seed: 4, count: 3, split: 'train' }).map((t) => t.id).sort());
    const progress = events.flatMap((e) => (e.type === 'tirgen-progress' ? [e.progress] : []));
    expect(progress[0]).toMatchObject({ done: 0, total: 3, todoAtStart: 3 });
    expect(progress.at(-1)).toMatchObject({ done: 3, total: 3, doneNow: 3, attempts: 12, kept: report.counts.kept });

    // data.jsonl as the SFT reader reads `--sft-file`, one line per kept sample, and the same samples as chat
    expect(report.counts.kept).toBeGreaterThan(0);
    const read = readDemonstrationsJsonl(outcome.data, 'data.jsonl');
    expect(read.skipped).toEqual([]);
    expect(read.demonstrations.length).toBe(report.counts.kept);
    expect(read.demonstrations.every((d) => d.response.includes('```python') && d.response.includes('```output'))).toBe(true);
    expect(lines(outcome.messages).map((l) => JSON.parse(l).messages[1].content)).toEqual(read.demonstrations.map((d) => d.response));
    expect(questions.map((q) => q.data).join('')).toBe(outcome.data);
    // progress.jsonl: the header, then one line per question
    expect(lines(outcome.progress).map((l) => JSON.parse(l).type)).toEqual(['tirgen-progress', 'question', 'question', 'question']);
  });

  it('stops with the questions it finished; a resume from them does none twice and gives the unbroken run its data', async () => {
    const tasks = generateTasks({ seed: 9, count: 4, split: 'train' });
    const source: TirgenRequest['source'] = {
      kind: 'problems',
      label: 'tasks.jsonl',
      // A line with no answer is skipped and counted, never a failed run.
      problems: [...tasks.map((t) => ({ id: t.id, question: t.question, answer: t.answer })), { id: 'no-answer', question: 'What is 2+2?', answer: '' }],
      records: 6,
      skipped: { missing_answer: 1 },
    };
    const request: TirgenRequest = { source, critic: { kind: 'rule' }, settings: SETTINGS, seed: 2 };
    const unbroken = await run(request);
    expect(unbroken.outcome.report.counts.questions).toBe(5);
    expect(unbroken.outcome.report.counts.skipped.noAnswer).toBe(1);
    expect(unbroken.outcome.report.input).toEqual({ source: 'tasks.jsonl', records: 6, skipped: { missing_answer: 1 } });

    // Stop once two questions are done: the one in flight is dropped, the finished ones stay.
    let finished = 0;
    const stopped = await run(request, (e) => {
      if (e.type === 'tirgen-question' && ++finished === 2) void service.setControl(CONTROL.stop);
    });
    const part = stopped.outcome;
    // the panel tells a user's stop from a failure by this text
    expect(part.report.stopped).toBe('interrupted: stopped');
    expect(part.report.counts.questions).toBeGreaterThanOrEqual(2);
    expect(part.report.counts.questions).toBeLessThan(5);
    const doneFirst = lines(part.progress).slice(1).map((l) => JSON.parse(l).id as string);
    expect(doneFirst.length).toBe(part.report.counts.questions);

    // The job is over: the lab takes the next one.
    const resumed = await run({ ...request, previous: { progress: part.progress, data: part.data, messages: part.messages } });
    const out = resumed.outcome;
    expect(out.report.stopped).toBeUndefined();
    expect(out.report.resumed).toBe(doneFirst.length);
    const redone = resumed.events.flatMap((e) => (e.type === 'tirgen-question' ? [e.result.id] : []));
    expect(redone.filter((id) => doneFirst.includes(id))).toEqual([]);
    const ids = lines(out.progress).slice(1).map((l) => JSON.parse(l).id as string);
    expect(new Set(ids).size).toBe(5);
    expect(ids.length).toBe(5);
    // The same samples and counts as the run that never stopped (each question is seeded by itself).
    const sorted = (text: string) => lines(text).sort();
    expect(sorted(out.data)).toEqual(sorted(unbroken.outcome.data));
    expect(sorted(out.messages)).toEqual(sorted(unbroken.outcome.messages));
    expect(out.report.counts).toEqual(unbroken.outcome.report.counts);
    checkCounts(out.report.counts);
  });

  it('counts critic replies with no code, and a critic endpoint that fails midway ends the run with the questions it finished', async () => {
    let n = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (++n > 4) {
          res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'the critic is down', type: 'server_error', param: null, code: null } }));
          return;
        }
        const reply = 'I would rather not say.';
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `c${n}`, object: 'chat.completion', created: 0, model: 'critic', choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const { outcome } = await run({ source: { kind: 'synthetic', count: 4, seed: 4 }, critic: { kind: 'endpoint', endpoint: { baseURL: url, model: 'critic', maxRetries: 0 } }, settings: { attempts: 2, concurrency: 1 }, seed: 1 });
      const { report } = outcome;
      expect(report.stopped).toMatch(/critic is down|500/);
      expect(report.critic).toMatch(/^model: critic @/);
      expect(report.counts.criticInvalid['no-code']).toBeGreaterThan(0);
      expect(report.counts.questions).toBeGreaterThan(0);
      expect(report.counts.questions).toBeLessThan(4);
      expect(lines(outcome.progress).length).toBe(report.counts.questions + 1);
      checkCounts(report.counts);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('refuses bad settings and a resume made differently, naming what is wrong', async () => {
    await expect(service.tirgen({ source: { kind: 'synthetic', count: 1, seed: 0 }, critic: { kind: 'rule' }, settings: { codeQuality: 'strict' } })).rejects.toThrow(/tirgen\.codeQuality/);
    const header = JSON.stringify({ type: 'tirgen-progress', version: 1, createdAt: '', actor: 'other', critic: 'rule', seed: 0, settings: {}, source: '' });
    await expect(service.tirgen({ source: { kind: 'synthetic', count: 1, seed: 0 }, critic: { kind: 'rule' }, previous: { progress: `${header}\n` } })).rejects.toThrow(/actor "other"/);
  });
});
