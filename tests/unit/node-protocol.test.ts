/**
 * The node's socket protocol with hostile and careless clients (raw messages, no lab client), and the
 * `pause` policy for a job whose client goes away: the job waits, and another page resumes or stops it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CONTROL } from '../../src/core/lab/control';
import { connectLabNode, decodeMessage, encodeMessage, LAB_PROTOCOL, TOKEN_PROTOCOL_PREFIX, type NodeMessage } from '../../src/core/lab/rpc';
import { LabService } from '../../src/core/lab/service';
import { nodeLabEnv } from '../../src/node/lab';
import { nodeSocketFactory, startLabNode, type LabNode } from '../../src/node/lab-node';
import { tinyRl } from '../fixtures/run-configs';

const dir = mkdtempSync(join(os.tmpdir(), 'node-protocol-'));
const lab = new LabService(nodeLabEnv({ runsDir: join(dir, 'runs'), python: { size: 1, preload: [] } }));
let node: LabNode;

/** A raw socket and the messages it received. */
async function raw(): Promise<{ ws: WebSocket; got: NodeMessage[] }> {
  const ws = new WebSocket(`${node.url.replace('http', 'ws')}/lab`, [LAB_PROTOCOL, TOKEN_PROTOCOL_PREFIX + node.token]);
  const got: NodeMessage[] = [];
  ws.on('message', (d) => got.push(decodeMessage(d.toString()) as NodeMessage));
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  return { ws, got };
}

const health = async () => (await (await fetch(`${node.url}/health`, { headers: { authorization: `Bearer ${node.token}` } })).json()) as { job: { what: string; state: string; orphaned: boolean } | null };

beforeAll(async () => {
  await lab.init({ order: ['wasm'] });
  await lab.loadModel({ kind: 'shipped' });
  node = await startLabNode({ lab, port: 0, onDisconnect: 'pause', maxMessageBytes: 2 ** 20, python: 'pyodide', version: 'test' });
});

