/**
 * An OpenAI-compatible HTTP server over a TextModel (docs/engines.md): GET /v1/models,
 * POST /v1/completions and /v1/chat/completions, with streaming (server-sent events), stop strings,
 * n, seed, top_p / top_k and log-probabilities. With the lab's LocalModel behind it, requests that
 * are in flight together are decoded together in one batch.
 *
 * It listens on 127.0.0.1 unless told otherwise. An API key, when set, is required on every request.
 * Bodies over 4 MiB are refused. A client that disconnects cancels its request (its rows leave the
 * batch). Errors use OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LabError } from '../core/errors';
import type { ChatMessage, Choice, Completion, Prompt, SamplingRequest, TextModel } from '../core/llm/types';

export interface OpenAIServerOptions {
  /** The engine: any TextModel (the lab's loaded model). */
  model: TextModel;
  /** The name /v1/models lists and requests must use (default: "thor-lab"); a function when the model can change. */
  name?: string | (() => string);
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Required as "Authorization: Bearer KEY" when set. */
  apiKey?: string;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Context length reported in /v1/models (a function when the model can change). */
  contextLength?: number | (() => number | undefined);
  /** Requests in flight at most; more are refused with 503 and Retry-After (default: no limit). */
  maxInFlight?: number;
  /** More routes, asked first, after the key is checked: true when the route answered. */
  routes?: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean>;
  /**
   * Origins whose pages may call this server (CORS); "*" for any. Default: the lab's own pages on
   * this machine (vite's dev and preview ports), so the lab in a tab can use a server started here.
   */
  allowedOrigins?: string[];
  /** Called on each request (method, path, status, ms), for logs. */
  log?: (line: string) => void;
}

export interface RunningServer {
  server: Server;
  /** e.g. http://127.0.0.1:8000/v1 */
  baseURL: string;
  stats: { requests: number; errors: number; inFlight: number };
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
  }
}

const DEFAULTS = { maxTokens: 16, temperature: 1 };
const DEFAULT_MAX_BODY = 4 * 2 ** 20;

export const LAB_ORIGINS = ['http://localhost:5173', 'http://127.0.0.1:5173', 'http://localhost:4173', 'http://127.0.0.1:4173'];

/** A page of `origin` may call the server: it is listed, or "*" is. */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  return allowed.includes('*') || allowed.includes(origin);
}

