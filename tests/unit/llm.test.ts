/**
 * OpenAI-compatible engines (docs/engines.md): the lab's engine behind its own OpenAI server on
 * loopback, the client against it (through the lab's EndpointModel and through the official `openai`
 * package directly), batching of concurrent requests, and faults from a test server: down, slow,
 * malformed JSON, 429 with Retry-After, 5xx, a cap on requests in flight. Then evaluation through an
 * endpoint that dies midway: it keeps the finished problems, and resumes from them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTasks } from '../../src/core/data/tasks';
import { LabError } from '../../src/core/errors';
import type { ProblemLog } from '../../src/core/eval/evaluate';
import type { LabEvent } from '../../src/core/lab/api';
import { LabService } from '../../src/core/lab/service';
import { EndpointModel } from '../../src/core/llm/client';
import type { LocalModel } from '../../src/core/llm/local';
import { nodeLabEnv } from '../../src/node/lab';
import { startOpenAIServer, type RunningServer } from '../../src/node/openai-server';

const lab = new LabService(nodeLabEnv({ python: { size: 1, preload: [] } }));
let local: LocalModel;
let server: RunningServer;
const PROMPT = 'Q: What is 12*13?\nA: ';

beforeAll(async () => {
  await lab.init();
  await lab.loadModel({ kind: 'shipped' });
  local = lab.textModel();
  server = await startOpenAIServer({ model: local, name: 'thor-tiny', port: 0, contextLength: 256 });
});

afterAll(async () => {
  await server?.close();
  await lab.close();
});

/** A bare HTTP server on loopback whose handler the test writes; it counts requests and the most in flight. */
async function testServer(handler: (req: IncomingMessage, res: ServerResponse, n: number, body: string) => unknown) {
  let n = 0;
  let inFlight = 0;
  const stats = { requests: 0, maxInFlight: 0 };
  const s: Server = createServer(async (req, res) => {
    stats.requests = ++n;
    stats.maxInFlight = Math.max(stats.maxInFlight, ++inFlight);
    res.on('close', () => inFlight--);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    await handler(req, res, n, Buffer.concat(chunks).toString('utf8'));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    stats,
    close: () => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))),
  };
}

const completionBody = (text: string) => JSON.stringify({ id: 'x', object: 'text_completion', created: 0, model: 'm', choices: [{ index: 0, text, finish_reason: 'stop', logprobs: null }] });

