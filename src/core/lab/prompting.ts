/**
 * A loaded model's own prompt format, stop ids and sampling defaults as the lab shows and uses them
 * (docs/models.md#prompts-and-stop-tokens). A single answer takes what its request sets and fills
 * the rest from the model's files; RL rollouts and evaluations keep the run config's settings, so
 * their numbers stay comparable with THOR's and ToRL's.
 */
import type { RunConfig, RunConfigInput } from '../config/schema';
import type { Prompt } from '../llm/types';
import { stopTokenIds } from '../engine/stop';
import type { ModelConfig } from '../model/config';
import { TIR_INSTRUCTION } from '../tir/format';
import { renderPrompt } from '../tir/prompt';
import type { RolloutSettings } from '../tir/rollout';
import { HFTokenizer } from '../tokenizer/hf';
import type { Tokenizer } from '../tokenizer/types';
import type { InferPrompt, ModelPrompting } from './api';

/** The longest response a model's max_new_tokens may ask of a single answer (the run config's limit). */
const MAX_RESPONSE_TOKENS = 32_768;

export function promptFormat(tokenizer: Tokenizer): ModelPrompting['format'] {
  return tokenizer.kind === 'char' ? 'char' : tokenizer.hasChatTemplate ? 'chat' : 'base';
}

export function modelPrompting(config: ModelConfig, tokenizer: Tokenizer): ModelPrompting {
  return {
    format: promptFormat(tokenizer),
    thinkingSwitch: tokenizer instanceof HFTokenizer && tokenizer.hasChatTemplate && (tokenizer.chatTemplate ?? '').includes('enable_thinking'),
    stopTokens: stopTokenIds(config.eos_token_id, tokenizer.eosIds).map((id) => ({ id, text: tokenizer.decode([id]) })),
    defaults: tokenizer.generationDefaults,
    instruction: defaultInstruction(tokenizer),
  };
}

/** The tiny model learned the format in pretraining (no instruction); a Hugging Face model is asked in ToRL's / THOR's words. */
function defaultInstruction(tokenizer: Tokenizer): string {
  return tokenizer.kind === 'hf' ? TIR_INSTRUCTION : '';
}

/**
 * A single answer's prompt text and rollout settings: what `input` sets wins; the instruction,
 * temperature, top-p, top-k, repetition penalty and response budget it leaves out come from the
 * model's files.
 */
export function singleAnswer(tokenizer: Tokenizer, question: string, input: RunConfigInput | undefined, c: RunConfig, base: RolloutSettings): { prompt: InferPrompt; settings: RolloutSettings } {
  const d = tokenizer.generationDefaults;
  const instruction = input?.rollout?.instruction ?? defaultInstruction(tokenizer);
  const prompt: InferPrompt = { text: renderPrompt(tokenizer, question, { instruction, enableThinking: c.infer.enableThinking }), format: promptFormat(tokenizer) };
  const settings: RolloutSettings = {
    ...base,
    temperature: input?.infer?.temperature ?? d.temperature ?? base.temperature,
    topP: input?.infer?.topP ?? d.topP ?? base.topP,
    topK: d.topK ?? base.topK,
    ...(d.repetitionPenalty !== undefined && { repetitionPenalty: d.repetitionPenalty }),
    maxResponseTokens: input?.rollout?.maxResponseTokens ?? (d.maxNewTokens === undefined ? base.maxResponseTokens : Math.min(d.maxNewTokens, MAX_RESPONSE_TOKENS)),
  };
  return { prompt, settings };
}

/** What an endpoint is sent: its chat turns (the server applies the model's template) or raw text. */
export function endpointPrompt(sent: Prompt): InferPrompt {
  if (typeof sent === 'string') return { text: sent, format: 'text' };
  return { text: sent.map((m) => `${m.role}: ${m.content}`).join('\n\n'), format: 'messages' };
}
