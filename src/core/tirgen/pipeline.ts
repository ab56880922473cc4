/**
 * TIRGen, THOR's actor-critic data pipeline (docs/tirgen.md). For each question, up to
 * `attempts` times: the actor writes a step of at most L_step tokens (its end moved back to a line
 * end); the critic sees only that step and leaves it (no computation) or rewrites its computation as
 * ```python blocks; the lab runs the blocks (at most `maxRounds`, `toolTimeoutMs` each) and any failure
 * abandons the attempt; the step becomes its reasoning, code and real ```output, the rest of the
 * actor's step is dropped, and the actor goes on from there. Finished attempts are filtered
 * (filters.ts), one passing sample per question is kept, and one-call samples are halved.
 *
 * Everything is seeded by the run seed and the question id, so a question gives the same samples
 * whatever else runs beside it, and a resumed run continues exactly.
 */
import { isContextError, LabError } from '../errors';
import type { ChatMessage, TextModel } from '../llm/types';
import type { SymbolicChecker } from '../reward/equivalence';
import { createRng, hashString } from '../rng';
import type { Executor, RunStatus } from '../sandbox/types';
import { CODE_OPEN, FENCE_CLOSE, nextClosedCode, observationBlock, openBlockAtEnd, splitFences, tirPrompt } from '../tir/format';
import { executionRecord } from '../tir/rollout';
import { guessFence, promptWith } from '../tir/text-rollout';
import type { ExecutionRecord } from '../tir/types';
import type { Critic, CriticVerdict } from './critic';
import { answerVerified, codeBlocks, failedFilters } from './filters';
import { addCounts, emptyCounts, makeReport, type FailureReason, type TirgenCounts, type TirgenInput, type TirgenReport } from './report';
import type { TirgenSettings } from './settings';

/** The stop string of every actor request: each fence pauses the actor, as in a text rollout (docs/engines.md). */
const FENCE = '```';
/** Characters per token, where inserted text must be charged to a budget in tokens. */
const CHARS_PER_TOKEN = 4;

export interface TirgenProblem {
  id: string;
  question: string;
  /** The reference answer ('' when the data line had none: the question is skipped and counted). */
  answer: string;
}

/** A sample kept for the data: the response in the lab's TIR text format. */
export interface TirgenSample {
  id: string;
  question: string;
  reference: string;
  response: string;
  /** Code calls in the response. */
  calls: number;
  /** Which attempt of the question it is (0-based). */
  attempt: number;
  /** Actor steps it took. */
  steps: number;
}

/** One question done: its counts (its share of the report) and its kept samples. */
export interface QuestionResult {
  id: string;
  counts: TirgenCounts;
  samples: TirgenSample[];
  skipped?: 'no-answer' | 'solved-without-tools';
}

/** One step of one attempt, before and after, for displays. */
export interface StepEvent {
  questionId: string;
  attempt: number;
  step: number;
  /** The actor's step (its window, cut back to a line end). */
  actor: string;
  /** What became of it: kept as written, rewritten with code and real output, kept without the critic (short, or after a reasoning model's thinking), or the end of the attempt. */
  verdict: 'unchanged' | 'rewrite' | 'short' | 'after-thinking' | 'invalid' | 'code-failed' | 'no-step-end';
  /** The critic's rewrite (or its unusable reply). */
  critic?: string;
  /** Why the step ended the attempt. */
  reason?: string;
  executions: { code: string; status: RunStatus; observation: string; succeeded: boolean }[];
  /** The text that joined the response ('' when the attempt ended here). */
  appended: string;
  /** The actor ended its answer with this step (and the step was kept as written). */
  final: boolean;
}

export interface TirgenProgress {
  /** Questions done (those of earlier runs included) and in all. */
  done: number;
  total: number;
  /** Questions done by this run. */
  doneNow: number;
  counts: TirgenCounts;
  elapsedMs: number;
}

export interface TirgenEnv {
  actor: TextModel;
  critic: Critic;
  executor: Executor;
  /** Symbolic equivalence for the answer filter (sympy in the sandbox); without it only the cheap checks decide. */
  checker?: SymbolicChecker;
  signal?: AbortSignal;
  onStep?: (e: StepEvent) => void;
  /** A question is done; the run waits for this (the command line writes its lines here), one question at a time. */
  onQuestion?: (r: QuestionResult) => void | Promise<void>;
  onProgress?: (p: TirgenProgress) => void;
}

