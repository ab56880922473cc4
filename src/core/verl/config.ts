/**
 * A run config's GRPO settings under verl's own names (docs/verl.md#the-configuration): a Hydra config
 * that composes verl's ppo_trainer.yaml and overrides what the lab's run config says, the agent-loop
 * file that registers the lab's TIR agent loop, and the lab settings upstream verl has no place for
 * (THOR's step level, failed-code filter and α·NLL term need THOR's fork of verl).
 */
import type { RunConfig } from '../config/schema';

export type YamlValue = string | number | boolean | null | readonly YamlValue[];

/** One verl key with its value and the lab setting it comes from ("export" when the export decides it). */
export interface VerlEntry {
  key: string;
  value: YamlValue;
  from: string;
}

/** A lab setting whose value upstream verl cannot carry, and why. */
export interface NotCarried {
  setting: string;
  value: unknown;
  why: string;
}

export interface VerlPaths {
  trainFiles: string;
  valFiles: string;
  /** The reward module (thor_reward.py) as verl will find it. */
  rewardFunction: string;
  /** The agent-loop file (agent_loop.yaml) as verl will find it. */
  agentLoopConfig: string;
}

export interface VerlDataFacts {
  /** A bound on the prompt's tokens: the longest prompt's UTF-8 bytes and room for the chat template. */
  maxPromptLength: number;
  experimentName: string;
}

/** The name the lab's agent loop is registered under. */
export const AGENT_LOOP_NAME = 'thor_tir_agent';
/** Its class, as Hydra instantiates it (the module must be importable on every verl worker). */
export const AGENT_LOOP_TARGET = 'thor_agent_loop.ThorTirAgentLoop';
/** verl's GRPO adds this ε to the group std, fixed in its code (docs/verl.md#what-needs-thors-fork). */
const VERL_GRPO_EPS = 1e-6;
/** verl has no "dual clip off": a cap this high is never reached. */
const DUAL_CLIP_OFF = 1e9;
const KL_NAMES = { k1: 'kl', k2: 'mse', k3: 'low_var_kl' } as const;

