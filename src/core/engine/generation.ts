/**
 * Batched generation as a small state machine per row (after nanochat's engine.py), on one shared KV
 * cache. A row is active (fed and sampled every step), paused (sits steps out, its cache kept) or
 * done. Tokens are either sampled by the policy or forced by the caller (a tool's output); the row
 * keeps a sampled/forced mask and the log-probability of each sampled token.
 *
 * Every step feeds each active row the tokens it has that the cache does not (the last sampled
 * token, or a prompt / forced tokens in chunks), runs one cached forward for the whole batch, and
 * samples a next token for each row whose tokens are all in the cache. So a paused row can be given
 * forced tokens and resumed: only those tokens are prefilled, while the other rows keep decoding.
 *
 *   const gen = new Generation(model, prompts, { maxNewTokens: 256, stop: ['```output'], onStop: 'pause', decode });
 *   while (gen.active > 0 || toolsRunning) {
 *     for (const e of await gen.step()) if (e.kind === 'pause') runTool(e.row).then((ids) => { gen.force(e.row, ids); gen.resume(e.row); });
 *   }
 */
import * as tf from '@tensorflow/tfjs';
import { LabError } from '../errors';
import { createRng, type Rng } from '../rng';
import type { Tokenizer } from '../tokenizer/types';
import type { Transformer } from '../model/transformer';
import { KVCache, chooseStepLength, STEP_OVERHEAD, stepTensors, type RowFeed } from './kvcache';
import { DEFAULT_SAMPLING, sampleToken, type Candidates, type SamplingParams } from './sampling';
import { findStop, stopTokenIds, stopWindow, type Decode } from './stop';

export type RowStatus = 'active' | 'paused' | 'done';
/** Why a row ended: its end-of-sequence token, a stop string or the caller, or its token budget. */
export type FinishReason = 'eos' | 'stop' | 'length';

export interface RowOptions extends Partial<SamplingParams> {
  /** Response budget: sampled and forced tokens after the prompt. */
  maxNewTokens?: number;
  /** Strings that end the row's turn, matched in the decoded text across token boundaries. */
  stop?: string[];
  /** Seed of this row's sampler (per row; default: derived from the generation's seed and the row index). */
  seed?: number;
}

export interface RowRequest extends RowOptions {
  prompt: number[];
}

export interface GenerationOptions extends RowOptions {
  maxNewTokens: number;
  /** Token ids that end a row (default: stopTokenIds, config.json's eos_token_id and the tokenizer's together). */
  eosTokenIds?: number[];
  /** Turns ids into text for stop strings: a tokenizer or a decode function. */
  decode?: Tokenizer | Decode;
  /** At a stop string: finish the row (default), or pause it so the caller can force tokens and resume. */
  onStop?: 'finish' | 'pause';
  /** Most tokens one row feeds in one step (prompts and forced tokens go in chunks). Default 64. */
  prefillChunk?: number;
  /**
   * A step's fixed cost in fed positions (chooseStepLength); default by backend (STEP_OVERHEAD).
   * Infinity feeds every row up to the longest waiting feed each step.
   */
  stepOverhead?: number;
}

export type GenerationEvent =
  | { row: number; kind: 'token'; token: number; logprob: number }
  | { row: number; kind: 'pause'; stop: string }
  | { row: number; kind: 'finish'; reason: FinishReason };

export interface RowResult {
  prompt: number[];
  /** Response tokens after the prompt, sampled and forced, in order. */
  tokens: number[];
  /** Log-probability of each response token under the sampling distribution; 0 for forced tokens. */
  logprobs: number[];
  /** true where the policy sampled the token, false where it was forced (masked out of losses). */
  sampled: boolean[];
  finishReason: FinishReason | null;
  /** The stop string that ended (or last paused) the row. */
  stop?: string;
}

/** Above this many candidates, top-k runs on the device (only k logits per row come back). */
const DEVICE_TOP_K_MAX = 64;

