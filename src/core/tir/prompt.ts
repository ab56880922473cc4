import type { Tokenizer } from '../tokenizer/types';
import { tirPrompt } from './format';

/**
 * The prompt tokens of a question: the user turn through the tokenizer's chat template, ending with
 * the assistant's generation prompt. `instruction` is the ToRL/THOR TIR instruction ('' for the tiny
 * model, which learned the format from its pretraining data and has a short context).
 */
export function encodePrompt(tokenizer: Tokenizer, question: string, instruction: string): number[] {
  const text = tokenizer.applyChatTemplate([{ role: 'user', content: tirPrompt(question, instruction) }], true);
  return tokenizer.encode(text);
}