/** The verl keys a run config sets, in the order the YAML lists them. */
export function verlEntries(c: RunConfig, paths: VerlPaths, facts: VerlDataFacts): VerlEntry[] {
  const ar = 'actor_rollout_ref';
  const e = (key: string, value: YamlValue, from: string): VerlEntry => ({ key, value, from });
  const responseTokens = c.rollout.maxResponseTokens;
  const entries: VerlEntry[] = [
    e('data.train_files', paths.trainFiles, 'export'),
    e('data.val_files', paths.valFiles, 'export'),
    e('data.prompt_key', 'prompt', 'export'),
    e('data.max_prompt_length', facts.maxPromptLength, 'export'),
    e('data.max_response_length', responseTokens, 'rollout.maxResponseTokens'),
    e('data.train_batch_size', c.rollout.promptsPerStep, 'rollout.promptsPerStep'),
    e('data.val_max_samples', c.eval.maxQuestions, 'eval.maxQuestions'),
    e('data.filter_overlong_prompts', true, 'task.maxQuestionTokens'),
    e('data.return_raw_chat', true, 'export'),
    e('data.shuffle', true, 'export'),
    e('data.seed', c.seed, 'seed'),
    e('algorithm.adv_estimator', 'grpo', 'export'),
    e('algorithm.norm_adv_by_std_in_grpo', c.grpo.normalizeStd, 'grpo.normalizeStd'),
    e('algorithm.use_kl_in_reward', false, 'export'),
    e(`${ar}.actor.optim.lr`, c.optim.lr, 'optim.lr'),
    e(`${ar}.actor.optim.weight_decay`, c.optim.weightDecay, 'optim.weightDecay'),
    e(`${ar}.actor.optim.betas`, [c.optim.beta1, c.optim.beta2], 'optim.beta1, optim.beta2'),
    e(`${ar}.actor.optim.clip_grad`, c.optim.gradClip, 'optim.gradClip'),
    e(`${ar}.actor.optim.lr_warmup_steps`, c.optim.warmupSteps, 'optim.warmupSteps'),
    ...(c.optim.schedule === 'linear' ? [] : [e(`${ar}.actor.optim.lr_scheduler_type`, c.optim.schedule, 'optim.schedule')]),
    e(`${ar}.actor.optim.min_lr_ratio`, c.optim.minLrRatio, 'optim.minLrRatio'),
    e(`${ar}.actor.grad_clip`, c.optim.gradClip, 'optim.gradClip'),
    e(`${ar}.actor.ppo_mini_batch_size`, c.rollout.promptsPerStep, 'rollout.promptsPerStep'),
    e(`${ar}.actor.ppo_epochs`, c.optim.updatesPerBatch, 'optim.updatesPerBatch'),
    e(`${ar}.actor.use_dynamic_bsz`, true, 'export'),
    e(`${ar}.actor.ppo_max_token_len_per_gpu`, Math.max(16384, facts.maxPromptLength + responseTokens), 'export'),
    e(`${ar}.actor.clip_ratio_low`, c.grpo.clipEpsLow, 'grpo.clipEpsLow'),
    e(`${ar}.actor.clip_ratio_high`, c.grpo.clipEpsHigh, 'grpo.clipEpsHigh'),
    e(`${ar}.actor.clip_ratio_c`, c.grpo.dualClipC ?? DUAL_CLIP_OFF, 'grpo.dualClipC'),
    e(`${ar}.actor.loss_agg_mode`, c.grpo.aggregation, 'grpo.aggregation'),
    e(`${ar}.actor.entropy_coeff`, c.grpo.entropyCoef, 'grpo.entropyCoef'),
    e(`${ar}.actor.use_kl_loss`, c.grpo.klCoef > 0, 'grpo.klCoef'),
    e(`${ar}.actor.kl_loss_coef`, c.grpo.klCoef, 'grpo.klCoef'),
    e(`${ar}.actor.kl_loss_type`, KL_NAMES[c.grpo.klEstimator], 'grpo.klEstimator'),
    e(`${ar}.actor.data_loader_seed`, c.seed, 'seed'),
    ...(c.lora.enabled
      ? [
          e(`${ar}.model.lora_rank`, c.lora.rank, 'lora.rank'),
          e(`${ar}.model.lora_alpha`, c.lora.alpha, 'lora.alpha'),
          e(`${ar}.model.target_modules`, [...c.lora.targetModules], 'lora.targetModules'),
        ]
      : []),
    e(`${ar}.rollout.name`, 'vllm', 'export'),
    e(`${ar}.rollout.mode`, 'async', 'export'),
    e(`${ar}.rollout.n`, c.rollout.groupSize, 'rollout.groupSize'),
    e(`${ar}.rollout.temperature`, c.rollout.temperature, 'rollout.temperature'),
    e(`${ar}.rollout.top_p`, c.rollout.topP, 'rollout.topP'),
    e(`${ar}.rollout.top_k`, c.rollout.topK === 0 ? -1 : c.rollout.topK, 'rollout.topK'),
    e(`${ar}.rollout.val_kwargs.n`, c.eval.samples, 'eval.samples'),
    e(`${ar}.rollout.val_kwargs.temperature`, c.eval.temperature, 'eval.temperature'),
    e(`${ar}.rollout.val_kwargs.top_p`, c.eval.topP, 'eval.topP'),
    e(`${ar}.rollout.val_kwargs.top_k`, -1, 'export'),
    e(`${ar}.rollout.val_kwargs.do_sample`, c.eval.temperature > 0, 'eval.temperature'),
    e(`${ar}.rollout.multi_turn.max_user_turns`, c.rollout.maxToolCalls, 'rollout.maxToolCalls'),
    e(`${ar}.rollout.multi_turn.max_tool_response_length`, c.rollout.observationMaxChars, 'rollout.observationMaxChars'),
    e(`${ar}.rollout.multi_turn.tool_response_truncate_side`, 'middle', 'rollout.observationMaxChars'),
    e(`${ar}.rollout.agent.default_agent_loop`, AGENT_LOOP_NAME, 'export'),
    e(`${ar}.rollout.agent.agent_loop_config_path`, paths.agentLoopConfig, 'export'),
    e('custom_reward_function.path', paths.rewardFunction, 'reward.*'),
    e('custom_reward_function.name', 'compute_score', 'reward.*'),
    e('trainer.total_training_steps', c.steps, 'steps'),
    e('trainer.save_freq', c.checkpointEvery, 'checkpointEvery'),
    e('trainer.test_freq', c.eval.everySteps === 0 ? -1 : c.eval.everySteps, 'eval.everySteps'),
    e('trainer.val_before_train', true, 'eval.everySteps'),
    e('trainer.project_name', 'thor_lab', 'export'),
    e('trainer.experiment_name', facts.experimentName, 'export'),
    e('trainer.logger', ['console'], 'export'),
  ];
  return entries;
}

