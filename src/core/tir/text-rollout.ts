/**
 * TIR rollouts through any TextModel, text in and text out (docs/engines.md): the model writes until a
 * ```python block closes (every fence "```" pauses it), the lab runs the block in its own sandbox and
 * appends the ```output block, and the model goes on from the longer prompt, until it ends, runs out
 * of budget or of tool calls. This is how an OpenAI-compatible endpoint is evaluated: the server only
 * ever sees text, and the code runs here. THOR's self-correction drops a failed block (and the text
 * just before it) and asks again.
 *
 * Records have no token ids (the endpoint's tokenizer is not ours): `tokens` is empty and segment
 * spans are character spans; `generatedTokens` holds the server's own count of generated tokens.
 */
import type { Executor } from '../sandbox/types';
import { isContextError } from '../errors';
import type { Prompt, TextModel } from '../llm/types';
import { nextClosedCode, observationBlock, openBlockAtEnd, splitFences } from './format';
import { executionRecord, type RolloutSettings } from './rollout';
import type { DiscardedAttempt, ExecutionRecord, Segment, TrajectoryRecord } from './types';

/** Every fence pauses the model, as in local rollouts: the lab then decides whether a python block closed. */
export const CODE_STOP = '```';
/** Characters per token where a budget in tokens must be spent on text (tool output, rewinds). */
const CHARS_PER_TOKEN = 4;

export interface TextRolloutRequest {
  id: string;
  groupId: string;
  problemId: string;
  question: string;
  reference: string;
  /** The prompt: raw text, or chat messages whose assistant turn the rollout continues. */
  prompt: Prompt;
  /** The first words of the answer, given to the model: the response starts with them. */
  prefix?: string;
}

export interface TextRolloutEnv {
  executor: Executor;
  signal?: AbortSignal;
  /** A row finished (records finished so far, total). */
  onProgress?: (finished: number, total: number) => void;
  /** A row finished: its record (ungraded). */
  onRecord?: (record: TrajectoryRecord, index: number) => void;
  /** Streaming (one rollout): the whole response so far, model text and tool output, as it grows. */
  onText?: (response: string) => void;
}

/** Rolls every request out concurrently; the model's own cap bounds what is in flight. */
export async function textRollouts(model: TextModel, requests: TextRolloutRequest[], s: RolloutSettings, env: TextRolloutEnv): Promise<TrajectoryRecord[]> {
  let finished = 0;
  return Promise.all(
    requests.map(async (req, i) => {
      const record = await textRollout(model, req, { ...s, seed: s.seed + i }, env);
      env.onRecord?.(record, i);
      env.onProgress?.(++finished, requests.length);
      return record;
    }),
  );
}

/** The prompt with the response so far: appended to raw text, or as the assistant turn being continued. */
export function promptWith(prompt: Prompt, response: string): { prompt: Prompt; continueFinal: boolean } {
  if (typeof prompt === 'string') return { prompt: prompt + response, continueFinal: false };
  if (response === '') return { prompt, continueFinal: false };
  return { prompt: [...prompt, { role: 'assistant', content: response }], continueFinal: true };
}

