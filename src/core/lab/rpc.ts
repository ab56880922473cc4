/**
 * The lab service over a message channel (docs/node.md#the-protocol): the remote node serves a LabApi
 * over a WebSocket, and a page (or a script) calls it through the same typed interface the browser
 * worker gives. Messages are JSON text; bytes travel as base64.
 *
 *   client → node   {t: "call", id, method, args}
 *   node → client   {t: "hello", node} once, then {t: "event", id, event} while a call runs,
 *                   and one {t: "result", id, value} or {t: "error", id, error} to end it.
 *
 * The node side runs jobs through a JobQueue (one at a time, in order), drops the events that only
 * show progress when the client reads too slowly (back-pressure), and decides what a job does when
 * its client goes away.
 */
import { errorToPlain, LabError, type LabErrorDetails } from '../errors';
import type { EventSink, LabApi, LabConnection, LabEvent, RunningJobInfo } from './api';
import { CONTROL, type ControlValue } from './control';
import type { JobQueue } from './queue';

/** The WebSocket subprotocol; a client also offers `token.<TOKEN>` (browsers cannot set headers on a WebSocket). */
export const LAB_PROTOCOL = 'thor-lab.v1';
export const TOKEN_PROTOCOL_PREFIX = 'token.';

interface MethodInfo {
  /** The last argument is an event sink. */
  events: boolean;
  /** Needs the model to itself: waits its turn in the queue. */
  job: boolean;
}

/** Every method of the service, so a new one cannot be forgotten here. */
const METHODS: Record<keyof LabApi, MethodInfo> = {
  init: { events: false, job: false },
  sandboxStatus: { events: false, job: false },
  sandboxWarm: { events: false, job: false },
  memory: { events: false, job: false },
  setControl: { events: false, job: false },
  runningJob: { events: false, job: false },
  resourceUrls: { events: false, job: false },
  model: { events: false, job: false },
  loadModel: { events: true, job: true },
  createModel: { events: false, job: true },
  measureSpeed: { events: true, job: true },
  exportModel: { events: false, job: true },
  saveModel: { events: false, job: true },
  infer: { events: true, job: true },
  evaluate: { events: true, job: true },
  checkFit: { events: false, job: false },
  tirgen: { events: true, job: true },
  train: { events: true, job: true },
  listRuns: { events: false, job: false },
  runDetail: { events: false, job: false },
  runRolloutSteps: { events: false, job: false },
  runRollouts: { events: false, job: false },
  runTokenTexts: { events: false, job: false },
  deleteRun: { events: false, job: false },
  importRun: { events: false, job: false },
  exportRun: { events: false, job: false },
};

/** Events that only show how far a job is: a later one says it again, so they may be dropped when the client falls behind. */
const PROGRESS_EVENTS = new Set<LabEvent['type']>(['progress', 'trajectory', 'download', 'tirgen-progress']);

/** What the node tells a client when it connects. */
export interface NodeHello {
  /** The package version of the node. */
  version: string;
  backend: string;
  /** Where generated Python runs on the node (pyodide or cpython) and how it is confined. */
  python: string;
  /** Largest message the node reads, in bytes. */
  maxMessageBytes: number;
  onDisconnect: DisconnectPolicy;
}

export type ClientMessage = { t: 'call'; id: number; method: string; args: unknown[] };
export type NodeMessage =
  | { t: 'hello'; node: NodeHello }
  | { t: 'event'; id: number; event: LabEvent }
  | { t: 'result'; id: number; value: unknown }
  | { t: 'error'; id: number | null; error: ReturnType<typeof errorToPlain> };

// ---- encoding ----------------------------------------------------------------------------------

