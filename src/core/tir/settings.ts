/**
 * The rollout loop's settings from a run config, in one place: RL rollouts, held-out evaluation,
 * single answers and THOR's step level all start here and differ only in what they say they change.
 */
import type { RunConfig } from '../config/schema';
import type { RolloutSettings } from './rollout';

/** RL rollouts of a run: the rollout section (docs/tir-format.md), sampled with `seed`. */
export function rolloutSettings(c: RunConfig, seed: number): RolloutSettings {
  const r = c.rollout;
  return {
    maxToolCalls: r.maxToolCalls,
    maxResponseTokens: r.maxResponseTokens,
    temperature: r.temperature,
    topP: r.topP,
    topK: r.topK,
    seed,
    toolTimeoutMs: r.toolTimeoutMs,
    observation: { maxChars: r.observationMaxChars, head: Math.floor(r.observationMaxChars / 2), tail: Math.floor(r.observationMaxChars / 2) },
    statefulPython: r.statefulPython,
  };
}

/** Self-correction settings (docs/self-correction.md) when `on`, else none. */
export function selfCorrectionSettings(c: RunConfig, on: boolean): RolloutSettings['selfCorrection'] {
  return on ? { backtrackTokens: c.selfCorrection.backtrackTokens, maxRetries: c.selfCorrection.maxRetries } : undefined;
}

/** A single answer: the rollout section sampled as the infer section says. */
export function inferenceSettings(c: RunConfig): RolloutSettings {
  return {
    ...rolloutSettings(c, c.seed),
    temperature: c.infer.temperature,
    topP: c.infer.topP,
    topK: 0,
    selfCorrection: selfCorrectionSettings(c, c.infer.selfCorrection),
  };
}
