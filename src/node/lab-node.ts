/**
 * The remote node (docs/node.md): one HTTP server on one port that serves
 *   /lab          the lab service over a WebSocket, the same LabApi and event stream the browser worker gives;
 *   /v1/...       the OpenAI-compatible API over the loaded model (src/node/openai-server.ts);
 *   /health       what runs (JSON), and /metrics in Prometheus' text format.
 * Safe by default: it listens on 127.0.0.1, asks for its token on every request and socket, lets only
 * the configured origins' pages in, refuses oversized bodies (413) and messages, refuses requests past
 * its in-flight limit (503), runs one job at a time in a queue, and decides what a job does when its
 * client goes away.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket as WsClient, WebSocketServer, type WebSocket } from 'ws';
import type { LabService } from '../core/lab/service';
import { CONTROL } from '../core/lab/control';
import { JobQueue } from '../core/lab/queue';
import { checkToken, LAB_PROTOCOL, LabChannel, TOKEN_PROTOCOL_PREFIX, type DisconnectPolicy, type NodeHello, type ServeStats, type WebSocketFactory, type WebSocketLike } from '../core/lab/rpc';
import type { TextModel } from '../core/llm/types';
import type { LocalModelOptions } from '../core/llm/local';
import { keyMatches, LAB_ORIGINS, originAllowed, secretMatches, sendJson, startOpenAIServer } from './openai-server';

export interface LabNodeOptions {
  /** The service it serves (built and initialised by the caller). */
  lab: LabService;
  host?: string;
  /** 0 = any free port (default 8787). */
  port?: number;
  /** Asked of every request and socket; a fresh one is made when absent. */
  token?: string;
  /** Pages allowed to call it (CORS and the socket's Origin); "*" for any. Default: the lab's own dev and preview pages on this machine. */
  allowedOrigins?: string[];
  /** Largest HTTP body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Largest socket message in bytes (default 64 MiB: run files travel as messages). */
  maxMessageBytes?: number;
  /** HTTP requests in flight at most (default 256); more get 503. */
  maxInFlight?: number;
  /** What a job does when its client disconnects (default: continue). */
  onDisconnect?: DisconnectPolicy;
  /** Above this many unsent bytes on a socket, its progress events are dropped (default 4 MiB). */
  maxBufferedBytes?: number;
  /** How the OpenAI API batches requests that arrive together. */
  engine?: LocalModelOptions;
  /** What the node says about where Python runs. */
  python: string;
  version: string;
  /** On close, how long a running job may take to stop (default 60 s). */
  stopWaitSeconds?: number;
  /** Seconds between pings; a client that misses one is dropped (default 30). */
  heartbeatSeconds?: number;
  log?: (line: string) => void;
}

