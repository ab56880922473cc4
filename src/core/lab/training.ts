/**
 * The one training loop, for RL (GRPO / THOR) and SFT alike, in the browser and on the command line:
 * steps stored as they end (metrics, rollouts), held-out evaluation before the first step, every
 * eval.everySteps and after the last, checkpoints with the optimiser's moments every
 * checkpointEvery steps and whenever the run pauses or stops, and a run that goes on from its last
 * checkpoint exactly where it stopped.
 */
import { rolloutPrompt } from '../tir/prompt';
import type { RunConfig } from '../config/schema';
import type { Problem } from '../data/types';
import type { Task } from '../data/tasks';
import { LabError } from '../errors';
import { evaluate, evalSettingsOf, evalSummary, evaluationDue } from '../eval/evaluate';
import { readSafetensors, readSafetensorsHeader } from '../model/safetensors';
import { Transformer } from '../model/transformer';
import type { AdamW } from '../optim/adamw';
import { sandboxChecker } from '../reward/sandbox-checker';
import { createRng } from '../rng';
import { GrpoTrainer } from '../rl/trainer';
import { sftSequence, SftTrainer } from '../rl/sft';
import { reportFiles } from '../run/report';
import { OPTIMIZER_FILE, REFERENCE_FILE, type CheckpointFiles, type EvalRow, type RunData, type RunState, type StepMetrics } from '../run/runfile';
import type { RunStore } from '../run/store';
import type { Executor } from '../sandbox/types';
import { nextMacrotask } from '../tick';
import { buildDemonstrations, type Demonstration } from '../tir/demonstrations';
import type { TrajectoryRecord } from '../tir/types';
import type { Tokenizer } from '../tokenizer/types';
import type { EventSink, HeldOutFigures, ModelSummary, TrainOutcome, TrainState } from './api';
import type { ControlWord } from './control';

export interface Policy {
  model: Transformer;
  tokenizer: Tokenizer;
  summary: ModelSummary;
}

export interface TrainingContext {
  policy: Policy;
  executor: Executor;
  store: RunStore;
  control: ControlWord;
  emit: EventSink;
  /** The policy as a checkpoint taken after `step`, with the optimiser's moments and a KL run's frozen reference. */
  checkpointFiles(step: number, optimizer: AdamW, reference?: Transformer): Promise<CheckpointFiles>;
}

export interface TrainingPlan {
  config: RunConfig;
  runId: string;
  name: string;
  /** The step the run goes on from (0 for a new run). */
  fromStep: number;
  resumed: boolean;
  /** Send each step's trajectories as events (they are stored either way). */
  streamRollouts?: boolean;
  train: Problem[];
  test: Problem[];
  demonstrations?: Demonstration[];
  /** A resumed run's checkpoint (the moments and the reference are read from it). */
  checkpoint?: CheckpointFiles;
}

/** A trainer as the loop drives it: one step at a time, with an optimiser whose moments are kept. */
interface Steps {
  readonly step: number;
  readonly optimizer: AdamW;
  /** The KL term's frozen reference policy, kept with every checkpoint. */
  readonly reference?: Transformer;
  /** What the run trains on, kept with it (SFT: the demonstrations as built). */
  readonly data: RunData;
  next(signal: AbortSignal, onToken: () => void): Promise<{ metrics: StepMetrics; records: TrajectoryRecord[] }>;
  dispose(): void;
}