afterAll(async () => {
  await node?.close();
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the node protocol', () => {
  it('greets, and answers malformed messages with errors that name the problem', async () => {
    const { ws, got } = await raw();
    await expect.poll(() => got.length).toBe(1);
    expect(got[0]).toMatchObject({ t: 'hello', node: { backend: 'wasm', onDisconnect: 'pause', maxMessageBytes: 2 ** 20 } });
    ws.send('not json');
    ws.send(JSON.stringify({ t: 'call', id: 'x', method: 'model', args: [] }));
    ws.send(JSON.stringify({ t: 'call', id: 2, method: 'constructor', args: [] }));
    ws.send(JSON.stringify({ t: 'call', id: 3, method: 'model', args: 'no' }));
    ws.send(JSON.stringify({ t: 'call', id: 4, method: 'runDetail', args: ['no-such-run'] }));
    ws.send(encodeMessage({ t: 'call', id: 5, method: 'importRun', args: [new Uint8Array([1, 2, 3]), 'bad.tar'] }));
    await expect.poll(() => got.length, { timeout: 10_000 }).toBe(7);
    const byId = (id: number | null) => got.filter((m) => m.t !== 'hello' && m.id === id);
    const nulls = byId(null).map((m) => (m as Extract<NodeMessage, { t: 'error' }>).error.message);
    expect(nulls[0]).toMatch(/JSON|Unexpected token/);
    expect(nulls[1]).toMatch(/field "id": a call without a numeric id \(expected a whole number, found "x"\)/);
    expect(byId(2)[0]).toMatchObject({ t: 'error', error: { message: expect.stringMatching(/no such method.*found constructor/) } });
    expect(byId(3)[0]).toMatchObject({ t: 'error', error: { message: expect.stringMatching(/arguments must be a list/) } });
    expect(byId(4)[0]).toMatchObject({ t: 'result' });
    expect(byId(5)[0]).toMatchObject({ t: 'error', error: { message: expect.stringMatching(/bad\.tar/) } });
    // A binary frame closes the socket (1003), a message over the limit too (1009); the node goes on.
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    ws.send(Buffer.from([1, 2, 3]));
    expect(await closed).toBe(1003);
    const big = await raw();
    const closedBig = new Promise<number>((resolve) => big.ws.once('close', resolve));
    big.ws.send('x'.repeat(2 ** 20 + 10));
    expect(await closedBig).toBe(1009);
    expect((await health()).job).toBeNull();
  });

  it('refuses a socket from a page of another origin with 403, and counts it', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${node.url.replace('http', 'ws')}/lab`, [LAB_PROTOCOL, TOKEN_PROTOCOL_PREFIX + node.token], { origin: 'http://evil.example' });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('the socket opened')));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(403);
    const metrics = await (await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${node.token}` } })).text();
    expect(Number(/^thor_node_sockets_refused_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('says plainly when a call is larger than the node reads, before sending it', async () => {
    const r = connectLabNode({ url: node.url, token: node.token }, nodeSocketFactory());
    await r.ready;
    await expect(r.api.importRun(new Uint8Array(2 ** 20), 'big.tar')).rejects.toThrow(/this importRun call is \d+ bytes; the node reads messages of up to 1048576/);
    expect(await r.api.listRuns()).toEqual([]);
    r.terminate();
  });

  it('under "continue", lets the job of a client that went away go on, even one it had paused', async () => {
    const going = await startLabNode({ lab, port: 0, onDisconnect: 'continue', python: 'pyodide', version: 'test' });
    try {
      const ws = new WebSocket(`${going.url.replace('http', 'ws')}/lab`, [LAB_PROTOCOL, TOKEN_PROTOCOL_PREFIX + going.token]);
      const got: NodeMessage[] = [];
      ws.on('message', (d) => got.push(decodeMessage(d.toString()) as NodeMessage));
      await new Promise((resolve) => ws.once('open', resolve));
      const config = tinyRl(3, { seed: 2, maxResponseTokens: 32, eval: { samples: 1, everySteps: 100, maxQuestions: 1 } });
      ws.send(encodeMessage({ t: 'call', id: 1, method: 'train', args: [{ config, name: 'goes on' }] }));
      await expect.poll(() => got.some((m) => m.t === 'event' && m.event.type === 'step'), { timeout: 120_000 }).toBe(true);
      ws.send(encodeMessage({ t: 'call', id: 2, method: 'setControl', args: [CONTROL.pause] }));
      await expect.poll(() => got.some((m) => m.t === 'event' && m.event.type === 'state' && m.event.state === 'paused'), { timeout: 60_000 }).toBe(true);
      ws.terminate();
      await expect.poll(async () => (await lab.listRuns()).find((r) => r.name === 'goes on')?.state?.status, { timeout: 180_000, interval: 500 }).toBe('finished');
    } finally {
      await going.close();
    }
  });

  it('pauses the job of a client that went away, until another page stops it', async () => {
    const { ws, got } = await raw();
    const config = tinyRl(50, { seed: 1, maxResponseTokens: 32, eval: { samples: 1, everySteps: 100, maxQuestions: 1 } });
    ws.send(encodeMessage({ t: 'call', id: 1, method: 'train', args: [{ config, name: 'left behind' }] }));
    await expect.poll(() => got.some((m) => m.t === 'event' && m.event.type === 'step'), { timeout: 120_000 }).toBe(true);
    ws.terminate();
    await expect.poll(async () => (await health()).job, { timeout: 30_000 }).toMatchObject({ orphaned: true, state: 'pause' });
    const other = connectLabNode({ url: node.url, token: node.token }, nodeSocketFactory());
    await other.ready;
    // The run stands paused with its checkpoint; another page sees it as such, stops it, and the node is free again.
    await expect.poll(async () => (await other.api.listRuns()).find((r) => r.name === 'left behind')?.state?.status, { timeout: 120_000 }).toBe('paused');
    expect(await other.api.runningJob()).toMatchObject({ what: expect.stringMatching(/^training for client-\d+$/), state: 'pause', orphaned: true, waiting: 0 });
    await other.api.setControl(CONTROL.stop);
    await expect.poll(async () => (await health()).job, { timeout: 60_000 }).toBeNull();
    expect((await other.api.listRuns()).find((r) => r.name === 'left behind')?.state?.status).toBe('stopped');
    expect(await other.api.runningJob()).toBeNull();
    other.terminate();
  });
});
