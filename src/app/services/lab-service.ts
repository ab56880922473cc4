/**
 * The lab's engine as one service: the policy model, its Python sandbox, RL and SFT training,
 * inference and evaluation. It runs inside the policy worker (workers/policy.worker.ts exposes it
 * over Comlink) and works the same in Node, where the tests drive it. What differs between places
 * (backends, where Python runs, where the shipped model and the run store live) comes in through
 * LabServiceEnv.
 *
 * One job at a time holds the model (training, inference or evaluation). Jobs are paused and
 * stopped through a small control word, a SharedArrayBuffer when the page is cross-origin
 * isolated: the worker reads it between decoding steps without waiting for a message, so a stop
 * lands within one token even on backends whose awaits never yield to the event loop.
 */
import * as tf from '@tensorflow/tfjs';
import { transfer } from 'comlink';
import type { BackendInfo, BackendName } from '../../core/backend';
import { buildDemonstrations } from '../../core/data/corpus';
import type { Task } from '../../core/data/tasks';
import type { Problem } from '../../core/data/types';
import { LabError } from '../../core/errors';
import { evaluate, evalSettingsOf, evalSummary, evaluationDue } from '../../core/eval/evaluate';
import { MemoryFiles, type FileSource } from '../../core/files';
import { loadModelFolder, saveModelFolder, type ModelFolder } from '../../core/model/checkpoint';
import { countParameters, type ModelConfig } from '../../core/model/config';
import { newModelConfig, type NewModelSize } from '../lib/newmodel';
import { Transformer } from '../../core/model/transformer';
import { AdamW, type AdamWState } from '../../core/optim/adamw';
import { sandboxChecker } from '../../core/reward/sandbox-checker';
import { gradeRecords } from '../../core/rl/grade';
import type { CodeCorrectnessTable } from '../../core/rl/metrics';
import { sftSequence, trainSft } from '../../core/rl/sft';
import { GrpoTrainer, rewardOptions, rolloutSettings, type TrainerEnv } from '../../core/rl/trainer';
import type { TrajectoryRecord } from '../../core/rl/types';
import { createRng } from '../../core/rng';
import { defaultRunConfig, parseRunConfig, type RunConfig } from '../../core/run/config';
import { renderReport } from '../../core/run/report';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../core/model/safetensors';
import { newRunId, type CheckpointFiles, type StepMetrics } from '../../core/run/runfile';
import type { PoolHealth, PythonPool } from '../../core/sandbox/pool';
import type { Executor, SandboxInfo } from '../../core/sandbox/types';
import { encodePrompt } from '../../core/tir/prompt';
import { policyText, runRollouts, type RolloutEnv } from '../../core/tir/rollout';
import { extractAnswer } from '../../core/reward/extract';
import { CharTokenizer } from '../../core/tokenizer/char';
import type { Tokenizer } from '../../core/tokenizer/types';
import { pickedFilesSource } from '../lib/files';
import { addExecution, addToken, emptyLiveRow, liveRecord } from '../lib/live';
import type { LiveRunState, RunStore } from '../lib/runstore';
import { CONTROL } from './control';
import { nextMacrotask } from '../../core/tick';
import type { SandboxCapabilities } from './python';

export interface PythonSandboxHandle {
  pool: PythonPool;
  info: SandboxInfo;
  capabilities: SandboxCapabilities;
}

export interface LabServiceEnv {
  selectBackend(order?: BackendName[]): Promise<BackendInfo>;
  startPython(): Promise<PythonSandboxHandle>;
  /** The shipped tiny model's folder, and its pretraining notes (pretrain.json) when present. */
  shippedModel(): { source: FileSource; notes(): Promise<Record<string, unknown> | undefined> };
  openRunStore(): Promise<RunStore>;
}

export interface ModelSummary {
  label: string;
  origin: 'shipped' | 'new' | 'files' | 'browser';
  config: ModelConfig;
  parameters: number;
  tokenizer: Tokenizer['kind'];
  /** Float32 weights on the device. */
  weightBytes: number;
  loadMs: number;
  pretrain?: Record<string, unknown>;
  /** The stored run whose checkpoint this is, or which trains it. */
  runId?: string;
}

export interface SandboxStatus {
  state: 'starting' | 'ready' | 'failed';
  info?: SandboxInfo;
  capabilities?: SandboxCapabilities;
  health?: PoolHealth;
  error?: string;
}

export interface MemoryInfo {
  numTensors: number;
  numBytes: number;
  backend: string;
}

export type { NewModelSize };

