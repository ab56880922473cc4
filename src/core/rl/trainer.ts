/**
 * One THOR RL step at a time (docs/grpo.md, docs/step-level.md):
 *   1. sample G trajectories for each of the step's questions (TIR rollouts with the sandbox);
 *   2. grade them; DAPO dynamic sampling refills the batch when groups carry no signal;
 *   3. overlong handling, THOR's failed-code filter, zero-variance groups; group advantages;
 *   4. step level: regenerate failed code actions from their prefixes (reward = the code ran);
 *   5. one token-mean batch of trajectory and step samples; `updatesPerBatch` optimiser steps.
 * Every stage is switchable from the RunConfig, so GRPO vs THOR is one flag.
 */
import { LabError } from '../errors';
import type { Transformer } from '../model/transformer';
import type { Tokenizer } from '../tokenizer/types';
import type { Executor } from '../sandbox/types';
import type { Problem } from '../data/types';
import { createRng, type Rng } from '../rng';
import type { SymbolicChecker } from '../reward/equivalence';
import { gradeRecords } from '../reward/grade';
import { AdamW } from '../optim/adamw';
import { learningRate } from '../optim/schedule';
import { runRollouts, type RolloutRequest, type RolloutSettings, type RolloutTiming } from '../tir/rollout';
import { encodePrompt, rolloutPrompt } from '../tir/prompt';
import { rolloutSettings } from '../tir/settings';
import type { RunConfig } from '../config/schema';
import { groupBy } from '../stats';
import { batchAdvantages, isZeroVariance } from './advantages';
import { needsAnotherRound, selectTrainingGroups, fillBatch } from './filters';
import { trajectoryMetrics, type MetricValue } from '../eval/metrics';
import { groupMetrics } from './metrics';
import { selectFailedActions, stepCut, stepPrompt, stepReward } from './step-level';
import type { TrajectoryRecord } from '../tir/types';
import { policyUpdate, scoreSequences, type PolicySample, type UpdateStats } from './update';

export interface TrainerEnv {
  model: Transformer;
  tokenizer: Tokenizer;
  executor: Executor;
  /** sympy-backed equivalence for answers the cheap checks cannot decide. */
  checker?: SymbolicChecker;
  /** Frozen reference policy for the KL term (needed when grpo.klCoef > 0). */
  reference?: Transformer;
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface StepResult {
  step: number;
  metrics: Record<string, MetricValue>;
  /** Every trajectory sampled this step (trained or not) and the step-level continuations. */
  records: TrajectoryRecord[];
}

export class GrpoTrainer {
  readonly optimizer: AdamW;
  step = 0;
  /** This step's random stream: a function of the seed and the step, so a resumed run samples as an unbroken one. */
  private rng: Rng;
  private orders = new Map<number, Problem[]>();
  /** Questions of this step skipped because their prompt exceeds task.maxQuestionTokens or the context. */
  private skippedLongPrompts = 0;

  constructor(
    private readonly env: TrainerEnv,
    readonly config: RunConfig,
    private readonly train: readonly Problem[],
  ) {
    if (train.length === 0) throw new RangeError('no training problems');
    if (config.grpo.klCoef > 0 && !env.reference) {
      throw new LabError('grpo', 'grpo.klCoef > 0 needs a frozen reference policy', { field: 'grpo.klCoef', expected: '0, or a reference model passed to the trainer', found: String(config.grpo.klCoef) });
    }
    const o = config.optim;
    this.optimizer = new AdamW(env.model.trainableVariables(), { beta1: o.beta1, beta2: o.beta2, weightDecay: o.weightDecay });
    this.rng = this.stepRng();
  }

  private stepRng(): Rng {
    return createRng(this.config.seed).fork(`step ${this.step}`);
  }

  /**
   * The questions of this step's sampling round: the first round takes the next promptsPerStep of
   * the seeded order (epochs of shuffles laid end to end); DAPO's extra rounds draw from the
   * training set at random.
   */
  private problemsFor(round: number, n: number): Problem[] {
    if (round > 0) return this.rng.fork(`round ${round}`).shuffle(this.train).slice(0, n);
    const size = this.train.length;
    return Array.from({ length: n }, (_, k) => {
      const i = this.step * this.config.rollout.promptsPerStep + k;
      const epoch = Math.floor(i / size);
      let order = this.orders.get(epoch);
      if (!order) {
        order = createRng(this.config.seed).fork(`epoch ${epoch}`).shuffle(this.train);
        this.orders.clear();
        this.orders.set(epoch, order);
      }
      return order[i % size];
    });
  }

