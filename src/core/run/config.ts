/**
 * RunConfig: every knob of a training run, with its default and where the default comes from
 * (THOR, ToRL, DAPO, Dr. GRPO, verl, TRL, nanochat). Lengths and group sizes are scaled down
 * for small models where said; every published number stays reachable. A run is reproducible from
 * this config, its seed and the code version.
 */
import { z } from 'zod';
import { LabError } from '../errors';
import { MAX_DIFFICULTY, TASK_KINDS } from '../data/tasks';
import { LOSS_AGGREGATIONS } from '../rl/losses';

const int = () => z.number().int();

const TaskConfig = z.strictObject({
  source: z.enum(['synthetic', 'file']).default('synthetic').describe('synthetic generators (src/core/data/tasks.ts) or a JSON-lines file'),
  kinds: z.array(z.enum(TASK_KINDS)).min(1).default([...TASK_KINDS]).describe('synthetic task families; default all'),
  difficulties: z
    .array(int().min(1).max(MAX_DIFFICULTY))
    .min(1)
    .default([1, 2, 3])
    .describe('synthetic difficulty grades; lab default: the grades a tiny model can reach'),
  trainSize: int().positive().default(2000).describe('training questions drawn from the generators'),
  testSize: int().positive().default(200).describe('held-out questions (a split that never overlaps training)'),
  testFraction: z.number().gt(0).lt(1).default(0.2).describe('share of the question space reserved for the test split'),
  file: z.string().optional().describe('JSON-lines training file when source = file (GSM8K or MATH style)'),
  maxQuestionTokens: int().positive().default(128).describe('context budget for a question; longer ones are skipped and counted'),
});

const RolloutConfig = z.strictObject({
  groupSize: int().positive().default(8).describe('G, trajectories per question (THOR, ToRL, nanochat: 16; small runs 4-8)'),
  promptsPerStep: int().positive().default(8).describe('questions per step (THOR/ToRL at 7B: 128; scaled for a CPU)'),
  maxToolCalls: int().min(0).default(2).describe('C, code executions per trajectory (ToRL: 1; THOR: 5; tiny runs 1-3); 0 = no tools'),
  maxResponseTokens: int().positive().default(256).describe('response budget incl. tool output (published 3072-4096; scaled for a char-level model)'),
  temperature: z.number().min(0).default(1.0).describe('sampling temperature (THOR, ToRL: 1.0)'),
  topP: z.number().gt(0).max(1).default(1.0).describe('nucleus sampling (THOR, ToRL: 1.0 = off)'),
  topK: int().min(0).default(0).describe('top-k sampling; 0 = off (verl default -1 / off)'),
  toolTimeoutMs: int().positive().default(5000).describe('per-execution timeout (THOR TIRGen: 30 s; lab snippets are short)'),
  observationMaxChars: int().positive().default(256).describe('observation longer than this shows first half + "..." + last half (ToRL/THOR: 128 + 128)'),
  instruction: z.string().default('').describe("text before the question; '' for the tiny model (its pretraining taught the format), ToRL/THOR's TIR instruction for real models"),
  statefulPython: z.boolean().default(false).describe('one Python namespace per trajectory; default stateless as SandboxFusion'),
});

const RewardConfig = z.strictObject({
  scheme: z.enum(['thor', 'torl']).default('thor').describe("THOR: 1 correct / 0 otherwise; ToRL: +1 / -1"),
  codeFailurePenalty: z.boolean().default(false).describe('ToRL: extra -0.5 when code failed; off (it did not help in their ablation)'),
  repetitionPenalty: z.boolean().default(true).describe('THOR: reward 0 on detected repetition'),
  repetitionNgram: int().positive().default(20).describe('THOR: 20-character n-grams'),
  repetitionMaxCount: int().positive().default(20).describe('THOR: repetition when one n-gram occurs more than 20 times'),
});

