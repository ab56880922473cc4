/**
 * A trajectory while it is being written: the rollout loop's streaming callbacks (tokens, code
 * executions, self-correction rewinds) folded into a growing row, and that row shown as a
 * TrajectoryRecord, so the Inference panel draws a half-written answer exactly as a finished one.
 */
import type { DiscardedAttempt, ExecutionRecord, Segment, TrajectoryRecord } from './types';
import { openBlockAtEnd } from './format';
import { tokenIndexAtChar } from './rollout';

export interface LiveRow {
  /** Response tokens so far, sampled and forced. */
  tokens: number[];
  sampled: boolean[];
  executions: ExecutionRecord[];
  discarded: DiscardedAttempt[];
}

export function emptyLiveRow(): LiveRow {
  return { tokens: [], sampled: [], executions: [], discarded: [] };
}

/** A token joined the response. */
export function addToken(row: LiveRow, token: number, sampled: boolean): void {
  row.tokens.push(token);
  row.sampled.push(sampled);
}

/** A code block ran; a discarded attempt cuts the response back to where generation was rewound. */
export function addExecution(row: LiveRow, execution: ExecutionRecord, discarded?: DiscardedAttempt): void {
  if (!discarded) {
    row.executions.push(execution);
    return;
  }
  row.tokens.length = discarded.rewindTo;
  row.sampled.length = discarded.rewindTo;
  row.discarded.push(discarded);
}

/** Token spans [start, end) of forced runs (tool output). */
function forcedRuns(sampled: readonly boolean[]): { start: number; end: number }[] {
  const runs: { start: number; end: number }[] = [];
  for (let i = 0; i < sampled.length; i++) {
    if (sampled[i]) continue;
    const start = i;
    while (i < sampled.length && !sampled[i]) i++;
    runs.push({ start, end: i });
  }
  return runs;
}

export interface LiveHeader {
  id: string;
  question: string;
  reference: string;
  promptTokens: number[];
}

/**
 * The row as a record: code spans from the executions, output spans from forced tokens, text in
 * between; a code block still being written (opened, not closed) is shown as code already.
 */
export function liveRecord(header: LiveHeader, row: LiveRow, decode: (ids: number[]) => string): TrajectoryRecord {
  const spans: { kind: Segment['kind']; start: number; end: number }[] = [
    ...row.executions.map((e) => ({ kind: 'code' as const, start: e.codeTokenStart, end: e.codeTokenEnd })),
    ...forcedRuns(row.sampled).map((r) => ({ kind: 'output' as const, ...r })),
  ].sort((a, b) => a.start - b.start);
  const segments: Segment[] = [];
  const push = (kind: Segment['kind'], start: number, end: number) => {
    if (end > start) segments.push({ kind, text: decode(row.tokens.slice(start, end)), tokenStart: start, tokenEnd: end });
  };
  let at = 0;
  for (const sp of spans) {
    push('text', at, sp.start);
    push(sp.kind, sp.start, sp.end);
    at = Math.max(at, sp.end);
  }
  const tail = row.tokens.slice(at);
  const open = openBlockAtEnd(decode(tail));
  if (open?.kind === 'code') {
    const cut = at + tokenIndexAtChar(tail, open.start, decode);
    push('text', at, cut);
    push('code', cut, row.tokens.length);
  } else {
    push('text', at, row.tokens.length);
  }
  const mask = row.sampled.map((s) => (s ? 1 : 0));
  return {
    id: header.id,
    groupId: header.id,
    level: 'trajectory',
    problemId: header.id,
    question: header.question,
    reference: header.reference,
    promptTokens: header.promptTokens,
    tokens: [...row.tokens],
    sampledMask: mask,
    lossMask: [...mask],
    logprobs: row.tokens.map(() => 0),
    segments,
    executions: [...row.executions],
    finalAnswer: null,
    correct: false,
    reward: 0,
    truncated: false,
    finishReason: 'stop',
    discarded: [...row.discarded],
  };
}
