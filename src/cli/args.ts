/**
 * Arguments of the subcommands: node:util's parseArgs with errors that name the flag, and the one
 * way settings reach a run config: a JSON file, `--set section.key=value`, and flags that stand for
 * knobs, all checked by the run config's schema, so an error names the flag the user typed.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { parseRunConfig, type ConfigUse, type RunConfig } from '../core/config/schema';
import { applySettings, parseAssignment, settingValue, type Setting } from '../core/config/settings';
import type { FieldMapping } from '../core/data/fields';
import { LabError } from '../core/errors';

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (e) {
    // node:util's messages run over several lines and end with a full stop.
    throw new LabError('cli-args', (e as Error).message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, ''), { hint: `usage: npm run cli -- ${usage}` });
  }
}

/** A flag that stands for a knob: `--samples 4` is eval.samples = 4. */
export interface KnobFlag {
  flag: string;
  path: string;
  /** What the flag was given: text (read as JSON when it parses), true for a bare switch, undefined when absent. */
  value: string | boolean | undefined;
}

export interface SettingsInput {
  /** A JSON config file. */
  file?: string;
  /** `--set` assignments. */
  sets?: readonly string[];
  flags?: readonly KnobFlag[];
}

/** The config input the file, the assignments and the flags describe (flags last), and how errors should name each knob. */
export function settingsFrom(s: SettingsInput): { input: Record<string, unknown>; labels: Record<string, string> } {
  let input: Record<string, unknown> = {};
  if (s.file) {
    let text: string;
    try {
      text = readFileSync(s.file, 'utf8');
    } catch (e) {
      throw new LabError('files', `cannot read the config: ${(e as Error).message}`, { file: s.file });
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level must be an object of settings');
      input = parsed as Record<string, unknown>;
    } catch (e) {
      throw new LabError('BAD_RUN_CONFIG', `not a JSON config: ${(e as Error).message}`, { file: s.file });
    }
  }
  const labels: Record<string, string> = {};
  const settings: Setting[] = (s.sets ?? []).map((a) => parseAssignment(a, '--set'));
  for (const f of s.flags ?? []) {
    if (f.value === undefined) continue;
    settings.push({ path: f.path, value: typeof f.value === 'boolean' ? f.value : settingValue(f.path, f.value), source: f.flag });
    labels[f.path] = f.flag;
  }
  return { input: applySettings(input, settings), labels };
}

/** A checked run config from those settings; errors name the flag, the file or --set. */
export function configFrom(s: SettingsInput, use: ConfigUse): { config: RunConfig; input: Record<string, unknown> } {
  const { input, labels } = settingsFrom(s);
  return { config: parseRunConfig(input, { source: s.file ?? 'command line', use, labels }), input };
}

/** A whole number ≥ 1 given to a flag that is no knob (e.g. --limit). */
export function countFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw new LabError('cli-args', 'not a count', { field: flag, expected: 'a whole number ≥ 1', found: value });
  return n;
}

/** The flags that name a dataset file's fields when detection cannot decide (docs/datasets.md#field-mapping). */
export const MAPPING_OPTIONS = {
  'question-field': { type: 'string' },
  'answer-field': { type: 'string' },
  'id-field': { type: 'string' },
} as const;

/** The field mapping those flags give; a flag given empty, or with no file to read, is refused (`file`: whether there is one, and what gives it). */
export function mappingFrom(flags: { 'question-field'?: string; 'answer-field'?: string; 'id-field'?: string }, file: { given: boolean; by: string }): FieldMapping | undefined {
  const mapping: FieldMapping = {};
  for (const [flag, role] of [['question-field', 'question'], ['answer-field', 'answer'], ['id-field', 'id']] as const) {
    const value = flags[flag];
    if (value === undefined) continue;
    if (value.trim() === '') throw new LabError('cli-args', 'no field named', { field: `--${flag}`, expected: 'a field name or dot path, e.g. reward_model.ground_truth', found: 'nothing' });
    mapping[role] = value.trim();
  }
  const named = Object.keys(mapping);
  if (named.length === 0) return undefined;
  if (!file.given) throw new LabError('cli-args', 'a field is named but no file is read', { field: `--${named[0]}-field`, hint: `give the file with ${file.by}` });
  return mapping;
}
