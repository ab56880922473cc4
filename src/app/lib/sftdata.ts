/**
 * SFT demonstrations from a JSON-lines file: one {"question": …, "response": …} object per line,
 * the response in the TIR format (```python blocks followed by their ```output blocks, which are
 * masked out of the loss). Bad lines are listed by line number; the good ones load.
 */
import { CODE_CLOSE, OUTPUT_OPEN } from '../../core/tir/format';

export interface Demonstration {
  question: string;
  response: string;
}

export interface BadLine {
  file: string;
  line: number;
  message: string;
}

const text = (v: unknown) => (typeof v === 'string' ? v : undefined);

export function readDemonstrationsJsonl(content: string, file: string): { demonstrations: Demonstration[]; skipped: BadLine[] } {
  const demonstrations: Demonstration[] = [];
  const skipped: BadLine[] = [];
  content.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch {
      skipped.push({ file, line, message: 'line is not valid JSON' });
      return;
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      skipped.push({ file, line, message: 'line is not a JSON object' });
      return;
    }
    const r = row as Record<string, unknown>;
    const question = (text(r.question) ?? text(r.problem) ?? text(r.prompt) ?? '').trim();
    const response = text(r.response) ?? text(r.completion) ?? '';
    if (question === '') skipped.push({ file, line, message: 'question is missing or empty (expected "question", "problem" or "prompt")' });
    else if (response.trim() === '') skipped.push({ file, line, message: 'response is missing or empty (expected "response" or "completion")' });
    else if (unclosedOutput(response)) skipped.push({ file, line, message: 'an ```output block is never closed' });
    else demonstrations.push({ question, response });
  });
  return { demonstrations, skipped };
}

/** An output block without its closing fence would make the rest of the response look like tool output. */
function unclosedOutput(response: string): boolean {
  let at = 0;
  for (;;) {
    const open = response.indexOf(OUTPUT_OPEN, at);
    if (open < 0) return false;
    const close = response.indexOf(CODE_CLOSE, open + OUTPUT_OPEN.length);
    if (close < 0) return true;
    at = close + CODE_CLOSE.length;
  }
}