export async function runTraining(ctx: TrainingContext, plan: TrainingPlan): Promise<TrainOutcome> {
  const { config, runId, fromStep } = plan;
  const { store, emit, control } = ctx;
  const { model } = ctx.policy;
  const total = config.mode === 'sft' ? config.sft.steps : config.steps;
  if (fromStep > total) throw new LabError('resume', 'the run has already taken more steps than it is set to', { field: config.mode === 'sft' ? 'sft.steps' : 'steps', expected: `at least ${fromStep}`, found: String(total) });
  const state = (status: RunState['status'], checkpointStep: number, message?: string): RunState => ({ status, mode: config.mode, totalSteps: total, checkpointStep, ...(message && { message }) });
  const tell = (s: TrainState, message?: string) => emit({ type: 'state', state: s, ...(message && { message }) });
  const progress = (phase: string) => throttled((done, all) => emit({ type: 'progress', phase, done, total: all }));
  tell('preparing');

  const steps = config.mode === 'rl' ? await rlSteps(ctx, plan) : await sftSteps(ctx, plan);
  const key = (v: Parameters<Transformer['nameOf']>[0]) => model.nameOf(v) ?? v.name;
  let step = fromStep;
  let checkpointed = fromStep;
  const checkpoint = async (at: number) => {
    await store.saveCheckpoint(runId, await ctx.checkpointFiles(at, steps.optimizer, steps.reference), at);
    checkpointed = at;
  };
  const test = plan.test.slice(0, config.eval.maxQuestions);
  const evaluated = new Set((plan.resumed ? await store.getDetail(runId) : undefined)?.evals.map((e) => e.step) ?? []);

  /**
   * Held-out evaluation after `at` steps. A pause waits for it to end; a stop cuts it short and ends
   * the run: the evaluation is made when the run goes on (false).
   */
  const heldOut = async (at: number): Promise<boolean> => {
    if (test.length === 0 || evaluated.has(at)) return true;
    const watcher = control.watch(['stop']);
    let row: EvalRow;
    try {
      const r = await evaluate(
        { model, tokenizer: ctx.policy.tokenizer, executor: ctx.executor, checker: sandboxChecker(ctx.executor), signal: watcher.signal, onToken: () => watcher.check(), onProgress: progress('held-out evaluation') },
        test,
        evalSettingsOf(config),
        config.reward,
      );
      row = { step: at, ...evalSummary(r) };
    } catch (e) {
      if (watcher.signal.aborted && e === watcher.signal.reason) return false;
      throw e;
    }
    await store.appendEval(runId, row);
    evaluated.add(at);
    const figures: HeldOutFigures = { heldout_questions: test.length, heldout_accuracy: row.accuracy as number, heldout_code_ratio: row.code_ratio as number | null, heldout_pass_ratio: row.pass_ratio as number | null };
    emit({ type: 'heldout', step: at, figures, row });
    return true;
  };

  try {
    if (plan.resumed) {
      await store.truncateSteps(runId, fromStep);
      await store.setConfig(runId, config);
      await store.setState(runId, state('running', fromStep));
      // Moments that cannot be read or do not fit this model are not worth failing the run for.
      const restored = await Promise.resolve()
        .then(() => restoreMoments(plan.checkpoint, steps.optimizer, key))
        .catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
      emit({ type: 'message', text: restored === true ? 'optimizer moments restored' : `optimizer moments start afresh (${restored === false ? 'none stored' : restored})` });
    } else {
      await store.save({ id: runId, name: plan.name, createdAt: new Date().toISOString(), model: ctx.policy.summary.label, state: state('running', 0), config, metrics: [], evals: [], rollouts: [], data: steps.data });
      await checkpoint(0);
    }
    emit({ type: 'run', id: runId, name: plan.name, mode: config.mode, fromStep, totalSteps: total });

    let ended: 'finished' | 'stopped' = 'finished';
    // The evaluation due where the run starts (before training, or one a stop cut short).
    if (evaluationDue(fromStep, total, config.eval.everySteps) && !(await heldOut(fromStep))) ended = 'stopped';
    let announced = false;
    while (ended === 'finished' && steps.step < total) {
      if (control.requested() === 'pause') {
        // A paused run keeps a checkpoint of where it stands: closing the tab then loses nothing.
        if (checkpointed !== step) await checkpoint(step);
        await store.setState(runId, state('paused', checkpointed));
        tell('paused');
        announced = false;
        await control.whilePaused();
        if (control.requested() !== 'stop') await store.setState(runId, state('running', checkpointed));
      }
      if (control.requested() === 'stop') {
        ended = 'stopped';
        break;
      }
      if (!announced) tell('running');
      announced = true;
      const watcher = control.watch(['pause', 'stop']);
      let result;
      try {
        result = await steps.next(watcher.signal, () => watcher.check());
      } catch (e) {
        // A step cut short leaves the weights as they were: it is simply taken again.
        if (watcher.signal.aborted && e === watcher.signal.reason) continue;
        throw e;
      }
      step = steps.step;
      await store.appendStep(runId, result.metrics, config.dumpRollouts && result.records.length > 0 ? result.records : undefined);
      emit({ type: 'step', step, metrics: result.metrics });
      if (plan.streamRollouts && result.records.length > 0) emit({ type: 'rollouts', step, records: result.records });
      if (evaluationDue(step, total, config.eval.everySteps) && !(await heldOut(step))) ended = 'stopped';
      if ((step % config.checkpointEvery === 0 && step < total) || ended === 'stopped') await checkpoint(step);
      await nextMacrotask();
    }
    if (checkpointed !== step) await checkpoint(step);
    if (ended === 'finished') {
      const detail = await store.getDetail(runId);
      await store.saveReport(runId, reportFiles(`THOR Lab run ${plan.name}`, config, detail?.metrics ?? [], detail?.evals ?? []));
    }
    await store.setState(runId, state(ended, step));
    tell(ended);
    return { runId, state: ended, steps: step };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    await store.setState(runId, state('failed', checkpointed, message)).catch(() => undefined);
    tell('failed', message);
    throw e;
  } finally {
    steps.dispose();
  }
}