const TYPED = { Uint8Array, Int32Array, Float32Array, Uint32Array, Float64Array } as const;
type TypedName = keyof typeof TYPED;

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** JSON with typed arrays as {$typed, b64}. Objects that cannot travel (a browser File) are refused by name. */
export function encodeMessage(message: ClientMessage | NodeMessage): string {
  return JSON.stringify(message, function (this: Record<string, unknown>, key, replaced: unknown) {
    // The value before its toJSON (a Node Buffer would otherwise arrive as {type, data}).
    const value = key === '' ? replaced : this[key];
    if (ArrayBuffer.isView(value)) {
      const name = value.constructor.name as TypedName;
      if (!(name in TYPED)) throw new LabError('rpc', `a ${name} cannot be sent to the node`, { field: key });
      return { $typed: name, b64: toBase64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
    }
    if (typeof Blob !== 'undefined' && value instanceof Blob)
      throw new LabError('rpc', 'files picked in this browser cannot be sent to the node', { field: key, hint: 'load the model on the node by its Hub id or a folder path there' });
    return replaced;
  });
}

export function decodeMessage(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value && typeof value === 'object' && '$typed' in value && 'b64' in value) {
      const { $typed, b64 } = value as { $typed: string; b64: unknown };
      if (!($typed in TYPED) || typeof b64 !== 'string') throw new LabError('rpc', 'a binary value of an unknown kind', { found: String($typed) });
      const bytes = fromBase64(b64);
      const Ctor = TYPED[$typed as TypedName];
      if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) throw new LabError('rpc', `a ${$typed} of ${bytes.byteLength} bytes`, { expected: `a multiple of ${Ctor.BYTES_PER_ELEMENT} bytes`, found: String(bytes.byteLength) });
      return $typed === 'Uint8Array' ? bytes : new Ctor(bytes.buffer as ArrayBuffer, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
    }
    return value;
  });
}

/** An error from the other side, with its code and details kept. */
function plainToError(plain: { name?: string; code?: string; message?: string; details?: LabErrorDetails }): Error {
  const e = new Error(plain.message ?? 'the node reported an error without a message');
  e.name = plain.name ?? 'Error';
  return Object.assign(e, plain.code !== undefined && { code: plain.code }, plain.details !== undefined && { details: plain.details });
}

// ---- the node's side ---------------------------------------------------------------------------

/** What a job does when its client goes away: goes on, pauses until someone resumes it, or stops. Single answers always stop (nobody reads them). */
export type DisconnectPolicy = 'continue' | 'pause' | 'stop';

export interface ChannelOut {
  send(text: string): void;
  /** Bytes written but not yet sent. */
  buffered(): number;
}

export interface ServeStats {
  calls: number;
  errors: number;
  events: number;
  droppedEvents: number;
}

export interface ServeOptions {
  queue: JobQueue;
  /** Who this connection is, for the queue. */
  owner: string;
  hello: NodeHello;
  /** Above this many unsent bytes, progress events are dropped (default 4 MiB). */
  maxBufferedBytes?: number;
  stats?: ServeStats;
}

/** One client's connection to the service on the node. */
export class LabChannel {
  private open = true;
  private readonly stats: ServeStats;

  constructor(
    private readonly api: LabApi,
    private readonly out: ChannelOut,
    private readonly options: ServeOptions,
  ) {
    this.stats = options.stats ?? { calls: 0, errors: 0, events: 0, droppedEvents: 0 };
    this.send({ t: 'hello', node: options.hello });
  }

  private send(message: NodeMessage): void {
    if (!this.open) return;
    let text: string;
    try {
      text = encodeMessage(message);
    } catch (e) {
      if (message.t === 'event') return;
      text = encodeMessage({ t: 'error', id: 'id' in message ? message.id : null, error: errorToPlain(e) });
    }
    this.out.send(text);
  }

  /** A message from the client; answers go out as they are ready. */
  async receive(text: string): Promise<void> {
    let id: number | null = null;
    try {
      const message = decodeMessage(text) as Partial<ClientMessage>;
      if (typeof message !== 'object' || message === null || message.t !== 'call') throw new LabError('rpc', 'a message that is not a call', { expected: '{"t":"call","id":…,"method":…,"args":[…]}', found: text.slice(0, 80) });
      if (typeof message.id !== 'number' || !Number.isSafeInteger(message.id)) throw new LabError('rpc', 'a call without a numeric id', { field: 'id', expected: 'a whole number', found: JSON.stringify(message.id) });
      id = message.id;
      const method = message.method;
      if (typeof method !== 'string' || !Object.hasOwn(METHODS, method)) throw new LabError('rpc', 'no such method', { field: 'method', expected: Object.keys(METHODS).join(', '), found: String(method) });
      if (!Array.isArray(message.args)) throw new LabError('rpc', 'the arguments must be a list', { field: 'args' });
      this.stats.calls++;
      const value = await this.call(method as keyof LabApi, message.args, id);
      this.send({ t: 'result', id, value });
    } catch (e) {
      this.stats.errors++;
      this.send({ t: 'error', id, error: errorToPlain(e) });
    }
  }

