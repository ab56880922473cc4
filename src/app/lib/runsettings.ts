/**
 * Settings forms derived from the run config's own description: every knob with its default,
 * description, input kind and limits (describeRunConfig), and the way back from what was typed to a
 * config that the schema checks, with the same messages as a config file or the command line.
 */
import { applySettings, describeRunConfig, parseRunConfig, type Knob, type RunConfig } from '../../core/lab/index';

export interface SettingField extends Knob {
  /** First part of the path ("" for top-level knobs). */
  group: string;
  key: string;
}

/** What the inputs hold: text (or a number input's number) for everything but checkboxes. */
export type SettingValues = Record<string, string | number | boolean | null>;

export function settingFields(): SettingField[] {
  return describeRunConfig().map((knob) => {
    const parts = knob.path.split('.');
    return { ...knob, group: parts.length > 1 ? parts[0] : '', key: parts[parts.length - 1] };
  });
}

/** The fields of some knobs, by path, in the order asked (a panel's short form). */
export function fieldsAt(paths: readonly string[]): SettingField[] {
  const all = settingFields();
  return paths.map((p) => {
    const f = all.find((x) => x.path === p);
    if (!f) throw new Error(`no setting ${p}`);
    return f;
  });
}

export function defaultValues(fields: readonly SettingField[]): SettingValues {
  const values: SettingValues = {};
  for (const f of fields) {
    if (f.kind === 'boolean') values[f.path] = f.default === true;
    else if (f.kind === 'list') values[f.path] = Array.isArray(f.default) ? f.default.join(', ') : '';
    else values[f.path] = f.default === undefined || f.default === null ? '' : String(f.default);
  }
  return values;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** Typed text back to values: numbers where the schema wants numbers (other text goes through, for the schema to name). */
function fieldValue(f: SettingField, raw: string | number | boolean | null): unknown {
  if (typeof raw === 'boolean' || typeof raw === 'number') return raw;
  if (raw === null) return f.nullable ? null : undefined;
  const text = raw.trim();
  if (f.kind === 'list') return text === '' ? [] : text.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => (NUMBER.test(s) ? Number(s) : s));
  if (text === '') return f.nullable ? null : undefined;
  if (f.kind === 'number') return NUMBER.test(text) ? Number(text) : text;
  return f.kind === 'text' ? raw : text;
}

/** The nested config input the inputs describe (not yet checked). */
export function configInput(fields: readonly SettingField[], values: SettingValues, base: Record<string, unknown> = {}): Record<string, unknown> {
  return applySettings(
    base,
    fields.flatMap((f) => {
      const value = fieldValue(f, values[f.path] ?? '');
      return value === undefined ? [] : [{ path: f.path, value, source: 'form' }];
    }),
  );
}

/** A checked config, or the schema's message naming the field. */
export function validateSettings(fields: readonly SettingField[], values: SettingValues, use: 'run' | 'evaluation' | 'inference' = 'run', base: Record<string, unknown> = {}): { config: RunConfig; input: Record<string, unknown> } | { error: string } {
  try {
    const input = configInput(fields, values, base);
    return { config: parseRunConfig(input, { source: use === 'run' ? 'training settings' : `${use} settings`, use }), input };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** The HTML input bounds of a number knob (exclusive bounds are left to the schema's message). */
export function inputBounds(f: Knob): { min?: number; max?: number; step?: number | 'any' } {
  return {
    ...(f.min !== undefined && { min: f.min }),
    ...(f.max !== undefined && { max: f.max }),
    step: f.integer ? 1 : 'any',
  };
}
