/**
 * The lab's own policy as a TextModel (docs/engines.md). Requests that arrive while the engine is busy
 * wait and then go together into one batched Generation (one row per choice, each with its own
 * sampling settings, stop strings and budget), so many callers in flight (the OpenAI server's
 * clients, an evaluation) share each forward pass. A request whose prompt cannot fit is refused alone;
 * an aborted request leaves the batch and the others go on.
 */
import { Generation, type RowRequest } from '../engine/generation';
import { LabError } from '../errors';
import type { Transformer } from '../model/transformer';
import { nextMacrotask } from '../tick';
import type { Tokenizer } from '../tokenizer/types';
import type { Choice, CompleteOptions, Completion, Prompt, SamplingRequest, TextModel } from './types';

interface Pending {
  prompt: number[];
  request: SamplingRequest;
  options: CompleteOptions;
  resolve: (c: Completion) => void;
  reject: (e: unknown) => void;
}

export interface LocalModelOptions {
  /** Most rows (choices) in one batch; more requests wait for the next. Default 64. */
  maxBatchRows?: number;
  /**
   * Milliseconds a batch waits after its first request for others to join (default 0: only those
   * sent in the same moment). A server whose clients answer each reply with the next request (TIR
   * rollouts after a tool call) fills its batches better with a few milliseconds.
   */
  gatherMs?: number;
}

/** Prompt text of a chat: the tokenizer's template; an unfinished assistant turn is continued, not closed. */
export function chatPromptText(tokenizer: Tokenizer, prompt: Prompt, continueFinal = false): string {
  if (typeof prompt === 'string') return prompt;
  const last = prompt.at(-1);
  if (continueFinal && last?.role === 'assistant') return tokenizer.applyChatTemplate(prompt.slice(0, -1), true) + last.content;
  return tokenizer.applyChatTemplate(prompt, true);
}

export class LocalModel implements TextModel {
  readonly kind = 'local' as const;
  private readonly queue: Pending[] = [];
  private running = false;
  /** Batches run so far and the rows they held, for the server's metrics and the batching benchmark. */
  readonly stats = { batches: 0, rows: 0, requests: 0 };

  constructor(
    readonly model: Transformer,
    readonly tokenizer: Tokenizer,
    readonly label: string,
    private readonly options: LocalModelOptions = {},
  ) {}

  /** Prompt tokens a request would use (the server checks them before queueing). */
  encode(prompt: Prompt, continueFinal = false): number[] {
    return this.tokenizer.encode(chatPromptText(this.tokenizer, prompt, continueFinal));
  }

  check(prompt: Prompt, request: SamplingRequest): void {
    this.checkTokens(this.encode(prompt, request.continueFinal), request);
  }

