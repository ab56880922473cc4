/**
 * TIRGen's settings (docs/tirgen.md#settings): every number of THOR's pipeline is a setting. The lab's
 * defaults suit the shipped tiny model (a 256-token context); THOR's published values are in
 * THOR_TIRGEN, and each can be set with `--set tirgen.key=value`.
 */
import { LabError } from '../errors';

export type CodeQualityRule = 'thor' | 'paper' | 'both' | 'off';

export interface TirgenSettings {
  /** L_step: most tokens the actor writes in one step before the critic looks (THOR: 512 for non-reasoning models, 4096 for reasoning ones). */
  stepTokens: number;
  /** Most tokens of a whole response as it stands: the actor's text it keeps plus inserted code and output at 4 characters a token (THOR: max_len 20000). */
  maxResponseTokens: number;
  /** Tries per question (THOR: 8). */
  attempts: number;
  /** Actor sampling (THOR: 0.6, top-k 30, top-p 1). */
  temperature: number;
  topK: number;
  topP: number;
  /** Critic sampling, for a model critic (THOR samples the critic as the actor). */
  criticTemperature: number;
  /** Most tokens of one critic reply (THOR: the step length). */
  criticMaxTokens: number;
  /** Code blocks run per step at most; a rewrite with more is cut after this many (THOR: 5 rounds). */
  maxRounds: number;
  /** Time limit of each run, in milliseconds (THOR: 30 s). */
  toolTimeoutMs: number;
  /** Steps shorter than this many tokens skip the critic and are kept as written (THOR's released code: 2048 of a 4096 window; lab: 0, every step is seen). */
  criticMinTokens: number;
  /** A model critic's rewrite must reuse at least this share of its prose words from the step, or it is "not a rewrite". */
  minRewriteOverlap: number;
  /** Code-quality filter: THOR's code rule, the paper's rule, both, or none. */
  codeQuality: CodeQualityRule;
  /** THOR's rule: a block with at most this many non-blank, non-comment lines is low quality (THOR: 5). */
  lowQualityMaxLines: number;
  /** THOR's rule: a sample is rejected when more than ceil(share × blocks) of its blocks are low quality (THOR: 0.4). */
  lowQualityMaxShare: number;
  /** Repetition filter: no `repetitionNgram`-character n-gram more than `repetitionMaxCount` times (THOR: 20 and 20). */
  repetitionNgram: number;
  repetitionMaxCount: number;
  /** Keep one random passing sample per question (THOR: yes). */
  onePerQuestion: boolean;
  /** Share of kept one-call samples that stay (THOR: 0.5, "down-sampled by 50%"); 1 keeps them all. */
  oneCallKeep: number;
  /** Drop questions a pure chain-of-thought answer from the actor already solves (the paper; not in the released code). */
  dropSolvedWithoutTools: boolean;
  /** Chain-of-thought answers tried for that test; any correct one drops the question. */
  cotSamples: number;
  /** Instruction before the question in the actor's prompt (THOR: "Please Reason step by step and put your final answer within \boxed{}."; lab: none, the tiny model has a short context). */
  actorInstruction: string;
  /** Instruction before the question in the written data's user turn (messages.jsonl). */
  dataInstruction: string;
  /** Questions worked on at once (their attempts run together, so a local actor decodes them in one batch). */
  concurrency: number;
}

export const TIRGEN_DEFAULTS: Readonly<TirgenSettings> = Object.freeze({
  stepTokens: 64,
  maxResponseTokens: 200,
  attempts: 8,
  temperature: 0.6,
  topK: 30,
  topP: 1,
  criticTemperature: 0.6,
  criticMaxTokens: 512,
  maxRounds: 5,
  toolTimeoutMs: 30_000,
  criticMinTokens: 0,
  minRewriteOverlap: 0.5,
  codeQuality: 'thor',
  lowQualityMaxLines: 5,
  lowQualityMaxShare: 0.4,
  repetitionNgram: 20,
  repetitionMaxCount: 20,
  onePerQuestion: true,
  oneCallKeep: 0.5,
  dropSolvedWithoutTools: false,
  cotSamples: 1,
  actorInstruction: '',
  dataInstruction: '',
  concurrency: 8,
});

/** THOR's values where they differ from the lab's (arXiv 2509.13761 and JingMog/THOR TIRGen/), for a non-reasoning actor. */
export const THOR_TIRGEN: Readonly<Partial<TirgenSettings>> = Object.freeze({
  stepTokens: 512,
  maxResponseTokens: 20_000,
  actorInstruction: 'Please Reason step by step and put your final answer within \\boxed{}. ',
});

type Kind = { type: 'int'; min: number; max?: number } | { type: 'number'; min: number; max?: number } | { type: 'boolean' } | { type: 'text' } | { type: 'choice'; options: readonly string[] };