const OptimConfig = z.strictObject({
  lr: z.number().gt(0).default(1e-4).describe('AdamW learning rate (THOR/ToRL at 7B: 1e-6; tiny models need far more, nanochat RL ~1e-4)'),
  schedule: z.enum(['constant', 'linear', 'cosine']).default('constant').describe('learning-rate schedule after warmup (verl: constant)'),
  warmupSteps: int().min(0).default(0).describe('linear warmup steps (verl: 0)'),
  minLrRatio: z.number().min(0).max(1).default(0).describe('final lr / lr for linear and cosine schedules'),
  updatesPerBatch: int().positive().default(1).describe('optimiser steps per rollout batch (1 = on-policy; THOR off-policy variant > 1)'),
  microBatchTokens: int().positive().default(1024).describe('padded tokens per micro-batch in updates (bounds memory; short rows batch together, which keeps attention cheap)'),
  gradClip: z.number().gt(0).default(1.0).describe('global gradient-norm clip (verl: 1.0)'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW weight decay (verl actor: 0.01)'),
  beta1: z.number().min(0).lt(1).default(0.9).describe('Adam β1 (verl: 0.9)'),
  beta2: z.number().min(0).lt(1).default(0.999).describe('Adam β2 (verl: 0.999)'),
});

const GrpoConfig = z.strictObject({
  normalizeStd: z.boolean().default(true).describe('divide advantages by the group std (GRPO); false = Dr. GRPO'),
  advantageEps: z.number().gt(0).default(1e-6).describe('ε in (R - mean) / (std + ε) (verl: 1e-6)'),
  clipEpsLow: z.number().gt(0).lt(1).default(0.2).describe('ε_low, ratio clipped below at 1 - ε_low (PPO, DAPO: 0.2)'),
  clipEpsHigh: z.number().gt(0).default(0.28).describe('ε_high, ratio clipped above at 1 + ε_high (DAPO clip-higher: 0.28)'),
  dualClipC: z.number().gt(1).nullable().default(3.0).describe('dual clip cap for negative advantages (verl: 3.0); null = off'),
  klCoef: z.number().min(0).default(0).describe('KL to a frozen reference (THOR, ToRL: 0 = off)'),
  klEstimator: z.enum(['k1', 'k2', 'k3']).default('k3').describe('KL estimator when klCoef > 0 (verl low_var_kl = k3)'),
  entropyCoef: z.number().min(0).default(0).describe('entropy bonus coefficient (verl: 0)'),
  nllAlpha: z.number().min(0).default(0.01).describe('THOR: α·NLL on positive-advantage samples, α = 0.01'),
  aggregation: z.enum(LOSS_AGGREGATIONS).default('token-mean').describe('loss aggregation (THOR, DAPO, verl: token-mean)'),
  dynamicSampling: z.boolean().default(true).describe('DAPO: drop zero-variance groups and sample more (THOR does too)'),
  maxExtraRounds: int().min(0).default(2).describe('extra sampling rounds to refill the batch (DAPO max_num_gen_batches; scaled)'),
  failureFilter: z.boolean().default(true).describe('THOR: trajectories with failed code leave the trajectory loss'),
  minGroupSurvival: z.number().min(0).max(1).default(0.5).describe('THOR: keep a group only if this share survives the filter'),
  overlong: z.enum(['none', 'mask', 'penalty']).default('none').describe('truncated responses: keep, mask from the loss, or DAPO soft penalty (verl: none)'),
  overlongCacheTokens: int().positive().default(64).describe('DAPO soft-penalty ramp length (DAPO: 4096 of 20480; scaled)'),
});

const StepLevelConfig = z.strictObject({
  enabled: z.boolean().default(true).describe('THOR step-level optimisation of failed code; false = plain GRPO'),
  suffixTokens: int().min(0).default(16).describe('L_suf, tokens removed before the failed code fence (THOR: 100 of ~3000; scaled)'),
  groupSize: int().min(2).default(4).describe('G_step, continuations per prefix (lab default, small runs)'),
  maxPrefixes: int().positive().default(8).describe('failed steps regenerated per training step (bounds the cost)'),
});

const SelfCorrectionConfig = z.strictObject({
  backtrackTokens: int().min(0).default(64).describe('tokens backed up from the failed code fence (THOR inference: 500; scaled)'),
  maxRetries: int().min(0).default(4).describe('N_corr, retries per failing step (THOR: 4)'),
});

const EvalConfig = z.strictObject({
  everySteps: int().min(0).default(20).describe('evaluate every N steps; 0 = only before and after'),
  samples: int().positive().default(4).describe('k samples per question for avg@k / maj@k / pass@k (THOR reports avg@4; 1 with temperature 0 = greedy)'),
  temperature: z.number().min(0).default(1.0).describe('sampling temperature at evaluation: 1.0 evaluates the policy as RL samples it (THOR); 0 = greedy with samples = 1 (ToRL)'),
  topP: z.number().gt(0).max(1).default(1.0).describe('nucleus sampling at evaluation'),
  selfCorrection: z.boolean().default(false).describe('THOR self-correction at inference'),
  benchmarks: z.array(z.string()).default([]).describe('extra benchmark files to evaluate (e.g. data/benchmarks/gsm8k-test.jsonl)'),
});

export const RunConfigSchema = z.strictObject({
  seed: int().min(0).default(42).describe('seed of tasks, sampling and initialisation'),
  steps: int().positive().default(50).describe('RL steps'),
  dumpRollouts: z.boolean().default(true).describe('write every step\'s rollouts with their masks to rollouts/*.jsonl'),
  task: TaskConfig.prefault({}),
  rollout: RolloutConfig.prefault({}),
  reward: RewardConfig.prefault({}),
  optim: OptimConfig.prefault({}),
  grpo: GrpoConfig.prefault({}),
  stepLevel: StepLevelConfig.prefault({}),
  selfCorrection: SelfCorrectionConfig.prefault({}),
  eval: EvalConfig.prefault({}),
});

export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

/** The value at a dotted path of the raw input, as text for messages. */
function found(input: unknown, path: readonly PropertyKey[]): string {
  let v: unknown = input;
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v === undefined ? 'nothing' : JSON.stringify(v);
}

function expectedFrom(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected;
    case 'too_small':
      return issue.origin === 'array' ? `at least ${issue.minimum} item(s)` : `a ${issue.origin} ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'array' ? `at most ${issue.maximum} item(s)` : `a ${issue.origin} ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}`;
    case 'unrecognized_keys':
      return 'only known settings';
    default:
      return issue.message;
  }
}

function badConfig(field: string, message: string, expected: string, foundText: string, source?: string, hint?: string): LabError {
  return new LabError('BAD_RUN_CONFIG', message, { file: source, field, expected, found: foundText, hint: hint ?? 'fix the value or remove it to use the default' });
}

/** Combinations that parse field by field but cannot run. */
function checkConsistency(c: RunConfig, source?: string): void {
  const fail = (field: string, message: string, expected: string, value: unknown, hint?: string) => {
    throw badConfig(field, message, expected, JSON.stringify(value), source, hint);
  };
  if (c.rollout.groupSize < 2 && c.grpo.normalizeStd)
    fail('rollout.groupSize', 'a group of one has no standard deviation to normalise by', 'at least 2 with grpo.normalizeStd', c.rollout.groupSize, 'raise rollout.groupSize or set grpo.normalizeStd to false');
  if (c.rollout.temperature === 0 && c.rollout.groupSize > 1)
    fail('rollout.temperature', 'greedy rollouts make every trajectory of a group identical, so no advantage is ever non-zero', 'a temperature > 0', c.rollout.temperature);
  if (c.stepLevel.enabled && c.rollout.maxToolCalls === 0)
    fail('stepLevel.enabled', 'the step level regenerates failed code, and with maxToolCalls = 0 no code ever runs', 'false when rollout.maxToolCalls is 0', c.stepLevel.enabled, 'set stepLevel.enabled to false for a run without tools');
  if (c.stepLevel.suffixTokens >= c.rollout.maxResponseTokens)
    fail('stepLevel.suffixTokens', 'L_suf must be shorter than a response', `less than rollout.maxResponseTokens (${c.rollout.maxResponseTokens})`, c.stepLevel.suffixTokens);
  if (c.grpo.overlong === 'penalty' && c.grpo.overlongCacheTokens >= c.rollout.maxResponseTokens)
    fail('grpo.overlongCacheTokens', 'the soft overlong ramp must fit inside the response budget', `less than rollout.maxResponseTokens (${c.rollout.maxResponseTokens})`, c.grpo.overlongCacheTokens);
  if (c.optim.warmupSteps > c.steps)
    fail('optim.warmupSteps', 'warmup longer than the run', `at most steps (${c.steps})`, c.optim.warmupSteps);
  if (c.eval.samples > 1 && c.eval.temperature === 0)
    fail('eval.samples', 'greedy decoding gives the same answer k times', '1 when eval.temperature is 0', c.eval.samples, 'raise eval.temperature (e.g. 0.6) to draw k different samples');
  if (c.task.source === 'file' && !c.task.file)
    fail('task.file', 'a file-based task set needs a file', 'a path to a JSON-lines file', c.task.file);
}

/** Parses and validates a run config; missing settings take their defaults. `source` names the file in errors. */
export function parseRunConfig(input: unknown, source?: string): RunConfig {
  const result = RunConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    const [issue, ...rest] = result.error.issues;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
    const field = path.map(String).join('.') || '(root)';
    const foundText = issue.code === 'unrecognized_keys' ? `unknown setting "${issue.keys[0]}"` : found(input, issue.path);
    const more = rest.length ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
    const description = knobs().get(field);
    const message = description ? `invalid setting: ${description}${more}` : `invalid run config${more}`;
    const prefix = issue.path.map((k) => `${String(k)}.`).join('');
    const siblings = new Set([...knobs().keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length).split('.')[0]));
    const hint = issue.code === 'unrecognized_keys' ? `known settings here: ${[...siblings].join(', ')}` : undefined;
    throw badConfig(field, message, expectedFrom(issue), foundText, source, hint);
  }
  checkConsistency(result.data, source);
  return result.data;
}

/** The config with every default filled in. */
export function defaultRunConfig(): RunConfig {
  return parseRunConfig({});
}

export interface KnobDoc {
  path: string;
  default: unknown;
  description: string;
}

/** Leaf settings of the schema with their descriptions, by dotted path. */
function knobs(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (shape: Record<string, z.ZodType>, prefix: string) => {
    for (const [key, schema] of Object.entries(shape)) {
      const inner = (schema as unknown as { def: { innerType?: { shape?: Record<string, z.ZodType> } } }).def.innerType;
      if (inner?.shape) walk(inner.shape, `${prefix}${key}.`);
      else out.set(`${prefix}${key}`, schema.description ?? '');
    }
  };
  walk(RunConfigSchema.shape as unknown as Record<string, z.ZodType>, '');
  return out;
}

/** Every knob with its default and source, for documentation and the UI. */
export function describeRunConfig(): KnobDoc[] {
  const defaults = defaultRunConfig();
  const valueAt = (path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], defaults);
  return [...knobs()].map(([path, description]) => ({ path, default: valueAt(path), description }));
}
