/**
 * A policy the lab can roll out and ask for text, whether it is the lab's own model or an
 * OpenAI-compatible endpoint (docs/engines.md). Evaluation, inference and TIRGen take a PolicyModel;
 * either way Python runs in the lab's sandbox.
 *
 * - local: token-level rollouts (runRollouts: batched decoding, masks, log-probabilities), and
 *   text through LocalModel (batched too).
 * - endpoint: text-level rollouts (textRollouts) over the OpenAI client, many requests in flight.
 */
import type { Transformer } from '../model/transformer';
import type { Tokenizer } from '../tokenizer/types';
import type { Executor } from '../sandbox/types';
import { encodePrompt, instructionText, type PromptOptions } from '../tir/prompt';
import { tirPrompt } from '../tir/format';
import { runRollouts, type RolloutSettings } from '../tir/rollout';
import { textRollouts } from '../tir/text-rollout';
import type { TrajectoryRecord } from '../tir/types';
import { EndpointModel, type EndpointConfig } from './client';
import { LocalModel } from './local';
import type { Prompt, TextModel } from './types';

/** One rollout to make: which question, in which group. */
export interface PolicyRequest {
  id: string;
  groupId: string;
  problemId: string;
  question: string;
  reference: string;
}

export interface PolicyRolloutEnv {
  executor: Executor;
  signal?: AbortSignal;
  /** Rollouts finished so far of this call. */
  onProgress?: (finished: number, total: number) => void;
  /** Local decoding: a token was produced (stop checks hook here). */
  onToken?: () => void;
}

export interface PolicyModel {
  readonly kind: 'local' | 'endpoint';
  readonly label: string;
  /** Plain completions (TIRGen's actor and critic, the OpenAI server). */
  readonly text: TextModel;
  /** TIR rollouts of the requests, Python run by the lab. Records are not graded. */
  rollouts(requests: PolicyRequest[], settings: RolloutSettings & { instruction: string | PromptOptions }, env: PolicyRolloutEnv): Promise<TrajectoryRecord[]>;
  /** Rollouts that run at once: a local batch's rows, an endpoint's requests in flight. */
  readonly parallel: number;
  /** Prompt length in tokens of a question, where the tokenizer is known (local models). */
  promptTokens?(question: string, instruction: string | PromptOptions): number;
  /** The model's context in tokens, where known. */
  readonly contextLength?: number;
}

export class LocalPolicy implements PolicyModel {
  readonly kind = 'local' as const;
  readonly text: LocalModel;
  constructor(
    readonly model: Transformer,
    readonly tokenizer: Tokenizer,
    readonly label: string,
    /** Rollouts per batch: bounds memory (the KV cache holds one row per rollout). */
    readonly parallel = 64,
  ) {
    this.text = new LocalModel(model, tokenizer, label);
  }

  get contextLength(): number {
    return this.model.cfg.max_position_embeddings;
  }

  promptTokens(question: string, instruction: string | PromptOptions): number {
    return encodePrompt(this.tokenizer, question, instruction).length;
  }

  async rollouts(requests: PolicyRequest[], s: RolloutSettings & { instruction: string | PromptOptions }, env: PolicyRolloutEnv): Promise<TrajectoryRecord[]> {
    const records: TrajectoryRecord[] = [];
    for (let i = 0; i < requests.length; i += this.parallel) {
      const part = requests.slice(i, i + this.parallel);
      const out = await runRollouts(
        {
          model: this.model,
          tokenizer: this.tokenizer,
          executor: env.executor,
          signal: env.signal,
          onToken: env.onToken && (() => env.onToken!()),
          onProgress: (done) => env.onProgress?.(i + done, requests.length),
        },
        part.map((r) => ({ ...r, level: 'trajectory' as const, promptTokens: encodePrompt(this.tokenizer, r.question, s.instruction) })),
        { ...s, seed: s.seed + i },
      );
      records.push(...out.records);
    }
    return records;
  }
}

export interface EndpointPolicyConfig extends EndpointConfig {
  /** Send the question as a chat (the server applies the model's template; default) or as raw text. */
  prompt?: 'chat' | 'text';
}

export class EndpointPolicy implements PolicyModel {
  readonly kind = 'endpoint' as const;
  readonly text: EndpointModel;
  readonly label: string;
  readonly parallel: number;
  constructor(readonly config: EndpointPolicyConfig) {
    this.text = new EndpointModel(config);
    this.label = this.text.label;
    this.parallel = config.concurrency ?? 16;
  }

  /** A question's prompt: the TIR prompt as the user's chat turn (the server applies the template), or as raw text. */
  prompt(question: string, instruction: string | PromptOptions): Prompt {
    const user = tirPrompt(question, instructionText(instruction));
    return (this.config.prompt ?? 'chat') === 'chat' ? [{ role: 'user', content: user }] : `${user}\n`;
  }

  rollouts(requests: PolicyRequest[], s: RolloutSettings & { instruction: string | PromptOptions }, env: PolicyRolloutEnv): Promise<TrajectoryRecord[]> {
    return textRollouts(
      this.text,
      requests.map((r) => ({ ...r, prompt: this.prompt(r.question, s.instruction) })),
      s,
      { executor: env.executor, signal: env.signal, onProgress: env.onProgress },
    );
  }
}
