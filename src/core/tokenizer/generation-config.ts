/**
 * generation_config.json: the token ids that end a turn and the sampling defaults a model folder
 * ships with (docs/models.md#prompts-and-stop-tokens). Sampling follows transformers' generate():
 * without do_sample: true it decodes greedily, whatever temperature the file gives, and a sampling
 * file that leaves top_k out samples with top-k 50.
 */
import { LabError } from '../errors';

export const GENERATION_CONFIG_JSON = 'generation_config.json';

/** A model's own sampling defaults, in the lab's names; absent fields keep the lab's. */
export interface GenerationDefaults {
  /** 0 = greedy (do_sample false). */
  temperature?: number;
  topP?: number;
  /** 0 = off. */
  topK?: number;
  /** CTRL's repetition penalty (1 = none). */
  repetitionPenalty?: number;
  maxNewTokens?: number;
}

export interface GenerationConfig {
  /** eos_token_id, one id or a list (Qwen2.5-Instruct: [151645, 151643]). */
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
  defaults: GenerationDefaults;
}

/** transformers' GenerationConfig defaults for the fields a sampling file may leave out. */
const HF_SAMPLING_DEFAULTS = { temperature: 1.0, topP: 1.0, topK: 50 };

export function parseGenerationConfig(text: string, file = GENERATION_CONFIG_JSON): GenerationConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LabError('tokenizer', `not valid JSON: ${(e as Error).message}`, { file, hint: 'The file is damaged: fetch it again' });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LabError('tokenizer', 'not a JSON object', { file, expected: 'an object', found: Array.isArray(raw) ? 'an array' : typeof raw });
  const r = raw as Record<string, unknown>;
  const bad = (field: string, expected: string): never => {
    throw new LabError('tokenizer', 'bad value', { file, field, expected, found: JSON.stringify(r[field]) });
  };
  const id = (field: string): number | undefined => {
    const v = r[field];
    if (v === undefined || v === null) return undefined;
    if (!Number.isInteger(v) || (v as number) < 0) bad(field, 'a token id (an integer ≥ 0)');
    return v as number;
  };
  const num = (field: string, ok: (v: number) => boolean, expected: string): number | undefined => {
    const v = r[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) bad(field, expected);
    return v as number;
  };

  const eos = r.eos_token_id;
  let eosTokenIds: number[] = [];
  if (Array.isArray(eos)) {
    if (!eos.every((v) => Number.isInteger(v) && v >= 0)) bad('eos_token_id', 'a token id or a list of token ids');
    eosTokenIds = [...new Set(eos as number[])];
  } else {
    const one = id('eos_token_id');
    if (one !== undefined) eosTokenIds = [one];
  }

  if (r.do_sample !== undefined && r.do_sample !== null && typeof r.do_sample !== 'boolean') bad('do_sample', 'true or false');
  const temperature = num('temperature', (v) => v >= 0, 'a number ≥ 0');
  const topP = num('top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const topK = num('top_k', (v) => Number.isInteger(v) && v >= 0, 'an integer ≥ 0');
  const repetitionPenalty = num('repetition_penalty', (v) => v > 0, 'a number > 0');
  const maxNewTokens = num('max_new_tokens', (v) => Number.isInteger(v) && v > 0, 'an integer > 0');

  const defaults: GenerationDefaults = {};
  const mentionsSampling = [r.do_sample, temperature, topP, topK].some((v) => v !== undefined && v !== null);
  if (mentionsSampling) {
    if (r.do_sample === true && temperature !== 0) {
      defaults.temperature = temperature ?? HF_SAMPLING_DEFAULTS.temperature;
      defaults.topP = topP ?? HF_SAMPLING_DEFAULTS.topP;
      defaults.topK = topK ?? HF_SAMPLING_DEFAULTS.topK;
    } else {
      defaults.temperature = 0;
    }
  }
  if (repetitionPenalty !== undefined) defaults.repetitionPenalty = repetitionPenalty;
  if (maxNewTokens !== undefined) defaults.maxNewTokens = maxNewTokens;

  const bosTokenId = id('bos_token_id');
  const padTokenId = id('pad_token_id');
  return { eosTokenIds, ...(bosTokenId !== undefined && { bosTokenId }), ...(padTokenId !== undefined && { padTokenId }), defaults };
}
