/**
 * OpenAI-compatible endpoints (vLLM, SGLang, llama.cpp, Ollama, the lab's own `npm run serve`) as a
 * TextModel, through the official `openai` package (docs/engines.md). The package brings the HTTP
 * layer: timeouts, retries with exponential backoff on connection errors, 408 / 409 / 429 / 5xx, and
 * the server's Retry-After. This file adds what a lab needs on top: a cap on requests in flight, a
 * retry of replies that are not valid JSON, the non-standard sampling fields local engines read
 * (top_k, continue_final_message), and errors that say which endpoint failed and how.
 */
import OpenAI from 'openai';
import { LabError } from '../errors';
import type { ChatMessage, Choice, CompleteOptions, Completion, CompletionFinish, Prompt, SamplingRequest, TextModel, TokenLogprob } from './types';

export interface EndpointConfig {
  /** Base URL up to /v1, e.g. http://127.0.0.1:8000/v1 */
  baseURL: string;
  /** Model name the server knows (see /v1/models). */
  model: string;
  apiKey?: string;
  /** Per-request limit in milliseconds (default 10 minutes: long generations are normal). */
  timeoutMs?: number;
  /** Retries after the first try (default 4). */
  maxRetries?: number;
  /** Requests in flight at most (default 16). */
  concurrency?: number;
  /** Chat prompts are sent as chat completions; this forces raw text prompts to go as chat too (default: completions). */
  api?: 'completions' | 'chat';
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** A counting semaphore: at most `limit` holders at once, first come first served. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`concurrency must be at least 1, found ${limit}`);
  }
  get inFlight(): number {
    return this.active;
  }
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

/**
 * A finish reason the lab can grade by: "length" (out of budget) or "stop" (a stop string, the
 * model's end). Anything else (vLLM's "abort", a filter, none at all) means the answer was not
 * finished, and is an error rather than an answer graded as if it were complete.
 */
function finishOf(reason: unknown, index: number): CompletionFinish {
  if (reason === 'length') return 'length';
  if (reason === 'stop' || reason === 'eos' || reason === 'tool_calls' || reason === 'function_call') return 'stop';
  throw new LabError('endpoint', `the server ended choice ${index} without finishing it`, { field: 'finish_reason', expected: '"stop" or "length"', found: JSON.stringify(reason ?? null) });
}

/**
 * The stop string that matched, as vLLM and the lab server (stop_reason) and SGLang (matched_stop)
 * name it: a string; null when the field is there but no stop string matched (null, or a number: a
 * stop token id); undefined when the engine has no such field.
 */
const stopStringOf = (c: unknown): string | null | undefined => {
  const o = c as { stop_reason?: unknown; matched_stop?: unknown };
  for (const key of ['stop_reason', 'matched_stop'] as const) {
    if (!(key in o)) continue;
    const v = o[key];
    if (typeof v === 'string') return v;
    if (v === null || typeof v === 'number') return null;
  }
  return undefined;
};

/** Streamed choices as they come in: text and, once sent, how each ended. */
class StreamedChoices {
  private readonly items: { text: string; finish?: unknown; stop?: string | null }[] = [];
  constructor(private readonly onText: (choice: number, delta: string) => void) {}
  add(index: number, delta: string | null | undefined, finish: unknown, raw: unknown): void {
    const ch = (this.items[index] ??= { text: '' });
    if (delta) {
      ch.text += delta;
      this.onText(index, delta);
    }
    if (finish !== null && finish !== undefined) ch.finish = finish;
    const stop = stopStringOf(raw);
    if (stop !== undefined) ch.stop = stop;
  }
  /** The choices, once the stream has ended; a choice the stream never finished is an error. */
  done(n: number, signal?: AbortSignal): Completion {
    signal?.throwIfAborted();
    const choices: Choice[] = [];
    for (let i = 0; i < n; i++) {
      const ch = this.items[i];
      if (!ch || ch.finish === undefined) throw new LabError('endpoint', `the stream ended before choice ${i} was finished`, { field: 'finish_reason', expected: 'a finish reason for every choice', found: 'none' });
      choices.push({ text: ch.text, finishReason: finishOf(ch.finish, i), ...(ch.stop !== undefined && { stopString: ch.stop }) });
    }
    return { choices };
  }
}

export class EndpointModel implements TextModel {
  readonly kind = 'endpoint' as const;
  readonly label: string;
  private readonly client: OpenAI;
  private readonly gate: Semaphore;
  private readonly retries: number;