/**
 * GRPO / THOR steps (rl/trainer.ts). The KL term's frozen reference is the run's starting weights:
 * a copy of them for a new run, the copy kept in the checkpoint for a resumed one.
 */
async function rlSteps(ctx: TrainingContext, plan: TrainingPlan): Promise<Steps> {
  const { model, tokenizer } = ctx.policy;
  let reference: Transformer | undefined;
  if (plan.config.grpo.klCoef > 0) {
    // A LoRA run's reference is its frozen base (the policy when its adapter was new): no copy is kept.
    const kept = model.adapter ? undefined : plan.checkpoint?.[REFERENCE_FILE];
    if (plan.resumed && !kept && !model.adapter) ctx.emit({ type: 'message', text: 'the run kept no reference policy: the KL term measures from the resumed weights' });
    reference = Transformer.fromWeights(model.cfg, kept ? readSafetensors(kept, REFERENCE_FILE) : await model.exportWeights(), 'reference');
  }
  const env: ConstructorParameters<typeof GrpoTrainer>[0] & { signal?: AbortSignal; onToken?: () => void } = {
    model,
    tokenizer,
    executor: ctx.executor,
    checker: sandboxChecker(ctx.executor),
    reference,
    onProgress: (phase, done, total) => ctx.emit({ type: 'progress', phase, done, total }),
  };
  const trainer = new GrpoTrainer(env, plan.config, plan.train);
  trainer.step = plan.fromStep;
  return {
    get step() {
      return trainer.step;
    },
    optimizer: trainer.optimizer,
    reference,
    data: { train: plan.train, test: plan.test.slice(0, plan.config.eval.maxQuestions) },
    async next(signal, onToken) {
      // The trainer hands env on to the rollout loop: a stop lands between decoding steps.
      env.signal = signal;
      env.onToken = onToken;
      const r = await trainer.trainStep();
      return { metrics: { ...r.metrics, step: r.step }, records: r.records };
    },
    dispose() {
      trainer.dispose();
      reference?.dispose();
    },
  };
}

/**
 * SFT steps (rl/sft.ts) on the demonstrations given, or on demonstrations built from the training
 * tasks, each distinct program run once in the sandbox for its real output.
 */