/** The lab settings of this config that upstream verl does not carry (docs/verl.md#what-needs-thors-fork). */
export function notCarried(c: RunConfig): NotCarried[] {
  const out: NotCarried[] = [];
  const add = (setting: string, value: unknown, why: string) => out.push({ setting, value, why });
  const fork = "THOR's fork of verl has it; upstream verl has no such setting";
  if (c.mode === 'sft') add('mode', c.mode, 'the configuration is for RL (main_ppo); SFT runs on verl\'s SFT trainer');
  if (c.stepLevel.enabled) add('stepLevel.enabled', true, `THOR's step-level optimisation of failed code: ${fork}`);
  if (c.grpo.failureFilter) add('grpo.failureFilter', true, `THOR's failed-code filter: ${fork}`);
  if (c.grpo.nllAlpha > 0) add('grpo.nllAlpha', c.grpo.nllAlpha, `THOR's α·NLL term on positive samples: ${fork}`);
  if (c.grpo.dynamicSampling) add('grpo.dynamicSampling', true, "DAPO's dynamic sampling is verl's DAPO recipe (algorithm.filter_groups), not its GRPO trainer");
  if (c.grpo.overlong !== 'none') add('grpo.overlong', c.grpo.overlong, "DAPO's overlong handling is verl's DAPO recipe (reward_model.overlong_buffer), not its GRPO trainer");
  if (c.grpo.advantageEps !== VERL_GRPO_EPS) add('grpo.advantageEps', c.grpo.advantageEps, `verl's GRPO uses ${VERL_GRPO_EPS}, fixed in its code`);
  if (c.optim.schedule === 'linear') add('optim.schedule', 'linear', 'verl\'s FSDP optimiser schedules are "constant" and "cosine"; verl\'s default (constant) applies');
  if (c.rollout.statefulPython) add('rollout.statefulPython', true, 'the agent loop runs each code block in a fresh Python process');
  if (c.lora.enabled && c.lora.dropout > 0) add('lora.dropout', c.lora.dropout, 'verl\'s LoRA settings have no dropout');
  return out;
}

const YAML_WORDS = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~)$/;

/** A key YAML 1.1 reads as itself ("n" would be a boolean). */
function yamlKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && !YAML_WORDS.test(key) ? key : `'${key.replace(/'/g, "''")}'`;
}

/** A scalar YAML 1.1 reads back as the same value: strings quoted, floats with a dot before any exponent. */
function yamlScalar(v: Exclude<YamlValue, readonly YamlValue[]>): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (!Number.isFinite(v)) throw new RangeError(`not a YAML number: ${v}`);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const text = String(v);
  return /e/.test(text) && !/\./.test(text) ? text.replace('e', '.0e') : text;
}

function yamlValue(v: YamlValue): string {
  return Array.isArray(v) ? `[${(v as readonly YamlValue[]).map((x) => yamlValue(x)).join(', ')}]` : yamlScalar(v as Exclude<YamlValue, readonly YamlValue[]>);
}

interface Tree {
  [key: string]: Tree | YamlValue;
}

function treeOf(entries: readonly VerlEntry[]): Tree {
  const root: Tree = {};
  for (const { key, value } of entries) {
    const parts = key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Tree;
    node[parts[parts.length - 1]] = value;
  }
  return root;
}

function yamlTree(tree: Tree, indent: string): string[] {
  return Object.entries(tree).flatMap(([key, value]) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? [`${indent}${yamlKey(key)}:`, ...yamlTree(value as Tree, `${indent}  `)]
      : [`${indent}${yamlKey(key)}: ${yamlValue(value as YamlValue)}`],
  );
}

/**
 * The Hydra config verl's main_ppo loads with --config-path DIR --config-name verl_grpo: verl's own
 * ppo_trainer composed first, then these keys; the settings not carried listed as comments.
 */
export function verlConfigYaml(entries: readonly VerlEntry[], skipped: readonly NotCarried[], header: readonly string[]): string {
  const lines = [
    ...header.map((h) => `# ${h}`),
    'hydra:',
    '  searchpath:',
    '    - pkg://verl.trainer.config',
    'defaults:',
    '  - ppo_trainer',
    '  - _self_',
    ...yamlTree(treeOf(entries), ''),
  ];
  if (skipped.length > 0) {
    lines.push('', '# Lab settings of this run that upstream verl does not carry (docs/verl.md#what-needs-thors-fork):');
    for (const s of skipped) lines.push(`#   ${s.setting} = ${JSON.stringify(s.value)}: ${s.why}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The agent-loop file verl reads at actor_rollout_ref.rollout.agent.agent_loop_config_path. */
export function agentLoopYaml(c: RunConfig): string {
  return [
    "# THOR Lab's TIR agent loop for verl: ```python blocks run in a subprocess, ```output blocks appended (docs/verl.md#tool-calls).",
    `- name: ${AGENT_LOOP_NAME}`,
    `  _target_: ${AGENT_LOOP_TARGET}`,
    `  max_tool_calls: ${c.rollout.maxToolCalls}`,
    `  tool_timeout_s: ${yamlScalar(c.rollout.toolTimeoutMs / 1000)}`,
    `  observation_max_chars: ${c.rollout.observationMaxChars}`,
    '',
  ].join('\n');
}
