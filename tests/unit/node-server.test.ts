/**
 * The remote node as a user runs it: `npm run node` in a child process on loopback, driven through
 * the same LabApi the UI uses (over its WebSocket), through the official `openai` package, and with
 * raw HTTP for what a hostile or careless client sends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabEvent } from '../../src/core/lab/api';
import { CONTROL } from '../../src/core/lab/control';
import { connectLabNode, type RemoteLab } from '../../src/core/lab/rpc';
import { importRun } from '../../src/core/run/store';
import { nodeSocketFactory } from '../../src/node/lab-node';
import { DiskRunStore } from '../../src/node/runstore';
import { waitForOutput } from '../fixtures/processes';
import { tinyRl as tinyRlConfig } from '../fixtures/run-configs';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(os.tmpdir(), 'node-server-'));
const TOKEN = 'test-token-0123456789';
let node: ChildProcess;
let url = '';
const remotes: RemoteLab[] = [];

const tinyRl = (steps: number) => tinyRlConfig(steps, { eval: { samples: 1, everySteps: 100, maxQuestions: 2 } });

const connect = (token = TOKEN, origin?: string) => {
  const r = connectLabNode({ url, token }, nodeSocketFactory({ origin }));
  remotes.push(r);
  return r;
};

const get = (path: string, token = TOKEN, headers: Record<string, string> = {}) => fetch(url + path, { headers: { ...headers, ...(token && { authorization: `Bearer ${token}` }) } });

const health = async () => (await (await get('/health')).json()) as { job: { what: string; state: string; orphaned: boolean } | null; waiting: number; backend: string; python: string; model: string };

beforeAll(async () => {
  node = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', '--port', '0', '--token', TOKEN, '--runs', join(dir, 'runs'), '--backend', 'wasm', '--on-disconnect', 'stop', '--quiet'], { cwd: ROOT });
  node.stderr!.on('data', () => undefined);
  url = (await waitForOutput(node, /node at (http:\/\/127\.0\.0\.1:\d+)/, 'the node'))[1];
}, 200_000);

afterAll(() => {
  for (const r of remotes) r.terminate();
  node?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('the remote node', () => {
  it('asks for its token on every request and says what it runs', async () => {
    expect((await get('/health', '')).status).toBe(401);
    expect((await get('/metrics', 'wrong-token-000000')).status).toBe(401);
    expect((await get('/v1/models', '')).status).toBe(401);
    const h = await health();
    expect(h).toMatchObject({ backend: 'wasm', job: null, waiting: 0 });
    expect(h.model).toMatch(/^thor-tiny/);
    expect(h.python).toMatch(/pyodide|cpython/);
    const metrics = await (await get('/metrics')).text();
    // Prometheus text format: HELP and TYPE before each sample, samples as `name{labels} value`.
    for (const line of metrics.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) thor_node_\w+ .+|thor_node_\w+(\{[^}]*\})? -?[0-9.e+]+)$/);
    expect(metrics).toMatch(/^thor_node_http_requests_total \d+$/m);
    expect(metrics).toMatch(/^thor_node_info\{version="[^"]+",backend="wasm",python="[^"]+"\} 1$/m);
  });

  it('refuses a socket without the right token, or from a page of another origin', async () => {
    await expect(connect('no-such-token-000').ready).rejects.toThrow(/could not connect to the node.*wrong token/);
    await expect(connect(TOKEN, 'http://evil.example').ready).rejects.toThrow(/could not connect/);
    expect(() => connectLabNode({ url, token: 'a b' }, nodeSocketFactory())).toThrow(/token must be/);
    expect(() => connectLabNode({ url: 'ftp://x', token: TOKEN }, nodeSocketFactory())).toThrow(/must start with http/);
    // A page of an allowed origin gets in.
    const ok = connect(TOKEN, 'http://localhost:5173');
    expect((await ok.ready).backend).toBe('wasm');
    ok.terminate();
  });

  it('refuses an oversized body with 413 and a malformed call with an error naming it, and goes on serving', async () => {
    const big = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x'.repeat(5 * 2 ** 20) }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { message: string } }).error.message).toMatch(/limit/);
    const r = connect();
    await r.ready;
    await expect((r.api as unknown as { infer(q: unknown): Promise<unknown> }).infer({ question: '' })).rejects.toThrow(/no question/);
    expect((await get('/health')).status).toBe(200);
  });

  it('answers through the openai package, and 50 concurrent requests with no error', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: TOKEN });
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(['thor-lab']);
    const chat = await client.chat.completions.create({ model: 'thor-lab', messages: [{ role: 'user', content: 'What is 2+3?' }], max_tokens: 20, temperature: 0 });
    expect(typeof chat.choices[0].message.content).toBe('string');
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => client.completions.create({ model: 'thor-lab', prompt: `Q: What is ${i}+1?\nA:`, max_tokens: 8, temperature: 0 })));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    for (const r of results) expect((r as PromiseFulfilledResult<OpenAI.Completion>).value.choices[0].text).toBeTypeOf('string');
    const metrics = await (await get('/metrics')).text();
    // Requests that arrived together were decoded in shared batches.
    const batches = Number(/^thor_node_completion_batches_total (\d+)$/m.exec(metrics)![1]);
    const requests = Number(/^thor_node_completion_requests_total (\d+)$/m.exec(metrics)![1]);
    expect(requests).toBe(51);
    expect(batches).toBeLessThan(requests);
  });

  it('answers, trains a step and hands the run back through the same service interface the UI uses', async () => {
    const r = connect();
    await r.ready;
    const { api } = r;
    expect((await api.model())?.label).toMatch(/^thor-tiny/);
    const events: LabEvent[] = [];
    const answer = await api.infer({ question: 'What is 12*12?', settings: { infer: { temperature: 0 }, rollout: { maxResponseTokens: 60 } } }, (e) => events.push(e));
    expect(answer.record.question).toBe('What is 12*12?');
    expect(events.some((e) => e.type === 'prompt')).toBe(true);
    await api.loadModel({ kind: 'shipped' });
    const before = (await api.memory()).numTensors;
    const steps: number[] = [];
    const out = await api.train({ config: tinyRl(1), name: 'remote step' }, (e) => e.type === 'step' && steps.push(e.step));
    expect(out).toMatchObject({ state: 'finished', steps: 1 });
    expect(steps).toEqual([1]);
    expect((await api.listRuns()).map((run) => run.id)).toContain(out.runId);
    expect((await api.runRollouts(out.runId, 1))?.length).toBeGreaterThan(0);
    // Pulled back: the run file crosses as bytes and imports into another store as it was.
    const file = await api.exportRun(out.runId);
    expect(file.bytes).toBeInstanceOf(Uint8Array);
    const local = new DiskRunStore(join(dir, 'local-runs'));
    const { run } = await importRun(local, file.bytes, file.name);
    expect(run.id).toBe(out.runId);
    expect((await local.get(out.runId))?.metrics.map((m) => m.step)).toEqual([1]);
    expect((await local.getCheckpoint(out.runId))?.['model.safetensors']?.byteLength).toBeGreaterThan(0);
    await api.loadModel({ kind: 'shipped' });
    expect((await api.memory()).numTensors).toBe(before);
  });

  it('queues a second client’s job behind the first, telling it how many are ahead', async () => {
    const a = connect();
    const b = connect();
    await Promise.all([a.ready, b.ready]);
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const training = a.api.train({ config: tinyRl(2), name: 'first' }, (e) => e.type === 'run' && started());
    await running;
    const heard: string[] = [];
    const answer = b.api.infer({ question: 'What is 1+1?', settings: { rollout: { maxResponseTokens: 20 } } }, (e) => e.type === 'message' && heard.push(e.text));
    await expect.poll(() => heard.length, { timeout: 30_000 }).toBe(1);
    expect(heard[0]).toMatch(/waiting for 1 job ahead \(the node is training/);
    expect((await health()).waiting).toBe(1);
    // b cannot stop a's job; it only drops its own waiting job.
    const cancelled = expect(answer).rejects.toThrow(/cancelled before it started/);
    await b.api.setControl(CONTROL.stop);
    await cancelled;
    // Asked again, it waits its turn and is answered once the training run has ended.
    let trainingDone = false;
    void training.then(() => (trainingDone = true));
    const second = await b.api.infer({ question: 'What is 1+1?', settings: { rollout: { maxResponseTokens: 20 } } });
    expect(trainingDone).toBe(true);
    expect(second.record.question).toBe('What is 1+1?');
    expect(await training).toMatchObject({ state: 'finished', steps: 2 });
  });

  it('runs the model\'s code in CPython subprocesses when started with --python cpython, and says so', async () => {
    const other = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', '--port', '0', '--token', TOKEN, '--runs', join(dir, 'runs-cpython'), '--backend', 'wasm', '--python', 'cpython', '--quiet'], { cwd: ROOT });
    try {
      const otherUrl = (await waitForOutput(other, /node at (http:\/\/127\.0\.0\.1:\d+)/, 'the CPython node'))[1];
      const h = (await (await fetch(`${otherUrl}/health`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { python: string; python_isolation: string[] };
      expect(h.python).toMatch(/^cpython 3\.\d+/);
      expect(h.python_isolation.some((line) => /RLIMIT_AS/.test(line))).toBe(true);
      const r = connectLabNode({ url: otherUrl, token: TOKEN }, nodeSocketFactory());
      remotes.push(r);
      expect((await r.ready).python).toMatch(/^cpython/);
      expect((await r.api.sandboxStatus()).info?.runtime).toBe('cpython');
      const answer = await r.api.infer({ question: 'What is 347*829?', settings: { infer: { temperature: 0 }, rollout: { maxResponseTokens: 120 } } });
      expect(answer.record.executions.length).toBeGreaterThan(0);
      expect(answer.record.executions[0].status).toBe('ok');
      expect(answer.record.executions[0].stdout.trim()).toMatch(/^-?\d+$/);
    } finally {
      other.kill('SIGTERM');
    }
  });

  it('stops the job of a client killed mid-step, with no tensor left behind, and serves the next client', async () => {
    const r = connect();
    await r.ready;
    await r.api.loadModel({ kind: 'shipped' });
    const baseline = (await r.api.memory()).numTensors;
    const client = spawn(process.execPath, ['--import', 'tsx', 'tests/fixtures/node-client.ts', url, TOKEN, JSON.stringify(tinyRl(50))], { cwd: ROOT });
    await waitForOutput(client, /step 1\b/, 'the client');
    expect((await health()).job?.what).toMatch(/^training/);
    client.kill('SIGKILL');
    await expect.poll(async () => (await health()).job, { timeout: 120_000, interval: 500 }).toBeNull();
    const runs = await r.api.listRuns();
    const killed = runs.find((run) => run.name === 'killed client')!;
    expect(killed.state?.status).toBe('stopped');
    await r.api.loadModel({ kind: 'shipped' });
    expect((await r.api.memory()).numTensors).toBe(baseline);
    const answer = await r.api.infer({ question: 'What is 3+4?', settings: { rollout: { maxResponseTokens: 20 } } });
    expect(answer.record.question).toBe('What is 3+4?');
  });
});