interface Row {
  tokens: number[];
  promptLength: number;
  /** tokens[0..cached) are in the KV cache. */
  cached: number;
  logprobs: number[];
  sampled: boolean[];
  status: RowStatus;
  finishReason: FinishReason | null;
  stop?: string;
  /** Stop strings are searched in tokens[stopFrom..]: forced text never triggers them. */
  stopFrom: number;
  params: SamplingParams;
  maxNewTokens: number;
  stops: string[];
  /** Tokens decoded per stop-string check. */
  stopWindow: number;
  rng: Rng;
}

export class Generation {
  private readonly model: Transformer;
  private readonly rows: Row[];
  private readonly cache: KVCache;
  private readonly eos: Set<number>;
  private readonly decode?: Decode;
  private readonly onStop: 'finish' | 'pause';
  private readonly chunk: number;
  private readonly stepOverhead: number;
  private readonly maxPositions: number;

  constructor(model: Transformer, requests: (number[] | RowRequest)[], options: GenerationOptions) {
    const cfg = model.cfg;
    this.model = model;
    this.maxPositions = cfg.max_position_embeddings;
    this.onStop = options.onStop ?? 'finish';
    this.chunk = Math.max(1, options.prefillChunk ?? 64);
    this.stepOverhead = options.stepOverhead ?? (['webgpu', 'webgl'].includes(tf.getBackend()) ? STEP_OVERHEAD.gpu : STEP_OVERHEAD.cpu);
    const tokenizer = typeof options.decode === 'object' ? options.decode : undefined;
    this.decode = tokenizer ? (ids) => tokenizer.decode(ids) : (options.decode as Decode | undefined);
    this.eos = new Set(options.eosTokenIds ?? stopTokenIds(cfg.eos_token_id, tokenizer?.eosIds));
    if (requests.length === 0) throw new LabError('generation', 'nothing to generate', { field: 'prompts', expected: 'at least one prompt', found: 'none' });
    const seed = options.seed ?? 0;
    this.rows = requests.map((r, i) => {
      const req: RowRequest = Array.isArray(r) ? { prompt: r } : r;
      const field = `prompts[${i}]`;
      if (req.prompt.length === 0) throw new LabError('generation', 'a prompt is empty', { field, expected: 'at least one token (e.g. BOS)', found: '[]' });
      const bad = req.prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= cfg.vocab_size);
      if (bad !== undefined) throw new LabError('generation', 'a prompt holds a token id outside the vocabulary', { field, expected: `integers in [0, ${cfg.vocab_size})`, found: String(bad), hint: 'Encode prompts with the tokenizer saved with this model' });
      if (req.prompt.length >= this.maxPositions) throw new LabError('generation', 'a prompt leaves no room to generate', { field, expected: `fewer than ${this.maxPositions} tokens (max_position_embeddings)`, found: `${req.prompt.length} tokens` });
      const stops = req.stop ?? options.stop ?? [];
      if (stops.length > 0 && !this.decode) throw new LabError('generation', 'stop strings need a way to decode tokens', { field: 'decode', expected: 'a tokenizer or a decode(ids) function', found: 'nothing' });
      const params: SamplingParams = {
        temperature: req.temperature ?? options.temperature ?? DEFAULT_SAMPLING.temperature,
        topK: req.topK ?? options.topK ?? DEFAULT_SAMPLING.topK,
        topP: req.topP ?? options.topP ?? DEFAULT_SAMPLING.topP,
        repetitionPenalty: req.repetitionPenalty ?? options.repetitionPenalty ?? 1,
      };
      if (!(params.temperature >= 0) || !(params.topK >= 0) || !(params.topP > 0 && params.topP <= 1) || !(params.repetitionPenalty! > 0)) {
        throw new LabError('generation', 'bad sampling settings', { field, expected: 'temperature >= 0, topK >= 0, 0 < topP <= 1, repetitionPenalty > 0', found: JSON.stringify(params) });
      }
      return {
        tokens: [...req.prompt],
        promptLength: req.prompt.length,
        cached: 0,
        logprobs: [],
        sampled: [],
        status: 'active' as RowStatus,
        finishReason: null,
        stopFrom: req.prompt.length,
        params,
        maxNewTokens: req.maxNewTokens ?? options.maxNewTokens,
        stops,
        stopWindow: stopWindow(stops),
        // A row's own seed alone fixes its samples, wherever it sits in the batch.
        rng: req.seed !== undefined ? createRng(req.seed) : createRng(seed).fork(`row ${i}`),
      };
    });
    const longest = Math.max(...this.rows.map((r) => r.tokens.length));
    this.cache = new KVCache(cfg, this.rows.length, Math.min(longest, this.chunk) + 1);
  }

  get size(): number {
    return this.rows.length;
  }

  /** Rows that the next step will feed and sample. */
  get active(): number {
    return this.rows.filter((r) => r.status === 'active').length;
  }

  /** Every row is done. */
  get done(): boolean {
    return this.rows.every((r) => r.status === 'done');
  }

  status(row: number): RowStatus {
    return this.row(row).status;
  }

  /** Text of a row's response so far (needs a decode function). */
  responseText(row: number): string {
    if (!this.decode) throw new LabError('generation', 'responseText needs a way to decode tokens', { field: 'decode', expected: 'a tokenizer or a decode(ids) function', found: 'nothing' });
    const r = this.row(row);
    return this.decode(r.tokens.slice(r.promptLength));
  }

  /**
   * One forward over the batch: every active row feeds up to `length` of its uncached tokens (the
   * length chooseStepLength finds cheapest for what the rows have waiting, at most the prefill
   * chunk), and each row whose tokens are then all cached samples its next token.
   */
  async step(): Promise<GenerationEvent[]> {
    const feeding = this.rows.map((r) => (r.status === 'active' ? r.tokens.length - r.cached : 0));
    const length = chooseStepLength(feeding, this.chunk, this.stepOverhead);
    if (length === 0) return [];
    const feeds: RowFeed[] = this.rows.map((r, b) => ({ start: r.cached, tokens: r.tokens.slice(r.cached, r.cached + Math.min(feeding[b], length)) }));
    this.cache.ensure(Math.max(...feeds.map((f) => f.start + f.tokens.length)) + 1);

    const inputs = stepTensors(feeds, length, this.cache.capacity, this.model.cfg.num_key_value_heads);
    const { logits, cache } = this.model.forwardCached(inputs, this.cache.layers);
    tf.dispose(Object.values(inputs));
    this.cache.replace(cache);

    const events: GenerationEvent[] = [];
    const sampling: number[] = [];
    this.rows.forEach((r, b) => {
      if (feeds[b].tokens.length === 0) return;
      r.cached += feeds[b].tokens.length;
      if (r.cached < r.tokens.length) return; // more prompt or forced tokens to feed first
      if (r.tokens.length - r.promptLength >= r.maxNewTokens || r.tokens.length >= this.maxPositions) events.push(this.end(b, 'length'));
      else sampling.push(b);
    });
    try {
      if (sampling.length > 0) {
        const picked = await this.sample(logits, sampling);
        sampling.forEach((b, j) => events.push(...this.append(b, picked[j].token, picked[j].logprob)));
      }
    } finally {
      logits.dispose();
    }
    return events;
  }

  /** Stops feeding and sampling a row (its cache is kept) until resume. */
  pause(row: number): void {
    const r = this.row(row);
    if (r.status === 'active') r.status = 'paused';
  }

  /**
   * Appends tokens the policy did not sample (a tool's output) to a paused row; they are fed on
   * resume. Beyond the row's budget (maxNewTokens, max positions) they are cut and the row finishes.
   */
  force(row: number, tokens: number[]): void {
    const r = this.row(row);
    if (r.status !== 'paused') throw new LabError('generation', `row ${row} must be paused to take forced tokens`, { field: `row ${row}`, expected: 'paused', found: r.status, hint: 'Use onStop: "pause" or call pause(row) first' });
    const bad = tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= this.model.cfg.vocab_size);
    if (bad !== undefined) throw new LabError('generation', 'a forced token id is outside the vocabulary', { field: `row ${row}`, expected: `integers in [0, ${this.model.cfg.vocab_size})`, found: String(bad) });
    const room = Math.min(r.maxNewTokens - (r.tokens.length - r.promptLength), this.maxPositions - r.tokens.length);
    const kept = tokens.slice(0, Math.max(0, room));
    r.tokens.push(...kept);
    r.logprobs.push(...kept.map(() => 0));
    r.sampled.push(...kept.map(() => false));
    r.stopFrom = r.tokens.length;
    if (kept.length < tokens.length || kept.length === room) this.end(row, 'length');
  }

  /** Makes a paused row active again: its forced tokens (and last sampled token) are fed next step. */
  resume(row: number): void {
    const r = this.row(row);
    if (r.status !== 'paused') return;
    r.status = 'active';
    r.stopFrom = r.tokens.length;
  }

  /**
   * Cuts a paused row's response back to its first `responseLength` tokens (self-correction backs up
   * over a failed step). Cache slots past the cut are simply overwritten later: each slot holds the
   * token at that position and masks only reach up to a row's own position.
   */
  rewind(row: number, responseLength: number): void {
    const r = this.row(row);
    if (r.status !== 'paused') throw new LabError('generation', `row ${row} must be paused to rewind`, { field: `row ${row}`, expected: 'paused', found: r.status });
    const current = r.tokens.length - r.promptLength;
    if (!Number.isInteger(responseLength) || responseLength < 0 || responseLength > current) {
      throw new LabError('generation', 'rewind target outside the response', { field: 'responseLength', expected: `an integer in [0, ${current}]`, found: String(responseLength) });
    }
    const keep = r.promptLength + responseLength;
    r.tokens.length = keep;
    r.logprobs.length = responseLength;
    r.sampled.length = responseLength;
    // The last kept token is fed again so the next step has logits to sample from.
    r.cached = Math.min(r.cached, keep - 1);
    r.stopFrom = keep;
    r.stop = undefined;
  }

  /** Ends a row now. */
  finish(row: number, reason: FinishReason): void {
    const r = this.row(row);
    if (r.status !== 'done') this.end(row, reason);
  }

  result(row: number): RowResult {
    const r = this.row(row);
    return {
      prompt: r.tokens.slice(0, r.promptLength),
      tokens: r.tokens.slice(r.promptLength),
      logprobs: [...r.logprobs],
      sampled: [...r.sampled],
      finishReason: r.finishReason,
      stop: r.stop,
    };
  }

  results(): RowResult[] {
    return this.rows.map((_, i) => this.result(i));
  }

  /** Frees the KV cache. */
  dispose(): void {
    this.cache.dispose();
  }

  private row(i: number): Row {
    const r = this.rows[i];
    if (!r) throw new LabError('generation', 'no such row', { field: 'row', expected: `0..${this.rows.length - 1}`, found: String(i) });
    return r;
  }

  private end(row: number, reason: FinishReason): GenerationEvent {
    const r = this.rows[row];
    r.status = 'done';
    r.finishReason = reason;
    return { row, kind: 'finish', reason };
  }

  /** Records a sampled token and applies the row's end conditions: EOS, stop strings, budget. */
  private append(row: number, token: number, logprob: number): GenerationEvent[] {
    const r = this.rows[row];
    r.tokens.push(token);
    r.logprobs.push(logprob);
    r.sampled.push(true);
    const events: GenerationEvent[] = [{ row, kind: 'token', token, logprob }];
    if (this.eos.has(token)) return [...events, this.end(row, 'eos')];
    const stop = this.decode ? findStop(r.tokens, r.stopFrom, r.stops, this.decode, r.stopWindow) : undefined;
    if (stop !== undefined) {
      r.stop = stop;
      if (this.onStop === 'finish') return [...events, this.end(row, 'stop')];
      r.status = 'paused';
      return [...events, { row, kind: 'pause', stop }];
    }
    if (r.tokens.length - r.promptLength >= r.maxNewTokens || r.tokens.length >= this.maxPositions) events.push(this.end(row, 'length'));
    return events;
  }

  /**
   * Next tokens of the given rows from logits [B, V]. Temperature and logsumexp run on the device;
   * when every row keeps at most DEVICE_TOP_K_MAX candidates (greedy, small top-k) only those come
   * back, otherwise the whole scaled distribution does.
   */
  private async sample(logits: tf.Tensor2D, rows: number[]): Promise<{ token: number; logprob: number }[]> {
    const temps = this.rows.map((r, b) => (rows.includes(b) && r.params.temperature > 0 ? r.params.temperature : 1));
    const keep = rows.map((b) => (this.rows[b].params.temperature === 0 ? 1 : this.rows[b].params.topK));
    const k = Math.max(...keep);
    const onDevice = keep.every((n) => n > 0) && k <= DEVICE_TOP_K_MAX;
    const vocab = logits.shape[1];
    const penalized = this.penalize(logits, rows);
    const [scaled, lse, topIds] = tf.tidy(() => {
      const s = tf.div(penalized ?? logits, tf.tensor2d(temps, [temps.length, 1]));
      const l = tf.logSumExp(s, -1);
      if (!onDevice) return [s, l, undefined];
      const top = tf.topk(s, k);
      return [top.values, l, top.indices];
    });
    try {
      const [values, sums, ids] = await Promise.all([scaled.data(), lse.data(), topIds?.data()]);
      const width = onDevice ? k : vocab;
      return rows.map((b) => {
        const candidates: Candidates = {
          values: (values as Float32Array).subarray(b * width, (b + 1) * width),
          ids: ids ? (ids as Int32Array).subarray(b * width, (b + 1) * width) : undefined,
          logSumExp: sums[b],
        };
        return sampleToken(candidates, this.rows[b].params, this.rows[b].rng);
      });
    } finally {
      tf.dispose([scaled, lse, ...(topIds ? [topIds] : []), ...(penalized ? [penalized] : [])]);
    }
  }

  /**
   * The logits with the repetition penalty of the rows that have one (HF's RepetitionPenaltyLogitsProcessor:
   * every id of the row so far, prompt included, once); undefined when no row has one.
   */
  private penalize(logits: tf.Tensor2D, rows: number[]): tf.Tensor2D | undefined {
    const [batch, vocab] = logits.shape;
    const penalty = new Float32Array(batch).fill(1);
    const hits: number[] = [];
    for (const b of rows) {
      const p = this.rows[b].params.repetitionPenalty ?? 1;
      if (p === 1) continue;
      penalty[b] = p;
      for (const id of new Set(this.rows[b].tokens)) hits.push(b, id);
    }
    if (hits.length === 0) return undefined;
    return tf.tidy(() => {
      const seen = tf.scatterND(tf.tensor2d(hits, [hits.length / 2, 2], 'int32'), tf.ones([hits.length / 2]), [batch, vocab]);
      const p = tf.tensor2d(penalty, [batch, 1]);
      const moved = tf.where(tf.less(logits, 0), tf.mul(logits, p), tf.div(logits, p));
      return tf.where(tf.greater(seen, 0), moved, logits) as tf.Tensor2D;
    });
  }
}

/**
 * Generates for every prompt until each row ends (EOS, stop string, budget): the convenience form
 * of the step API. Stop strings always finish rows here.
 */
export async function generate(model: Transformer, requests: (number[] | RowRequest)[], options: GenerationOptions): Promise<RowResult[]> {
  const gen = new Generation(model, requests, { ...options, onStop: 'finish' });
  try {
    while (gen.active > 0) await gen.step();
    return gen.results();
  } finally {
    gen.dispose();
  }
}