describe('the lab OpenAI server and client', () => {
  it('lists the model, and answers what the engine itself answers (greedy, stop strings, logprobs)', async () => {
    const client = new EndpointModel({ baseURL: server.baseURL, model: 'thor-tiny' });
    expect(await client.models()).toEqual(['thor-tiny']);
    const request = { maxTokens: 60, temperature: 0, stop: ['```'], logprobs: 0 };
    const direct = await local.complete(PROMPT, request);
    const viaHttp = await client.complete(PROMPT, request);
    expect(viaHttp.choices[0].text).toBe(direct.choices[0].text);
    expect(viaHttp.choices[0].text.length).toBeGreaterThan(0);
    // The stop string ends the text and is not part of it; the server says which one matched.
    const c = viaHttp.choices[0];
    // The server always says: the stop string, or null when the model ended by itself.
    expect(c.stopString === null || c.stopString === '```').toBe(true);
    expect(c.text).not.toContain('```');
    // One log-probability per returned token, each ≤ 0, and the tokens spell the text.
    expect(c.logprobs!.length).toBeGreaterThan(0);
    expect(c.logprobs!.every((t) => t.logprob <= 0)).toBe(true);
    expect(c.logprobs!.map((t) => t.token).join('')).toBe(c.text);
    expect(viaHttp.usage!.completionTokens).toBeGreaterThan(0);
  });

  it('gives n choices, reproducible by seed, and streams exactly the text it returns whole', async () => {
    const client = new EndpointModel({ baseURL: server.baseURL, model: 'thor-tiny' });
    const r = { maxTokens: 30, temperature: 1, n: 3, seed: 11 };
    const a = await client.complete(PROMPT, r);
    const b = await client.complete(PROMPT, r);
    expect(a.choices).toHaveLength(3);
    expect(a.choices.map((c) => c.text)).toEqual(b.choices.map((c) => c.text));
    const pieces: string[][] = [[], [], []];
    const streamed = await client.complete(PROMPT, r, { onText: (i, d) => pieces[i].push(d) });
    expect(pieces.map((p) => p.join(''))).toEqual(a.choices.map((c) => c.text));
    expect(streamed.choices.map((c) => c.text)).toEqual(a.choices.map((c) => c.text));
    expect(pieces.some((p) => p.length > 1)).toBe(true);
  });

  it('serves chat completions, and continues an unfinished assistant turn', async () => {
    const client = new EndpointModel({ baseURL: server.baseURL, model: 'thor-tiny' });
    const messages = [{ role: 'user' as const, content: 'What is 12*13?' }];
    const whole = await client.complete(messages, { maxTokens: 40, temperature: 0 });
    expect(whole.choices[0].text.length).toBeGreaterThan(5);
    // Continuing the first 10 characters of that answer gives the rest of it.
    const head = whole.choices[0].text.slice(0, 10);
    const rest = await client.complete([...messages, { role: 'assistant', content: head }], { maxTokens: 30, temperature: 0, continueFinal: true });
    expect(head + rest.choices[0].text).toBe(whole.choices[0].text);
  });

  it('works with the official openai package directly: completions, chat, streaming', async () => {
    const openai = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused' });
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['thor-tiny']);
    const c = await openai.completions.create({ model: 'thor-tiny', prompt: PROMPT, max_tokens: 20, temperature: 0 });
    expect(c.choices[0].text).toBe((await local.complete(PROMPT, { maxTokens: 20, temperature: 0 })).choices[0].text);
    const chat = await openai.chat.completions.create({ model: 'thor-tiny', messages: [{ role: 'user', content: 'What is 2+3?' }], max_tokens: 20, temperature: 0, logprobs: true });
    expect(chat.choices[0].message.content).toBeTypeOf('string');
    expect(chat.choices[0].logprobs!.content!.length).toBeGreaterThan(0);
    let streamed = '';
    const stream = await openai.chat.completions.create({ model: 'thor-tiny', messages: [{ role: 'user', content: 'What is 2+3?' }], max_tokens: 20, temperature: 0, stream: true });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe(chat.choices[0].message.content);
  });

  it('decodes concurrent requests in shared batches, each answer as if alone', async () => {
    const client = new EndpointModel({ baseURL: server.baseURL, model: 'thor-tiny', concurrency: 16 });
    const prompts = Array.from({ length: 16 }, (_, i) => `Q: What is ${i + 2}*${i + 7}?\nA: `);
    const alone = [];
    for (const p of prompts.slice(0, 4)) alone.push((await local.complete(p, { maxTokens: 24, temperature: 0 })).choices[0].text);
    const before = { ...local.stats };
    const together = await Promise.all(prompts.map((p) => client.complete(p, { maxTokens: 24, temperature: 0 })));
    const batches = local.stats.batches - before.batches;
    expect(local.stats.requests - before.requests).toBe(16);
    expect(batches).toBeLessThanOrEqual(4);
    expect(together.slice(0, 4).map((c) => c.choices[0].text)).toEqual(alone);
  });

  it('refuses bad requests with OpenAI-style errors that name the field', async () => {
    const post = (path: string, body: string, headers: Record<string, string> = {}) => fetch(server.baseURL + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const bad = await post('/completions', '{"prompt": "x", ');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/not valid JSON/);
    const model = await post('/completions', JSON.stringify({ model: 'gpt-9', prompt: 'x' }));
    expect(model.status).toBe(404);
    expect((await model.json()).error.message).toMatch(/gpt-9.*thor-tiny/);
    const long = await post('/completions', JSON.stringify({ model: 'thor-tiny', prompt: 'x'.repeat(400) }));
    expect(long.status).toBe(400);
    expect((await long.json()).error.message).toMatch(/context.*256/);
    const temp = await post('/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], temperature: -1 }));
    expect(temp.status).toBe(400);
    expect((await temp.json()).error.param).toBe('temperature');
    const roles = await post('/chat/completions', JSON.stringify({ messages: [{ role: 'tool', content: 'hi' }] }));
    expect((await roles.json()).error.message).toMatch(/messages\[0\]\.role/);
    expect((await fetch(server.baseURL.replace('/v1', '/v2/x'))).status).toBe(404);
  });

  it('requires the API key when one is set', async () => {
    const guarded = await startOpenAIServer({ model: local, name: 'thor-tiny', port: 0, apiKey: 'sesame' });
    try {
      await expect(new EndpointModel({ baseURL: guarded.baseURL, model: 'thor-tiny', apiKey: 'wrong' }).models()).rejects.toThrow(/HTTP 401.*check the API key/s);
      expect(await new EndpointModel({ baseURL: guarded.baseURL, model: 'thor-tiny', apiKey: 'sesame' }).models()).toEqual(['thor-tiny']);
    } finally {
      await guarded.close();
    }
  });

  it('leaves no tensors behind', async () => {
    const client = new EndpointModel({ baseURL: server.baseURL, model: 'thor-tiny' });
    await client.complete(PROMPT, { maxTokens: 8, temperature: 0 });
    const base = tf.memory().numTensors;
    await Promise.all([1, 2, 3].map((seed) => client.complete(PROMPT, { maxTokens: 20, temperature: 1, seed, n: 2 })));
    expect(tf.memory().numTensors).toBe(base);
  });
});

