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
  /** Renders a chat into the prompt text the model expects (chat template where the tokenizer has one). */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt?: boolean): string;
  /** The files that recreate this tokenizer in a model folder, by file name. */
  toFiles(): Record<string, string>;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
