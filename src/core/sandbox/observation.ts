/**
 * The observation o_k = I(c_k) the model sees after a code block (THOR / ToRL text format,
 * docs/tir-format.md#observation-text): stdout on success, the last traceback line on error, and honest messages for
 * no output, timeouts and dead workers (ToRL's code reports "no output" as a timeout, a known flaw).
 */
import type { RunResult } from './types';

export interface ObservationOptions {
  /** Past this many characters the text is cut to head + ellipsis + tail. ToRL/THOR: 256. */
  maxChars: number;
  head: number;
  tail: number;
  ellipsis: string;
}

export const DEFAULT_OBSERVATION: ObservationOptions = { maxChars: 256, head: 128, tail: 128, ellipsis: '...' };

export const NO_OUTPUT_MESSAGE = 'The code ran without errors but printed nothing. Use print() to show results.';
export const TIMEOUT_MESSAGE = 'TimeoutError: the code did not finish within the time limit.';

/** Head + tail truncation: text longer than maxChars becomes text[:head] + ellipsis + text[-tail:] (ToRL). */
export function truncateMiddle(text: string, options: Partial<ObservationOptions> = {}): string {
  const { maxChars, head, tail, ellipsis } = { ...DEFAULT_OBSERVATION, ...options };
  if (text.length <= maxChars) return text;
  return text.slice(0, head) + ellipsis + (tail > 0 ? text.slice(-tail) : '');
}

/** The last non-empty line of a traceback, e.g. "NameError: name 'x' is not defined". */
export function lastTracebackLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim().length > 0);
  return lines.length > 0 ? lines[lines.length - 1].trim() : '';
}

/** Turns a sandbox result into the observation text inserted between ```output fences. */
export function toObservation(result: RunResult, options: Partial<ObservationOptions> = {}): string {
  const text = observationText(result);
  return truncateMiddle(text, options);
}

function observationText(result: RunResult): string {
  switch (result.status) {
    case 'ok': {
      const out = result.stdout.replace(/\s+$/, '');
      return out.length > 0 ? out : NO_OUTPUT_MESSAGE;
    }
    case 'error':
      return lastTracebackLine(result.stderr) || 'Error: the code failed without an error message.';
    case 'timeout':
      return TIMEOUT_MESSAGE;
    case 'memory':
      return lastTracebackLine(result.stderr).startsWith('MemoryError')
        ? lastTracebackLine(result.stderr)
        : 'MemoryError: the code used more memory than the sandbox allows.';
    case 'killed':
      return `Error: the Python process was killed (${lastTracebackLine(result.stderr) || 'unknown reason'}).`;
  }
}

/** True when a call counts as "code ran" for THOR's step-level reward: exit ok and non-empty stdout. */
export function codeSucceeded(result: RunResult): boolean {
  return result.status === 'ok' && result.stdout.trim().length > 0;
}