describe('the client facing faults', () => {
  it('a server that is down: retried, then an error that names it', async () => {
    const t = await testServer(() => undefined);
    const url = t.url;
    await t.close();
    const client = new EndpointModel({ baseURL: url, model: 'm', maxRetries: 1 });
    const err = await client.complete('x', { maxTokens: 1, temperature: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabError);
    expect((err as Error).message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+\/v1 \(model m\), after 2 tries/);
  });

  it('a slow server: the timeout ends each try, then an error says so', async () => {
    const t = await testServer(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 1500));
      res.end(completionBody('late'));
    });
    try {
      const client = new EndpointModel({ baseURL: t.url, model: 'm', timeoutMs: 200, maxRetries: 1 });
      await expect(client.complete('x', { maxTokens: 1, temperature: 0 })).rejects.toThrow(/did not answer within 200 ms, after 2 tries/);
      expect(t.stats.requests).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('malformed JSON: retried, and a reply that then parses is used', async () => {
    const t = await testServer((_req, res, n) => {
      res.setHeader('content-type', 'application/json');
      res.end(n <= 2 ? '{"choices": [ {"text": "cut' : completionBody('fine'));
    });
    try {
      const client = new EndpointModel({ baseURL: t.url, model: 'm', maxRetries: 3 });
      expect((await client.complete('x', { maxTokens: 1, temperature: 0 })).choices[0].text).toBe('fine');
      expect(t.stats.requests).toBe(3);
    } finally {
      await t.close();
    }
  });

  it('malformed JSON every time, or JSON that is no completion: a clear error', async () => {
    const t = await testServer((_req, res, n) => {
      res.setHeader('content-type', 'application/json');
      res.end(n % 2 ? '<html>502 Bad Gateway</html>' : '{"object": "error"}');
    });
    try {
      const client = new EndpointModel({ baseURL: t.url, model: 'm', maxRetries: 1 });
      await expect(client.complete('x', { maxTokens: 1, temperature: 0 })).rejects.toThrow(/not valid JSON, after 2 tries/);
    } finally {
      await t.close();
    }
  });

  it('429 with Retry-After: waits as told, then succeeds', async () => {
    const t = await testServer((_req, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        return res.end('{"error": {"message": "slow down"}}');
      }
      res.setHeader('content-type', 'application/json');
      res.end(completionBody('ok'));
    });
    try {
      const client = new EndpointModel({ baseURL: t.url, model: 'm', maxRetries: 2 });
      const started = Date.now();
      expect((await client.complete('x', { maxTokens: 1, temperature: 0 })).choices[0].text).toBe('ok');
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(t.stats.requests).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('5xx every time: retried, then the status and the tries in the error', async () => {
    const t = await testServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after-ms': '10' });
      res.end('{"error": {"message": "overloaded"}}');
    });
    try {
      const client = new EndpointModel({ baseURL: t.url, model: 'm', maxRetries: 2 });
      await expect(client.complete('x', { maxTokens: 1, temperature: 0 })).rejects.toThrow(/HTTP 503, after 3 tries/);
      expect(t.stats.requests).toBe(3);
    } finally {
      await t.close();
    }
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const t = await testServer(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 40));
      res.setHeader('content-type', 'application/json');
      res.end(completionBody('ok'));
    });
    try {
      const client = new EndpointModel({ baseURL: t.url, model: 'm', concurrency: 3 });
      await Promise.all(Array.from({ length: 10 }, () => client.complete('x', { maxTokens: 1, temperature: 0 })));
      expect(t.stats.requests).toBe(10);
      expect(t.stats.maxInFlight).toBe(3);
    } finally {
      await t.close();
    }
  });
});

