/**
 * RunConfig: every knob of a training run, with its default and where the default comes from
 * (THOR, ToRL, DAPO, Dr. GRPO, verl, TRL, nanochat). Lengths and group sizes are scaled down
 * for small models where said; every published number stays reachable. A run is reproducible from
 * this config, its seed and the code version.
 */
import { z } from 'zod';
import { LabError } from '../errors';
import { MAX_DIFFICULTY, TASK_KINDS } from '../data/tasks';

/** The GRPO loss aggregations (docs/grpo.md#aggregation), by the names verl gives them. */
export const LOSS_AGGREGATIONS = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'] as const;
export type LossAggregation = (typeof LOSS_AGGREGATIONS)[number];
/** KL estimators (docs/grpo.md#kl-estimators). */
export const KL_ESTIMATORS = ['k1', 'k2', 'k3'] as const;
export type KlEstimator = (typeof KL_ESTIMATORS)[number];
/** Sampling temperatures above this are not a policy, they are noise. */
const MAX_TEMPERATURE = 2;

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
  maxToolCalls: int().min(0).max(32).default(2).describe('C, code executions per trajectory (ToRL: 1; THOR: 5; tiny runs 1-3); 0 = no tools'),
  maxResponseTokens: int().positive().max(32_768).default(256).describe('response budget incl. tool output (published 3072-4096; scaled for a char-level model)'),
  temperature: z.number().min(0).max(MAX_TEMPERATURE).default(1.0).describe('sampling temperature of RL rollouts (THOR, ToRL: 1.0)'),
  topP: z.number().gt(0).max(1).default(1.0).describe('nucleus sampling (THOR, ToRL: 1.0 = off)'),
  topK: int().min(0).default(0).describe('top-k sampling; 0 = off (verl default -1 / off)'),
  toolTimeoutMs: int().positive().default(5000).describe('per-execution timeout (THOR TIRGen: 30 s; lab snippets are short)'),
  observationMaxChars: int().positive().default(256).describe('observation longer than this shows first half + "..." + last half (ToRL/THOR: 128 + 128)'),
  instruction: z.string().default('').describe("text before the question; '' for the tiny model (its pretraining taught the format), ToRL/THOR's TIR instruction for real models"),
  enableThinking: z.boolean().default(true).describe("enable_thinking of chat templates that read it (Qwen3), for the prompts of rollouts, training and evaluation: true is Qwen3's default; false renders its empty think block (docs/models.md#prompts-and-stop-tokens)"),
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
  klEstimator: z.enum(KL_ESTIMATORS).default('k3').describe('KL estimator when klCoef > 0 (verl low_var_kl = k3)'),
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
  everySteps: int().min(0).default(20).describe('held-out evaluation during a run every N steps (and before the first, after the last); 0 = only before and after'),
  samples: int().positive().max(64).default(4).describe('k samples per question for avg@k / maj@k / pass@k (THOR reports avg@4; 1 with temperature 0 = greedy)'),
  temperature: z.number().min(0).max(MAX_TEMPERATURE).default(1.0).describe('sampling temperature at evaluation: 1.0 evaluates the policy as RL samples it (THOR); 0 = greedy with samples = 1 (ToRL)'),
  topP: z.number().gt(0).max(1).default(1.0).describe('nucleus sampling at evaluation'),
  selfCorrection: z.boolean().default(false).describe('THOR self-correction at inference, during evaluation'),
  maxQuestions: int().positive().default(200).describe('held-out questions evaluated during a run (avg@k over more says little more, and costs k rollouts each)'),
});

const InferConfig = z.strictObject({
  temperature: z.number().min(0).max(MAX_TEMPERATURE).default(0).describe('sampling temperature of a single answer; 0 = greedy (the policy\'s most likely answer)'),
  topP: z.number().gt(0).max(1).default(1.0).describe('nucleus sampling of a single answer'),
  selfCorrection: z.boolean().default(true).describe('THOR self-correction when answering: a failed code step is thrown away and regenerated'),
  enableThinking: z.boolean().default(true).describe("enable_thinking of chat templates that read it (Qwen3): true lets the model think first, Qwen3's default; false renders its empty think block (docs/models.md#prompts-and-stop-tokens)"),
});

