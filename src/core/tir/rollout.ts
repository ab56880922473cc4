/**
 * TIR rollouts (docs/tir-format.md): rows decode until a ```python block closes, the block runs in
 * the sandbox while the other rows keep decoding, and its observation is appended as forced tokens,
 * masked from every loss, before the row resumes. Also the two variants built on the same loop:
 * THOR's self-correction at inference (docs/self-correction.md: a failed step is rewound and
 * regenerated) and THOR's step-level continuations (docs/step-level.md: one tool call, stop right
 * after executing).
 */
import { nextMacrotask } from '../tick';
import type { Transformer } from '../model/transformer';
import type { Tokenizer } from '../tokenizer/types';
import type { Executor, RunResult } from '../sandbox/types';
import { codeSucceeded, lastTracebackLine, toObservation, type ObservationOptions } from '../sandbox/observation';
import { Generation, type RowResult } from '../engine/generation';
import type { DiscardedAttempt, ExecutionRecord, Segment, TrajectoryRecord } from './types';
import { FENCE_CLOSE, nextClosedCode, observationBlock } from './format';

export interface RolloutSettings {
  /** C: code executions per trajectory; further code is left unexecuted. 0 = no tools. */
  maxToolCalls: number;
  /** Response budget: sampled and forced tokens. */
  maxResponseTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  /** CTRL's repetition penalty (SamplingParams); absent: none. A single answer takes a model's own (docs/models.md#sampling-defaults). */
  repetitionPenalty?: number;
  seed: number;
  toolTimeoutMs: number;
  observation?: Partial<ObservationOptions>;
  /** One Python namespace per trajectory instead of a fresh one per call. */
  statefulPython?: boolean;
  /** Generation's step cost (GenerationOptions.stepOverhead); default by backend. */
  stepOverhead?: number;
  /** THOR self-correction: on a failed call, back up and regenerate the step. */
  selfCorrection?: { backtrackTokens: number; maxRetries: number };
  /** THOR step level: end each row right after its first execution (the output is not appended). */
  stopAfterExecution?: boolean;
}

/** One row to roll out: the identity fields its TrajectoryRecord will carry, and its prompt. */
export type RolloutRequest = Pick<TrajectoryRecord, 'id' | 'groupId' | 'level' | 'problemId' | 'question' | 'reference' | 'promptTokens' | 'stepOrigin'>;

export interface RolloutEnv {
  model: Transformer;
  tokenizer: Tokenizer;
  executor: Executor;
  /** Called as rows advance, for progress displays: rows finished so far. */
  onProgress?: (finished: number, total: number) => void;
  /** Streaming: a token joined a row's response (sampled by the policy, or forced tool output). */
  onToken?: (row: number, token: number, sampled: boolean) => void;
  /** Streaming: a code block ran; with `discarded`, self-correction threw the attempt away and the row now ends at discarded.rewindTo. */
  onExecution?: (row: number, execution: ExecutionRecord, discarded?: DiscardedAttempt) => void;
  /** Ends the loop between decoding steps (it throws the signal's reason); the model is left untouched. */
  signal?: AbortSignal;
}

/** Token timing of a rollout batch, for per-phase metrics. */
export interface RolloutTiming {
  generationTokens: number;
  /** Sum over executions of their sandbox time (executions overlap decoding). */
  pythonMs: number;
  wallMs: number;
}

interface RowState {
  calls: number;
  /** Response text before this character index has been scanned for closed code blocks. */
  scanFrom: number;
  /** Response-token index a rewind may not go below: the end of the last observation. */
  floor: number;
  retries: number;
  executions: ExecutionRecord[];
  outputs: { start: number; end: number }[];
  discarded: DiscardedAttempt[];
}

interface Finished {
  row: number;
  execution: ExecutionRecord;
}

/**
 * Index of the token that holds character `charPos` of the decoded text: the largest i such that
 * tokens[0..i) decode to at most charPos characters. Binary search over prefix decodes.
 */
