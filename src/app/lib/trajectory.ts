/**
 * What the trajectory viewer shows, computed from a TrajectoryRecord without the DOM: the response
 * as reasoning, code and output cells (each output tied to the execution that produced it), the
 * self-correction attempts placed where generation was rewound, and the tokens classed by mask.
 */
import { blockBody, splitFences, type DiscardedAttempt, type ExecutionRecord, type ExecutionStatus, type TrajectoryRecord } from '../../core/lab/index';

export type ViewCell =
  | { kind: 'text'; text: string }
  | { kind: 'code'; code: string; execution?: ExecutionRecord }
  | { kind: 'output'; text: string; status: ExecutionStatus | 'unknown' }
  | { kind: 'discarded'; attempt: DiscardedAttempt; parts: { kind: 'text' | 'code' | 'output'; text: string }[] };

/** Execution of a code segment: the one whose fence starts at the segment's first token, else the next in order. */
function executionFor(record: TrajectoryRecord, tokenStart: number, order: number): ExecutionRecord | undefined {
  return record.executions.find((e) => e.codeTokenStart === tokenStart) ?? record.executions[order];
}

export function trajectoryCells(record: TrajectoryRecord): ViewCell[] {
  const cells: { at: number; cell: ViewCell }[] = [];
  let codeOrder = 0;
  let lastExecution: ExecutionRecord | undefined;
  for (const seg of record.segments) {
    if (seg.kind === 'text') cells.push({ at: seg.tokenStart, cell: { kind: 'text', text: seg.text } });
    else if (seg.kind === 'code') {
      lastExecution = executionFor(record, seg.tokenStart, codeOrder++);
      cells.push({ at: seg.tokenStart, cell: { kind: 'code', code: blockBody(seg.text), execution: lastExecution } });
    } else {
      cells.push({ at: seg.tokenStart, cell: { kind: 'output', text: blockBody(seg.text), status: lastExecution?.status ?? 'unknown' } });
      lastExecution = undefined;
    }
  }
  // A discarded attempt branched off at token rewindTo: it goes before the first cell starting at or
  // after that token (when the rewind lands inside a cell, right after that cell).
  const placed: ViewCell[] = [];
  const attempts = [...record.discarded].sort((a, b) => a.rewindTo - b.rewindTo);
  let next = 0;
  const placeUpTo = (token: number) => {
    while (next < attempts.length && attempts[next].rewindTo <= token) placed.push(discardedCell(attempts[next++]));
  };
  for (const { at, cell } of cells) {
    placeUpTo(at);
    placed.push(cell);
  }
  placeUpTo(Infinity);
  return placed;
}

function discardedCell(attempt: DiscardedAttempt): ViewCell {
  return { kind: 'discarded', attempt, parts: splitFences(attempt.text).map((p) => ({ kind: p.kind, text: p.body })) };
}

/**
 * How a response token entered training: sampled by the policy and in the loss, forced (a tool
 * observation, never in the loss), or sampled but masked out (e.g. an overlong response).
 */
export type TokenClass = 'trained' | 'forced' | 'masked';

export interface TokenSpan {
  index: number;
  id: number;
  text: string;
  cls: TokenClass;
  logprob: number | undefined;
}

export function tokenClass(sampled: number, inLoss: number): TokenClass {
  if (!sampled) return 'forced';
  return inLoss ? 'trained' : 'masked';
}

/** The response tokens with their class; masks of the wrong length are reported, not guessed at. */
export function tokenSpans(record: TrajectoryRecord, decode: (id: number) => string): { spans: TokenSpan[]; problem?: string } {
  const n = record.tokens.length;
  if (record.sampledMask.length !== n || record.lossMask.length !== n) {
    return { spans: [], problem: `masks do not match the tokens (tokens ${n}, sampledMask ${record.sampledMask.length}, lossMask ${record.lossMask.length})` };
  }
  const spans = record.tokens.map((id, index) => ({
    index,
    id,
    text: decode(id),
    cls: tokenClass(record.sampledMask[index], record.lossMask[index]),
    logprob: record.logprobs[index],
  }));
  return { spans };
}

/** Token counts per class, for the legend. */
export function tokenCounts(record: TrajectoryRecord): Record<TokenClass, number> {
  const counts: Record<TokenClass, number> = { trained: 0, forced: 0, masked: 0 };
  record.tokens.forEach((_, i) => counts[tokenClass(record.sampledMask[i] ?? 0, record.lossMask[i] ?? 0)]++);
  return counts;
}