  constructor(readonly config: EndpointConfig) {
    let url: URL;
    try {
      url = new URL(config.baseURL);
    } catch {
      throw new LabError('endpoint', 'the endpoint URL is not a URL', { field: 'baseURL', expected: 'e.g. http://127.0.0.1:8000/v1', found: config.baseURL });
    }
    if (!['http:', 'https:'].includes(url.protocol)) throw new LabError('endpoint', 'the endpoint URL must be http or https', { field: 'baseURL', found: config.baseURL });
    if (!config.model.trim()) throw new LabError('endpoint', 'no model name', { field: 'model', expected: 'a model the server lists under /v1/models', found: 'nothing' });
    this.label = `${config.model} @ ${url.origin}`;
    this.retries = config.maxRetries ?? 4;
    this.gate = new Semaphore(config.concurrency ?? 16);
    this.client = new OpenAI({
      baseURL: config.baseURL.replace(/\/+$/, ''),
      // Local engines take any key; the package insists on one.
      apiKey: config.apiKey || 'none',
      timeout: config.timeoutMs ?? 600_000,
      maxRetries: this.retries,
      // The key is the user's own, typed into their own tab, sent to the server they chose.
      dangerouslyAllowBrowser: true,
      ...(config.fetch && { fetch: config.fetch }),
    });
  }

  /** Requests in flight now (for tests and progress displays). */
  get inFlight(): number {
    return this.gate.inFlight;
  }

  async models(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.call('list models', async () => {
      const page = await this.client.models.list({ signal: options.signal });
      return page.data.map((m) => m.id);
    }, options.signal);
  }

  complete(prompt: Prompt, request: SamplingRequest, options: CompleteOptions = {}): Promise<Completion> {
    const chat = typeof prompt !== 'string' || this.config.api === 'chat';
    const messages: ChatMessage[] = typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt;
    return this.call(chat ? 'chat completion' : 'completion', () => (chat ? this.chat(messages, request, options) : this.text(prompt as string, request, options)), options.signal);
  }

  /** Fields both APIs share, plus the engines' own sampling fields. */
  private common(r: SamplingRequest): Record<string, unknown> {
    return {
      model: this.config.model,
      max_tokens: r.maxTokens,
      temperature: r.temperature,
      ...(r.topP !== undefined && r.topP < 1 && { top_p: r.topP }),
      ...(r.topK !== undefined && r.topK > 0 && { top_k: r.topK }),
      ...(r.stop && r.stop.length > 0 && { stop: r.stop }),
      ...(r.n !== undefined && r.n !== 1 && { n: r.n }),
      ...(r.seed !== undefined && { seed: r.seed }),
    };
  }

