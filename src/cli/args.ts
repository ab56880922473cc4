/** Argument helpers shared by the subcommands: node:util's parseArgs with errors that name the flag. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { LabError } from '../core/errors';
import { parseRunConfig, type RunConfig } from '../core/run/config';

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (e) {
    throw new LabError('cli-args', (e as Error).message, { hint: `usage: npm run cli -- ${usage}` });
  }
}

export function numberFlag(value: string | undefined, flag: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new LabError('cli-args', 'not a number', { field: flag, expected: 'a number', found: value });
  return n;
}

/** Sets `a.b.c=value` in a nested object; the value is read as JSON when it parses, else as a string. */
export function applySetting(target: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new LabError('cli-args', 'a setting must look like section.key=value', { field: '--set', expected: 'e.g. rollout.maxToolCalls=1', found: assignment });
  const path = assignment.slice(0, eq).split('.');
  const raw = assignment.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    /* plain string */
  }
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/** A RunConfig from an optional JSON file plus `--set` overrides, validated (errors name file and field). */
export function runConfigFrom(file: string | undefined, sets: string[]): RunConfig {
  let input: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new LabError('files', `cannot read the config: ${(e as Error).message}`, { file });
    }
    try {
      input = JSON.parse(text);
    } catch (e) {
      throw new LabError('config', `not JSON: ${(e as Error).message}`, { file });
    }
  }
  for (const s of sets) applySetting(input, s);
  return parseRunConfig(input, file ?? '--set');
}