const SftConfig = z.strictObject({
  steps: int().positive().default(50).describe('SFT steps (cold start on tool-use demonstrations, tool output masked)'),
  batchSize: int().positive().default(8).describe('demonstrations per SFT step'),
  lr: z.number().gt(0).lt(1).default(1e-3).describe('SFT learning rate (THOR cold start at 7B: 1e-5 to 5e-5; tiny char models need far more)'),
  warmupSteps: int().min(0).default(5).describe('linear warmup steps of SFT'),
  schedule: z.enum(['constant', 'linear', 'cosine']).default('cosine').describe('SFT learning-rate schedule after warmup'),
  minLrRatio: z.number().min(0).max(1).default(0.1).describe('final lr / lr of the SFT schedule'),
  toolShare: z.number().min(0).max(1).default(0.5).describe('share of demonstrations built from synthetic tasks that use a tool call (the rest answer directly)'),
});

/** Linear layers a LoRA adapter can sit on, by their Hugging Face module names (docs/lora.md). */
export const LORA_TARGET_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTargetModule = (typeof LORA_TARGET_MODULES)[number];

const LoraConfig = z.strictObject({
  enabled: z.boolean().default(false).describe('train a low-rank adapter (LoRA, Hu et al. 2021) on the frozen base model; checkpoints hold only the adapter, in PEFT\'s layout (docs/lora.md)'),
  rank: int().positive().default(8).describe('r, the rank of each adapter (PEFT LoraConfig default: 8)'),
  alpha: z.number().gt(0).default(8).describe('lora_alpha: the adapter\'s update is scaled by alpha / r (PEFT LoraConfig default: 8)'),
  dropout: z.number().min(0).lt(1).default(0).describe('dropout on the adapter\'s input, in training only (PEFT LoraConfig default: 0.0)'),
  targetModules: z
    .array(z.enum(LORA_TARGET_MODULES))
    .min(1)
    .default(['q_proj', 'v_proj'])
    .describe("Linear layers that get an adapter (PEFT's default for llama, qwen2 and qwen3: q_proj, v_proj)"),
});

