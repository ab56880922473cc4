/**
 * Plain records of what happened in a rollout: the rollout loop produces them, the losses, filters,
 * metrics, rollout dumps and the trajectory viewer read them. Everything is JSON-serialisable and
 * indexed token-in/token-out (masks are never rebuilt by re-tokenising text): docs/tir-format.md.
 */
import type { FinishReason } from '../engine/generation';
import type { RunStatus } from '../sandbox/types';

export type { FinishReason };

/** Sandbox outcome of one code block. */
export type ExecutionStatus = RunStatus;

/** One executed code block (one round's tool call). */
export interface ExecutionRecord {
  /** 0-based tool call index within the trajectory. */
  round: number;
  code: string;
  status: ExecutionStatus;
  stdout: string;
  stderr: string;
  /** Last traceback line when status is "error". */
  errorLine?: string;
  durationMs: number;
  /** Output was cut by the sandbox's cap. */
  truncated: boolean;
  /** The observation text the model was shown (stdout head + tail, last error line, or a timeout note). */
  observation: string;
  /** The code ran: exit ok and non-empty stdout (codeSucceeded in sandbox/observation.ts). */
  succeeded: boolean;
  /** Response-token index where the opening ```python fence of this block starts (step-level cuts start here). */
  codeTokenStart: number;
  /** Response-token index just past the closing fence. */
  codeTokenEnd: number;
}

/** A span of the response: policy text, a code block (with its fences) or an observation (forced). */
export interface Segment {
  kind: 'text' | 'code' | 'output';
  text: string;
  /** Response-token span [tokenStart, tokenEnd). */
  tokenStart: number;
  tokenEnd: number;
}

/** An attempt thrown away by THOR's self-correction, kept for display. */
export interface DiscardedAttempt {
  /** Response-token index the generation was rewound to. */
  rewindTo: number;
  /** Tokens and text that were discarded (from rewindTo on, including the failed code). */
  tokens: number[];
  text: string;
  execution: ExecutionRecord;
  /** 1-based retry count for this failing step. */
  retry: number;
}

/** One sampled trajectory (episode level) or one step-level continuation. */
export interface TrajectoryRecord {
  id: string;
  /** Trajectories sampled for the same prompt share a group (GRPO's baseline). */
  groupId: string;
  /** "trajectory" for episode-level rollouts, "step" for THOR's step-level continuations. */
  level: 'trajectory' | 'step';
  problemId: string;
  question: string;
  reference: string;
  /** Prompt token ids (for step-level samples: question plus the kept prefix). */
  promptTokens: number[];
  /** Response token ids, sampled and forced, in order. */
  tokens: number[];
  /** 1 where the policy sampled the token, 0 where it was forced (tool observations). */
  sampledMask: number[];
  /** 1 where the token counts in the loss: sampled, and not removed by overlong or other masking. */
  lossMask: number[];
  /** log π_old of each response token under the rollout policy (0 at forced tokens). */
  logprobs: number[];
  segments: Segment[];
  executions: ExecutionRecord[];
  /** Extracted final answer, or null when none was found. */
  finalAnswer: string | null;
  correct: boolean;
  reward: number;
  /** Generation hit the token budget before finishing. */
  truncated: boolean;
  finishReason: FinishReason;
  /** Self-correction's discarded attempts, in order. */
  discarded: DiscardedAttempt[];
  /**
   * Rolled out through a text-only model (an endpoint): `tokens` and the masks are empty, segment and
   * code spans count characters, and this is the server's count of generated tokens.
   */
  generatedTokens?: number;
  /** "chars" when spans count characters (text rollouts); tokens otherwise. */
  spans?: 'chars';
  /** Step level: where the sample came from. */
  stepOrigin?: {
    trajectoryId: string;
    /** Index into that trajectory's executions of the failed code action that was regenerated. */
    executionIndex: number;
    /** Response-token index of the cut in the source trajectory (fence start minus L_suf). */
    cutAt: number;
  };
}

/** Response length in tokens (sampled and forced). */
export const responseLength = (r: Pick<TrajectoryRecord, 'tokens' | 'generatedTokens'>): number => r.generatedTokens ?? r.tokens.length;

/** Some execution of the trajectory did not succeed. */
export const hasFailedExecution = (r: TrajectoryRecord): boolean => r.executions.some((e) => !e.succeeded);