export function tokenIndexAtChar(tokens: number[], charPos: number, decode: (ids: number[]) => string): number {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (decode(tokens.slice(0, mid)).length <= charPos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The record of one executed block: the sandbox's result, its observation text, and where the block sits in the response. */
export function executionRecord(round: number, code: string, r: RunResult, observation: Partial<ObservationOptions> | undefined, codeTokenStart: number, codeTokenEnd: number): ExecutionRecord {
  return {
    round,
    code,
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    errorLine: r.status === 'error' ? lastTracebackLine(r.stderr) : undefined,
    durationMs: r.durationMs,
    truncated: r.truncated,
    observation: toObservation(r, observation),
    succeeded: codeSucceeded(r),
    codeTokenStart,
    codeTokenEnd,
  };
}

/** Runs a batch of TIR rollouts to the end. Rewards are not assigned here (see grading in rl/). */
export async function runRollouts(env: RolloutEnv, requests: RolloutRequest[], s: RolloutSettings): Promise<{ records: TrajectoryRecord[]; timing: RolloutTiming }> {
  const { model, tokenizer, executor } = env;
  const started = Date.now();
  const decode = (ids: number[]) => tokenizer.decode(ids);
  const usesTools = s.maxToolCalls > 0 || s.stopAfterExecution === true;
  const gen = new Generation(
    model,
    requests.map((r) => ({ prompt: r.promptTokens })),
    {
      maxNewTokens: s.maxResponseTokens,
      temperature: s.temperature,
      topP: s.topP,
      topK: s.topK,
      ...(s.repetitionPenalty !== undefined && { repetitionPenalty: s.repetitionPenalty }),
      seed: s.seed,
      decode: tokenizer,
      onStop: 'pause',
      // Every fence pauses the row; the pause handler decides whether a python block just closed.
      stop: usesTools ? [FENCE_CLOSE] : [],
      stepOverhead: s.stepOverhead,
    },
  );
  const states: RowState[] = requests.map(() => ({ calls: 0, scanFrom: 0, floor: 0, retries: 0, executions: [], outputs: [], discarded: [] }));
  const ready: Finished[] = [];
  const running = new Set<Promise<void>>();
  let pythonMs = 0;
  let generated = 0;

  const responseTokens = (row: number) => gen.result(row).tokens;

  const onPause = (row: number) => {
    const st = states[row];
    const block = nextClosedCode(gen.responseText(row), st.scanFrom);
    if (!block) return gen.resume(row); // an opening fence or a stray one: keep going
    st.scanFrom = block.end;
    const budgetLeft = s.stopAfterExecution ? st.calls === 0 : st.calls < s.maxToolCalls;
    if (!budgetLeft) return gen.resume(row); // C spent: further code is not executed
    st.calls++;
    const tokens = responseTokens(row);
    const code = block.body;
    const codeTokenStart = tokenIndexAtChar(tokens, block.start, decode);
    const codeTokenEnd = tokens.length;
    const session = s.statefulPython ? requests[row].id : undefined;
    const job = executor
      .run(code, { timeoutMs: s.toolTimeoutMs, session })
      .then((r) => {
        pythonMs += r.durationMs;
        ready.push({
          row,
          execution: executionRecord(st.executions.length, code, r, s.observation, codeTokenStart, codeTokenEnd),
        });
      })
      .finally(() => running.delete(job));
    running.add(job);
  };

  const onExecuted = ({ row, execution }: Finished) => {
    const st = states[row];
    if (s.stopAfterExecution) {
      st.executions.push(execution);
      return gen.finish(row, 'stop');
    }
    const sc = s.selfCorrection;
    if (sc && !execution.succeeded && st.retries < sc.maxRetries) {
      // Drop the failed code and its error (the model never sees the error) and regenerate.
      st.retries++;
      st.calls--;
      const tokens = responseTokens(row);
      // Back up L_suf tokens before the failed fence, but never into an earlier tool output: what
      // the interpreter printed stays, as the step level's prefixes keep it.
      const rewindTo = Math.max(st.floor, execution.codeTokenStart - sc.backtrackTokens);
      const kept = tokens.slice(rewindTo);
      const attempt = { rewindTo, tokens: kept, text: decode(kept), execution, retry: st.retries };
      st.discarded.push(attempt);
      gen.rewind(row, rewindTo);
      env.onExecution?.(row, execution, attempt);
      st.scanFrom = decode(tokens.slice(0, rewindTo)).length;
      return gen.resume(row);
    }
    // This step is settled (its code ran, or its retries are spent): the next failing step gets
    // its own N_corr retries.
    st.retries = 0;
    st.executions.push(execution);
    env.onExecution?.(row, execution);
    const before = gen.responseText(row);
    const forced = tokenizer.encode(observationBlock(execution.observation, before.endsWith('\n')));
    const start = responseTokens(row).length;
    gen.force(row, forced);
    const end = responseTokens(row).length;
    if (env.onToken) for (const t of responseTokens(row).slice(start, end)) env.onToken(row, t, false);
    st.outputs.push({ start, end });
    st.floor = end;
    st.scanFrom = gen.responseText(row).length;
    gen.resume(row);
  };

  try {
    while (!gen.done) {
      env.signal?.throwIfAborted();
      while (ready.length > 0) onExecuted(ready.shift()!);
      if (gen.done) break;
      if (gen.active > 0) {
        // A decode step on wasm awaits only microtasks; a finished tool call arrives as a message
        // (a macrotask), so let it in between steps or its row would wait for every other row.
        if (running.size > 0) await nextMacrotask();
        for (const e of await gen.step()) {
          if (e.kind === 'token') {
            generated++;
            env.onToken?.(e.row, e.token, true);
          } else if (e.kind === 'pause') onPause(e.row);
          else env.onProgress?.(countDone(gen), requests.length);
        }
      } else if (running.size > 0) {
        await Promise.race(running);
      } else {
        // Every unfinished row is paused with nothing running: cannot happen unless a handler threw.
        throw new Error('rollout stalled: rows paused with no tool call running');
      }
    }
    await Promise.all(running);
    const records = requests.map((req, row) => buildRecord(req, gen.result(row), states[row], decode));
    return { records, timing: { generationTokens: generated, pythonMs, wallMs: Date.now() - started } };
  } finally {
    gen.dispose();
    if (s.statefulPython) await Promise.all(requests.map((r) => executor.endSession(r.id)));
  }
}

function countDone(gen: Generation): number {
  let n = 0;
  for (let i = 0; i < gen.size; i++) if (gen.status(i) === 'done') n++;
  return n;
}

/** Assembles the record of one row: segments from token spans, the loss mask from the sampled mask. */
function buildRecord(req: RolloutRequest, res: RowResult, st: RowState, decode: (ids: number[]) => string): TrajectoryRecord {
  const spans: { kind: Segment['kind']; start: number; end: number }[] = [];
  for (const e of st.executions) spans.push({ kind: 'code', start: e.codeTokenStart, end: e.codeTokenEnd });
  for (const o of st.outputs) spans.push({ kind: 'output', start: o.start, end: o.end });
  spans.sort((a, b) => a.start - b.start);
  const segments: Segment[] = [];
  let at = 0;
  const push = (kind: Segment['kind'], start: number, end: number) => {
    if (end > start) segments.push({ kind, text: decode(res.tokens.slice(start, end)), tokenStart: start, tokenEnd: end });
  };
  for (const sp of spans) {
    push('text', at, sp.start);
    push(sp.kind, sp.start, sp.end);
    at = Math.max(at, sp.end);
  }
  push('text', at, res.tokens.length);
  const sampledMask = res.sampled.map((b) => (b ? 1 : 0));
  const truncated = res.finishReason === 'length';
  return {
    id: req.id,
    groupId: req.groupId,
    level: req.level,
    problemId: req.problemId,
    question: req.question,
    reference: req.reference,
    promptTokens: res.prompt,
    tokens: res.tokens,
    sampledMask,
    lossMask: [...sampledMask],
    logprobs: res.logprobs,
    segments,
    executions: st.executions,
    finalAnswer: null,
    correct: false,
    reward: 0,
    truncated,
    finishReason: res.finishReason ?? 'stop',
    discarded: st.discarded,
    stepOrigin: req.stepOrigin,
  };
}