export interface LabNode {
  /** e.g. http://127.0.0.1:8787 */
  url: string;
  token: string;
  /** Its requests, sockets, calls and queue, as /metrics reports them. */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export async function startLabNode(o: LabNodeOptions): Promise<LabNode> {
  const token = checkToken(o.token ?? randomBytes(24).toString('hex'), '--token');
  const allowed = o.allowedOrigins ?? LAB_ORIGINS;
  const maxMessageBytes = o.maxMessageBytes ?? 64 * 2 ** 20;
  const onDisconnect = o.onDisconnect ?? 'continue';
  const { lab } = o;
  const queue = new JobQueue();
  const serveStats: ServeStats = { calls: 0, errors: 0, events: 0, droppedEvents: 0 };
  const started = Date.now();
  const backend = (await lab.init()).name;
  const hello: NodeHello = { version: o.version, backend, python: o.python, maxMessageBytes, onDisconnect };
  const sockets = new Set<WebSocket>();
  let connections = 0;
  let refusedSockets = 0;

  // The loaded model, whichever it is now, behind the OpenAI API; a training run makes it refuse.
  const text: TextModel = {
    label: "the node's loaded model",
    kind: 'local',
    complete: (prompt, request, options) => {
      lab.textModel(o.engine);
      return lab.complete(prompt, request, options);
    },
    check: (prompt, request) => lab.textModel(o.engine).check(prompt, request),
  };

  const routes = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> => {
    if (req.method !== 'GET') return false;
    if (path === '/health') {
      const model = await lab.model();
      const sandbox = await lab.sandboxStatus();
      const running = queue.running;
      sendJson(res, 200, {
        status: 'ok',
        version: o.version,
        backend,
        python: o.python,
        python_isolation: sandbox.info?.isolation ?? [],
        model: model?.label ?? null,
        job: running ? { what: running.what, state: lab.control.requested(), seconds: Math.round((Date.now() - running.since) / 1000), orphaned: running.orphaned === true } : null,
        waiting: queue.length,
        connections: sockets.size,
        uptime_s: Math.round((Date.now() - started) / 1000),
      });
      return true;
    }
    if (path === '/metrics') {
      const body = await metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return true;
    }
    return false;
  };

  const http = await startOpenAIServer({
    model: text,
    name: 'thor-lab',
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 8787,
    apiKey: token,
    allowedOrigins: allowed,
    maxBodyBytes: o.maxBodyBytes,
    maxInFlight: o.maxInFlight ?? 256,
    contextLength: () => lab.loadedConfig()?.max_position_embeddings,
    routes,
    log: o.log,
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxMessageBytes,
    handleProtocols: (protocols) => (protocols.has(LAB_PROTOCOL) ? LAB_PROTOCOL : false),
  });

  http.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, why: string) => {
      refusedSockets++;
      o.log?.(`socket refused: ${status} ${why}`);
      socket.end(`HTTP/1.1 ${status} ${why}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    const path = new URL(req.url ?? '/', 'http://node').pathname.replace(/\/+$/, '');
    if (path !== '/lab') return refuse(404, 'Not Found');
    const origin = req.headers.origin;
    // Browsers always send Origin: a page from elsewhere may not drive the node with a token it learned.
    if (origin !== undefined && !originAllowed(origin, allowed)) return refuse(403, 'Forbidden');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    const given = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX))?.slice(TOKEN_PROTOCOL_PREFIX.length);
    const authorised = given !== undefined ? secretMatches(given, token) : keyMatches(req.headers.authorization, token);
    if (!authorised) return refuse(401, 'Unauthorized');
    if (!offered.includes(LAB_PROTOCOL)) return refuse(400, 'Bad Request');
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws));
  });

  function attach(ws: WebSocket): void {
    const owner = `client-${++connections}`;
    sockets.add(ws);
    o.log?.(`${owner} connected`);
    const channel = new LabChannel(lab, { send: (t) => ws.send(t), buffered: () => ws.bufferedAmount }, { queue, owner, hello, stats: serveStats, maxBufferedBytes: o.maxBufferedBytes });
    let alive = true;
    ws.on('pong', () => (alive = true));
    const beat = setInterval(
      () => {
        if (!alive) return ws.terminate();
        alive = false;
        ws.ping();
      },
      (o.heartbeatSeconds ?? 30) * 1000,
    );
    ws.on('message', (data, binary) => {
      if (binary) return ws.close(1003, 'the node reads text messages');
      void channel.receive(data.toString());
    });
    ws.on('close', () => {
      clearInterval(beat);
      sockets.delete(ws);
      o.log?.(`${owner} disconnected`);
      void channel.close();
    });
    ws.on('error', () => undefined);
  }

  async function metrics(): Promise<string> {
    const m = await lab.memory();
    const sandbox = await lab.sandboxStatus();
    const engine = lab.engineStats();
    const lines: string[] = [];
    const put = (name: string, type: 'counter' | 'gauge', help: string, value: number, labels = '') => {
      lines.push(`# HELP thor_node_${name} ${help}`, `# TYPE thor_node_${name} ${type}`, `thor_node_${name}${labels} ${value}`);
    };
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    put('info', 'gauge', 'What the node runs.', 1, `{version="${esc(o.version)}",backend="${esc(backend)}",python="${esc(o.python)}"}`);
    put('uptime_seconds', 'gauge', 'Seconds since the node started.', Math.round((Date.now() - started) / 1000));
    put('http_requests_total', 'counter', 'HTTP requests received.', http.stats.requests);
    put('http_errors_total', 'counter', 'HTTP requests that failed on the node (5xx).', http.stats.errors);
    put('http_in_flight', 'gauge', 'HTTP requests being answered.', http.stats.inFlight);
    put('sockets', 'gauge', 'Lab clients connected.', sockets.size);
    put('sockets_refused_total', 'counter', 'Socket upgrades refused (token, origin, path).', refusedSockets);
    put('calls_total', 'counter', 'Lab service calls received.', serveStats.calls);
    put('call_errors_total', 'counter', 'Lab service calls that ended in an error.', serveStats.errors);
    put('events_total', 'counter', 'Job events sent to clients.', serveStats.events);
    put('events_dropped_total', 'counter', 'Progress events dropped because a client read too slowly.', serveStats.droppedEvents);
    put('jobs_running', 'gauge', 'Jobs running (at most one).', queue.running ? 1 : 0);
    put('jobs_waiting', 'gauge', 'Jobs waiting their turn.', queue.length);
    put('jobs_finished_total', 'counter', 'Jobs that ended (done, stopped or failed).', queue.finished);
    put('completion_batches_total', 'counter', 'Decoding batches of the OpenAI API.', engine?.batches ?? 0);
    put('completion_requests_total', 'counter', 'Prompts decoded by the OpenAI API.', engine?.requests ?? 0);
    put('completion_rows_total', 'counter', 'Rows decoded by the OpenAI API (prompts times n).', engine?.rows ?? 0);
    put('tensors', 'gauge', 'tfjs tensors alive.', m.numTensors);
    put('tensor_bytes', 'gauge', 'Bytes held by tfjs tensors.', m.numBytes);
    if (m.heapBytes !== undefined) put('wasm_heap_bytes', 'gauge', 'Size of the wasm heap.', m.heapBytes);
    if (m.gpuAllocatedBytes !== undefined) put('gpu_allocated_bytes', 'gauge', 'Bytes of the WebGPU buffer pool.', m.gpuAllocatedBytes);
    put('python_ready', 'gauge', 'The Python sandbox is ready (1) or not (0).', sandbox.state === 'ready' ? 1 : 0);
    if (sandbox.health) {
      put('python_calls_total', 'counter', 'Python calls run.', sandbox.health.calls);
      put('python_busy', 'gauge', 'Python workers running code.', sandbox.health.busy);
      put('python_queued', 'gauge', 'Python calls waiting for a worker.', sandbox.health.queued);
      put('python_replacements_total', 'counter', 'Python workers replaced (timeouts, crashes, memory).', sandbox.health.replacements);
    }
    return lines.join('\n') + '\n';
  }

  return {
    url: http.baseURL.replace(/\/v1$/, ''),
    token,
    metrics,
    close: async () => {
      // A running job is stopped first (a training run keeps its checkpoint), so nothing is disposed under it.
      if (queue.running) {
        await lab.setControl(CONTROL.stop);
        const until = Date.now() + (o.stopWaitSeconds ?? 60) * 1000;
        while (queue.running && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      }
      for (const ws of sockets) ws.terminate();
      wss.close();
      await http.close();
    },
  };
}

/** Opens a lab socket from Node (the `ws` package speaks the browser's WebSocket interface); `origin` as a browser page would send it. */
export function nodeSocketFactory(options: { origin?: string } = {}): WebSocketFactory {
  return (url, protocols) => new WsClient(url, protocols, options.origin ? { origin: options.origin } : {}) as unknown as WebSocketLike;
}