  private async call(method: keyof LabApi, args: unknown[], id: number): Promise<unknown> {
    const info = METHODS[method];
    const { queue, owner } = this.options;
    if (method === 'init') {
      // The node picked its backend when it started; a page's shared control word cannot cross.
      return this.api.init();
    }
    if (method === 'setControl') return this.control(args[0] as ControlValue);
    if (method === 'runningJob') return this.runningJob();
    const sink: EventSink | undefined = info.events ? (event) => this.event(id, event) : undefined;
    // A method with events takes one request, then the sink.
    const invoke = () => (this.api[method] as (...a: unknown[]) => Promise<unknown>)(...(info.events ? [args[0], sink] : args));
    if (!info.job) return invoke();
    return queue.run(owner, `${JOB_WORDS[method] ?? method} for ${owner}`, invoke, (text) => sink?.({ type: 'message', text }));
  }

  /**
   * Pause, go on or stop: the running job when it is this client's, or when its client went away (a
   * job left paused is resumed or stopped from any page); a stop also drops this client's waiting jobs.
   */
  private async control(value: ControlValue): Promise<void> {
    const { queue, owner } = this.options;
    if (value === CONTROL.stop) queue.cancel(owner, 'stopped by its client');
    const running = queue.running;
    if (running && (running.owner === owner || running.orphaned)) await this.api.setControl(value);
  }

  /** The node's running job as the queue knows it (whose, and whether its page went away), with the service's pause/stop state. */
  private async runningJob(): Promise<RunningJobInfo | null> {
    const { queue } = this.options;
    const running = queue.running;
    if (!running) return null;
    const service = await this.api.runningJob();
    return { what: running.what, state: service?.state ?? 'run', seconds: Math.round((Date.now() - running.since) / 1000), orphaned: running.orphaned === true, waiting: queue.length };
  }

  private event(id: number, event: LabEvent): void {
    if (!this.open) return;
    if (PROGRESS_EVENTS.has(event.type) && this.out.buffered() > (this.options.maxBufferedBytes ?? 4 * 2 ** 20)) {
      this.stats.droppedEvents++;
      return;
    }
    this.stats.events++;
    this.send({ t: 'event', id, event });
  }

  /** The client went away: its waiting jobs are dropped, and its running job follows the policy. */
  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    const { queue, owner, hello } = this.options;
    queue.cancel(owner, 'its client disconnected');
    const running = queue.running;
    if (running?.owner !== owner) return;
    running.orphaned = true;
    // A single answer stops (nobody reads it); only training can pause, so other jobs go on under "pause".
    const single = running.what.startsWith(JOB_WORDS.infer!);
    const training = running.what.startsWith(JOB_WORDS.train!);
    const policy = single ? 'stop' : hello.onDisconnect === 'pause' && !training ? 'continue' : hello.onDisconnect;
    await this.api.setControl(policy === 'pause' ? CONTROL.pause : policy === 'stop' ? CONTROL.stop : CONTROL.run);
  }
}

const JOB_WORDS: Partial<Record<keyof LabApi, string>> = {
  loadModel: 'loading a model',
  createModel: 'creating a model',
  infer: 'answering a question',
  evaluate: 'evaluating',
  tirgen: 'generating TIR data',
  train: 'training',
};

// ---- the client's side -------------------------------------------------------------------------

/** The part of a WebSocket the client uses (the browser's, or the `ws` package's in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export interface NodeAddress {
  /** The node's address, e.g. http://127.0.0.1:8787 */
  url: string;
  token: string;
}

/** The lab socket's address for a node's http(s) address. */
export function labSocketUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LabError('node', 'not an address', { field: 'node URL', expected: 'http://HOST:PORT', found: url });
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) throw new LabError('node', 'the node address must start with http://, https://, ws:// or wss://', { found: url });
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
  u.pathname = u.pathname.replace(/\/+$/, '') + '/lab';
  return u.toString();
}

/** Checks a token can travel as a WebSocket subprotocol (letters, digits and - _ . ~). */
export function checkToken(token: string, field = 'token'): string {
  if (!/^[A-Za-z0-9._~-]{8,256}$/.test(token)) throw new LabError('node', 'the token must be 8 to 256 letters, digits, "-", "_", "." or "~"', { field, found: `${token.length} characters` });
  return token;
}