  private async sampleGroups(problems: Problem[], round: number): Promise<{ records: TrajectoryRecord[]; timing: RolloutTiming }> {
    const c = this.config;
    const { tokenizer } = this.env;
    const requests: RolloutRequest[] = [];
    const limit = Math.min(c.task.maxQuestionTokens, this.env.model.cfg.max_position_embeddings - 1);
    problems.forEach((p, q) => {
      const prompt = encodePrompt(tokenizer, p.question, rolloutPrompt(c));
      // A question longer than the context budget is skipped and counted, never truncated.
      if (prompt.length > limit) {
        this.skippedLongPrompts++;
        return;
      }
      for (let g = 0; g < c.rollout.groupSize; g++) {
        const groupId = `s${this.step}r${round}q${q}`;
        requests.push({ id: `${groupId}g${g}`, groupId, level: 'trajectory', problemId: p.id, question: p.question, reference: p.answer, promptTokens: prompt });
      }
    });
    const seed = this.rng.int(0, 2 ** 31 - 1);
    if (requests.length === 0) return { records: [], timing: { generationTokens: 0, pythonMs: 0, wallMs: 0 } };
    const out = await runRollouts(
      { ...this.env, onProgress: (d, t) => this.env.onProgress?.('rollout', d, t) },
      requests,
      rolloutSettings(c, seed),
    );
    await gradeRecords(out.records, c.reward, this.env.checker);
    return out;
  }

  /** THOR's step level: continuations of failed code actions, graded by whether their code ran. */
  private async stepLevelSamples(records: TrajectoryRecord[]): Promise<{ samples: TrajectoryRecord[]; timing?: RolloutTiming }> {
    const c = this.config;
    if (!c.stepLevel.enabled) return { samples: [] };
    const actions = selectFailedActions(records, c.stepLevel.maxPrefixes, this.rng);
    const requests: RolloutRequest[] = [];
    const budgets: number[] = [];
    actions.forEach((a, k) => {
      const cutAt = stepCut(a.record, a.executionIndex, c.stepLevel.suffixTokens);
      const prompt = stepPrompt(a.record, cutAt);
      for (let g = 0; g < c.stepLevel.groupSize; g++) {
        const groupId = `s${this.step}step${k}`;
        requests.push({
          id: `${groupId}g${g}`,
          groupId,
          level: 'step',
          problemId: a.record.problemId,
          question: a.record.question,
          reference: a.record.reference,
          promptTokens: prompt,
          stepOrigin: { trajectoryId: a.record.id, executionIndex: a.executionIndex, cutAt },
        });
        budgets.push(c.rollout.maxResponseTokens - cutAt);
      }
    });
    if (requests.length === 0) return { samples: [] };
    const settings: RolloutSettings = {
      ...rolloutSettings(c, this.rng.int(0, 2 ** 31 - 1)),
      maxToolCalls: 1,
      stopAfterExecution: true,
      maxResponseTokens: Math.max(...budgets),
    };
    const out = await runRollouts({ ...this.env, onProgress: (d, t) => this.env.onProgress?.('step level', d, t) }, requests, settings);
    const samples: TrajectoryRecord[] = [];
    for (const r of out.records) {
      const reward = stepReward(r);
      if (reward === null) continue; // no code block: discarded (THOR)
      r.reward = reward;
      r.correct = reward === 1;
      samples.push(r);
    }
    return { samples, timing: out.timing };
  }

