/**
 * Greedy held-out evaluation of a chain-of-thought model (docs/tirgen.md, "The chain-of-thought
 * actor"): each question's response is generated greedily; it is correct when its last \boxed{}
 * equals the task's answer, and it follows the step format when it has no code fence, at least one
 * step line before the answer, and ends with `\boxed{…}`.
 */
import type { Task } from '../data/tasks';
import { generate } from '../engine/generation';
import type { Transformer } from '../model/transformer';
import { extractBoxed } from '../reward/extract';
import type { Tokenizer } from '../tokenizer/types';
import { encodePrompt } from '../tir/prompt';

export interface CotEval {
  accuracy: number;
  format_ratio: number;
  samples: { question: string; answer: string; response: string; correct: boolean; format: boolean }[];
}

/** True when a response is plain-text steps ending in a boxed answer. */
export function followsCotFormat(response: string): boolean {
  const text = response.trimEnd();
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return !text.includes('```') && lines.length >= 2 && /\\boxed\{[^{}]*\}\.?$/.test(text);
}

export async function evaluateCot(model: Transformer, tokenizer: Tokenizer, tasks: readonly Pick<Task, 'question' | 'answer'>[], maxPositions: number): Promise<CotEval> {
  const prompts = tasks.map((t) => encodePrompt(tokenizer, t.question, ''));
  const samples: CotEval['samples'] = [];
  // Rows of similar budget together; each row may use the rest of the context.
  const results = await generate(
    model,
    prompts.map((prompt) => ({ prompt, maxNewTokens: Math.max(1, maxPositions - prompt.length) })),
    { maxNewTokens: maxPositions, temperature: 0, topK: 1, topP: 1, seed: 0, decode: tokenizer },
  );
  results.forEach((r, i) => {
    const response = tokenizer.decode(r.tokens.filter((t) => t !== tokenizer.eosId));
    const boxed = extractBoxed(response);
    samples.push({ question: tasks[i].question, answer: tasks[i].answer, response, correct: boxed?.trim() === tasks[i].answer, format: followsCotFormat(response) });
  });
  const n = Math.max(1, samples.length);
  return { accuracy: samples.filter((s) => s.correct).length / n, format_ratio: samples.filter((s) => s.format).length / n, samples };
}