const KINDS: Record<keyof TirgenSettings, Kind> = {
  stepTokens: { type: 'int', min: 1 },
  maxResponseTokens: { type: 'int', min: 1 },
  attempts: { type: 'int', min: 1, max: 1024 },
  temperature: { type: 'number', min: 0, max: 10 },
  topK: { type: 'int', min: 0 },
  topP: { type: 'number', min: Number.MIN_VALUE, max: 1 },
  criticTemperature: { type: 'number', min: 0, max: 10 },
  criticMaxTokens: { type: 'int', min: 1 },
  maxRounds: { type: 'int', min: 1 },
  toolTimeoutMs: { type: 'int', min: 1 },
  criticMinTokens: { type: 'int', min: 0 },
  minRewriteOverlap: { type: 'number', min: 0, max: 1 },
  codeQuality: { type: 'choice', options: ['thor', 'paper', 'both', 'off'] },
  lowQualityMaxLines: { type: 'int', min: 0 },
  lowQualityMaxShare: { type: 'number', min: 0, max: 1 },
  repetitionNgram: { type: 'int', min: 1 },
  repetitionMaxCount: { type: 'int', min: 1 },
  onePerQuestion: { type: 'boolean' },
  oneCallKeep: { type: 'number', min: 0, max: 1 },
  dropSolvedWithoutTools: { type: 'boolean' },
  cotSamples: { type: 'int', min: 1, max: 128 },
  actorInstruction: { type: 'text' },
  dataInstruction: { type: 'text' },
  concurrency: { type: 'int', min: 1, max: 1024 },
};

export const TIRGEN_KEYS = Object.keys(KINDS) as (keyof TirgenSettings)[];

function describe(kind: Kind): string {
  switch (kind.type) {
    case 'int':
      return `a whole number ≥ ${kind.min}${kind.max !== undefined ? ` and ≤ ${kind.max}` : ''}`;
    case 'number':
      return `a number from ${kind.min === Number.MIN_VALUE ? 'just above 0' : kind.min}${kind.max !== undefined ? ` to ${kind.max}` : ''}`;
    case 'boolean':
      return 'true or false';
    case 'text':
      return 'text';
    case 'choice':
      return kind.options.join(' | ');
  }
}

/** One setting's value, typed as given on the command line (text) or in JSON; a bad one is an error naming it. */
function readValue(key: keyof TirgenSettings, raw: unknown, source: string): unknown {
  const kind = KINDS[key];
  const bad = () => new LabError('tirgen-settings', 'bad value', { file: source, field: `tirgen.${key}`, expected: describe(kind), found: JSON.stringify(raw) });
  if (kind.type === 'text') {
    if (typeof raw !== 'string') throw bad();
    return raw;
  }
  if (kind.type === 'choice') {
    if (typeof raw !== 'string' || !kind.options.includes(raw)) throw bad();
    return raw;
  }
  let value = raw;
  if (typeof value === 'string') {
    const t = value.trim();
    if (kind.type === 'boolean') value = t === 'true' ? true : t === 'false' ? false : value;
    else if (t !== '' && Number.isFinite(Number(t))) value = Number(t);
  }
  if (kind.type === 'boolean') {
    if (typeof value !== 'boolean') throw bad();
    return value;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < kind.min || (kind.max !== undefined && value > kind.max) || (kind.type === 'int' && !Number.isInteger(value))) throw bad();
  return value;
}

/**
 * Settings from the defaults and assignments ("tirgen.stepTokens=512", or without the section), in
 * order, the last one winning. An unknown key is refused, naming the known ones.
 */
export function parseTirgenSettings(assignments: readonly (string | { key: string; value: unknown })[], source = '--set', base: Partial<TirgenSettings> = {}): TirgenSettings {
  const out: TirgenSettings = { ...TIRGEN_DEFAULTS, ...base };
  for (const a of assignments) {
    let key: string;
    let raw: unknown;
    if (typeof a === 'string') {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new LabError('tirgen-settings', 'a setting must look like tirgen.key=value', { file: source, expected: 'e.g. tirgen.stepTokens=512', found: a });
      key = a.slice(0, eq).trim();
      raw = a.slice(eq + 1);
    } else ({ key, value: raw } = a);
    const name = key.replace(/^tirgen\./, '');
    if (!Object.hasOwn(KINDS, name)) throw new LabError('tirgen-settings', 'no such setting', { file: source, field: key, expected: 'a TIRGen setting', found: JSON.stringify(key), hint: `known settings: ${TIRGEN_KEYS.map((k) => `tirgen.${k}`).join(', ')}` });
    (out as unknown as Record<string, unknown>)[name] = readValue(name as keyof TirgenSettings, raw, source);
  }
  return out;
}

/** The settings that differ from the defaults, for logs and resume checks. */
export function changedSettings(s: TirgenSettings): Partial<TirgenSettings> {
  const out: Record<string, unknown> = {};
  for (const k of TIRGEN_KEYS) if (s[k] !== TIRGEN_DEFAULTS[k]) out[k] = s[k];
  return out as Partial<TirgenSettings>;
}
