/**
 * The Inference panel's view of a model's own prompt files (docs/models.md#prompts-and-stop-tokens):
 * the prompt text with its special tokens marked, and the single-answer settings a model's
 * generation_config.json gives by default.
 */
import type { InferPrompt, ModelSummary } from '../../core/lab/index';
import type { SettingValues } from './runsettings';

type Prompting = NonNullable<ModelSummary['prompting']>;

/** Special tokens as chat templates write them: <|im_start|>, <|bos|>, <|eot_id|>, <think>, </tool_call>, <s>. */
const SPECIAL = /<\|[^|\s<>]{1,48}\|>|<\/?(?:think|tool_call|tool_response|s)>/g;

/** The prompt in pieces, special tokens apart, so the view can mark them; joined they give the text back. */
export function promptPieces(text: string): { text: string; special: boolean }[] {
  const pieces: { text: string; special: boolean }[] = [];
  let at = 0;
  for (const m of text.matchAll(SPECIAL)) {
    if (m.index > at) pieces.push({ text: text.slice(at, m.index), special: false });
    pieces.push({ text: m[0], special: true });
    at = m.index + m[0].length;
  }
  if (at < text.length) pieces.push({ text: text.slice(at), special: false });
  return pieces;
}

/** What the prompt is, in a few words. */
export function promptFormatLabel(format: InferPrompt['format']): string {
  return {
    chat: "the model's chat template",
    base: "ToRL's plain prompt (the model has no chat template)",
    char: "the tiny model's chat format",
    messages: 'chat messages: the server applies its template',
    text: 'raw text sent to the server',
  }[format];
}

/**
 * The form's values with the model's own defaults where it has them: temperature and top-p from
 * generation_config.json, its max_new_tokens as the response budget; the thinking switch back to
 * its default (on). Without a model's defaults the run config's stay.
 */
export function withModelDefaults(values: SettingValues, schemaDefaults: SettingValues, prompting: Prompting | undefined): SettingValues {
  const out: SettingValues = { ...values };
  const d = prompting?.defaults ?? {};
  const set = (path: string, value: number | boolean | undefined) => {
    if (!(path in out)) return;
    out[path] = value === undefined ? schemaDefaults[path] : typeof value === 'number' ? String(value) : value;
  };
  set('infer.temperature', d.temperature);
  set('infer.topP', d.topP);
  set('rollout.maxResponseTokens', d.maxNewTokens);
  set('infer.enableThinking', true);
  return out;
}

/** The model's sampling defaults in words. */
export function describeModelDefaults(prompting: Prompting): string {
  const d = prompting.defaults;
  const parts = [
    d.temperature !== undefined && (d.temperature === 0 ? 'greedy' : `temperature ${d.temperature}`),
    d.topP !== undefined && `top-p ${d.topP}`,
    d.topK !== undefined && d.topK > 0 && `top-k ${d.topK}`,
    d.maxNewTokens !== undefined && `${d.maxNewTokens} new tokens`,
    d.repetitionPenalty !== undefined && d.repetitionPenalty !== 1 && `repetition penalty ${d.repetitionPenalty}`,
  ].filter((p): p is string => typeof p === 'string');
  return parts.length > 0 ? parts.join(', ') : 'none: the settings below apply';
}