export interface SftRequest {
  steps: number;
  batchSize: number;
  lr: number;
  /** Share of task demonstrations written with a tool call. */
  toolShare: number;
  /** Demonstrations from a TIR JSON-lines file; without them they are built from the tasks (their programs run in the sandbox). */
  demonstrations?: { question: string; response: string }[];
}

export interface TrainRequest {
  mode: 'rl' | 'sft';
  config: RunConfig;
  /** RL questions, or the tasks SFT demonstrations are built from. */
  train: Problem[];
  /**
   * Held-out questions an RL run evaluates on before its first step and every config.eval.everySteps
   * steps (config.eval settings); the figures join that step's metrics as heldout_*.
   */
  test?: Problem[];
  name: string;
  /** A checkpoint every this many steps (and always at the start, on stop and at the end). */
  checkpointEvery: number;
  /** Go on with a stored run from its checkpoint; the model must have been loaded from it. */
  resume?: { runId: string; fromStep: number };
  sft?: SftRequest;
}

export type TrainState = 'preparing' | 'running' | 'paused' | 'stopped' | 'finished' | 'failed';

/** Callbacks of a training run (Comlink proxies on the page side). */
export interface TrainEvents {
  started(run: { id: string; name: string; fromStep: number; totalSteps: number; mode: 'rl' | 'sft' }): void;
  progress(phase: string, done: number, total: number): void;
  step(step: number, metrics: StepMetrics): void;
  /** The held-out figures before the first step (later ones come inside the step's metrics). */
  evaluated(step: number, figures: HeldOutFigures): void;
  state(state: TrainState, message?: string): void;
}

/** Held-out evaluation during an RL run, as metric keys. */
export interface HeldOutFigures {
  heldout_questions: number;
  heldout_accuracy: number;
  heldout_code_ratio: number | null;
  heldout_pass_ratio: number | null;
}

export interface InferRequest {
  question: string;
  /** The first words of the answer, given to the model (e.g. a tool lead-in); part of the prompt. */
  prefix?: string;
  /** Reference answer: when given, the answer is graded. */
  reference?: string;
  temperature: number;
  maxTokens: number;
  maxToolCalls: number;
  selfCorrection: boolean;
  seed: number;
}

export interface InferOutcome {
  record: TrajectoryRecord;
  stopped: boolean;
  tokens: number;
  seconds: number;
}

export interface EvalRequest {
  problems: Problem[];
  label: string;
  samples: number;
  temperature: number;
  maxTokens: number;
  maxToolCalls: number;
  selfCorrection: boolean;
  seed: number;
}

export interface EvalOutcome {
  label: string;
  summary: Record<string, number | null>;
  table: CodeCorrectnessTable;
  records: TrajectoryRecord[];
  stopped: boolean;
}

interface Policy {
  model: Transformer;
  tokenizer: Tokenizer;
  summary: ModelSummary;
}

/** Thrown inside a job when the control word asks it to stop or pause. */
class Interrupted extends Error {
  constructor(readonly kind: 'pause' | 'stop') {
    super(kind === 'stop' ? 'stopped' : 'paused');
  }
}

/** Sampling settings typed on a form: in range, or a message naming the field. */
function checkJobSettings(s: { temperature: number; maxTokens: number; maxToolCalls: number; seed: number }, file: string): void {
  const bad = (field: string, expected: string, found: number) => new LabError('settings', 'bad setting', { file, field, expected, found: String(found) });
  if (!(s.temperature >= 0 && s.temperature <= 5)) throw bad('temperature', 'a number from 0 to 5', s.temperature);
  if (!Number.isInteger(s.maxTokens) || s.maxTokens < 1) throw bad('max tokens', 'a whole number ≥ 1', s.maxTokens);
  if (!Number.isInteger(s.maxToolCalls) || s.maxToolCalls < 0) throw bad('tool calls', 'a whole number ≥ 0', s.maxToolCalls);
  if (!Number.isInteger(s.seed) || s.seed < 0) throw bad('seed', 'a whole number ≥ 0', s.seed);
}


/** The optimiser's moments in a run's checkpoint, and the largest size stored (2 moments × 4 bytes per parameter). */
const OPTIMIZER_FILE = 'optimizer.safetensors';
const MAX_STORED_MOMENT_BYTES = 512 * 1024 * 1024;
/** Held-out questions evaluated during an RL run (avg@k over more says little more, and costs k rollouts each). */
const HELD_OUT_MAX_QUESTIONS = 200;
const momentsFit = (model: Transformer) => 2 * 4 * model.numParameters() <= MAX_STORED_MOMENT_BYTES;