export async function textRollout(model: TextModel, req: TextRolloutRequest, s: RolloutSettings, env: TextRolloutEnv): Promise<TrajectoryRecord> {
  const usesTools = s.maxToolCalls > 0;
  let response = req.prefix ?? '';
  let generated = 0;
  let forcedChars = 0;
  let calls = 0;
  let retries = 0;
  /** Characters of the response a rewind may not go below: the end of the last tool output. */
  let floor = 0;
  let scanFrom = 0;
  let truncated = false;
  const executions: ExecutionRecord[] = [];
  const outputs: { start: number; end: number }[] = [];
  const codeSpans: { start: number; end: number }[] = [];
  const discarded: DiscardedAttempt[] = [];
  /** The most new tokens the endpoint accepts with this prompt, once it has said so. */
  let cap = Infinity;

  try {
    for (let round = 0; ; round++) {
      env.signal?.throwIfAborted();
      const budget = Math.min(cap, s.maxResponseTokens - generated - Math.ceil(forcedChars / CHARS_PER_TOKEN));
      if (budget <= 0) {
        truncated = true;
        break;
      }
      const { prompt, continueFinal } = promptWith(req.prompt, response);
      let out;
      let streamed = '';
      try {
        out = await model.complete(
          prompt,
          { maxTokens: budget, temperature: s.temperature, topP: s.topP, topK: s.topK, seed: s.seed * 101 + round, stop: usesTools ? [CODE_STOP] : [], continueFinal },
          {
            signal: env.signal,
            ...(env.onText && {
              onText: (_choice: number, delta: string) => {
                streamed += delta;
                env.onText!(response + streamed);
              },
            }),
          },
        );
      } catch (e) {
        if (isContextError(e)) {
          // Prompt and max_tokens together exceed the context (vLLM refuses that even when the prompt
          // fits): ask again for what fits, as the error says or by halves. When nothing fits, the
          // rollout ran out of room, as a local one ends at its last position.
          const room = roomInContext(e.message);
          const next = room ?? Math.floor(budget / 2);
          if (next >= 1 && next < budget) {
            cap = next;
            continue;
          }
          truncated = true;
          break;
        }
        throw e;
      }
      const choice = out.choices[0];
      // Every round costs at least a token, so a model that keeps stopping at once still ends.
      generated += Math.max(1, out.usage?.completionTokens ?? Math.ceil(choice.text.length / CHARS_PER_TOKEN));
      response += choice.text;
      if (choice.finishReason === 'length') {
        truncated = true;
        break;
      }
      if (!usesTools) break;
      // Stopped at a fence, or ended by the model? Engines that name the stop string say so (vLLM,
      // SGLang, the lab's server); for the others: a fence that would close an open python block, or
      // one where a line starts and no answer has been given since the last tool output.
      const atFence = choice.stopString !== undefined ? choice.stopString === CODE_STOP : guessFence(response, scanFrom);
      if (atFence) response += CODE_STOP;
      const block = atFence ? nextClosedCode(response, scanFrom) : undefined;
      if (!block) {
        // An opening fence (or one of another block) goes on; the model's own end ends the rollout.
        if (atFence) continue;
        break;
      }
      scanFrom = block.end;
      if (calls >= s.maxToolCalls) continue; // C spent: further code is not executed, the model just goes on.
      calls++;
      const r = await env.executor.run(block.body, { timeoutMs: s.toolTimeoutMs, ...(s.statefulPython && { session: req.id }) });
      const execution = executionRecord(executions.length, block.body, r, s.observation, block.start, block.end);
      const sc = s.selfCorrection;
      if (sc && !execution.succeeded && retries < sc.maxRetries) {
        retries++;
        calls--;
        const rewindTo = Math.max(floor, block.start - sc.backtrackTokens * CHARS_PER_TOKEN);
        discarded.push({ rewindTo, tokens: [], text: response.slice(rewindTo), execution, retry: retries });
        response = response.slice(0, rewindTo);
        scanFrom = Math.min(scanFrom, response.length);
        continue;
      }
      retries = 0;
      executions.push(execution);
      codeSpans.push({ start: block.start, end: block.end });
      const forced = observationBlock(execution.observation, response.endsWith('\n'));
      outputs.push({ start: response.length, end: response.length + forced.length });
      forcedChars += forced.length;
      response += forced;
      env.onText?.(response);
      floor = scanFrom = response.length;
      // A new prompt: the endpoint's limit is asked anew.
      cap = Infinity;
    }
  } finally {
    // A stateful namespace ends with its rollout, finished, failed or stopped.
    if (s.statefulPython) await env.executor.endSession(req.id).catch(() => undefined);
  }

  const spans = [...codeSpans.map((c) => ({ kind: 'code' as const, ...c })), ...outputs.map((o) => ({ kind: 'output' as const, ...o }))].sort((a, b) => a.start - b.start);
  const segments: Segment[] = [];
  let at = 0;
  const push = (kind: Segment['kind'], start: number, end: number) => {
    if (end > start) segments.push({ kind, text: response.slice(start, end), tokenStart: start, tokenEnd: end });
  };
  for (const sp of spans) {
    push('text', at, sp.start);
    push(sp.kind, sp.start, sp.end);
    at = Math.max(at, sp.end);
  }
  push('text', at, response.length);
  return {
    id: req.id,
    groupId: req.groupId,
    level: 'trajectory',
    problemId: req.problemId,
    question: req.question,
    reference: req.reference,
    promptTokens: [],
    tokens: [],
    sampledMask: [],
    lossMask: [],
    logprobs: [],
    segments,
    executions,
    finalAnswer: null,
    correct: false,
    reward: 0,
    truncated,
    finishReason: truncated ? 'length' : 'stop',
    discarded,
    generatedTokens: generated,
    spans: 'chars',
  };
}

/**
 * For engines that do not say which stop ended a choice: was it the fence? Yes when putting it back
 * closes the python block the text ends in, or when the text since `scanFrom` stopped at the start of
 * a line with no answer given yet.
 */
export function guessFence(response: string, scanFrom = 0): boolean {
  if (openBlockAtEnd(response)?.kind === 'code') return true;
  const since = response.slice(scanFrom);
  return (since === '' || since.endsWith('\n')) && !since.includes('\\boxed');
}

/** A text rollout still being written, for display: its pieces as the fence parser reads them. */
export function liveTextRecord(h: Pick<TextRolloutRequest, 'id' | 'question' | 'reference'>, response: string): TrajectoryRecord {
  return {
    id: h.id,
    groupId: h.id,
    level: 'trajectory',
    problemId: h.id,
    question: h.question,
    reference: h.reference,
    promptTokens: [],
    tokens: [],
    sampledMask: [],
    lossMask: [],
    logprobs: [],
    segments: splitFences(response).map((p) => ({ kind: p.kind, text: response.slice(p.start, p.end), tokenStart: p.start, tokenEnd: p.end })),
    executions: [],
    finalAnswer: null,
    correct: false,
    reward: 0,
    truncated: false,
    finishReason: 'stop',
    discarded: [],
    spans: 'chars',
  };
}

/**
 * The new tokens a context error leaves room for, where the message says: vLLM's "maximum context
 * length is C tokens ... (P in the messages|prompt ...)", the lab server's "expected fewer than C
 * tokens, found P tokens". undefined when the message gives no numbers.
 */
export function roomInContext(message: string): number | undefined {
  const vllm = /maximum context length is (\d+)[\s\S]*?\((\d+) in the (?:messages|prompt|input)/i.exec(message);
  if (vllm) return Number(vllm[1]) - Number(vllm[2]);
  const lab = /expected fewer than (\d+) tokens, found (\d+) tokens/.exec(message);
  if (lab) return Number(lab[1]) - 1 - Number(lab[2]);
  return undefined;
}
