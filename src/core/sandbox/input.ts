/**
 * Checks on what is handed to the sandbox before any worker sees it.
 * Code comes from the model, so problems with it become an 'error' result the model can read.
 * Options come from the program, so problems with them are LabErrors thrown at the caller.
 */
import { LabError } from '../errors';
import type { RunOptions } from './types';

export interface CodeProblem {
  message: string;
  /** 1-based line of the offending character, when there is one. */
  line: number | null;
}

const SESSION_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Returns why code cannot be run, or null when it can. */
export function checkCode(code: unknown, maxCodeChars: number): CodeProblem | null {
  if (typeof code !== 'string') return { message: `code must be text, found ${code === null ? 'null' : typeof code}`, line: null };
  if (code.trim().length === 0) return { message: 'the code is empty, there is nothing to run', line: null };
  if (code.length > maxCodeChars) {
    return { message: `the code is ${code.length} characters long, the sandbox accepts at most ${maxCodeChars}`, line: null };
  }
  const binaryAt = findBinary(code);
  if (binaryAt !== null) {
    return { message: 'the code contains binary data, not Python source text', line: lineOf(code, binaryAt) };
  }
  return null;
}

/**
 * Index of the first character that marks the text as binary, or null: a NUL or a lone UTF-16 surrogate
 * anywhere, or more than 10% control / replacement characters (bytes decoded as text).
 */
function findBinary(code: string): number | null {
  let suspicious = 0;
  let first: number | null = null;
  for (let i = 0; i < code.length; i++) {
    const c = code.charCodeAt(i);
    if (c === 0) return i;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = code.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return i;
      i++;
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
    const control = (c < 0x20 && c !== 9 && c !== 10 && c !== 12 && c !== 13) || c === 0x7f || c === 0xfffd;
    if (control) {
      suspicious++;
      first ??= i;
    }
  }
  return suspicious > Math.max(8, code.length * 0.1) ? first : null;
}

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Validates per-call options; throws LabError naming the field on bad values. */
export function checkRunOptions(options: RunOptions | undefined, where = 'sandbox run options'): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new LabError('sandbox-options', 'run options must be an object', { file: where, expected: 'an object', found: String(options) });
  }
  if (options.timeoutMs !== undefined) checkTimeout(options.timeoutMs, where, 'timeoutMs');
  if (options.session !== undefined) {
    if (typeof options.session !== 'string' || !SESSION_PATTERN.test(options.session)) {
      throw new LabError('sandbox-options', 'invalid session id', {
        file: where,
        field: 'session',
        expected: '1-128 characters from A-Z a-z 0-9 . _ : -',
        found: JSON.stringify(options.session),
        hint: 'Use the trajectory id as the session',
      });
    }
  }
}

/** A timeout must be a finite number of milliseconds greater than zero. */
export function checkTimeout(value: unknown, where: string, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new LabError('sandbox-options', 'the timeout must be a positive number of milliseconds', {
      file: where,
      field,
      expected: 'a number > 0',
      found: JSON.stringify(value) ?? String(value),
      hint: 'Pass for example 10000 for ten seconds',
    });
  }
}
