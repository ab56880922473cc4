/**
 * One way to ask a language model for text, whether the model is the lab's own policy (a Transformer
 * in this process) or an OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp, Ollama, the lab's own
 * server): docs/engines.md. Python tool calls are never the model's business: the lab runs them
 * (tir/text-rollout.ts) and feeds their output back as text.
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A prompt: raw text (completions) or chat messages (chat completions). */
export type Prompt = string | ChatMessage[];

export interface SamplingRequest {
  /** Most new tokens per choice. */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus mass; 1 = off. */
  topP?: number;
  /** Candidates kept; 0 = off. Sent as the non-standard `top_k` field, which vLLM, SGLang and llama.cpp read. */
  topK?: number;
  /** Strings that end a choice; the stop string itself is not part of the text (OpenAI's rule). */
  stop?: string[];
  /** Choices for the one prompt. */
  n?: number;
  seed?: number;
  /** Ask for the log-probability of each generated token (and this many alternatives; 0 = the chosen token only). */
  logprobs?: number;
  /**
   * Chat prompts only: the last message is the assistant's unfinished turn, to be continued rather
   * than answered (vLLM's and the lab server's `continue_final_message`).
   */
  continueFinal?: boolean;
}

export type CompletionFinish = 'stop' | 'length';

export interface TokenLogprob {
  token: string;
  logprob: number;
  top?: { token: string; logprob: number }[];
}

export interface Choice {
  text: string;
  /** "stop": a stop string, end of sequence or the model's own end; "length": the token budget ran out. */
  finishReason: CompletionFinish;
  /**
   * The stop string that ended the choice, when the engine says (vLLM's `stop_reason`, SGLang's
   * `matched_stop`, the lab server); null when it says none did (the model's own end, or the budget);
   * absent when the engine does not say.
   */
  stopString?: string | null;
  logprobs?: TokenLogprob[];
}

export interface Completion {
  choices: Choice[];
  usage?: { promptTokens: number; completionTokens: number };
}

export interface CompleteOptions {
  signal?: AbortSignal;
  /** Streaming: text as it arrives, per choice. */
  onText?: (choice: number, delta: string) => void;
}

/** A model the lab can ask for text: the local policy or an endpoint. */
export interface TextModel {
  /** What to call it in logs and reports ("thor-tiny (shipped)", "Qwen2.5-7B @ http://…"). */
  readonly label: string;
  readonly kind: 'local' | 'endpoint';
  complete(prompt: Prompt, request: SamplingRequest, options?: CompleteOptions): Promise<Completion>;
  /** Throws (a LabError naming the field) when the request cannot be served, before anything is queued; where the model can tell. */
  check?(prompt: Prompt, request: SamplingRequest): void;
}

