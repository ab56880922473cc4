import type { ChatTemplateOptions, Tokenizer } from '../tokenizer/types';
import { tirPrompt } from './format';

/** How a question becomes the prompt text (docs/models.md#prompts-and-stop-tokens). */
export interface PromptOptions extends ChatTemplateOptions {
  /** The ToRL/THOR TIR instruction before the question ('' for the tiny model, which learned the format from its pretraining data and has a short context). */
  instruction: string;
}

/**
 * ToRL's prompt for base models, which have no chat template: the TIR prompt as the user's line of a
 * plain-text conversation, ending where the assistant begins (docs/models.md#base-models).
 */
export function basePrompt(userText: string): string {
  return `A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\nUser: ${userText}\nAssistant:\n`;
}

/**
 * The prompt text of a question, exactly as the model sees it: the TIR prompt (instruction, newline,
 * question) as the user turn of the tokenizer's chat template, rendered with the generation prompt;
 * a tokenizer without a chat template gets ToRL's base prompt (after its BOS token where it adds one).
 */
export function renderPrompt(tokenizer: Tokenizer, question: string, options: string | PromptOptions): string {
  const { instruction, enableThinking } = typeof options === 'string' ? { instruction: options, enableThinking: undefined } : options;
  const user = tirPrompt(question, instruction);
  if (!tokenizer.hasChatTemplate) return (tokenizer.basePromptStart ?? '') + basePrompt(user);
  return tokenizer.applyChatTemplate([{ role: 'user', content: user }], true, enableThinking === undefined ? {} : { enableThinking });
}

/** The instruction text of prompt options given either way. */
export function instructionText(options: string | PromptOptions): string {
  return typeof options === 'string' ? options : options.instruction;
}

/** The prompt options of a run's rollouts, training samples and evaluation: its instruction and thinking switch. */
export function rolloutPrompt(c: { rollout: { instruction: string; enableThinking: boolean } }): PromptOptions {
  return { instruction: c.rollout.instruction, enableThinking: c.rollout.enableThinking };
}

/** The prompt tokens of a question (renderPrompt, encoded). */
export function encodePrompt(tokenizer: Tokenizer, question: string, options: string | PromptOptions): number[] {
  return tokenizer.encode(renderPrompt(tokenizer, question, options));
}