describe('evaluation through an endpoint', () => {
  const problems = generateTasks({ seed: 9, count: 6, split: 'test', difficulties: [1] });
  const settings = { eval: { samples: 2, temperature: 1 }, rollout: { maxResponseTokens: 60 }, seed: 4 };

  it('runs the TIR loop with the lab running the code, as the local model does', async () => {
    const viaServer = await lab.evaluate({ problems, label: 'six', settings, endpoint: { baseURL: server.baseURL, model: 'thor-tiny', concurrency: 8 } });
    expect(viaServer.model).toMatch(/thor-tiny @ http:\/\/127\.0\.0\.1/);
    expect(viaServer.records).toHaveLength(12);
    expect(viaServer.problems).toHaveLength(6);
    // The tiny model writes code on most of these; the lab ran it and put the real output in the text.
    const withCode = viaServer.records.filter((r) => r.executions.length > 0);
    expect(withCode.length).toBeGreaterThan(0);
    for (const r of withCode) {
      const output = r.segments.find((s) => s.kind === 'output')!;
      expect(output.text).toContain(r.executions[0].observation);
    }
    expect(viaServer.summary.accuracy).toBeGreaterThan(0);
  });

  it('reads code fences the same when the server does not say which stop matched', async () => {
    // The same engine, minus the stop_reason field: the rollout must find the fences on its own.
    const { textRollouts } = await import('../../src/core/tir/text-rollout');
    const silent = { kind: 'endpoint' as const, label: 'silent', complete: async (...a: Parameters<LocalModel['complete']>) => {
      const c = await local.complete(...a);
      return { ...c, choices: c.choices.map(({ stopString: _drop, ...rest }) => rest) };
    } };
    const requests = problems.map((p, i) => ({ id: `r${i}`, groupId: `g${i}`, problemId: p.id, question: p.question, reference: p.answer, prompt: [{ role: 'user' as const, content: p.question }] }));
    const s = { maxToolCalls: 2, maxResponseTokens: 60, temperature: 0, topP: 1, topK: 0, seed: 1, toolTimeoutMs: 5000 };
    const executor = { run: (code: string, o: { timeoutMs?: number }) => lab['executor']().run(code, o), endSession: async () => undefined, close: async () => undefined };
    const told = await textRollouts(local, requests, s, { executor });
    const guessed = await textRollouts(silent, requests, s, { executor });
    expect(guessed.map((r) => r.segments.map((x) => x.text).join(''))).toEqual(told.map((r) => r.segments.map((x) => x.text).join('')));
    expect(told.some((r) => r.executions.length > 0)).toBe(true);
  });

  it('answers one question through the endpoint, streaming the text and grading the answer', async () => {
    const events: LabEvent[] = [];
    const r = await lab.infer({ question: 'What is 31*4?', reference: '124', settings: { infer: { temperature: 0 } }, endpoint: { baseURL: server.baseURL, model: 'thor-tiny' } }, (e) => events.push(e));
    const streamed = events.filter((e): e is Extract<LabEvent, { type: 'trajectory' }> => e.type === 'trajectory');
    expect(streamed.length).toBeGreaterThan(0);
    const text = r.record.segments.map((x) => x.text).join('');
    // Every streamed state is a beginning of the final text.
    for (const e of streamed) expect(text.startsWith(e.record.segments.map((x) => x.text).join(''))).toBe(true);
    expect(r.record.generatedTokens).toBeGreaterThan(0);
    expect(r.record.finalAnswer).not.toBeNull();
    expect(r.record.correct).toBe(r.record.finalAnswer === '124');
  });

  it('an endpoint that dies midway: the finished problems are kept, and a resume finishes the rest', async () => {
    // A proxy in front of the lab server that stops answering once three problems are in.
    let dead = false;
    const proxy = await testServer(async (req, res, _n, body) => {
      if (dead) {
        res.writeHead(502, { 'content-type': 'application/json', 'retry-after-ms': '5' });
        return res.end('{"error": {"message": "upstream gone"}}');
      }
      const r = await fetch(server.baseURL + req.url!.replace(/^\/v1/, ''), { method: req.method, headers: { 'content-type': 'application/json' }, body: req.method === 'POST' ? body : undefined });
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
      res.end(await r.text());
    });
    const events: LabEvent[] = [];
    const endpoint = { baseURL: proxy.url, model: 'thor-tiny', concurrency: 2, maxRetries: 1 };
    try {
      const onEvent = (e: LabEvent) => {
        events.push(e);
        if (e.type === 'problem' && e.done === 3) dead = true;
      };
      const err = await lab.evaluate({ problems, label: 'six', settings, endpoint }, onEvent).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LabError);
      const kept = events.filter((e): e is Extract<LabEvent, { type: 'problem' }> => e.type === 'problem').map((e) => e.log);
      expect((err as Error).message).toMatch(new RegExp(`stopped after ${kept.length} of 6 problems: .*HTTP 502`));
      expect((err as Error).message).toMatch(/resume/);
      expect(kept.length).toBeGreaterThanOrEqual(3);
      expect(kept.length).toBeLessThan(6);
      const resumed = await lab.evaluate({ problems, label: 'six', settings, endpoint: { baseURL: server.baseURL, model: 'thor-tiny' }, resume: kept as ProblemLog[] });
      expect(resumed.problems).toHaveLength(6);
      // The kept problems are not sampled again: their records are the logged ones.
      for (const k of kept) expect(resumed.problems.find((p) => p.problemId === k.problemId)!.records).toEqual(k.records);
    } finally {
      await proxy.close();
    }
  });
});

