/**
 * `npm run cli -- exec [FILE] [--timeout MS] [--session ID]`: runs one snippet (from FILE, or from
 * standard input) in the Python sandbox and prints the result as one line of JSON:
 * {status, stdout, stderr, errorLine, durationMs, truncated, observation}.
 * Exit code: 0 when the code ran without error, 1 otherwise, 2 for bad arguments.
 */
import { existsSync, readFileSync } from 'node:fs';
import { LabError } from '../core/errors';
import { checkTimeout } from '../core/sandbox/input';
import { toObservation } from '../core/sandbox/observation';
import { DEFAULT_TIMEOUT_MS } from '../core/sandbox/types';
import { createNodePythonPool } from '../node/python';
import type { Subcommand } from './command';

interface ExecArgs {
  file?: string;
  timeoutMs: number;
  session?: string;
}

export const execCommand: Subcommand = {
  summary: 'run Python code (FILE or standard input) in the sandbox; print the result as one JSON line',
  usage: 'exec [FILE] [--timeout MS] [--session ID]',
  run: async (args) => {
    const options = parseExecArgs(args);
    const code = readCode(options.file);
    // Warm-up imports only what the code uses: a one-shot call should not pay for sympy otherwise.
    const preload = ['sympy', 'mpmath'].filter((name) => new RegExp(`\\b(?:import|from)\\s+${name}\\b`).test(code));
    const pool = await createNodePythonPool({ size: 1, timeoutMs: options.timeoutMs, preload });
    try {
      const result = await pool.run(code, { session: options.session });
      console.log(JSON.stringify({ ...result, durationMs: Math.round(result.durationMs * 10) / 10, observation: toObservation(result) }));
      return result.status === 'ok' ? 0 : 1;
    } finally {
      await pool.close();
    }
  },
};

export function parseExecArgs(args: string[]): ExecArgs {
  const parsed: ExecArgs = { timeoutMs: DEFAULT_TIMEOUT_MS };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--timeout' || arg === '--session') {
      const value = args[++i];
      if (value === undefined) {
        throw new LabError('cli-args', `${arg} needs a value`, { field: arg, hint: `usage: npm run cli -- ${execCommand.usage}` });
      }
      if (arg === '--timeout') {
        const ms = Number(value);
        checkTimeout(value.trim() === '' ? NaN : ms, 'command line', '--timeout');
        parsed.timeoutMs = ms;
      } else {
        parsed.session = value;
      }
    } else if (arg.startsWith('--')) {
      throw new LabError('cli-args', `unknown option ${arg}`, { field: arg, hint: `usage: npm run cli -- ${execCommand.usage}` });
    } else if (parsed.file === undefined) {
      parsed.file = arg;
    } else {
      throw new LabError('cli-args', 'exec takes one FILE', { found: `${parsed.file} and ${arg}`, hint: 'Concatenate the code into one file' });
    }
  }
  return parsed;
}

function readCode(file: string | undefined): string {
  if (file !== undefined && file !== '-') {
    if (!existsSync(file)) throw new LabError('cli-args', 'the code file does not exist', { file, hint: 'Pass a path to a .py file, or pipe the code on standard input' });
    return readFileSync(file, 'utf8');
  }
  if (process.stdin.isTTY) {
    throw new LabError('cli-args', 'no code to run', { hint: 'Pass FILE, or pipe code on standard input: echo "print(1)" | npm run cli -- exec' });
  }
  return readFileSync(0, 'utf8');
}