export interface TirgenRunOptions {
  problems: readonly TirgenProblem[];
  settings: TirgenSettings;
  seed: number;
  /** Questions an earlier run finished (from its progress log): skipped now, counted in the report. */
  previous?: readonly QuestionResult[];
  /** Where the questions came from, for the report. */
  input?: TirgenInput;
}

export interface TirgenResult {
  report: TirgenReport;
  /** Questions done by this run. */
  results: QuestionResult[];
}

interface Attempt {
  ok: boolean;
  failure?: FailureReason;
  response: string;
  executions: ExecutionRecord[];
  steps: number;
  attempt: number;
}

interface ActorStep {
  kind: 'step' | 'no-step-end';
  text: string;
  /** The actor ended its answer (not a window, not a fence). */
  ended: boolean;
  tokens: number;
}

/** Numbers in an output line ("3/4", "2.50", "1,024"), for comparing an expected output with the real one. */
function valueOfLine(line: string): number | undefined {
  const t = line.trim().replace(/,/g, '');
  const frac = /^(-?\d+)\s*\/\s*(\d+)$/.exec(t);
  if (frac) return Number(frac[1]) / Number(frac[2]);
  return /^-?\d+(?:\.\d+)?(?:e[+-]?\d+)?$/i.test(t) ? Number(t) : undefined;
}

/** The critic's expected output and the real one agree: line by line, the same text or the same number. */
export function sameOutput(expected: string, real: string): boolean {
  const lines = (s: string) =>
    s
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  const a = lines(expected);
  const b = lines(real);
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    if (x === b[i]) return true;
    const [u, v] = [valueOfLine(x), valueOfLine(b[i])];
    return u !== undefined && v !== undefined && Math.abs(u - v) <= 1e-9 * Math.max(1, Math.abs(u), Math.abs(v));
  });
}

export async function runTirgen(options: TirgenRunOptions, env: TirgenEnv): Promise<TirgenResult> {
  return new TirgenRun(options, env).run();
}

class TirgenRun {
  private readonly s: TirgenSettings;
  private readonly control = new AbortController();
  private stopped: string | undefined;

  constructor(
    private readonly options: TirgenRunOptions,
    private readonly env: TirgenEnv,
  ) {
    this.s = options.settings;
  }

  private get signal(): AbortSignal {
    return this.control.signal;
  }

