/**
 * The TIR text format shared with ToRL and THOR (algorithms.md §1), byte-compatible so data moves
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
 */

export const CODE_OPEN = '```python\n';
export const CODE_CLOSE = '```';
export const OUTPUT_OPEN = '```output\n';

/** ToRL / THOR prompt: the instruction followed by the question. */
export const TIR_INSTRUCTION =
  'Please integrate natural language reasoning with programs to solve the problem below, and put your final answer within \\boxed{}.';

export function tirPrompt(question: string, instruction = TIR_INSTRUCTION): string {
  return instruction ? `${instruction}\n${question}` : question;
}

export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'code'; text: string }
  | { kind: 'output'; text: string };

/**
 * Index just past the first code block that opens at or after `from` and is closed, or -1.
 * A round stops when its code block closes (THOR stops on the closing fence).
 */
export function closedCodeBlockEnd(text: string, from = 0): number {
  const open = text.indexOf(CODE_OPEN, from);
  if (open < 0) return -1;
  const close = text.indexOf(CODE_CLOSE, open + CODE_OPEN.length);
  return close < 0 ? -1 : close + CODE_CLOSE.length;
}

/** The code of the last complete ```python block in `text`, or undefined. The lab executes this one. */
export function lastCompleteCode(text: string): string | undefined {
  let found: string | undefined;
  let at = 0;
  for (;;) {
    const open = text.indexOf(CODE_OPEN, at);
    if (open < 0) return found;
    const start = open + CODE_OPEN.length;
    const close = text.indexOf(CODE_CLOSE, start);
    if (close < 0) return found;
    found = text.slice(start, close).replace(/\n$/, '');
    at = close + CODE_CLOSE.length;
  }
}

/** The forced text inserted after a code block: "```output\n{obs}\n```\n" (a newline first if the fence ends the line). */
export function observationBlock(observation: string, precededByNewline: boolean): string {
  return `${precededByNewline ? '' : '\n'}${OUTPUT_OPEN}${observation}\n${CODE_CLOSE}\n`;
}

/** Splits a TIR response into text, code and output segments, in order. */
export function parseSegments(text: string): Segment[] {
  const segments: Segment[] = [];
  const fence = /```(python|output)\n([\s\S]*?)```/g;
  let last = 0;
  for (let m = fence.exec(text); m; m = fence.exec(text)) {
    if (m.index > last) segments.push({ kind: 'text', text: text.slice(last, m.index) });
    segments.push({ kind: m[1] === 'python' ? 'code' : 'output', text: m[2].replace(/\n$/, '') });
    last = m.index + m[0].length;
  }
  if (last < text.length) segments.push({ kind: 'text', text: text.slice(last) });
  return segments;
}