describe('the server for pages', () => {
  it("answers the lab page's preflight and requests with CORS headers, and no others", async () => {
    const pre = await fetch(server.baseURL + '/chat/completions', { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-retry-count' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/x-stainless-retry-count/);
    const models = await fetch(server.baseURL + '/models', { headers: { origin: 'http://localhost:5173' } });
    expect(models.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    const foreign = await fetch(server.baseURL + '/models', { headers: { origin: 'https://elsewhere.example' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await (await fetch(server.baseURL.replace(/\/v1$/, '/health'))).json()) as { in_flight: number }).in_flight).toBe(1);
  });
});

describe('review cases: ends, context limits, bad prompts among good ones', () => {
  const s = { maxToolCalls: 2, maxResponseTokens: 100, temperature: 0, topP: 1, topK: 0, seed: 1, toolTimeoutMs: 5000 };
  const executor = { run: (code: string, o: { timeoutMs?: number }) => lab['executor']().run(code, o), endSession: async () => undefined, close: async () => undefined };
  const req = { id: 'r', groupId: 'g', problemId: 'p', question: 'q', reference: '42', prompt: 'Q: q\nA: ' };

  it("a server that says no stop string matched (null) ended the answer itself: the rollout does not go on", async () => {
    const { textRollout } = await import('../../src/core/tir/text-rollout');
    let calls = 0;
    const scripted = (stopString: null | undefined) => ({
      kind: 'endpoint' as const,
      label: 'scripted',
      complete: async () => {
        calls++;
        return { choices: [{ text: 'The answer is 42.\n', finishReason: 'stop' as const, ...(stopString === null && { stopString }) }] };
      },
    });
    calls = 0;
    await textRollout(scripted(null), req, s, { executor });
    expect(calls).toBe(1);
    // Without the field, a stop at the start of a line with no answer yet may be a fence: it goes on.
    calls = 0;
    await textRollout(scripted(undefined), req, { ...s, maxResponseTokens: 20 }, { executor });
    expect(calls).toBeGreaterThan(1);
  });

  it("prompt + max_tokens over the context (vLLM's 400): asked again with the room the error names", async () => {
    const { roomInContext } = await import('../../src/core/tir/text-rollout');
    expect(roomInContext("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (904 in the messages, 4096 in the completion).")).toBe(3192);
    expect(roomInContext("field \"prompt\": the prompt does not fit the model's context (expected fewer than 256 tokens, found 259 tokens)")).toBe(-4);
    expect(roomInContext('context length exceeded')).toBeUndefined();
    const seen: number[] = [];
    const t = await testServer((_req, res, _n, body) => {
      const maxTokens = (JSON.parse(body) as { max_tokens: number }).max_tokens;
      seen.push(maxTokens);
      res.setHeader('content-type', 'application/json');
      if (maxTokens > 30) {
        res.statusCode = 400;
        return res.end(JSON.stringify({ error: { message: "This model's maximum context length is 40 tokens. However, you requested 110 tokens (10 in the prompt, 100 in the completion)." } }));
      }
      res.end(JSON.stringify({ id: 'x', object: 'text_completion', created: 0, model: 'm', choices: [{ index: 0, text: 'So \\boxed{42}.', finish_reason: 'stop', stop_reason: null }] }));
    });
    try {
      const { textRollout } = await import('../../src/core/tir/text-rollout');
      const r = await textRollout(new EndpointModel({ baseURL: t.url, model: 'm', maxRetries: 0 }), req, s, { executor });
      expect(seen).toEqual([100, 30]);
      expect(r.segments.map((x) => x.text).join('')).toBe('So \\boxed{42}.');
      expect(r.truncated).toBe(false);
    } finally {
      await t.close();
    }
  });

  it('a choice cut off (finish_reason "abort", or a stream with no finish) is an error, not an answer', async () => {
    const t = await testServer((req, res) => {
      if (req.url!.includes('chat')) {
        res.setHeader('content-type', 'text/event-stream');
        res.write(`data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta: { content: 'half an ans' }, finish_reason: null }] })}\n\n`);
        return res.end('data: [DONE]\n\n');
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'x', object: 'text_completion', created: 0, model: 'm', choices: [{ index: 0, text: 'half', finish_reason: 'abort' }] }));
    });
    try {
      const client = new EndpointModel({ baseURL: t.url, model: 'm', maxRetries: 0 });
      await expect(client.complete('x', { maxTokens: 5, temperature: 0 })).rejects.toThrow(/ended choice 0 without finishing it.*"abort"/);
      await expect(client.complete([{ role: 'user', content: 'x' }], { maxTokens: 5, temperature: 0 }, { onText: () => undefined })).rejects.toThrow(/stream ended before choice 0 was finished/);
    } finally {
      await t.close();
    }
  });

  it('one prompt too long among many: a 400 before any decoding, streaming or not', async () => {
    const before = { ...local.stats };
    const post = (body: unknown) => fetch(server.baseURL + '/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const many = await post({ model: 'thor-tiny', prompt: ['Q: 1+1?\nA: ', 'x'.repeat(400)], n: 4, max_tokens: 50 });
    expect(many.status).toBe(400);
    expect((await many.json()).error.message).toMatch(/does not fit the model's context/);
    const streamed = await post({ model: 'thor-tiny', prompt: 'x'.repeat(400), stream: true });
    expect(streamed.status).toBe(400);
    expect(local.stats.requests).toBe(before.requests);
  });

  it('reads the key with "bearer" in any case, and the "developer" role as system', async () => {
    const guarded = await startOpenAIServer({ model: local, name: 'thor-tiny', port: 0, apiKey: 'sesame' });
    try {
      const r = await fetch(guarded.baseURL + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'bearer sesame' }, body: JSON.stringify({ messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: 'What is 2+3?' }], max_tokens: 10 }) });
      expect(r.status).toBe(200);
      const bad = await fetch(guarded.baseURL + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sesame' }, body: JSON.stringify({ messages: [{ role: 'user', content: [null] }] }) });
      expect(bad.status).toBe(400);
    } finally {
      await guarded.close();
    }
  });
});
