/**
 * The TIR text format shared with ToRL and THOR (docs/tir-format.md), byte-compatible so data moves
 * between this lab and GPU trainers:
 *
 *     ...reasoning...
 *     ```python
 *     print(2**10)
 *     ```
 *     ```output
 *     1024
 *     ```
 *     ...more reasoning... \boxed{1024}
 *
 * `splitFences` is the one parser of this format: rollouts, SFT data, streaming, file readers and the
 * trajectory view all read fences through it.
 */

export const CODE_OPEN = '```python\n';
export const OUTPUT_OPEN = '```output\n';
/** Closes both kinds of block (a round stops when a code block closes: THOR stops on this fence). */
export const FENCE_CLOSE = '```';

/** ToRL / THOR prompt: the instruction followed by the question. */
export const TIR_INSTRUCTION =
  'Please integrate natural language reasoning with programs to solve the problem below, and put your final answer within \\boxed{}.';

export function tirPrompt(question: string, instruction = TIR_INSTRUCTION): string {
  return instruction ? `${instruction}\n${question}` : question;
}

/** One piece of TIR text: prose, a ```python block or an ```output block. */
export interface FencedPiece {
  kind: 'text' | 'code' | 'output';
  /** Character span [start, end) in the parsed text; a block's span includes its fences. */
  start: number;
  end: number;
  /** The text without fences (and without the newline before a closing fence). */
  body: string;
  /** A block whose closing fence is there (prose is always closed). */
  closed: boolean;
}

/**
 * Splits TIR text into prose and fenced blocks, in order, from character `from` on. A block opens at
 * "```python\n" or "```output\n" and closes at the next "```"; a block still open at the end of the
 * text is returned with closed = false (a model still writing it, or one that never closed it).
 */
export function splitFences(text: string, from = 0): FencedPiece[] {
  const pieces: FencedPiece[] = [];
  let at = from;
  while (at < text.length) {
    const code = text.indexOf(CODE_OPEN, at);
    const output = text.indexOf(OUTPUT_OPEN, at);
    const open = code < 0 ? output : output < 0 ? code : Math.min(code, output);
    if (open < 0) break;
    if (open > at) pieces.push({ kind: 'text', start: at, end: open, body: text.slice(at, open), closed: true });
    const kind = open === code ? 'code' : 'output';
    const bodyStart = open + (kind === 'code' ? CODE_OPEN.length : OUTPUT_OPEN.length);
    const close = text.indexOf(FENCE_CLOSE, bodyStart);
    const end = close < 0 ? text.length : close + FENCE_CLOSE.length;
    const body = text.slice(bodyStart, close < 0 ? text.length : close);
    pieces.push({ kind, start: open, end, body: close < 0 ? body : body.replace(/\n$/, ''), closed: close >= 0 });
    at = end;
  }
  if (at < text.length) pieces.push({ kind: 'text', start: at, end: text.length, body: text.slice(at), closed: true });
  return pieces;
}

/** The first closed ```python block at or after character `from`, if any. */
export function nextClosedCode(text: string, from = 0): FencedPiece | undefined {
  return splitFences(text, from).find((p) => p.kind === 'code' && p.closed);
}

/** The text ends inside a block that has not closed yet (its kind), or not. */
export function openBlockAtEnd(text: string): FencedPiece | undefined {
  const last = splitFences(text).at(-1);
  return last && !last.closed ? last : undefined;
}

/** The inside of the block a code or output segment holds (fences and their newlines dropped); prose as it is. */
export function blockBody(segmentText: string): string {
  return splitFences(segmentText).find((p) => p.kind !== 'text')?.body ?? segmentText;
}

/** The forced text inserted after a code block: "```output\n{obs}\n```\n" (a newline first if the fence ends the line). */
export function observationBlock(observation: string, precededByNewline: boolean): string {
  return `${precededByNewline ? '' : '\n'}${OUTPUT_OPEN}${observation}\n${FENCE_CLOSE}\n`;
}

/**
 * The character spans of a response that tool output fills: each ```output block with the newline
 * a rollout puts before it (when the code fence closed without one) and the newline after it, exactly
 * the text observationBlock forces.
 */
export function forcedSpans(response: string): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  let codeEnd: number | undefined;
  for (const piece of splitFences(response)) {
    if (piece.kind === 'code') codeEnd = piece.end;
    if (piece.kind === 'output' && piece.closed) {
      // A code fence closes on "```"; the line break before the output block is the rollout's.
      const afterCode = codeEnd !== undefined && response.slice(codeEnd, piece.start) === '\n';
      const start = afterCode ? piece.start - 1 : piece.start;
      const end = response[piece.end] === '\n' ? piece.end + 1 : piece.end;
      spans.push({ start, end });
    }
  }
  return spans;
}