  /** One RL step. */
  async trainStep(): Promise<StepResult> {
    const c = this.config;
    const t0 = Date.now();
    this.rng = this.stepRng();
    this.skippedLongPrompts = 0;
    const target = c.rollout.promptsPerStep;
    const all: TrajectoryRecord[] = [];
    let genTokens = 0;
    let pythonMs = 0;
    let rolloutMs = 0;
    let kept: ReturnType<typeof selectTrainingGroups>['groups'] = [];
    let zeroVariance = 0;
    let failedDropped = 0;
    let survivalDropped = 0;
    let rounds = 0;
    for (;;) {
      const need = rounds === 0 ? target : target - kept.length;
      const { records, timing } = await this.sampleGroups(this.problemsFor(rounds, need), rounds);
      all.push(...records);
      genTokens += timing.generationTokens;
      pythonMs += timing.pythonMs;
      rolloutMs += timing.wallMs;
      const sel = selectTrainingGroups(records, {
        overlong: c.grpo.overlong,
        maxResponseTokens: c.rollout.maxResponseTokens,
        overlongCacheTokens: c.grpo.overlongCacheTokens,
        failureFilter: c.grpo.failureFilter,
        minGroupSurvival: c.grpo.minGroupSurvival,
        dropZeroVariance: c.grpo.dynamicSampling,
      });
      kept.push(...sel.groups);
      zeroVariance += sel.zeroVarianceGroups;
      failedDropped += sel.failedTrajectoriesDropped;
      survivalDropped += sel.groupsDroppedBySurvival;
      if (!c.grpo.dynamicSampling || !needsAnotherRound(kept.length, target, rounds, c.grpo.maxExtraRounds)) break;
      rounds++;
    }
    kept = fillBatch(kept, target);

    const tStep = Date.now();
    const step = await this.stepLevelSamples(all);
    const stepMs = Date.now() - tStep;

    // Trajectory level: advantages within each kept group; step level: within each prefix's group.
    const trajectories = kept.flatMap((g) => g.members);
    const stepGroups = groupBy(step.samples, (r) => r.groupId).filter((g) => !isZeroVariance(g.members.map((m) => m.reward)));
    const stepTrained = stepGroups.flatMap((g) => g.members);
    const trained = [...trajectories, ...stepTrained];
    const advantages = batchAdvantages(trained.map((r) => r.reward), trained.map((r) => r.groupId), c.grpo.normalizeStd, c.grpo.advantageEps);

    const tUpdate = Date.now();
    let update: UpdateStats | undefined;
    let entropy: number | null = null;
    if (trained.length > 0) {
      // log π_old from the rollout policy, recomputed by a full forward (as verl does).
      const scored = await scoreSequences(this.env.model, trained, c.optim.microBatchTokens, c.rollout.temperature);
      const ref = this.env.reference && c.grpo.klCoef > 0 ? (await scoreSequences(this.env.reference, trained, c.optim.microBatchTokens, c.rollout.temperature)).logp : undefined;
      entropy = meanOverMask(scored.entropy, trained.map((r) => r.lossMask));
      const samples: PolicySample[] = trained.map((r, i) => ({
        promptTokens: r.promptTokens,
        tokens: r.tokens,
        lossMask: r.lossMask,
        advantage: advantages[i],
        oldLogprobs: scored.logp[i],
        refLogprobs: ref?.[i],
      }));
      const lr = learningRate(this.step, { peak: c.optim.lr, warmupSteps: c.optim.warmupSteps, totalSteps: c.steps, kind: c.optim.schedule, minRatio: c.optim.minLrRatio });
      for (let u = 0; u < c.optim.updatesPerBatch; u++) {
        update = await policyUpdate(
          this.env.model,
          this.optimizer,
          samples,
          {
            clip: { epsLow: c.grpo.clipEpsLow, epsHigh: c.grpo.clipEpsHigh, dualClipC: c.grpo.dualClipC },
            aggregation: c.grpo.aggregation,
            maxLength: c.rollout.maxResponseTokens,
            klCoef: c.grpo.klCoef,
            klEstimator: c.grpo.klEstimator,
            entropyCoef: c.grpo.entropyCoef,
            nllAlpha: c.grpo.nllAlpha,
            temperature: c.rollout.temperature,
          },
          { lr, maxGradNorm: c.optim.gradClip, maxTokens: c.optim.microBatchTokens },
        );
      }
    }
    const updateMs = Date.now() - tUpdate;
    const totalMs = Date.now() - t0;
    const records = [...all, ...step.samples];
    const metrics: Record<string, MetricValue> = {
      step: this.step + 1, // the number of the step just taken (1-based, as evaluations count)
      ...trajectoryMetrics(records),
      ...groupMetrics(records),
      zero_variance_groups: zeroVariance,
      sampling_rounds: rounds + 1,
      skipped_long_prompts: this.skippedLongPrompts,
      groups_trained: kept.length,
      failed_trajectories_dropped: failedDropped,
      groups_dropped_by_survival: survivalDropped,
      step_groups_trained: stepGroups.length,
      samples_trained: trained.length,
      tokens_trained: update?.tokens ?? 0,
      loss: update?.loss ?? null,
      grad_norm: update?.gradNorm ?? null,
      lr: update?.lr ?? null,
      clip_fraction: update?.clipFraction ?? null,
      dual_clip_fraction: update?.dualClipFraction ?? null,
      approx_kl: update?.approxKl ?? null,
      kl: update?.refKl ?? null,
      entropy,
      time_rollout_s: rolloutMs / 1000,
      time_python_s: pythonMs / 1000,
      time_step_level_s: stepMs / 1000,
      time_update_s: updateMs / 1000,
      time_step_s: totalMs / 1000,
      generation_tok_s: rolloutMs > 0 ? genTokens / (rolloutMs / 1000) : null,
      update_tok_s: updateMs > 0 && update ? (update.tokens * c.optim.updatesPerBatch) / (updateMs / 1000) : null,
    };
    this.step++;
    return { step: this.step, metrics, records };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

function meanOverMask(values: number[][], masks: number[][]): number | null {
  let s = 0;
  let n = 0;
  values.forEach((row, i) => row.forEach((v, t) => masks[i][t] && ((s += v), n++)));
  return n > 0 ? s / n : null;
}