export async function startOpenAIServer(o: OpenAIServerOptions): Promise<RunningServer> {
  const nameNow = () => (typeof o.name === 'function' ? o.name() : (o.name ?? 'thor-lab'));
  const contextNow = () => (typeof o.contextLength === 'function' ? o.contextLength() : o.contextLength);
  const created = Math.floor(Date.now() / 1000);
  const stats = { requests: 0, errors: 0, inFlight: 0 };
  let counter = 0;

  const server = createServer((req, res) => {
    const started = Date.now();
    stats.requests++;
    stats.inFlight++;
    const origin = req.headers.origin;
    const allowed = o.allowedOrigins ?? LAB_ORIGINS;
    if (origin && originAllowed(origin, allowed)) {
      res.setHeader('access-control-allow-origin', allowed.includes('*') ? '*' : origin);
      res.setHeader('vary', 'origin');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { 'access-control-allow-methods': 'GET, POST, OPTIONS', 'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'authorization, content-type', 'access-control-max-age': '600' });
        res.end();
        stats.inFlight--;
        return;
      }
    }
    const abort = new AbortController();
    // The client went away before the answer was written: stop its rows.
    res.on('close', () => {
      stats.inFlight--;
      if (!res.writableFinished) abort.abort(new Error('client disconnected'));
    });
    handle(req, res, abort)
      .catch((e: unknown) => {
        const err = toHttpError(e);
        if (err.status >= 500) stats.errors++;
        if (res.headersSent) {
          // Mid-stream: say so in the stream and end it.
          if (!res.writableEnded) res.end(`data: ${JSON.stringify({ error: { message: err.message, type: err.type, param: err.param, code: err.status } })}\n\ndata: [DONE]\n\n`);
          return;
        }
        const drain = (err as HttpError & { drain?: boolean }).drain === true;
        sendJson(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: err.status } });
        // The rest of an oversized body is read and dropped, so the client is not cut off mid-upload
        // before it reads the answer; a body that goes on past 16 times the limit is cut.
        if (drain) discardRest(req, 16 * (o.maxBodyBytes ?? DEFAULT_MAX_BODY));
      })
      .finally(() => o.log?.(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started} ms`));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, abort: AbortController): Promise<void> {
    const signal = abort.signal;
    const url = new URL(req.url ?? '/', 'http://server');
    const path = url.pathname.replace(/\/+$/, '');
    if (o.apiKey !== undefined && !keyMatches(req.headers.authorization, o.apiKey)) throw new HttpError(401, 'missing or wrong API key (send "Authorization: Bearer KEY")', null, 'authentication_error');
    if (o.maxInFlight !== undefined && stats.inFlight > o.maxInFlight) {
      res.setHeader('retry-after', '1');
      throw new HttpError(503, `the server is at its limit of ${o.maxInFlight} requests in flight; retry shortly`, null, 'overloaded_error');
    }
    if (o.routes && (await o.routes(req, res, path))) return;
    const name = nameNow();
    const contextLength = contextNow();
    if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) {
      return sendJson(res, 200, { object: 'list', data: [{ id: name, object: 'model', created, owned_by: 'thor-lab', ...(contextLength && { max_model_len: contextLength }) }] });
    }
    if (req.method === 'GET' && path === '/health') {
      const engine = (o.model as { stats?: { batches: number; rows: number; requests: number } }).stats;
      return sendJson(res, 200, { status: 'ok', requests: stats.requests, in_flight: stats.inFlight, ...(engine && { batches: engine.batches, batched_requests: engine.requests, batched_rows: engine.rows }) });
    }
    const route = path === '/v1/completions' ? 'text' : path === '/v1/chat/completions' ? 'chat' : undefined;
    if (!route) throw new HttpError(404, `no route ${req.method} ${url.pathname} (this server has GET /v1/models, POST /v1/completions, POST /v1/chat/completions)`, null, 'not_found_error');
    if (req.method !== 'POST') throw new HttpError(405, `${url.pathname} takes POST`);
    const body = await readJson(req, o.maxBodyBytes ?? DEFAULT_MAX_BODY);
    if (body.model !== undefined && body.model !== name) throw new HttpError(404, `the model "${String(body.model)}" does not exist here; this server has "${name}"`, 'model', 'not_found_error');
    const sampling = samplingOf(body, route, contextLength);
    const id = `${route === 'chat' ? 'chatcmpl' : 'cmpl'}-${created.toString(36)}${(++counter).toString(36)}`;
    const prompts: Prompt[] = route === 'chat' ? [messagesOf(body.messages)] : promptsOf(body.prompt);
    const stream = body.stream === true;
    if (body.stream !== undefined && typeof body.stream !== 'boolean') throw new HttpError(400, 'stream must be true or false', 'stream');
    if (body.echo === true) throw new HttpError(400, 'echo is not supported', 'echo');
    const n = sampling.n ?? 1;
    // Every prompt is checked before any is queued, and before a stream's headers go out, so a bad
    // one is a plain 400 and costs no decoding.
    for (const p of prompts) {
      try {
        o.model.check?.(p, sampling);
      } catch (e) {
        rethrowAsRequest(e);
      }
    }
    // One prompt failing ends the request: the others stop decoding.
    const failed = (e: unknown): never => {
      abort.abort(e);
      rethrowAsRequest(e);
    };
    if (!stream) {
      const results = await Promise.all(prompts.map((p) => o.model.complete(p, sampling, { signal }).catch(failed)));
      const choices = results.flatMap((r, p) => r.choices.map((c, j) => formatChoice(route, c, p * n + j, sampling)));
      const usage = results.reduce((a, r) => ({ prompt_tokens: a.prompt_tokens + (r.usage?.promptTokens ?? 0), completion_tokens: a.completion_tokens + (r.usage?.completionTokens ?? 0) }), { prompt_tokens: 0, completion_tokens: 0 });
      return sendJson(res, 200, { id, object: route === 'chat' ? 'chat.completion' : 'text_completion', created: Math.floor(Date.now() / 1000), model: name, choices, usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const object = route === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const send = (choices: unknown[]) => res.write(`data: ${JSON.stringify({ id, object, created: Math.floor(Date.now() / 1000), model: name, choices })}\n\n`);
    if (route === 'chat') for (let j = 0; j < prompts.length * n; j++) send([{ index: j, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    const results = await Promise.all(
      prompts.map((p, pi) =>
        o.model
          .complete(p, sampling, {
            signal,
            onText: (choice, delta) => send([route === 'chat' ? { index: pi * n + choice, delta: { content: delta }, finish_reason: null } : { index: pi * n + choice, text: delta, finish_reason: null }]),
          })
          .catch(failed),
      ),
    );
    results.forEach((r, pi) =>
      r.choices.forEach((c, j) => {
        const index = pi * n + j;
        const end = { index, finish_reason: c.finishReason, stop_reason: c.stopString ?? null };
        send([route === 'chat' ? { ...end, delta: {} } : { ...end, text: '' }]);
      }),
    );
    res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8000, o.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    baseURL: `http://${host}:${address.port}/v1`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function discardRest(req: IncomingMessage, cap: number): void {
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > cap) req.destroy();
  });
  req.resume();
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const tooLarge = (message: string) => {
    // What is left of the body is read and dropped after the answer (discardRest).
    req.on('error', () => undefined);
    return Object.assign(new HttpError(413, message), { drain: true });
  };
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(`the request body is ${declared} bytes; the limit is ${limit}`);
  // Read with events, not for-await: leaving a for-await early destroys the request, and the client
  // would see a reset instead of the 413.
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void got.push(chunk);
      req.off('data', onData);
      req.pause();
      reject(tooLarge(`the request body is over the limit of ${limit} bytes`));
    };
    req.on('data', onData);
    req.once('end', () => resolve(got));
    req.once('error', reject);
  });
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `the request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

function num(body: Record<string, unknown>, key: string, check: (v: number) => boolean, expected: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !check(v)) throw new HttpError(400, `${key} must be ${expected}, found ${JSON.stringify(v)}`, key);
  return v;
}

function samplingOf(body: Record<string, unknown>, route: 'text' | 'chat', contextLength?: number): SamplingRequest {
  const int = (v: number) => Number.isInteger(v);
  const maxTokens = num(body, 'max_completion_tokens', (v) => int(v) && v >= 1, 'a whole number of at least 1') ?? num(body, 'max_tokens', (v) => int(v) && v >= 1, 'a whole number of at least 1');
  const stop = body.stop;
  if (stop !== undefined && stop !== null && typeof stop !== 'string' && !(Array.isArray(stop) && stop.every((s) => typeof s === 'string'))) throw new HttpError(400, 'stop must be a string or a list of strings', 'stop');
  let logprobs: number | undefined;
  if (route === 'text') logprobs = num(body, 'logprobs', (v) => int(v) && v >= 0 && v <= 20, 'a whole number from 0 to 20');
  else if (body.logprobs === true) logprobs = num(body, 'top_logprobs', (v) => int(v) && v >= 0 && v <= 20, 'a whole number from 0 to 20') ?? 0;
  else if (body.logprobs !== undefined && body.logprobs !== false && body.logprobs !== null) throw new HttpError(400, 'logprobs must be true or false in chat completions', 'logprobs');
  const continueFinal = body.continue_final_message === true;
  if (continueFinal && body.add_generation_prompt === true) throw new HttpError(400, 'continue_final_message and add_generation_prompt cannot both be true', 'continue_final_message');
  return {
    // Completions default to 16 tokens (OpenAI's rule); chat runs to the end of the context, as OpenAI and vLLM do.
    maxTokens: maxTokens ?? (route === 'chat' && contextLength ? contextLength : DEFAULTS.maxTokens),
    temperature: num(body, 'temperature', (v) => v >= 0 && v <= 2, 'a number from 0 to 2') ?? DEFAULTS.temperature,
    topP: num(body, 'top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    topK: (() => {
      const k = num(body, 'top_k', (v) => int(v) && v >= -1, 'a whole number (0 or -1 = off)');
      return k === undefined || k < 0 ? undefined : k;
    })(),
    n: num(body, 'n', (v) => int(v) && v >= 1 && v <= 128, 'a whole number from 1 to 128'),
    seed: num(body, 'seed', int, 'a whole number'),
    ...(stop !== undefined && stop !== null && { stop: typeof stop === 'string' ? [stop] : (stop as string[]) }),
    ...(logprobs !== undefined && { logprobs }),
    ...(continueFinal && { continueFinal }),
  };
}

function promptsOf(prompt: unknown): string[] {
  if (typeof prompt === 'string') return [prompt];
  if (Array.isArray(prompt) && prompt.length > 0 && prompt.length <= 64 && prompt.every((p) => typeof p === 'string')) return prompt as string[];
  throw new HttpError(400, 'prompt must be a string or a list of 1 to 64 strings (token id prompts are not supported)', 'prompt');
}

function messagesOf(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new HttpError(400, 'messages must be a non-empty list', 'messages');
  return messages.map((m, i) => {
    const role = (m as { role?: unknown })?.role;
    let content = (m as { content?: unknown })?.content;
    // Content given as parts: the text parts, joined.
    if (Array.isArray(content)) {
      const parts = content as unknown[];
      if (!parts.every((p) => typeof p === 'object' && p !== null)) throw new HttpError(400, `messages[${i}].content must be text or a list of parts`, `messages[${i}].content`);
      content = parts.map((p) => ((p as { type?: unknown }).type === 'text' ? String((p as { text?: unknown }).text ?? '') : '')).join('');
    }
    // OpenAI's newer name for the system turn.
    const r = role === 'developer' ? 'system' : role;
    if (r !== 'system' && r !== 'user' && r !== 'assistant') throw new HttpError(400, `messages[${i}].role must be system, developer, user or assistant, found ${JSON.stringify(role)}`, `messages[${i}].role`);
    if (typeof content !== 'string') throw new HttpError(400, `messages[${i}].content must be text`, `messages[${i}].content`);
    return { role: r, content };
  });
}

function formatChoice(route: 'text' | 'chat', c: Choice, index: number, r: SamplingRequest): Record<string, unknown> {
  const base = { index, finish_reason: c.finishReason, stop_reason: c.stopString ?? null };
  if (route === 'chat') {
    return {
      ...base,
      message: { role: 'assistant', content: c.text },
      logprobs: c.logprobs ? { content: c.logprobs.map((t) => ({ token: t.token, logprob: t.logprob, bytes: [...Buffer.from(t.token)], top_logprobs: (r.logprobs ?? 0) > 0 ? [{ token: t.token, logprob: t.logprob, bytes: [...Buffer.from(t.token)] }] : [] })) } : null,
    };
  }
  let offset = 0;
  return {
    ...base,
    text: c.text,
    logprobs: c.logprobs
      ? {
          tokens: c.logprobs.map((t) => t.token),
          token_logprobs: c.logprobs.map((t) => t.logprob),
          // The engine keeps the sampled token's log-probability only: it is the one alternative listed.
          top_logprobs: (r.logprobs ?? 0) > 0 ? c.logprobs.map((t) => ({ [t.token]: t.logprob })) : null,
          text_offset: c.logprobs.map((t) => {
            const at = offset;
            offset += t.token.length;
            return at;
          }),
        }
      : null,
  };
}

/** An engine's refusal of one request (bad prompt, busy) is the client's 400 / 503, not a server fault. */
function rethrowAsRequest(e: unknown): never {
  if (e instanceof LabError) throw new HttpError(e.code === 'busy' ? 503 : 400, e.message, e.details.field ?? null);
  throw e;
}

function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof LabError) return new HttpError(400, e.message, e.details.field ?? null);
  return new HttpError(500, e instanceof Error ? e.message : String(e), null, 'server_error');
}

/** The Authorization header carries the key ("Bearer" in any case), compared in constant time. */
export function keyMatches(header: string | undefined, key: string): boolean {
  const m = /^bearer\s+(.+)$/i.exec(header ?? '');
  return m !== null && secretMatches(m[1].trim(), key);
}

/** Compares a secret in constant time (hashes first, so lengths do not show). */
export function secretMatches(given: string, key: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(key).digest());
}

/** Parses --host / --port style values for the serve command. */
export function parsePort(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new LabError('cli-args', 'the port must be a whole number from 0 to 65535', { field: '--port', found: value });
  return n;
}

export type { Completion };
