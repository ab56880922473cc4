/**
 * The training settings form, derived from the run config schema itself: every knob with its
 * default, description and input kind (choices come from the schema's enums), and the way back
 * from what was typed to a config that parseRunConfig validates.
 */
import { describeRunConfig, parseRunConfig, RunConfigSchema, type RunConfig } from '../../core/run/config';

export type SettingKind = 'boolean' | 'number' | 'choice' | 'list' | 'text';

export interface SettingField {
  /** Dotted path in RunConfig, e.g. "grpo.clipEpsHigh". */
  path: string;
  /** First part of the path ("" for top-level knobs). */
  group: string;
  key: string;
  description: string;
  default: unknown;
  kind: SettingKind;
  /** Allowed values of a choice. */
  options?: string[];
  /** null is a valid value (e.g. grpo.dualClipC: null = off). */
  nullable: boolean;
}

/** What the inputs hold: text for everything but checkboxes. */
export type SettingValues = Record<string, string | boolean>;

interface SchemaNode {
  def?: { type?: string; innerType?: SchemaNode };
  shape?: Record<string, SchemaNode>;
  options?: unknown[];
}

/** The leaf schema at a path, looking through default / prefault / optional / nullable wrappers. */
function leaf(path: string): { node: SchemaNode | undefined; nullable: boolean } {
  let nullable = false;
  const unwrap = (s: SchemaNode | undefined): SchemaNode | undefined => {
    while (s?.def?.innerType) {
      if (s.def.type === 'nullable') nullable = true;
      s = s.def.innerType;
    }
    return s;
  };
  let node: SchemaNode | undefined = RunConfigSchema as unknown as SchemaNode;
  for (const key of path.split('.')) node = unwrap(node)?.shape?.[key];
  return { node: unwrap(node), nullable };
}

export function settingFields(): SettingField[] {
  return describeRunConfig().map((knob) => {
    const parts = knob.path.split('.');
    const { node, nullable } = leaf(knob.path);
    const type = node?.def?.type;
    const kind: SettingKind =
      type === 'boolean' ? 'boolean' : type === 'number' ? 'number' : type === 'enum' ? 'choice' : type === 'array' ? 'list' : 'text';
    return {
      path: knob.path,
      group: parts.length > 1 ? parts[0] : '',
      key: parts[parts.length - 1],
      description: knob.description,
      default: knob.default,
      kind,
      ...(kind === 'choice' && { options: (node?.options ?? []).map(String) }),
      nullable,
    };
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

/** Typed text back to values: numbers where the schema wants numbers (other text goes through, for the validator to name). */
function fieldValue(f: SettingField, raw: string | boolean): unknown {
  if (typeof raw === 'boolean') return raw;
  const text = raw.trim();
  if (f.kind === 'list') return text === '' ? [] : text.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => (NUMBER.test(s) ? Number(s) : s));
  if (text === '') return f.nullable ? null : undefined;
  if (f.kind === 'number') return NUMBER.test(text) ? Number(text) : text;
  return text;
}

/** The nested config object the inputs describe (not yet validated). */
export function configInput(fields: readonly SettingField[], values: SettingValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = fieldValue(f, values[f.path] ?? '');
    if (v === undefined) continue;
    const parts = f.path.split('.');
    let target = out;
    for (const p of parts.slice(0, -1)) target = (target[p] ??= {}) as Record<string, unknown>;
    target[parts[parts.length - 1]] = v;
  }
  return out;
}

/** A validated config, or the validator's message naming the field. */
export function validateSettings(fields: readonly SettingField[], values: SettingValues): { config: RunConfig } | { error: string } {
  try {
    return { config: parseRunConfig(configInput(fields, values), 'training settings') };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