export class LabService {
  private backend: BackendInfo | undefined;
  private policy: Policy | undefined;
  private sandbox: Promise<PythonSandboxHandle> | undefined;
  private sandboxError: string | undefined;
  private sandboxReady: PythonSandboxHandle | undefined;
  private store: Promise<RunStore> | undefined;
  private job: string | undefined;
  private control: Int32Array = new Int32Array(1);
  /** The optimiser of the RL run in progress (its moments go into checkpoints), then its final state. */
  private runOptimizer: { optimizer: AdamW; key: (v: tf.Variable) => string } | undefined;
  private endedRunOptimizer: AdamWState | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly env: LabServiceEnv) {}

  // ---- setup ------------------------------------------------------------------------------

  /**
   * Picks the compute backend and starts the Python sandbox in the background. `control` is the
   * page's control word (an Int32Array over a SharedArrayBuffer when it has one).
   */
  async init(options: { order?: BackendName[]; control?: Int32Array } = {}): Promise<BackendInfo> {
    if (options.control) this.control = options.control;
    this.backend ??= await this.env.selectBackend(options.order);
    // A sandbox that fails to start is reported by sandboxStatus(); it must not fail init().
    this.startSandbox().catch(() => undefined);
    return this.backend;
  }

  private startSandbox(): Promise<PythonSandboxHandle> {
    this.sandbox ??= this.env.startPython().then(
      (handle) => (this.sandboxReady = handle),
      (e: unknown) => {
        this.sandboxError = e instanceof Error ? e.message : String(e);
        throw e;
      },
    );
    return this.sandbox;
  }

  private async executor(): Promise<PythonPool> {
    return (await this.startSandbox()).pool;
  }

  /**
   * The sandbox as an Executor that waits for it only when code runs: generation starts at once,
   * while Pyodide may still be warming up.
   */
  private lazyExecutor(): Executor {
    return {
      run: async (code, options) => (await this.executor()).run(code, options),
      endSession: async (session) => (await this.executor()).endSession(session),
      close: async () => undefined,
    };
  }

  sandboxStatus(): SandboxStatus {
    const s = this.sandboxReady;
    if (s) return { state: 'ready', info: s.info, capabilities: s.capabilities, health: s.pool.health() };
    if (this.sandboxError !== undefined) return { state: 'failed', error: this.sandboxError };
    return { state: 'starting' };
  }

  /** Waits for the sandbox (or its failure). */
  async sandboxWarm(): Promise<SandboxStatus> {
    await this.startSandbox().catch(() => undefined);
    return this.sandboxStatus();
  }

  /** The files this worker fetched (scripts, tfjs binaries, the model), to keep for offline use. */
  resourceUrls(): string[] {
    return performance.getEntriesByType('resource').map((e) => e.name);
  }

  memory(): MemoryInfo {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes, backend: tf.getBackend() };
  }

  /** The page's way to pause or stop the running job when it has no shared control word. */
  setControl(value: number): void {
    Atomics.store(this.control, 0, value);
    if (value !== CONTROL.pause) this.wake?.();
  }

  private runStore(): Promise<RunStore> {
    this.store ??= this.env.openRunStore();
    return this.store;
  }

  // ---- the model --------------------------------------------------------------------------

  model(): ModelSummary | undefined {
    return this.policy?.summary;
  }

  async loadShippedModel(): Promise<ModelSummary> {
    const shipped = this.env.shippedModel();
    const [summary, notes] = await Promise.all([this.loadFolder(shipped.source, 'shipped', 'thor-tiny (shipped)'), shipped.notes().catch(() => undefined)]);
    if (notes) summary.pretrain = notes;
    return summary;
  }

  /** A model folder the user picked (File objects cross to the worker without being read on the page). */
  async loadPickedModel(files: File[], label: string): Promise<ModelSummary> {
    return this.loadFolder(pickedFilesSource(files, label), 'files', label);
  }

  /** The checkpoint stored with a run in this browser. */
  async loadStoredModel(runId: string): Promise<ModelSummary> {
    const store = await this.runStore();
    const [files, runs] = await Promise.all([store.getCheckpoint(runId), store.list()]);
    if (!files) throw new LabError('checkpoint', 'this run has no stored checkpoint', { file: runId, hint: 'Pick a run listed with a checkpoint' });
    const name = runs.find((r) => r.id === runId)?.name ?? runId;
    const summary = await this.loadFolder(new MemoryFiles(name, files), 'browser', name);
    summary.runId = runId;
    return summary;
  }

  /** A fresh model with seeded random weights and the character tokenizer. */
  async createModel(size: NewModelSize, seed: number): Promise<ModelSummary> {
    return this.exclusive('creating a model', async () => {
      const started = Date.now();
      const tokenizer = CharTokenizer.fromCharset();
      const config = newModelConfig(size, tokenizer);
      const model = Transformer.create(config, { seed });
      const label = `new ${size.layers}×${size.hidden} model (seed ${seed})`;
      return this.setPolicy(model, tokenizer, { label, origin: 'new', config, tokenizer: tokenizer.kind, parameters: model.numParameters(), weightBytes: model.numParameters() * 4, loadMs: Date.now() - started });
    });
  }

  private loadFolder(source: FileSource, origin: ModelSummary['origin'], label: string): Promise<ModelSummary> {
    return this.exclusive('loading a model', async () => {
      const started = Date.now();
      const folder = await loadModelFolder(source);
      const model = Transformer.fromWeights(folder.config, folder.weights, source.label);
      const parameters = countParameters(folder.config);
      return this.setPolicy(model, folder.tokenizer, { label, origin, config: folder.config, tokenizer: folder.tokenizer.kind, parameters, weightBytes: parameters * 4, loadMs: Date.now() - started });
    });
  }

  private setPolicy(model: Transformer, tokenizer: Tokenizer, summary: ModelSummary): ModelSummary {
    this.policy?.model.dispose();
    this.policy = { model, tokenizer, summary };
    return summary;
  }

  private requirePolicy(): Policy {
    if (!this.policy) throw new LabError('no-model', 'no model is loaded', { hint: 'Load the shipped model, create one or pick a checkpoint in the Model panel' });
    return this.policy;
  }

  /** The model as a Hugging Face style folder (transferred, not copied). */
  async exportModel(): Promise<CheckpointFiles> {
    const files = await this.checkpointFiles();
    return transfer(files, Object.values(files).map((b) => b.buffer as ArrayBuffer));
  }

  /** Keeps the model in this browser as a stored run holding only its checkpoint; returns the run id. */
  async saveModelToBrowser(name: string): Promise<string> {
    const { summary } = this.requirePolicy();
    const files = await this.checkpointFiles();
    const id = newRunId();
    const store = await this.runStore();
    await store.save({ id, name, createdAt: new Date().toISOString(), config: { model: summary.label, parameters: summary.parameters }, metrics: [], rollouts: [], checkpoint: files });
    return id;
  }

  private async checkpointFiles(): Promise<CheckpointFiles> {
    const { model, tokenizer } = this.requirePolicy();
    const sink = new MemoryFiles('checkpoint');
    const folder: ModelFolder = { config: model.cfg, weights: await model.exportWeights(), tokenizer };
    await saveModelFolder(sink, folder);
    const files: CheckpointFiles = Object.fromEntries(sink.files);
    // An RL run's checkpoint also keeps the optimiser's moments, so a resumed run goes on as it was
    // (unless they would be too large to store in the browser).
    const live = this.runOptimizer;
    if ((live || this.endedRunOptimizer) && momentsFit(model)) {
      const state = live ? await live.optimizer.exportState(live.key) : this.endedRunOptimizer!;
      files[OPTIMIZER_FILE] = writeSafetensors(state.moments, { step: String(state.step), layout: 'AdamW moments m.NAME / v.NAME, device layout' });
    }
    return files;
  }

  /** Gives a resumed run's optimiser the moments stored with its checkpoint, when there are some. */
  private async restoreOptimizer(runId: string, optimizer: AdamW, key: (v: tf.Variable) => string): Promise<boolean> {
    const bytes = (await (await this.runStore()).getCheckpoint(runId))?.[OPTIMIZER_FILE];
    if (!bytes) return false;
    const header = readSafetensorsHeader(bytes, OPTIMIZER_FILE);
    optimizer.importState({ step: Number(header.metadata.step), moments: readSafetensors(bytes, OPTIMIZER_FILE) }, key, OPTIMIZER_FILE);
    return true;
  }

  // ---- jobs -------------------------------------------------------------------------------

  /** Runs a job that needs the model to itself; a second one is refused with a message. */
  private async exclusive<T>(what: string, job: () => Promise<T>): Promise<T> {
    if (this.job) throw new LabError('busy', `the policy worker is busy ${this.job}`, { hint: `Wait for it to finish or stop it before ${what}` });
    this.job = what;
    Atomics.store(this.control, 0, CONTROL.run);
    try {
      return await job();
    } finally {
      this.job = undefined;
      Atomics.store(this.control, 0, CONTROL.run);
    }
  }

  /** What the control word asks for right now. */
  private requested(): 'run' | 'pause' | 'stop' {
    const v = Atomics.load(this.control, 0);
    return v === CONTROL.stop ? 'stop' : v === CONTROL.pause ? 'pause' : 'run';
  }

  /** Resolves when the control word leaves "pause" (resume or stop). */
  private async whilePaused(): Promise<void> {
    while (this.requested() === 'pause') {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // The shared word may change without a message: look again now and then.
        setTimeout(resolve, 250);
      });
      this.wake = undefined;
    }
  }

  /** An abort signal that fires when the control word asks for `kinds`; check() polls it. */
  private watch(kinds: ('pause' | 'stop')[]): { signal: AbortSignal; check(): void } {
    const controller = new AbortController();
    return {
      signal: controller.signal,
      check: () => {
        const r = this.requested();
        if (r !== 'run' && kinds.includes(r) && !controller.signal.aborted) controller.abort(new Interrupted(r));
      },
    };
  }

  // ---- inference --------------------------------------------------------------------------

  /** One answer, streamed: `update` receives the trajectory as it grows (a few times a second). */
  async infer(req: InferRequest, update: (record: TrajectoryRecord) => void): Promise<InferOutcome> {
    return this.exclusive('answering a question', async () => {
      const { model, tokenizer } = this.requirePolicy();
      const pool = this.lazyExecutor();
      checkJobSettings(req, 'inference settings');
      const c = defaultRunConfig();
      const prompt = encodePrompt(tokenizer, req.question, c.rollout.instruction);
      if (req.prefix) prompt.push(...tokenizer.encode(req.prefix));
      const header = { id: 'inference', question: req.question, reference: req.reference ?? '', promptTokens: prompt };
      const row = emptyLiveRow();
      const decode = (ids: number[]) => tokenizer.decode(ids);
      const watcher = this.watch(['stop']);
      let sentAt = 0;
      const send = (force = false) => {
        const now = Date.now();
        if (!force && now - sentAt < 60) return;
        sentAt = now;
        update(liveRecord(header, row, decode));
      };
      const env: RolloutEnv = {
        model,
        tokenizer,
        executor: pool,
        signal: watcher.signal,
        onToken: (_row, token, sampled) => {
          addToken(row, token, sampled);
          watcher.check();
          send(row.tokens.length === 1);
        },
        onExecution: (_row, execution, discarded) => {
          addExecution(row, execution, discarded);
          send(true);
        },
      };
      const started = Date.now();
      try {
        const { records } = await runRollouts(
          env,
          [{ id: header.id, groupId: header.id, level: 'trajectory', problemId: 'inference', question: req.question, reference: header.reference, promptTokens: header.promptTokens }],
          {
            ...rolloutSettings(c, req.seed),
            temperature: req.temperature,
            maxResponseTokens: req.maxTokens,
            maxToolCalls: req.maxToolCalls,
            selfCorrection: req.selfCorrection ? { ...c.selfCorrection } : undefined,
          },
        );
        const record = records[0];
        // Without a reference there is nothing to grade, but the answer is still read out.
        if (req.reference !== undefined && req.reference.trim() !== '') await gradeRecords(records, rewardOptions(c), sandboxChecker(pool));
        else record.finalAnswer = extractAnswer(policyText(record))?.answer ?? null;
        return { record, stopped: false, tokens: record.tokens.length, seconds: (Date.now() - started) / 1000 };
      } catch (e) {
        if (!(watcher.signal.aborted && e === watcher.signal.reason)) throw e;
        return { record: liveRecord(header, row, decode), stopped: true, tokens: row.tokens.length, seconds: (Date.now() - started) / 1000 };
      }
    });
  }

  // ---- evaluation -------------------------------------------------------------------------

  async evaluate(req: EvalRequest, progress: (done: number, total: number) => void): Promise<EvalOutcome> {
    return this.exclusive('evaluating', async () => {
      const { model, tokenizer } = this.requirePolicy();
      if (req.problems.length === 0) throw new LabError('eval', 'no problems to evaluate', { hint: 'Generate a test split or upload a benchmark file in the Data panel' });
      const pool = this.lazyExecutor();
      checkJobSettings(req, 'evaluation settings');
      if (!Number.isInteger(req.samples) || req.samples < 1) throw new LabError('eval', 'bad number of samples', { field: 'samples', expected: 'a whole number ≥ 1', found: String(req.samples) });
      const c = defaultRunConfig();
      const watcher = this.watch(['stop']);
      let sentAt = 0;
      const env = {
        model,
        tokenizer,
        executor: pool,
        checker: sandboxChecker(pool),
        signal: watcher.signal,
        onToken: () => watcher.check(),
        onProgress: (done: number, total: number) => {
          const now = Date.now();
          if (now - sentAt > 100 || done === total) {
            sentAt = now;
            progress(done, total);
          }
        },
      };
      // Batches of 8 rollouts: small enough for a tiny device, and a stop loses at most one batch.
      const settings = evalSettingsOf(c, {
        batchSize: 8,
        seed: req.seed,
        samples: req.samples,
        temperature: req.temperature,
        maxResponseTokens: req.maxTokens,
        maxToolCalls: req.maxToolCalls,
        selfCorrection: req.selfCorrection ? { ...c.selfCorrection } : undefined,
      });
      try {
        const r = await evaluate(env, req.problems, settings, rewardOptions(c));
        // A row can end without a finish event (its tool output filled the budget): report the end here.
        progress(r.records.length, r.records.length);
        return { label: req.label, summary: evalSummary(r), table: r.table, records: r.records, stopped: false };
      } catch (e) {
        if (!(watcher.signal.aborted && e === watcher.signal.reason)) throw e;
        throw new LabError('eval', 'evaluation stopped', { hint: 'Run it again to get its figures' });
      }
    });
  }

  // ---- training ---------------------------------------------------------------------------

  /**
   * Trains the loaded model and stores the run step by step (metrics, rollouts, checkpoints).
   * Resolves when the run ends: finished, stopped, or failed (then it rejects).
   */
  async train(req: TrainRequest, events: TrainEvents): Promise<{ runId: string; state: TrainState; steps: number }> {
    return this.exclusive('training', async () => {
      const policy = this.requirePolicy();
      const store = await this.runStore();
      const config = parseRunConfig(req.config, 'training settings');
      const totalSteps = req.mode === 'sft' ? (req.sft?.steps ?? 0) : config.steps;
      const runId = req.resume?.runId ?? newRunId();
      const fromStep = req.resume?.fromStep ?? 0;
      const live = (status: LiveRunState['status'], message?: string): LiveRunState => ({ status, mode: req.mode, totalSteps, ...(message && { message }) });
      events.state('preparing');
      if (req.resume) {
        await store.truncateSteps(runId, fromStep);
        await store.setLive(runId, { ...live('running'), checkpointStep: fromStep });
      } else {
        const runConfig = req.mode === 'sft' ? { mode: 'sft', sft: { ...req.sft, demonstrations: req.sft?.demonstrations?.length }, seed: config.seed, model: policy.summary.label } : { ...config, model: policy.summary.label };
        await store.save({ id: runId, name: req.name, createdAt: new Date().toISOString(), config: runConfig as Record<string, unknown>, metrics: [], rollouts: [] }, live('running'));
        await store.saveCheckpoint(runId, await this.checkpointFiles(), 0);
      }
      policy.summary.runId = runId;
      events.started({ id: runId, name: req.name, fromStep, totalSteps, mode: req.mode });
      const metricsSoFar: StepMetrics[] = (await store.getMetrics(runId)).slice();
      // The report's held-out table: the evaluation before training, then those inside step metrics.
      let heldOutBefore: HeldOutFigures | undefined;
      let step = fromStep;
      let checkpointed = fromStep;
      const checkpoint = async (at: number) => {
        await store.saveCheckpoint(runId, await this.checkpointFiles(), at);
        checkpointed = at;
      };
      // A paused run keeps a checkpoint of where it stands: closing the tab then loses nothing.
      const mark = async (state: 'paused' | 'running') => {
        if (state === 'paused' && checkpointed !== step) await checkpoint(step);
        await store.setLive(runId, { ...live(state), checkpointStep: checkpointed });
      };
      try {
        const ended =
          req.mode === 'sft'
            ? await this.trainSftRun(req, config, events, async (s, metrics) => {
                step = s;
                metricsSoFar.push(metrics);
                await store.appendStep(runId, metrics);
                events.step(s, metrics);
                if (s % req.checkpointEvery === 0 && s < totalSteps) await checkpoint(s);
              }, mark)
            : await this.trainRlRun(req, config, fromStep, events, async (s, metrics, records) => {
                step = s;
                metricsSoFar.push(metrics);
                await store.appendStep(runId, metrics, config.dumpRollouts ? records : undefined);
                events.step(s, metrics);
                if (s % req.checkpointEvery === 0 && s < totalSteps) await checkpoint(s);
              }, mark, (figures) => {
                heldOutBefore = figures;
                events.evaluated(0, figures);
              });
        await checkpoint(step);
        const state: TrainState = ended === 'stop' ? 'stopped' : 'finished';
        const evals = [...(heldOutBefore ? [{ step: 0, ...heldOutBefore }] : []), ...metricsSoFar.filter((m) => typeof m.heldout_accuracy === 'number')].map((m) => ({
          step: m.step,
          accuracy: m.heldout_accuracy,
          code_ratio: m.heldout_code_ratio,
          pass_ratio: m.heldout_pass_ratio,
        }));
        if (state === 'finished') await store.saveReport(runId, renderReport(`THOR Lab run ${req.name}`, req.mode === 'sft' ? { mode: 'sft', ...req.sft, demonstrations: req.sft?.demonstrations?.length } : config, metricsSoFar, evals, []));
        await store.setLive(runId, { ...live(state), checkpointStep: step });
        events.state(state);
        return { runId, state, steps: step };
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        await store.setLive(runId, { ...live('failed', message), checkpointStep: checkpointed }).catch(() => undefined);
        events.state('failed', message);
        throw e;
      } finally {
        this.endedRunOptimizer = undefined;
      }
    });
  }

  /** Pause support shared by both trainers: marks the run paused, waits, marks it running again. */
  private async pausePoint(events: TrainEvents, mark: (state: 'paused' | 'running') => Promise<void>): Promise<'run' | 'stop'> {
    if (this.requested() === 'pause') {
      await mark('paused');
      events.state('paused');
      await this.whilePaused();
      if (this.requested() === 'stop') return 'stop';
      await mark('running');
    }
    if (this.requested() === 'stop') return 'stop';
    events.state('running');
    return 'run';
  }

  private async trainRlRun(
    req: TrainRequest,
    config: RunConfig,
    fromStep: number,
    events: TrainEvents,
    onStep: (step: number, metrics: StepMetrics, records: TrajectoryRecord[]) => Promise<void>,
    mark: (state: 'paused' | 'running') => Promise<void>,
    onHeldOutBefore: (figures: HeldOutFigures) => void,
  ): Promise<'done' | 'stop'> {
    const { model, tokenizer } = this.requirePolicy();
    const pool = this.lazyExecutor();
    // The frozen reference for the KL term: a copy of the starting weights.
    const reference = config.grpo.klCoef > 0 ? Transformer.fromWeights(model.cfg, await model.exportWeights(), 'reference') : undefined;
    let watcher = this.watch(['pause', 'stop']);
    let sentAt = 0;
    // The trainer hands this env on to the rollout loop, signal and token hook included.
    const env: TrainerEnv & Pick<RolloutEnv, 'signal' | 'onToken'> = {
      model,
      tokenizer,
      executor: pool,
      checker: sandboxChecker(pool),
      reference,
      signal: watcher.signal,
      onToken: () => watcher.check(),
      onProgress: (phase, done, total) => {
        watcher.check();
        const now = Date.now();
        if (now - sentAt > 100 || done === total) {
          sentAt = now;
          events.progress(phase, done, total);
        }
      },
    };
    const trainer = new GrpoTrainer(env, config, req.train);
    trainer.step = fromStep;
    // At most HELD_OUT_MAX_QUESTIONS (an uploaded benchmark can hold thousands).
    const test = (req.test ?? []).slice(0, HELD_OUT_MAX_QUESTIONS);
    // Held-out evaluation (before the first step, every eval.everySteps, after the last); a pause or
    // stop during it skips it (the run itself is not affected).
    const heldOut = async (): Promise<HeldOutFigures | undefined> => {
      if (test.length === 0) return undefined;
      try {
        const r = await evaluate(
          { ...env, onProgress: (done, total) => env.onProgress?.('held-out evaluation', done, total) },
          test,
          evalSettingsOf(config),
          rewardOptions(config),
        );
        return { heldout_questions: test.length, heldout_accuracy: r.accuracy, heldout_code_ratio: r.metrics.code_ratio, heldout_pass_ratio: r.metrics.pass_ratio };
      } catch (e) {
        if (watcher.signal.aborted && e === watcher.signal.reason) return undefined;
        throw e;
      }
    };
    const key = (v: tf.Variable) => model.nameOf(v) ?? v.name;
    let failed = false;
    try {
      if (req.resume) {
        // Moments that cannot be read or do not fit this model are not worth failing the run for.
        const restored = await this.restoreOptimizer(req.resume.runId, trainer.optimizer, key).catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
        events.progress(restored === true ? 'optimizer moments restored' : `optimizer moments start afresh (${restored === false ? 'none stored' : restored})`, 1, 1);
      }
      this.runOptimizer = { optimizer: trainer.optimizer, key };
      if (fromStep === 0) {
        const before = await heldOut();
        if (before) onHeldOutBefore(before);
      }
      while (trainer.step < config.steps) {
        if ((await this.pausePoint(events, mark)) === 'stop') return 'stop';
        watcher = this.watch(['pause', 'stop']);
        env.signal = watcher.signal;
        let result;
        try {
          result = await trainer.trainStep();
        } catch (e) {
          // A step cut short leaves the weights as they were: it is simply sampled again.
          if (watcher.signal.aborted && e === watcher.signal.reason) continue;
          throw e;
        }
        const figures = evaluationDue(result.step, config.steps, config.eval.everySteps) ? await heldOut() : undefined;
        await onStep(result.step, { ...result.metrics, ...figures, step: result.step }, result.records);
        await nextMacrotask();
      }
      return 'done';
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // The run's last checkpoint is taken after this returns: it gets the moments as they are now.
      if (this.runOptimizer && !failed && momentsFit(model)) this.endedRunOptimizer = await this.runOptimizer.optimizer.exportState(key).catch(() => undefined);
      this.runOptimizer = undefined;
      trainer.dispose();
      reference?.dispose();
    }
  }

  private async trainSftRun(
    req: TrainRequest,
    config: RunConfig,
    events: TrainEvents,
    onStep: (step: number, metrics: StepMetrics) => Promise<void>,
    mark: (state: 'paused' | 'running') => Promise<void>,
  ): Promise<'done' | 'stop'> {
    const { model, tokenizer } = this.requirePolicy();
    const sft = req.sft;
    if (!sft) throw new LabError('sft', 'no SFT settings', { field: 'sft' });
    const demos = sft.demonstrations ?? (await this.taskDemonstrations(req.train, sft.toolShare, config.seed, events));
    if (demos.length === 0) throw new LabError('sft', 'no demonstrations to learn from', { hint: 'Generate synthetic tasks in the Data panel or load a TIR JSON-lines file' });
    const limit = model.cfg.max_position_embeddings;
    const seqs = demos.map((d) => sftSequence(tokenizer, d.question, d.response, config.rollout.instruction)).filter((s) => s.promptTokens.length + s.tokens.length <= limit);
    if (seqs.length === 0) throw new LabError('sft', 'every demonstration is longer than the model\'s context', { expected: `at most ${limit} tokens`, hint: 'Use shorter demonstrations or a model with a longer context' });
    const optimizer = new AdamW(model.trainableVariables(), { weightDecay: config.optim.weightDecay });
    if ((await this.pausePoint(events, mark)) === 'stop') return 'stop';
    try {
      await trainSft(
        model,
        optimizer,
        seqs,
        { steps: sft.steps, batchSize: sft.batchSize, lr: sft.lr, warmupSteps: Math.min(10, Math.floor(sft.steps / 10)), schedule: 'cosine', minLrRatio: 0.1, maxGradNorm: config.optim.gradClip, seed: config.seed, maxTokens: config.optim.microBatchTokens },
        async (st) => {
          events.progress('update', st.step + 1, sft.steps);
          await onStep(st.step + 1, { step: st.step + 1, loss: st.loss, grad_norm: st.gradNorm, lr: st.lr, tokens_trained: st.tokens, time_update_s: st.seconds, time_step_s: st.seconds, sequences: seqs.length });
          await nextMacrotask();
          if ((await this.pausePoint(events, mark)) === 'stop') throw new Interrupted('stop');
        },
      );
      return 'done';
    } catch (e) {
      if (e instanceof Interrupted) return 'stop';
      throw e;
    } finally {
      optimizer.dispose();
    }
  }

  /** Demonstrations from synthetic tasks: each distinct program runs once in the sandbox for its real output. */
  private async taskDemonstrations(problems: Problem[], toolShare: number, seed: number, events: TrainEvents): Promise<{ question: string; response: string }[]> {
    const tasks = problems.filter((p): p is Task => typeof (p as Partial<Task>).program === 'string');
    const pool = await this.executor();
    const programs = [...new Set(tasks.map((t) => t.program))];
    const outputs = new Map<string, string>();
    let done = 0;
    await Promise.all(
      programs.map(async (program) => {
        const r = await pool.run(program, { timeoutMs: 10_000 });
        if (r.status === 'ok' && r.stdout.trim() !== '') outputs.set(program, r.stdout);
        events.progress('running task programs', ++done, programs.length);
      }),
    );
    return buildDemonstrations(tasks, outputs, toolShare, createRng(seed).fork('demonstrations'));
  }
}