export interface RemoteLab extends LabConnection {
  /** Resolves with what the node said when it answered; rejects when it cannot be reached. */
  ready: Promise<NodeHello>;
}

/**
 * Connects to a node's lab service. Calls made before the socket opens wait for it; when the
 * connection fails or closes, every open call rejects with the reason and onError hears it.
 */
export function connectLabNode(address: NodeAddress, open: WebSocketFactory): RemoteLab {
  const url = labSocketUrl(address.url);
  checkToken(address.token);
  const socket = open(url, [LAB_PROTOCOL, TOKEN_PROTOCOL_PREFIX + address.token]);
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void; onEvent?: EventSink }>();
  const listeners: ((message: string) => void)[] = [];
  let nextId = 1;
  let hello: NodeHello | undefined;
  let closedWith: string | undefined;
  let settleReady: { resolve(h: NodeHello): void; reject(e: unknown): void };
  const ready = new Promise<NodeHello>((resolve, reject) => (settleReady = { resolve, reject }));
  ready.catch(() => undefined);

  const fail = (reason: string) => {
    if (closedWith !== undefined) return;
    closedWith = reason;
    const error = new LabError('node', reason);
    settleReady.reject(error);
    for (const p of pending.values()) p.reject(error);
    pending.clear();
    for (const l of listeners) l(reason);
  };

  // A frame that cannot be read may have been any call's answer: the connection is closed, so every open call ends with the reason.
  const broken = (why: string) => {
    fail(why);
    socket.close(1002, 'unreadable message');
  };
  socket.addEventListener('message', (event) => {
    let message: NodeMessage;
    try {
      message = decodeMessage(String(event.data)) as NodeMessage;
    } catch (e) {
      return broken(`a message from the node could not be read: ${(e as Error).message}`);
    }
    if (typeof message !== 'object' || message === null) return broken('a message from the node is not an object');
    if (message.t === 'hello') {
      hello = message.node;
      settleReady.resolve(message.node);
      return;
    }
    if (message.id === null || message.id === undefined) return broken(`the node could not read a message of this page: ${message.t === 'error' ? (message.error?.message ?? '') : ''}`);
    const call = pending.get(message.id);
    if (!call) return;
    if (message.t === 'event') {
      call.onEvent?.(message.event);
      return;
    }
    pending.delete(message.id);
    if (message.t === 'result') call.resolve(message.value);
    else call.reject(plainToError(message.error ?? {}));
  });
  socket.addEventListener('close', (event) => {
    const why =
      event.code === 1009
        ? 'a message was larger than the node accepts'
        : hello
          ? `the connection to the node closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`
          : `could not connect to the node at ${address.url}: wrong address, node not running, wrong token, or this page's origin not allowed by the node (--allow-origin)`;
    fail(why);
  });
  socket.addEventListener('error', () => undefined);

  const call = async (method: keyof LabApi, args: unknown[], onEvent?: EventSink): Promise<unknown> => {
    const node = await ready;
    if (closedWith !== undefined) throw new LabError('node', closedWith);
    const id = nextId++;
    const text = encodeMessage({ t: 'call', id, method, args });
    // The node counts bytes (UTF-8), not characters.
    const bytes = new TextEncoder().encode(text).byteLength;
    if (bytes > node.maxMessageBytes) throw new LabError('node', `this ${method} call is ${bytes} bytes; the node reads messages of up to ${node.maxMessageBytes}`, { hint: 'start the node with a larger --max-message' });
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, onEvent });
      socket.send(text);
    });
  };
  // Every method from the table: a job with events sends its one request and hears its sink; the rest
  // send their arguments. The page's shared control word cannot cross, and the node fetched no page files.
  const methods = Object.fromEntries(
    (Object.entries(METHODS) as [keyof LabApi, MethodInfo][]).map(([method, info]) => [
      method,
      info.events ? (first: unknown, onEvent?: EventSink) => call(method, [first], onEvent) : (...args: unknown[]) => call(method, args),
    ]),
  );
  const api = { ...methods, init: () => call('init', []), resourceUrls: async () => [] } as unknown as LabApi;

  return {
    api,
    ready,
    onError(listener) {
      listeners.push(listener);
      if (closedWith !== undefined) listener(closedWith);
    },
    terminate() {
      fail('the connection to the node was closed by this page');
      socket.close(1000, 'closed by the client');
    },
  };
}