  complete(prompt: Prompt, request: SamplingRequest, options: CompleteOptions = {}): Promise<Completion> {
    try {
      const tokens = this.encode(prompt, request.continueFinal);
      this.checkTokens(tokens, request);
      options.signal?.throwIfAborted();
      return new Promise<Completion>((resolve, reject) => {
        this.queue.push({ prompt: tokens, request, options, resolve, reject });
        void this.drain();
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private checkTokens(prompt: number[], r: SamplingRequest): void {
    const context = this.model.cfg.max_position_embeddings;
    if (prompt.length === 0) throw new LabError('request', 'the prompt is empty', { field: 'prompt', expected: 'some text', found: 'nothing' });
    if (prompt.length >= context) throw new LabError('request', "the prompt does not fit the model's context", { field: 'prompt', expected: `fewer than ${context} tokens`, found: `${prompt.length} tokens` });
    if (!(Number.isInteger(r.maxTokens) && r.maxTokens >= 1)) throw new LabError('request', 'max_tokens must be a whole number of at least 1', { field: 'max_tokens', found: String(r.maxTokens) });
    const n = r.n ?? 1;
    if (!(Number.isInteger(n) && n >= 1 && n <= 128)) throw new LabError('request', 'n must be a whole number from 1 to 128', { field: 'n', found: String(r.n) });
    if (!(r.temperature >= 0 && r.temperature <= 10)) throw new LabError('request', 'temperature must be from 0 to 10', { field: 'temperature', found: String(r.temperature) });
    if (r.topP !== undefined && !(r.topP > 0 && r.topP <= 1)) throw new LabError('request', 'top_p must be in (0, 1]', { field: 'top_p', found: String(r.topP) });
    if (r.topK !== undefined && !(Number.isInteger(r.topK) && r.topK >= 0)) throw new LabError('request', 'top_k must be a whole number of at least 0 (0 = off)', { field: 'top_k', found: String(r.topK) });
    if (r.stop && (r.stop.length > 8 || r.stop.some((s) => typeof s !== 'string' || s.length === 0))) throw new LabError('request', 'stop must be at most 8 non-empty strings', { field: 'stop', found: JSON.stringify(r.stop) });
  }

  /** Runs queued requests in batches until none wait; arrivals during a batch join the next one. */
  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        // Let requests sent in the same moment (a client's burst) arrive before the batch starts.
        const gather = this.options.gatherMs ?? 0;
        if (gather > 0) await new Promise((r) => setTimeout(r, gather));
        else await nextMacrotask();
        const limit = this.options.maxBatchRows ?? 64;
        const batch: Pending[] = [];
        let rows = 0;
        while (this.queue.length > 0 && (batch.length === 0 || rows + (this.queue[0].request.n ?? 1) <= limit)) {
          const p = this.queue.shift()!;
          if (p.options.signal?.aborted) {
            p.reject(p.options.signal.reason);
            continue;
          }
          batch.push(p);
          rows += p.request.n ?? 1;
        }
        if (batch.length > 0) await this.runBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const owners: { item: number; choice: number }[] = [];
    const rows: RowRequest[] = [];
    batch.forEach((p, item) => {
      const r = p.request;
      for (let choice = 0; choice < (r.n ?? 1); choice++) {
        owners.push({ item, choice });
        rows.push({
          prompt: p.prompt,
          maxNewTokens: r.maxTokens,
          temperature: r.temperature,
          topP: r.topP ?? 1,
          topK: r.topK ?? 0,
          stop: r.stop ?? [],
          // A request's seed fixes its choices wherever it lands in a batch.
          seed: r.seed !== undefined ? choiceSeed(r.seed, choice) : Math.floor(Math.random() * 2 ** 31),
        });
      }
    });
    this.stats.batches++;
    this.stats.rows += rows.length;
    this.stats.requests += batch.length;
    const holdBack = rows.map((r) => Math.max(0, ...(r.stop ?? []).map((s) => s.length - 1)));
    const sent = rows.map(() => 0);
    const failed = new Set<number>();
    let gen: Generation | undefined;
    try {
      gen = new Generation(this.model, rows, { maxNewTokens: Math.max(...rows.map((r) => r.maxNewTokens!)), decode: this.tokenizer, onStop: 'finish' });
      const g = gen;
      const visible = (row: number, final: boolean) => {
        const res = g.result(row);
        // The end-of-sequence token ends the text; it is not part of it.
        const text = res.finishReason === 'eos' ? this.tokenizer.decode(res.tokens.slice(0, -1)) : g.responseText(row);
        if (res.stop !== undefined) {
          const at = text.indexOf(res.stop);
          if (at >= 0) return text.slice(0, at);
        }
        if (final) return text;
        // A character whose bytes are split across tokens decodes as U+FFFD until its last byte comes.
        return text.slice(0, Math.max(0, text.length - holdBack[row])).replace(/\uFFFD+$/, '');
      };
      const stream = (row: number, final: boolean) => {
        const { item, choice } = owners[row];
        const onText = batch[item].options.onText;
        if (!onText || failed.has(item)) return;
        const text = visible(row, final);
        // A token may decode differently once its neighbour arrives (multi-byte text): send only what grew.
        if (text.length > sent[row]) {
          onText(choice, text.slice(sent[row]));
          sent[row] = text.length;
        }
      };
      while (!g.done) {
        batch.forEach((p, item) => {
          if (!failed.has(item) && p.options.signal?.aborted) {
            failed.add(item);
            owners.forEach((o, row) => o.item === item && g.finish(row, 'stop'));
            p.reject(p.options.signal.reason);
          }
        });
        if (g.done) break;
        for (const e of await g.step()) {
          if (e.kind === 'token') stream(e.row, false);
          else if (e.kind === 'finish') stream(e.row, true);
        }
        // Let HTTP requests, aborts and tool results in between decoding steps.
        await nextMacrotask();
      }
      const choices: Choice[][] = batch.map((p) => new Array<Choice>(p.request.n ?? 1));
      owners.forEach(({ item, choice }, row) => {
        const res = g.result(row);
        const text = visible(row, true);
        const p = batch[item];
        let logprobs: Choice['logprobs'];
        if (p.request.logprobs !== undefined) {
          // Tokens up to the cut: those whose text lies within what is returned.
          logprobs = [];
          let length = 0;
          for (let i = 0; i < res.tokens.length && length < text.length; i++) {
            const token = this.tokenizer.decode([res.tokens[i]]);
            logprobs.push({ token, logprob: res.logprobs[i] });
            length += token.length;
          }
        }
        choices[item][choice] = {
          text,
          finishReason: res.finishReason === 'length' ? 'length' : 'stop',
          ...(res.finishReason === 'stop' && res.stop !== undefined && { stopString: res.stop }),
          ...(logprobs && { logprobs }),
        };
      });
      batch.forEach((p, item) => {
        if (failed.has(item)) return;
        const completionTokens = owners.reduce((a, o, row) => a + (o.item === item ? g.result(row).tokens.length : 0), 0);
        p.resolve({ choices: choices[item], usage: { promptTokens: p.prompt.length, completionTokens } });
      });
    } catch (e) {
      batch.forEach((p, item) => failed.has(item) || p.reject(e));
    } finally {
      gen?.dispose();
    }
  }
}

/** The seed of choice `choice` of a request seeded `seed`: distinct per choice for any integer seed (FNV-1a over both). */
function choiceSeed(seed: number, choice: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${choice}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  return h >>> 0;
}
