/**
 * Settings given one at a time (`--set grpo.clipEpsHigh=0.3`, a command-line flag, a form field) on
 * top of a config input. Only the schema's own knobs can be set, so a path is checked before anything
 * is written (`__proto__.x` or a typo is refused, naming the known settings); values are then checked
 * by parseRunConfig like any config file.
 */
import { LabError } from '../errors';
import { describeRunConfig, knobAt } from './schema';

export interface Setting {
  /** Dotted knob path. */
  path: string;
  value: unknown;
  /** How the user gave it, for errors ("--set", "--samples", a form). */
  source: string;
}

/** The value typed for a knob: text knobs take the text as it is; others read it as JSON when it parses (numbers, true/false, null, lists). */
export function settingValue(path: string, raw: string): unknown {
  if (knobAt(path)?.kind === 'text') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** "section.key=value" as a Setting. */
export function parseAssignment(assignment: string, source = '--set'): Setting {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new LabError('cli-args', 'a setting must look like section.key=value', { field: source, expected: 'e.g. rollout.maxToolCalls=1', found: assignment });
  const path = assignment.slice(0, eq).trim();
  return { path, value: settingValue(path, assignment.slice(eq + 1)), source };
}

/** A copy of `input` with the settings written in; a path that is no knob is refused. */
export function applySettings(input: Readonly<Record<string, unknown>>, settings: readonly Setting[]): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(input);
  for (const s of settings) {
    if (!knobAt(s.path)) {
      const section = s.path.includes('.') ? s.path.slice(0, s.path.indexOf('.') + 1) : '';
      const known = describeRunConfig()
        .map((k) => k.path)
        .filter((p) => p.startsWith(section) && (section !== '' || !p.includes('.')));
      throw new LabError('BAD_RUN_CONFIG', 'no such setting', {
        file: s.source,
        field: s.path,
        expected: 'a setting of the run config',
        found: JSON.stringify(s.path),
        hint: `known settings${section ? ` in ${section.slice(0, -1)}` : ' at the top level'}: ${(known.length ? known : describeRunConfig().map((k) => k.path)).join(', ')}`,
      });
    }
    const keys = s.path.split('.');
    let node = out;
    for (const key of keys.slice(0, -1)) {
      const next = Object.hasOwn(node, key) ? node[key] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = s.value;
  }
  return out;
}

/** The leaf settings of a nested config input (lists and null are values): what `applySettings` writes. */
export function settingsOf(input: Readonly<Record<string, unknown>>, source: string, prefix = ''): Setting[] {
  return Object.entries(input).flatMap(([key, value]) =>
    value !== null && typeof value === 'object' && !Array.isArray(value) ? settingsOf(value as Record<string, unknown>, source, `${prefix}${key}.`) : [{ path: `${prefix}${key}`, value, source }],
  );
}
