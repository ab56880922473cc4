import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { checkCode, checkRunOptions } from '../../src/core/sandbox/input';
import {
  NO_OUTPUT_MESSAGE,
  TIMEOUT_MESSAGE,
  codeSucceeded,
  lastTracebackLine,
  toObservation,
  truncateMiddle,
} from '../../src/core/sandbox/observation';
import type { RunResult } from '../../src/core/sandbox/types';

const result = (over: Partial<RunResult>): RunResult => ({
  status: 'ok', stdout: '', stderr: '', errorLine: null, durationMs: 1, truncated: false, ...over,
});

describe('observation text (docs/tir-format.md#observation-text)', () => {
  it('keeps text up to 256 characters and cuts longer text to 128 + "..." + 128', () => {
    const exact = 'a'.repeat(256);
    expect(truncateMiddle(exact)).toBe(exact);
    const long = 'h'.repeat(128) + 'x'.repeat(100) + 't'.repeat(128);
    const cut = truncateMiddle(long);
    expect(cut).toBe('h'.repeat(128) + '...' + 't'.repeat(128));
    expect(cut.length).toBe(259);
  });

  it('takes its sizes from options', () => {
    expect(truncateMiddle('abcdefghij', { maxChars: 4, head: 2, tail: 3, ellipsis: '~' })).toBe('ab~hij');
    expect(truncateMiddle('abcdefghij', { maxChars: 4, head: 3, tail: 0 })).toBe('abc...');
  });

  it('shows stdout on success, without trailing blank lines', () => {
    expect(toObservation(result({ stdout: '{641: 1, 6700417: 1}\n\n' }))).toBe('{641: 1, 6700417: 1}');
  });

  it('says honestly that nothing was printed (not a timeout)', () => {
    expect(toObservation(result({ stdout: '  \n' }))).toBe(NO_OUTPUT_MESSAGE);
    expect(NO_OUTPUT_MESSAGE).not.toMatch(/time/i);
  });

  it('shows only the last traceback line on error, even when something was printed', () => {
    const stderr = 'Traceback (most recent call last):\n  File "<code>", line 1, in <module>\n    print(x)\nNameError: name \'x\' is not defined\n';
    expect(toObservation(result({ status: 'error', stdout: 'partial\n', stderr }))).toBe("NameError: name 'x' is not defined");
    expect(lastTracebackLine('  File "<code>", line 1\n    x = = 1\n        ^\nSyntaxError: invalid syntax\n\n')).toBe('SyntaxError: invalid syntax');
  });

  it('reports timeouts, memory and dead workers in words', () => {
    expect(toObservation(result({ status: 'timeout', stdout: '1\n2\n' }))).toBe(TIMEOUT_MESSAGE);
    expect(toObservation(result({ status: 'memory', stderr: 'Traceback...\nMemoryError\n' }))).toBe('MemoryError');
    expect(toObservation(result({ status: 'memory', stderr: '' }))).toMatch(/^MemoryError: /);
    expect(toObservation(result({ status: 'killed', stderr: 'Killed: the worker exited with code 1\n' }))).toBe(
      'Error: the Python process was killed (Killed: the worker exited with code 1).',
    );
  });

  it('truncates long error lines too', () => {
    const obs = toObservation(result({ status: 'error', stderr: `ValueError: ${'v'.repeat(1000)}\n` }));
    expect(obs.length).toBe(259);
    expect(obs.startsWith('ValueError: vvv')).toBe(true);
  });

  it('counts a call as "code ran" only when it ended ok and printed something (THOR step reward)', () => {
    expect(codeSucceeded(result({ stdout: '4\n' }))).toBe(true);
    expect(codeSucceeded(result({ stdout: '' }))).toBe(false);
    expect(codeSucceeded(result({ status: 'error', stdout: '4\n' }))).toBe(false);
  });
});

describe('sandbox input checks', () => {
  it('refuses empty, oversized and binary code with a reason and a line', () => {
    expect(checkCode('', 100)?.message).toMatch(/empty/);
    expect(checkCode(' \n\t', 100)?.message).toMatch(/empty/);
    expect(checkCode('x = 1\n'.repeat(50), 100)?.message).toMatch(/300 characters long.*at most 100/);
    expect(checkCode('print(1)\nx = "\u0000"', 100)).toEqual({ message: expect.stringMatching(/binary/), line: 2 });
    expect(checkCode('a = "\ud800"', 100)?.message).toMatch(/binary/);
    const garbage = Array.from({ length: 200 }, (_, i) => String.fromCharCode(i % 2 ? 0xfffd : 0x01)).join('');
    expect(checkCode(garbage, 1000)?.message).toMatch(/binary/);
    expect(checkCode(42, 100)?.message).toMatch(/must be text, found number/);
  });

  it('accepts ordinary code, tabs, form feeds and non-ASCII text', () => {
    expect(checkCode('def f(x):\n\treturn x  # π ≈ 3.14 😀\n\fprint(f(2))', 1000)).toBeNull();
  });

  it('throws LabErrors naming the field for a zero, negative or non-numeric timeout and a bad session', () => {
    for (const timeoutMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, '100' as unknown as number]) {
      let error: unknown;
      try {
        checkRunOptions({ timeoutMs });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LabError);
      expect((error as LabError).details.field).toBe('timeoutMs');
    }
    expect(() => checkRunOptions({ session: 'has space' })).toThrow(/invalid session id/);
    expect(() => checkRunOptions({ timeoutMs: 1500, session: 'traj-7:round.2' })).not.toThrow();
  });
});