export const RunConfigSchema = z.strictObject({
  mode: z.enum(['rl', 'sft']).default('rl').describe('rl: GRPO / THOR on the training questions; sft: supervised fine-tuning on TIR demonstrations'),
  seed: int().min(0).default(42).describe('seed of tasks, sampling and initialisation'),
  steps: int().positive().default(50).describe('RL steps'),
  checkpointEvery: int().positive().default(5).describe('a checkpoint (weights and optimiser moments) every N steps; also at the start, on pause or stop, and at the end'),
  dumpRollouts: z.boolean().default(true).describe('write every step\'s rollouts with their masks to rollouts/*.jsonl'),
  task: TaskConfig.prefault({}),
  rollout: RolloutConfig.prefault({}),
  reward: RewardConfig.prefault({}),
  optim: OptimConfig.prefault({}),
  grpo: GrpoConfig.prefault({}),
  stepLevel: StepLevelConfig.prefault({}),
  selfCorrection: SelfCorrectionConfig.prefault({}),
  eval: EvalConfig.prefault({}),
  infer: InferConfig.prefault({}),
  sft: SftConfig.prefault({}),
  lora: LoraConfig.prefault({}),
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
      return issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`;
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

/**
 * What a config is parsed for: a training run checks every combination; an evaluation or a single
 * answer only those of the sections it reads (rollout, selfCorrection, eval or infer).
 */
export type ConfigUse = 'run' | 'evaluation' | 'inference';

export interface ParseOptions {
  /** Names the file, form or command line in errors. */
  source?: string;
  use?: ConfigUse;
  /** How errors name a setting that came from elsewhere (e.g. "eval.samples" -> "--samples"). */
  labels?: Readonly<Record<string, string>>;
}

/** Combinations that parse field by field but cannot run. */
function checkConsistency(c: RunConfig, use: ConfigUse, name: (path: string) => string, source?: string): void {
  const fail = (field: string, message: string, expected: string, value: unknown, hint?: string) => {
    throw badConfig(name(field), message, expected, JSON.stringify(value), source, hint);
  };
  if (use === 'run' && c.mode === 'rl') {
    if (c.rollout.groupSize < 2)
      fail('rollout.groupSize', "GRPO's baseline is the group's mean reward: with one trajectory per question every advantage is 0 and nothing is learned", 'at least 2', c.rollout.groupSize, 'raise rollout.groupSize (THOR and ToRL: 16)');
    if (c.rollout.temperature === 0)
      fail('rollout.temperature', 'greedy rollouts make every trajectory of a group identical, so no advantage is ever non-zero', 'a temperature > 0', c.rollout.temperature);
    if (c.stepLevel.enabled && c.rollout.maxToolCalls === 0)
      fail('stepLevel.enabled', 'the step level regenerates failed code, and with maxToolCalls = 0 no code ever runs', 'false when rollout.maxToolCalls is 0', c.stepLevel.enabled, 'set stepLevel.enabled to false for a run without tools');
    if (c.stepLevel.suffixTokens >= c.rollout.maxResponseTokens)
      fail('stepLevel.suffixTokens', 'L_suf must be shorter than a response', `less than rollout.maxResponseTokens (${c.rollout.maxResponseTokens})`, c.stepLevel.suffixTokens);
    if (c.grpo.overlong === 'penalty' && c.grpo.overlongCacheTokens >= c.rollout.maxResponseTokens)
      fail('grpo.overlongCacheTokens', 'the soft overlong ramp must fit inside the response budget', `less than rollout.maxResponseTokens (${c.rollout.maxResponseTokens})`, c.grpo.overlongCacheTokens);
    if (c.optim.warmupSteps > c.steps) fail('optim.warmupSteps', 'warmup longer than the run', `at most steps (${c.steps})`, c.optim.warmupSteps);
  }
  if (use === 'run' && c.mode === 'sft' && c.sft.warmupSteps > c.sft.steps)
    fail('sft.warmupSteps', 'warmup longer than the run', `at most sft.steps (${c.sft.steps})`, c.sft.warmupSteps);
  if (use !== 'inference' && c.eval.samples > 1 && c.eval.temperature === 0)
    fail('eval.samples', 'greedy decoding gives the same answer k times', '1 when eval.temperature is 0', c.eval.samples, 'raise eval.temperature (e.g. 0.6) to draw k different samples');
  if (use === 'run' && c.task.source === 'file' && !c.task.file)
    fail('task.file', 'a file-based task set needs a file', 'a path to a JSON-lines file', c.task.file);
}

/** Parses and validates a run config; missing settings take their defaults. Errors name the setting, the expected and the found value. */
export function parseRunConfig(input: unknown, options: ParseOptions | string = {}): RunConfig {
  const { source, use = 'run', labels = {} } = typeof options === 'string' ? { source: options } : options;
  const name = (path: string) => (labels[path] ? `${labels[path]} (${path})` : path);
  const result = RunConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    const [issue, ...rest] = result.error.issues;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
    const field = path.map(String).join('.') || '(root)';
    const foundText = issue.code === 'unrecognized_keys' ? `unknown setting "${issue.keys[0]}"` : found(input, issue.path);
    const more = rest.length ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
    const knob = KNOBS.get(field);
    const message = knob ? `invalid setting: ${knob.description}${more}` : `invalid run config${more}`;
    const prefix = issue.path.map((k) => `${String(k)}.`).join('');
    const siblings = new Set([...KNOBS.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length).split('.')[0]));
    const hint = issue.code === 'unrecognized_keys' ? `known settings here: ${[...siblings].join(', ')}` : undefined;
    throw badConfig(name(field), message, expectedFrom(issue), foundText, source, hint);
  }
  checkConsistency(result.data, use, name, source);
  return result.data;
}

/** The config with every default filled in. */
export function defaultRunConfig(): RunConfig {
  return parseRunConfig({});
}

/** One setting of the schema, as forms and command lines need it. */
export interface Knob {
  /** Dotted path, e.g. "grpo.clipEpsHigh". */
  path: string;
  description: string;
  default: unknown;
  kind: 'boolean' | 'number' | 'choice' | 'list' | 'text';
  integer: boolean;
  /** Bounds of a number (exclusive when the Inclusive flag is false). */
  min?: number;
  minInclusive?: boolean;
  max?: number;
  maxInclusive?: boolean;
  /** Values of a choice. */
  options?: string[];
  /** null is a value (e.g. grpo.dualClipC: null = off). */
  nullable: boolean;
}

interface SchemaNode {
  description?: string;
  def: { type: string; innerType?: SchemaNode; checks?: { _zod: { def: { check: string; value?: unknown; inclusive?: boolean; format?: string } } }[] };
  shape?: Record<string, SchemaNode>;
  options?: unknown[];
}

function knobOf(path: string, schema: SchemaNode, defaults: RunConfig): Knob {
  let node = schema;
  let nullable = false;
  while (node.def.innerType) {
    if (node.def.type === 'nullable') nullable = true;
    node = node.def.innerType;
  }
  const type = node.def.type;
  const kind: Knob['kind'] = type === 'boolean' ? 'boolean' : type === 'number' ? 'number' : type === 'enum' ? 'choice' : type === 'array' ? 'list' : 'text';
  const knob: Knob = {
    path,
    description: schema.description ?? '',
    default: path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], defaults),
    kind,
    integer: false,
    nullable,
  };
  for (const check of node.def.checks ?? []) {
    const d = check._zod.def;
    if (d.check === 'number_format' && d.format === 'safeint') knob.integer = true;
    if (d.check === 'greater_than') Object.assign(knob, { min: d.value as number, minInclusive: d.inclusive === true });
    if (d.check === 'less_than') Object.assign(knob, { max: d.value as number, maxInclusive: d.inclusive === true });
  }
  // A whole number above 0 is one of at least 1: integer bounds are given inclusive.
  if (knob.integer && knob.min !== undefined && !knob.minInclusive) Object.assign(knob, { min: Math.floor(knob.min) + 1, minInclusive: true });
  if (knob.integer && knob.max !== undefined && !knob.maxInclusive) Object.assign(knob, { max: Math.ceil(knob.max) - 1, maxInclusive: true });
  if (kind === 'choice') knob.options = (node.options ?? []).map(String);
  return knob;
}

/** Every leaf setting by dotted path, in schema order. */
const KNOBS: ReadonlyMap<string, Knob> = (() => {
  const defaults = RunConfigSchema.parse({});
  const out = new Map<string, Knob>();
  const walk = (shape: Record<string, SchemaNode>, prefix: string) => {
    for (const [key, schema] of Object.entries(shape)) {
      const inner = schema.def.innerType;
      if (inner?.shape) walk(inner.shape, `${prefix}${key}.`);
      else out.set(`${prefix}${key}`, knobOf(`${prefix}${key}`, schema, defaults));
    }
  };
  walk(RunConfigSchema.shape as unknown as Record<string, SchemaNode>, '');
  return out;
})();

/** Every knob with its default, description and limits, for documentation, forms and command lines. */
export function describeRunConfig(): Knob[] {
  return [...KNOBS.values()];
}

/** The knob at a dotted path, or undefined when there is none. */
export function knobAt(path: string): Knob | undefined {
  return KNOBS.get(path);
}
