import type { GenerationDefaults } from './generation-config';

/** What the engine, the TIR loop and the trainers need from a tokenizer. */
export interface Tokenizer {
  readonly kind: 'char' | 'hf';
  /** Number of ids the tokenizer can produce (the model's vocab_size must be at least this). */
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** Id of a token string (special tokens included), if it exists. */
  tokenToId(token: string): number | undefined;
  readonly eosId: number | undefined;
  readonly bosId: number | undefined;
  readonly padId: number | undefined;
  /**
   * Every id that ends a turn as the tokenizer's folder says: its eos token and generation_config.json's
   * eos_token_id (one or a list). Generation stops on these and config.json's (docs/models.md#prompts-and-stop-tokens).
   */
  readonly eosIds: readonly number[];
  /** The folder's sampling defaults (generation_config.json); none for a folder without one. */
  readonly generationDefaults: GenerationDefaults;
  /** The tokenizer has a chat format (a base model's Hugging Face tokenizer may have none). */
  readonly hasChatTemplate: boolean;
  /** Text a prompt without a chat template starts with (the BOS token of a tokenizer that adds one). */
  readonly basePromptStart?: string;
  /** Renders a chat into the prompt text the model expects (chat template where the tokenizer has one). */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt?: boolean, options?: ChatTemplateOptions): string;
  /** The files that recreate this tokenizer in a model folder, by file name. */
  toFiles(): Record<string, string>;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Variables some chat templates read besides the messages. */
export interface ChatTemplateOptions {
  /** Qwen3's switch: false renders an empty think block after the generation prompt; absent or true lets the model think first. */
  enableThinking?: boolean;
}