  private async text(prompt: string, r: SamplingRequest, o: CompleteOptions): Promise<Completion> {
    const body = { ...this.common(r), prompt, ...(r.logprobs !== undefined && { logprobs: r.logprobs }) };
    if (o.onText) {
      const got = new StreamedChoices(o.onText);
      const stream = await this.client.completions.create({ ...(body as unknown as OpenAI.CompletionCreateParamsStreaming), stream: true }, { signal: o.signal });
      for await (const chunk of stream) for (const c of chunk.choices) got.add(c.index, c.text, c.finish_reason, c);
      return got.done(r.n ?? 1, o.signal);
    }
    const res = await this.client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming, { signal: o.signal });
    checkShape(res, 'completion');
    return {
      choices: [...res.choices]
        .sort((a, b) => a.index - b.index)
        .map((c) => ({
          text: c.text ?? '',
          finishReason: finishOf(c.finish_reason, c.index),
          ...(stopStringOf(c) !== undefined && { stopString: stopStringOf(c) }),
          ...(c.logprobs?.tokens && { logprobs: textLogprobs(c.logprobs) }),
        })),
      ...(res.usage && { usage: { promptTokens: res.usage.prompt_tokens, completionTokens: res.usage.completion_tokens } }),
    };
  }

  private async chat(messages: ChatMessage[], r: SamplingRequest, o: CompleteOptions): Promise<Completion> {
    const body = {
      ...this.common(r),
      messages,
      ...(r.logprobs !== undefined && { logprobs: true, ...(r.logprobs > 0 && { top_logprobs: r.logprobs }) }),
      ...(r.continueFinal && { continue_final_message: true, add_generation_prompt: false }),
    };
    if (o.onText) {
      const got = new StreamedChoices(o.onText);
      const stream = await this.client.chat.completions.create({ ...(body as unknown as OpenAI.ChatCompletionCreateParamsStreaming), stream: true }, { signal: o.signal });
      for await (const chunk of stream) for (const c of chunk.choices) got.add(c.index, c.delta?.content, c.finish_reason, c);
      return got.done(r.n ?? 1, o.signal);
    }
    const res = await this.client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming, { signal: o.signal });
    checkShape(res, 'chat completion');
    return {
      choices: [...res.choices]
        .sort((a, b) => a.index - b.index)
        .map((c) => ({
          text: c.message?.content ?? '',
          finishReason: finishOf(c.finish_reason, c.index),
          ...(stopStringOf(c) !== undefined && { stopString: stopStringOf(c) }),
          ...(c.logprobs?.content && {
            logprobs: c.logprobs.content.map((t) => ({ token: t.token, logprob: t.logprob, ...(t.top_logprobs?.length && { top: t.top_logprobs.map((x) => ({ token: x.token, logprob: x.logprob })) }) })),
          }),
        })),
      ...(res.usage && { usage: { promptTokens: res.usage.prompt_tokens, completionTokens: res.usage.completion_tokens } }),
    };
  }

  /**
   * One request through the cap on requests in flight. The package has already retried what HTTP
   * says is worth retrying; a reply that is not valid JSON (a proxy's error page, a cut connection)
   * is retried here with the same backoff. Every failure ends as a LabError naming the endpoint.
   */
  private call<T>(what: string, job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.gate.run(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await job();
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          if (isMalformed(e) && attempt < this.retries) {
            await sleep(Math.min(8000, 500 * 2 ** attempt) * (0.75 + Math.random() / 4), signal);
            continue;
          }
          throw this.describe(e, what, attempt);
        }
      }
    });
  }

  private describe(e: unknown, what: string, malformedRetries: number): LabError {
    const where = `${this.config.baseURL} (model ${this.config.model})`;
    const tries = `after ${this.retries + 1} tries`;
    if (e instanceof OpenAI.APIConnectionTimeoutError) return new LabError('endpoint', `${what}: ${where} did not answer within ${durationText(this.config.timeoutMs ?? 600_000)}, ${tries}`, { hint: 'raise the timeout, or check the server is not overloaded' });
    if (e instanceof OpenAI.APIConnectionError) return new LabError('endpoint', `${what}: cannot reach ${where}, ${tries}: ${e.cause instanceof Error ? e.cause.message : e.message}`, { hint: 'is the server running, and is the URL right (it ends in /v1)?' });
    if (e instanceof OpenAI.APIError && e.status === undefined && !(e instanceof OpenAI.APIUserAbortError)) {
      // An error event inside a stream the server had already answered with 200.
      const code = CONTEXT_ERROR.test(e.message) ? 'endpoint-context' : 'endpoint';
      return new LabError(code, `${what}: ${where} reported an error in the middle of its stream: ${e.message}`);
    }
    if (e instanceof OpenAI.APIError) {
      const status = e.status;
      const retried = status === 429 || (status !== undefined && status >= 500) ? `, ${tries}` : '';
      const hint = status === 401 || status === 403 ? 'check the API key' : status === 404 ? 'check the URL and the model name (GET /v1/models lists them)' : status === 429 ? 'the server is rate-limiting: lower the requests in flight' : undefined;
      // A prompt (with its max_tokens) longer than the model's context: the caller may treat it as running out of room.
      const code = status === 400 && CONTEXT_ERROR.test(e.message) ? 'endpoint-context' : 'endpoint';
      return new LabError(code, `${what}: ${where} answered HTTP ${status}${retried}: ${e.message}`, hint ? { hint } : {});
    }
    if (isMalformed(e)) return new LabError('endpoint', `${what}: ${where} sent a reply that is not valid JSON, after ${malformedRetries + 1} tries`, { expected: 'an OpenAI-style JSON body', found: e instanceof Error ? e.message : String(e) });
    if (e instanceof LabError) return e;
    return new LabError('endpoint', `${what}: ${where} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** How engines word a request over the context: vLLM ("maximum context length"), llama.cpp ("exceeds the available context size"), the lab server ("does not fit the model's context"). */
const CONTEXT_ERROR = /context (length|size|window)|maximum context|does not fit the model's context|too many tokens|prompt is too long/i;

function isMalformed(e: unknown): boolean {
  return e instanceof SyntaxError || (e instanceof LabError && e.code === 'endpoint-shape');
}

/** A reply that parsed as JSON but is not a completion (no choices) counts as malformed. */
function checkShape(res: unknown, what: string): void {
  const choices = (res as { choices?: unknown }).choices;
  if (!Array.isArray(choices)) throw new LabError('endpoint-shape', `the ${what} reply has no "choices" list`, { field: 'choices', expected: 'a list', found: JSON.stringify(res)?.slice(0, 80) });
}

function textLogprobs(l: { tokens?: string[]; token_logprobs?: (number | null)[]; top_logprobs?: (Record<string, number> | null)[] | null }): TokenLogprob[] {
  return (l.tokens ?? []).map((token, i) => {
    const top = l.top_logprobs?.[i];
    return {
      token,
      logprob: l.token_logprobs?.[i] ?? 0,
      ...(top && { top: Object.entries(top).map(([t, lp]) => ({ token: t, logprob: lp })) }),
    };
  });
}

const durationText = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(0)} s`);