  async run(): Promise<TirgenResult> {
    const started = Date.now();
    const counts = emptyCounts();
    const previous = this.options.previous ?? [];
    const doneIds = new Set(previous.map((r) => r.id));
    for (const r of previous) addCounts(counts, r.counts);
    // One entry per id: a file that repeats an id gives its first line.
    const seen = new Set<string>();
    const all = this.options.problems.filter((p) => !seen.has(p.id) && (seen.add(p.id), true));
    const todo = all.filter((p) => !doneIds.has(p.id));
    const total = all.length;
    let done = all.length - todo.length;
    const results: QuestionResult[] = [];

    const onAbort = () => this.stop(`interrupted: ${reasonText(this.env.signal?.reason) || 'aborted'}`, this.env.signal?.reason);
    if (this.env.signal?.aborted) onAbort();
    this.env.signal?.addEventListener('abort', onAbort, { once: true });
    let writing = Promise.resolve();
    let next = 0;
    const worker = async () => {
      while (this.stopped === undefined && next < todo.length) {
        const problem = todo[next++];
        let r: QuestionResult;
        try {
          r = await this.question(problem);
        } catch (e) {
          this.stop(describeFailure(e), e);
          return;
        }
        if (this.stopped !== undefined) return;
        // Questions are handed over one at a time, in the order they finish.
        writing = writing.then(async () => {
          if (this.stopped !== undefined) return;
          try {
            await this.env.onQuestion?.(r);
          } catch (e) {
            this.stop(`writing the results failed: ${reasonText(e)}`, e);
            return;
          }
          results.push(r);
          addCounts(counts, r.counts);
          done++;
          this.env.onProgress?.({ done, total, doneNow: results.length, counts, elapsedMs: Date.now() - started });
        });
        await writing;
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.s.concurrency, Math.max(1, todo.length)) }, worker));
      await writing;
    } finally {
      this.env.signal?.removeEventListener('abort', onAbort);
    }
    const report = makeReport(
      { actor: this.env.actor.label, critic: this.env.critic.label, seed: this.options.seed, settings: this.s, total, resumed: previous.length, elapsedMs: Date.now() - started, ...(this.stopped !== undefined && { stopped: this.stopped }), ...(this.options.input && { input: this.options.input }) },
      counts,
    );
    return { report, results };
  }

  /** Ends the run: questions in flight are dropped (a resumed run does them again), what was handed over stays. */
  private stop(why: string, cause?: unknown): void {
    if (this.stopped !== undefined) return;
    this.stopped = why;
    this.control.abort(cause ?? new Error(why));
  }

  private seedOf(...parts: (string | number)[]): number {
    return hashString([this.options.seed, ...parts].join('|')) % 2 ** 31;
  }

  private async question(p: TirgenProblem): Promise<QuestionResult> {
    const s = this.s;
    const counts = emptyCounts();
    counts.questions = 1;
    if (p.answer.trim() === '') {
      counts.skipped.noAnswer = 1;
      return { id: p.id, counts, samples: [], skipped: 'no-answer' };
    }
    if (s.dropSolvedWithoutTools && (await this.solvedWithoutTools(p))) {
      counts.skipped.solvedWithoutTools = 1;
      return { id: p.id, counts, samples: [], skipped: 'solved-without-tools' };
    }
    const attempts = await Promise.all(Array.from({ length: s.attempts }, (_, a) => this.attempt(p, a, counts)));
    counts.attempts = attempts.length;
    const passing: Attempt[] = [];
    for (const a of attempts) {
      if (!a.ok) {
        counts.failures[a.failure!]++;
        continue;
      }
      counts.finished++;
      const failed = await failedFilters({ response: a.response, reference: p.answer, executions: a.executions }, s, this.env.checker);
      for (const f of failed) counts.filters[f]++;
      if (failed.length > 0) counts.droppedBy[failed[0]]++;
      else passing.push(a);
    }
    counts.passed = passing.length;
    // THOR keeps one random passing sample per question, then down-samples one-call samples: both seeded by the question.
    const rng = createRng(this.seedOf(p.id, 'select'));
    let chosen = s.onePerQuestion && passing.length > 0 ? [rng.fork('pick').pick(passing)] : passing;
    counts.droppedBy.onePerQuestion = passing.length - chosen.length;
    const coin = rng.fork('one-call');
    chosen = chosen.filter((a) => {
      const keep = a.executions.length !== 1 || coin.next() < s.oneCallKeep;
      if (!keep) counts.droppedBy.oneCallHalving++;
      return keep;
    });
    counts.kept = chosen.length;
    counts.questionsKept = chosen.length > 0 ? 1 : 0;
    for (const a of chosen) counts.calls[String(a.executions.length)] = (counts.calls[String(a.executions.length)] ?? 0) + 1;
    return {
      id: p.id,
      counts,
      samples: chosen.map((a) => ({ id: p.id, question: p.question, reference: p.answer, response: a.response, calls: a.executions.length, attempt: a.attempt, steps: a.steps })),
    };
  }

  private actorPrompt(p: TirgenProblem): ChatMessage[] {
    return [{ role: 'user', content: tirPrompt(p.question, this.s.actorInstruction) }];
  }

  /** The paper's extra filter: does a pure chain-of-thought answer from the actor already solve it? */
  private async solvedWithoutTools(p: TirgenProblem): Promise<boolean> {
    const s = this.s;
    let out;
    try {
      out = await this.env.actor.complete(this.actorPrompt(p), { maxTokens: s.maxResponseTokens, temperature: s.temperature, topK: s.topK, topP: s.topP, n: s.cotSamples, seed: this.seedOf(p.id, 'cot') }, { signal: this.signal });
    } catch (e) {
      if (isContextError(e)) return false;
      throw e;
    }
    for (const c of out.choices) if (await answerVerified(c.text, p.answer, this.env.checker)) return true;
    return false;
  }

  private emit(e: StepEvent): void {
    this.env.onStep?.(e);
  }

  private async attempt(p: TirgenProblem, attempt: number, counts: TirgenCounts): Promise<Attempt> {
    const s = this.s;
    const prompt = this.actorPrompt(p);
    const seed = this.seedOf(p.id, attempt);
    let response = '';
    // Tokens of the answer as it stands, as THOR's code measures its revised text: an unchanged
    // step's tokens, or what a rewrite kept (docs/tirgen.md#the-actors-steps).
    let used = 0;
    let steps = 0;
    const executions: ExecutionRecord[] = [];
    const end = (failure?: FailureReason): Attempt => ({ ok: failure === undefined, ...(failure && { failure }), response, executions, steps, attempt });
    const base = { questionId: p.id, attempt };
    for (let k = 0; ; k++) {
      this.signal.throwIfAborted();
      const room = s.maxResponseTokens - used;
      if (room <= 0) return end('actor-budget');
      let step: ActorStep;
      try {
        step = await this.actorStep(prompt, response, Math.min(s.stepTokens, room), seed * 7 + k);
      } catch (e) {
        if (isContextError(e)) return end('actor-budget');
        throw e;
      }
      if (step.kind === 'no-step-end') {
        this.emit({ ...base, step: k, actor: step.text, verdict: 'no-step-end', reason: 'the window has no line end to cut at', executions: [], appended: '', final: false });
        return end('actor-no-step-end');
      }
      const text = step.text;
      if (text.trim() === '') {
        if (step.ended) return end();
        used += step.tokens;
        response += text;
        continue;
      }
      steps++;
      counts.steps.total++;
      const hasCode = codeBlocks(text).length > 0;
      // A reasoning model's answer after its thinking goes on without the critic, as in THOR's code;
      // the critic sees only the thinking part of a step that ends it.
      const thinkEnd = text.indexOf('</think>');
      const thinking = thinkEnd >= 0 ? text.slice(0, thinkEnd) : text;
      const skip = hasCode ? undefined : response.includes('</think>') || thinking.trim() === '' ? 'after-thinking' : step.tokens < s.criticMinTokens ? 'short' : undefined;
      const verdict: CriticVerdict = skip ? { kind: 'unchanged' } : await this.env.critic.revise(thinking, { signal: this.signal, seed: seed * 11 + k });
      this.signal.throwIfAborted();
      if (verdict.kind === 'invalid') {
        counts.steps.invalid++;
        counts.criticInvalid[verdict.reason]++;
        this.emit({ ...base, step: k, actor: text, verdict: 'invalid', ...(verdict.reply !== undefined && { critic: verdict.reply }), reason: verdict.reason + (verdict.detail ? `: ${verdict.detail}` : ''), executions: [], appended: '', final: false });
        return end('critic-invalid');
      }
      if (verdict.kind === 'unchanged' && !hasCode) {
        if (skip === 'short') counts.steps.short++;
        else if (skip === 'after-thinking') counts.steps.afterThinking++;
        else counts.steps.unchanged++;
        used += step.tokens;
        response += text;
        this.emit({ ...base, step: k, actor: text, verdict: skip ?? 'unchanged', executions: [], appended: text, final: step.ended });
        if (step.ended) return end();
        continue;
      }
      // A rewrite, or a step that is already code: its blocks run, and the step becomes reasoning, code and real output.
      const rewrite = verdict.kind === 'rewrite' ? verdict.text : text;
      const ran = await this.runRewrite(rewrite, response.length, executions.length);
      counts.executions.total += ran.executions.length;
      counts.executions.failed += ran.executions.filter((x) => !x.succeeded).length;
      counts.predictions.checked += ran.checked;
      counts.predictions.wrong += ran.wrong;
      if (ran.roundLimit) counts.roundLimit++;
      const shown = ran.executions.map((x) => ({ code: x.code, status: x.status, observation: x.observation, succeeded: x.succeeded }));
      if (ran.failed) {
        counts.steps.codeFailed++;
        this.emit({ ...base, step: k, actor: text, verdict: 'code-failed', critic: rewrite, reason: `${ran.failed.status}: ${ran.failed.observation}`, executions: shown, appended: '', final: false });
        return end('code-failed');
      }
      if (ran.executions.length === 0) {
        counts.steps.invalid++;
        counts.criticInvalid['no-code']++;
        this.emit({ ...base, step: k, actor: text, verdict: 'invalid', critic: rewrite, reason: 'no-code', executions: [], appended: '', final: false });
        return end('critic-invalid');
      }
      counts.steps.rewritten++;
      response += ran.text;
      executions.push(...ran.executions);
      // The prose kept at the step's own rate of tokens a character; code and output the lab wrote at
      // 4 characters a token, as in text rollouts. The rest of the step, dropped, does not count.
      used += Math.ceil((step.tokens * (ran.text.length - ran.inserted)) / text.length) + Math.ceil(ran.inserted / CHARS_PER_TOKEN);
      this.emit({ ...base, step: k, actor: text, verdict: 'rewrite', critic: rewrite, executions: shown, appended: ran.text, final: false });
    }
  }

  /**
   * One actor step: text up to `maxTokens` tokens, paused at every fence. A closed ```python block
   * ends the step there; the actor's own ```output block is cut off (tool output is never the
   * actor's to write); a full window is cut back to its last line end, and never inside a block.
   */
  private async actorStep(prompt: ChatMessage[], response: string, maxTokens: number, seed: number): Promise<ActorStep> {
    const s = this.s;
    let text = '';
    let tokens = 0;
    const cut = (): ActorStep => {
      let head = text.slice(0, text.lastIndexOf('\n') + 1);
      const open = openBlockAtEnd(head);
      if (open) head = head.slice(0, open.start);
      return head.trim() === '' ? { kind: 'no-step-end', text, ended: false, tokens } : { kind: 'step', text: head, ended: false, tokens };
    };
    for (let call = 0; ; call++) {
      const left = maxTokens - tokens;
      if (left <= 0) return cut();
      const { prompt: p, continueFinal } = promptWith(prompt, response + text);
      const out = await this.env.actor.complete(p, { maxTokens: left, temperature: s.temperature, topK: s.topK, topP: s.topP, seed: seed * 31 + call, stop: [FENCE], continueFinal }, { signal: this.signal });
      const choice = out.choices[0] ?? { text: '', finishReason: 'stop' as const };
      tokens += Math.max(1, out.usage?.completionTokens ?? Math.ceil(choice.text.length / CHARS_PER_TOKEN));
      text += choice.text;
      const output = splitFences(text).find((x) => x.kind === 'output');
      if (output) {
        text = text.slice(0, output.start);
        return text.trim() === '' ? { kind: 'no-step-end', text, ended: false, tokens } : { kind: 'step', text, ended: false, tokens };
      }
      if (choice.finishReason === 'length') return cut();
      const atFence = choice.stopString !== undefined ? choice.stopString === FENCE : guessFence(response + text);
      if (!atFence) return { kind: 'step', text, ended: true, tokens };
      text += FENCE;
      const last = splitFences(text).at(-1);
      if (last?.kind === 'code' && last.closed && last.end === text.length) return { kind: 'step', text, ended: false, tokens };
    }
  }

  /**
   * Runs the blocks of a rewrite in order, each in a fresh namespace: the text becomes the prose
   * before each block, the block, and its real ```output. It stops at the first failure (the attempt
   * is abandoned), after `maxRounds` blocks, or after a block whose expected output was wrong; prose
   * after the last block run is dropped (the actor writes it again).
   */
  private async runRewrite(rewrite: string, offset: number, round0: number) {
    const s = this.s;
    const pieces = splitFences(rewrite);
    let text = '';
    let prose = '';
    const executions: ExecutionRecord[] = [];
    let failed: ExecutionRecord | undefined;
    let checked = 0;
    let wrong = 0;
    let roundLimit = false;
    let inserted = 0;
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (piece.kind === 'text') {
        prose += piece.body;
        continue;
      }
      // An expected output with no block just before it says nothing.
      if (piece.kind === 'output') continue;
      if (!piece.closed) break;
      if (executions.length >= s.maxRounds) {
        roundLimit = true;
        break;
      }
      const lead = prose === '' || prose.endsWith('\n') ? prose : `${prose}\n`;
      const before = text + lead;
      const block = `${before === '' || before.endsWith('\n') ? '' : '\n'}${CODE_OPEN}${piece.body}\n${FENCE_CLOSE}`;
      const start = offset + before.length + (block.startsWith('\n') ? 1 : 0);
      const result = await this.env.executor.run(piece.body, { timeoutMs: s.toolTimeoutMs });
      const record = executionRecord(round0 + executions.length, piece.body, result, undefined, start, start + block.trimStart().length);
      executions.push(record);
      if (!record.succeeded) {
        failed = record;
        break;
      }
      const forced = observationBlock(record.observation, false);
      text = before + block + forced;
      inserted += block.length + forced.length;
      prose = '';
      // The critic's expected output, if it wrote one right after the block.
      let j = i + 1;
      while (j < pieces.length && pieces[j].kind === 'text' && pieces[j].body.trim() === '') j++;
      if (pieces[j]?.kind === 'output') {
        checked++;
        i = j;
        if (!sameOutput(pieces[j].body, record.observation)) {
          wrong++;
          break;
        }
      }
    }
    return { text, executions, failed, checked, wrong, roundLimit, inserted };
  }
}

function reasonText(e: unknown): string {
  return e instanceof Error ? e.message : e === undefined ? '' : String(e);
}

/** Why a question could not be finished: the actor's or the critic's engine, or the sandbox. */
function describeFailure(e: unknown): string {
  if (e instanceof LabError) return e.message;
  return `failed: ${reasonText(e)}`;
}
