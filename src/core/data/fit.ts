/**
 * Context fit: which questions a model can answer at all. A question fits when its prompt (as the
 * evaluation builds it: chat template, instruction, question) leaves at least `minNewTokens` of the
 * model's context to generate in (docs/datasets.md#context-fit). Pure: the caller passes the prompt
 * builder bound to the model's tokenizer.
 */

/** Room to generate a question needs by default: enough for a short worked answer ending in \boxed{}. */
export const DEFAULT_MIN_NEW_TOKENS = 32;

export interface FitOptions {
  /** Prompt token count of a question, as evaluation encodes it. */
  promptTokens: (question: string) => number;
  /** The model's context (max_position_embeddings). */
  contextLength: number;
  /** Tokens that must be left to generate. */
  minNewTokens: number;
}

export interface FitReport {
  total: number;
  /** Questions that fit. */
  fit: number;
  contextLength: number;
  minNewTokens: number;
  /** The longest prompt that fits: contextLength − minNewTokens. */
  maxPromptTokens: number;
  /** Prompt tokens of each question, in the order given. */
  promptTokens: number[];
  /** Indices of the questions that do not fit, in order. */
  tooLong: number[];
}

export function checkContextFit(questions: readonly string[], options: FitOptions): FitReport {
  const { contextLength, minNewTokens } = options;
  if (!(Number.isInteger(contextLength) && contextLength > 0)) throw new RangeError(`context length must be a whole number > 0, found ${contextLength}`);
  if (!(Number.isInteger(minNewTokens) && minNewTokens >= 1)) throw new RangeError(`room to generate must be a whole number ≥ 1, found ${minNewTokens}`);
  const maxPromptTokens = contextLength - minNewTokens;
  const promptTokens = questions.map((q) => options.promptTokens(q));
  const tooLong: number[] = [];
  promptTokens.forEach((n, i) => {
    if (n > maxPromptTokens) tooLong.push(i);
  });
  return { total: questions.length, fit: questions.length - tooLong.length, contextLength, minNewTokens, maxPromptTokens, promptTokens, tooLong };
}

/** The room to generate an evaluation asks for: the default, or less when its answers are capped shorter. */
export function minNewTokensFor(maxResponseTokens: number, minNewTokens = DEFAULT_MIN_NEW_TOKENS): number {
  return Math.max(1, Math.min(minNewTokens, maxResponseTokens));
}

/** "1200 of 1319 questions fit the model's context (256 tokens, ≥ 32 left to generate); the longest prompt has 410 tokens." */
export function describeFit(r: FitReport, model = "the loaded model's"): string {
  const head = `${r.fit} of ${r.total} question${r.total === 1 ? '' : 's'} fit ${model} context (${r.contextLength} tokens, at least ${r.minNewTokens} left to generate)`;
  if (r.tooLong.length === 0) return head;
  const longest = Math.max(...r.tooLong.map((i) => r.promptTokens[i]));
  return `${head}; ${r.tooLong.length} longer than ${r.maxPromptTokens} prompt tokens (the longest ${longest}) ${r.tooLong.length === 1 ? 'is' : 'are'} skipped`;
}