async function sftSteps(ctx: TrainingContext, plan: TrainingPlan): Promise<Steps> {
  const { model, tokenizer } = ctx.policy;
  const c = plan.config;
  const demos = plan.demonstrations ?? (await taskDemonstrations(ctx, plan.train, c.sft.toolShare, c.seed));
  if (demos.length === 0) throw new LabError('sft', 'no demonstrations to learn from', { hint: 'Generate synthetic tasks in the Data panel or load a TIR JSON-lines file' });
  const limit = model.cfg.max_position_embeddings;
  const all = demos.map((d) => sftSequence(tokenizer, d.question, d.response, rolloutPrompt(c)));
  const seqs = all.filter((s) => s.promptTokens.length + s.tokens.length <= limit);
  if (seqs.length === 0) throw new LabError('sft', "every demonstration is longer than the model's context", { expected: `at most ${limit} tokens`, hint: 'Use shorter demonstrations or a model with a longer context' });
  if (seqs.length < all.length) ctx.emit({ type: 'message', text: `${all.length - seqs.length} of ${all.length} demonstrations are longer than the model's context (${limit} tokens) and are left out` });
  const trainer = new SftTrainer(model, seqs, {
    ...c.sft,
    maxGradNorm: c.optim.gradClip,
    seed: c.seed,
    maxTokens: c.optim.microBatchTokens,
    optimizer: { weightDecay: c.optim.weightDecay, beta1: c.optim.beta1, beta2: c.optim.beta2 },
  });
  trainer.step = plan.fromStep;
  return {
    get step() {
      return trainer.step;
    },
    optimizer: trainer.optimizer,
    data: { demonstrations: demos.map(({ question, response }) => ({ question, response })), test: plan.test.slice(0, c.eval.maxQuestions) },
    async next() {
      const st = await trainer.trainStep();
      ctx.emit({ type: 'progress', phase: 'update', done: trainer.step, total: c.sft.steps });
      const metrics: StepMetrics = { step: trainer.step, loss: st.loss, grad_norm: st.gradNorm, lr: st.lr, tokens_trained: st.tokens, time_update_s: st.seconds, time_step_s: st.seconds, sequences: seqs.length };
      return { metrics, records: [] };
    },
    dispose() {
      trainer.dispose();
    },
  };
}

/** Demonstrations from synthetic tasks: each distinct program runs once in the sandbox for its real output. */
async function taskDemonstrations(ctx: TrainingContext, problems: Problem[], toolShare: number, seed: number): Promise<Demonstration[]> {
  const tasks = problems.filter((p): p is Task => typeof (p as Partial<Task>).program === 'string');
  const programs = [...new Set(tasks.map((t) => t.program))];
  const outputs = new Map<string, string>();
  let done = 0;
  await Promise.all(
    programs.map(async (program) => {
      const r = await ctx.executor.run(program, { timeoutMs: 10_000 });
      if (r.status === 'ok' && r.stdout.trim() !== '') outputs.set(program, r.stdout);
      ctx.emit({ type: 'progress', phase: 'running task programs', done: ++done, total: programs.length });
    }),
  );
  return buildDemonstrations(tasks, outputs, toolShare, createRng(seed).fork('demonstrations'));
}

/** Gives a resumed run's optimiser the moments stored with its checkpoint; false when there are none. */
function restoreMoments(checkpoint: CheckpointFiles | undefined, optimizer: AdamW, key: (v: Parameters<Transformer['nameOf']>[0]) => string): boolean {
  const bytes = checkpoint?.[OPTIMIZER_FILE];
  if (!bytes) return false;
  const header = readSafetensorsHeader(bytes, OPTIMIZER_FILE);
  optimizer.importState({ step: Number(header.metadata.step), moments: readSafetensors(bytes, OPTIMIZER_FILE) }, key, OPTIMIZER_FILE);
  return true;
}

/** A progress callback that sends at most ten times a second (and always the last). */
export function throttled(send: (done: number, total: number) => void): (done: number, total: number, force?: boolean) => void {
  let sentAt = 0;
  return (done, total, force = false) => {
    const now = Date.now();
    if (!force && now - sentAt < 100 && done !== total) return;
    sentAt = now;
    send(done, total);
  };
}
