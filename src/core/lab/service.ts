/**
 * The lab service: the one place where a model is loaded, a question answered, an evaluation and a
 * training run driven (training.ts holds the run loop). The browser's policy worker, the command
 * line and a remote node construct it with their own LabEnv and expose it; the UI talks to it
 * through the LabApi interface only.
 *
 * One job at a time holds the model (training, inference, evaluation); a second is refused with a
 * message. Jobs pause and stop through a ControlWord.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo, BackendName } from '../backend';
import { parseRunConfig, type ConfigUse, type RunConfig, type RunConfigInput } from '../config/schema';
import { generateTasks } from '../data/tasks';
import type { Problem } from '../data/types';
import { LabError } from '../errors';
import { evaluate, evalSettingsOf, evalSummary } from '../eval/evaluate';
import { MemoryFiles, type FileSource } from '../files';
import { loadModelFolder, saveModelFolder } from '../model/checkpoint';
import { countParameters, newModelConfig, type NewModelSize } from '../model/config';
import { Transformer } from '../model/transformer';
import { writeSafetensors } from '../model/safetensors';
import type { AdamW } from '../optim/adamw';
import { gradeRecords, policyText } from '../reward/grade';
import { extractAnswer } from '../reward/extract';
import { sandboxChecker } from '../reward/sandbox-checker';
import { encodeRunFile, newRunId, OPTIMIZER_FILE, type CheckpointFiles } from '../run/runfile';
import { importRun, type RunDetail, type RunStore, type RunSummary } from '../run/store';
import type { PythonPool } from '../sandbox/pool';
import type { Executor, SandboxInfo } from '../sandbox/types';
import { addExecution, addToken, emptyLiveRow, liveRecord } from '../tir/live';
import { encodePrompt } from '../tir/prompt';
import { runRollouts, type RolloutEnv } from '../tir/rollout';
import { inferenceSettings } from '../tir/settings';
import type { TrajectoryRecord } from '../tir/types';
import { CharTokenizer } from '../tokenizer/char';
import { tokenTexts } from '../tokenizer/index';
import type { Tokenizer } from '../tokenizer/types';
import type {
  EvalOutcome,
  EvalRequest,
  EventSink,
  InferOutcome,
  InferRequest,
  LabApi,
  MemoryInfo,
  ModelSource,
  ModelSummary,
  SandboxCapabilities,
  SandboxStatus,
  TrainOutcome,
  TrainRequest,
} from './api';
import { CONTROL, ControlWord, type ControlValue } from './control';
import { runTraining, throttled, type Policy } from './training';

export interface PythonSandbox {
  pool: PythonPool;
  info: SandboxInfo;
  capabilities: SandboxCapabilities;
}

/** A model folder to load, and what to call it. */
export interface ModelFiles {
  files: FileSource;
  label: string;
  /** The shipped model's pretraining notes. */
  notes?: () => Promise<Record<string, unknown> | undefined>;
}

/** What differs between the places the lab runs. */
export interface LabEnv {
  selectBackend(order?: BackendName[]): Promise<BackendInfo>;
  startPython(): Promise<PythonSandbox>;
  /** The files of a model folder (stored runs are read from the run store). */
  modelFiles(source: Exclude<ModelSource, { kind: 'stored' }>): ModelFiles;
  openRunStore(): Promise<RunStore>;
  /** Problems of a JSON-lines file named by task.file, where files are read by path (Node). */
  readProblemsFile?(path: string, maxQuestionTokens: number): Promise<Problem[]>;
  /** Files fetched so far, to keep for offline use (browsers). */
  resourceUrls?(): string[];
  /** Largest optimiser state a checkpoint keeps (browser storage is limited); default: no limit. */
  maxMomentBytes?: number;
}

export class LabService implements LabApi {
  private backend: BackendInfo | undefined;
  private policy: Policy | undefined;
  private sandbox: Promise<PythonSandbox> | undefined;
  private sandboxError: string | undefined;
  private sandboxReady: PythonSandbox | undefined;
  private store: Promise<RunStore> | undefined;
  private job: string | undefined;
  readonly control = new ControlWord();

  constructor(private readonly env: LabEnv) {}

  // ---- setup ------------------------------------------------------------------------------

  async init(options: { order?: BackendName[]; control?: Int32Array } = {}): Promise<BackendInfo> {
    if (options.control) this.control.adopt(options.control);
    this.backend ??= await this.env.selectBackend(options.order);
    // A sandbox that fails to start is reported by sandboxStatus(); it must not fail init().
    this.startSandbox().catch(() => undefined);
    return this.backend;
  }

  private startSandbox(): Promise<PythonSandbox> {
    this.sandbox ??= this.env.startPython().then(
      (handle) => (this.sandboxReady = handle),
      (e: unknown) => {
        this.sandboxError = e instanceof Error ? e.message : String(e);
        throw e;
      },
    );
    return this.sandbox;
  }

  /** The sandbox as an Executor that waits for it only when code runs: generation starts at once, while Pyodide may still be warming up. */
  private executor(): Executor {
    const pool = async () => (await this.startSandbox()).pool;
    return {
      run: async (code, options) => (await pool()).run(code, options),
      endSession: async (session) => (await pool()).endSession(session),
      close: async () => undefined,
    };
  }

  async sandboxStatus(): Promise<SandboxStatus> {
    const s = this.sandboxReady;
    if (s) return { state: 'ready', info: s.info, capabilities: s.capabilities, health: s.pool.health() };
    if (this.sandboxError !== undefined) return { state: 'failed', error: this.sandboxError };
    return { state: 'starting' };
  }

  async sandboxWarm(): Promise<SandboxStatus> {
    await this.startSandbox().catch(() => undefined);
    return this.sandboxStatus();
  }

  async resourceUrls(): Promise<string[]> {
    return this.env.resourceUrls?.() ?? [];
  }

  async memory(): Promise<MemoryInfo> {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes, backend: tf.getBackend() };
  }

  async setControl(value: ControlValue): Promise<void> {
    this.control.set(value);
  }

  private runStore(): Promise<RunStore> {
    this.store ??= this.env.openRunStore();
    return this.store;
  }

  /** Stops the sandbox (the command line calls this before it exits). */
  async close(): Promise<void> {
    this.policy?.model.dispose();
    this.policy = undefined;
    if (this.sandbox) await (await this.sandbox.catch(() => undefined))?.pool.close();
  }

  // ---- the model --------------------------------------------------------------------------

  async model(): Promise<ModelSummary | undefined> {
    return this.policy?.summary;
  }

  loadModel(source: ModelSource): Promise<ModelSummary> {
    return this.exclusive('loading a model', () => this.loadModelNow(source));
  }

  private async loadModelNow(source: ModelSource): Promise<ModelSummary> {
    const started = Date.now();
    let files: ModelFiles;
    if (source.kind === 'stored') {
      const store = await this.runStore();
      const [checkpoint, detail] = await Promise.all([store.getCheckpoint(source.runId), store.getDetail(source.runId)]);
      if (!checkpoint) throw new LabError('checkpoint', 'this run has no stored checkpoint', { file: source.runId, hint: 'Pick a run listed with a checkpoint' });
      const name = detail?.name ?? source.runId;
      files = { files: new MemoryFiles(name, checkpoint), label: name };
    } else {
      files = this.env.modelFiles(source);
    }
    const [folder, notes] = await Promise.all([loadModelFolder(files.files), files.notes?.().catch(() => undefined)]);
    const model = Transformer.fromWeights(folder.config, folder.weights, files.files.label);
    const parameters = countParameters(folder.config);
    return this.setPolicy(model, folder.tokenizer, {
      label: source.kind === 'shipped' ? `${files.label} (shipped)` : files.label,
      origin: source.kind,
      config: folder.config,
      tokenizer: folder.tokenizer.kind,
      parameters,
      weightBytes: parameters * 4,
      loadMs: Date.now() - started,
      ...(notes && { pretrain: notes }),
      ...(source.kind === 'stored' && { runId: source.runId }),
    });
  }

  createModel(size: NewModelSize, seed: number): Promise<ModelSummary> {
    return this.exclusive('creating a model', async () => {
      const started = Date.now();
      const tokenizer = CharTokenizer.fromCharset();
      const config = newModelConfig(size, tokenizer);
      const model = Transformer.create(config, { seed });
      return this.setPolicy(model, tokenizer, {
        label: `new ${size.layers}×${size.hidden} model (seed ${seed})`,
        origin: 'new',
        config,
        tokenizer: tokenizer.kind,
        parameters: model.numParameters(),
        weightBytes: model.numParameters() * 4,
        loadMs: Date.now() - started,
      });
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

  async exportModel(): Promise<CheckpointFiles> {
    return this.checkpointFiles();
  }

  async saveModel(name: string): Promise<string> {
    const { summary } = this.requirePolicy();
    const id = newRunId();
    await (await this.runStore()).save({ id, name, createdAt: new Date().toISOString(), model: summary.label, config: { parameters: summary.parameters }, metrics: [], evals: [], rollouts: [], checkpoint: await this.checkpointFiles() });
    return id;
  }

  /** The model as a Hugging Face style folder; with an optimiser, its moments too (when they fit the store). */
  private async checkpointFiles(optimizer?: AdamW): Promise<CheckpointFiles> {
    const { model, tokenizer } = this.requirePolicy();
    const sink = new MemoryFiles('checkpoint');
    await saveModelFolder(sink, { config: model.cfg, weights: await model.exportWeights(), tokenizer });
    const files: CheckpointFiles = Object.fromEntries(sink.files);
    if (optimizer && 2 * 4 * model.numParameters() <= (this.env.maxMomentBytes ?? Infinity)) {
      const state = await optimizer.exportState((v) => model.nameOf(v) ?? v.name);
      files[OPTIMIZER_FILE] = writeSafetensors(state.moments, { step: String(state.step), layout: 'AdamW moments m.NAME / v.NAME, device layout' });
    }
    return files;
  }

  // ---- jobs -------------------------------------------------------------------------------

  /** Runs a job that needs the model to itself; a second one is refused with a message. */
  private async exclusive<T>(what: string, job: () => Promise<T>): Promise<T> {
    if (this.job) throw new LabError('busy', `the lab is busy ${this.job}`, { hint: `Wait for it to finish or stop it before ${what}` });
    this.job = what;
    this.control.set(CONTROL.run);
    try {
      return await job();
    } finally {
      this.job = undefined;
      this.control.set(CONTROL.run);
    }
  }

  /** A job's settings over the defaults, checked by the run config's schema (errors name the setting). */
  private settings(input: RunConfigInput | undefined, use: ConfigUse, source: string): RunConfig {
    return parseRunConfig(input ?? {}, { source, use });
  }

  infer(req: InferRequest, onEvent: EventSink = () => undefined): Promise<InferOutcome> {
    return this.exclusive('answering a question', async () => {
      const { model, tokenizer } = this.requirePolicy();
      const c = this.settings(req.settings, 'inference', 'inference settings');
      if (req.question.trim() === '') throw new LabError('infer', 'no question', { field: 'question', expected: 'the question text', found: 'nothing' });
      const prompt = encodePrompt(tokenizer, req.question, c.rollout.instruction);
      if (req.prefix) prompt.push(...tokenizer.encode(req.prefix));
      const header = { id: 'inference', question: req.question, reference: req.reference ?? '', promptTokens: prompt };
      const row = emptyLiveRow();
      const decode = (ids: number[]) => tokenizer.decode(ids);
      const watcher = this.control.watch(['stop']);
      let sentAt = 0;
      const send = (force = false) => {
        const now = Date.now();
        if (!force && now - sentAt < 60) return;
        sentAt = now;
        onEvent({ type: 'trajectory', record: liveRecord(header, row, decode) });
      };
      const executor = this.executor();
      const env: RolloutEnv = {
        model,
        tokenizer,
        executor,
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
        const { records } = await runRollouts(env, [{ id: header.id, groupId: header.id, level: 'trajectory', problemId: 'inference', question: req.question, reference: header.reference, promptTokens: prompt }], inferenceSettings(c));
        const record = records[0];
        // Without a reference there is nothing to grade, but the answer is still read out.
        if (header.reference.trim() !== '') await gradeRecords(records, c.reward, sandboxChecker(executor));
        else record.finalAnswer = extractAnswer(policyText(record))?.answer ?? null;
        return { record, stopped: false, tokens: record.tokens.length, seconds: (Date.now() - started) / 1000 };
      } catch (e) {
        if (!(watcher.signal.aborted && e === watcher.signal.reason)) throw e;
        return { record: liveRecord(header, row, decode), stopped: true, tokens: row.tokens.length, seconds: (Date.now() - started) / 1000 };
      }
    });
  }

  evaluate(req: EvalRequest, onEvent: EventSink = () => undefined): Promise<EvalOutcome> {
    return this.exclusive('evaluating', async () => {
      const { model, tokenizer } = this.requirePolicy();
      const c = this.settings(req.settings, 'evaluation', 'evaluation settings');
      if (req.problems.length === 0) throw new LabError('eval', 'no problems to evaluate', { hint: 'Generate a test split or upload a benchmark file in the Data panel' });
      const executor = this.executor();
      const watcher = this.control.watch(['stop']);
      const progress = throttled((done: number, total: number) => onEvent({ type: 'progress', phase: 'evaluation', done, total }));
      try {
        // Batches of 8 rollouts: small enough for a tiny device, and a stop loses at most one batch.
        const r = await evaluate(
          { model, tokenizer, executor, checker: sandboxChecker(executor), signal: watcher.signal, onToken: () => watcher.check(), onProgress: progress },
          req.problems,
          evalSettingsOf(c, { batchSize: 8 }),
          c.reward,
        );
        progress(r.records.length, r.records.length, true);
        return { label: req.label, summary: evalSummary(r), table: r.table, records: r.records };
      } catch (e) {
        if (!(watcher.signal.aborted && e === watcher.signal.reason)) throw e;
        throw new LabError('eval', 'evaluation stopped', { hint: 'Run it again to get its figures' });
      }
    });
  }

  train(req: TrainRequest, onEvent: EventSink = () => undefined): Promise<TrainOutcome> {
    return this.exclusive('training', async () => {
      const store = await this.runStore();
      let config: RunConfig;
      let runId: string;
      let name: string;
      let fromStep = 0;
      if (req.resume) {
        const stored = await store.getDetail(req.resume.runId);
        if (!stored) throw new LabError('resume', 'no stored run has this id', { found: req.resume.runId, hint: 'the run list shows the runs that can go on' });
        if (!stored.state) throw new LabError('resume', 'this run was not trained by the lab (a saved model or an older run file): it has no state to go on from', { file: stored.name });
        fromStep = stored.state.checkpointStep;
        config = parseRunConfig(mergeConfig(stored.config, req.config ?? {}), { source: `${stored.name}/config.json` });
        runId = stored.id;
        name = stored.name;
        await this.loadModelNow({ kind: 'stored', runId });
      } else {
        config = parseRunConfig(req.config ?? {}, { source: 'training settings' });
        runId = req.runId ?? newRunId();
        name = req.name ?? `${config.mode === 'rl' ? 'RL' : 'SFT'} run ${runId}`;
      }
      const policy = this.requirePolicy();
      policy.summary.runId = runId;
      const train = req.train ?? (await configProblems(config, 'train', this.env.readProblemsFile));
      return runTraining(
        {
          policy,
          executor: this.executor(),
          store,
          control: this.control,
          emit: onEvent,
          checkpointFiles: (optimizer) => this.checkpointFiles(optimizer),
        },
        { config, runId, name, fromStep, resumed: req.resume !== undefined, train, test: req.test ?? (await configProblems(config, 'test')), demonstrations: req.demonstrations },
      );
    });
  }

  // ---- runs -------------------------------------------------------------------------------

  async listRuns(): Promise<RunSummary[]> {
    return (await this.runStore()).list();
  }

  async runDetail(id: string): Promise<RunDetail | undefined> {
    return (await this.runStore()).getDetail(id);
  }

  async runRolloutSteps(id: string): Promise<number[]> {
    return (await this.runStore()).rolloutSteps(id);
  }

  async runRollouts(id: string, step: number): Promise<TrajectoryRecord[] | undefined> {
    return (await this.runStore()).getRollouts(id, step);
  }

  async runTokenTexts(id: string, ids: number[]): Promise<string[] | undefined> {
    const checkpoint = await (await this.runStore()).getCheckpoint(id);
    return checkpoint && tokenTexts(checkpoint, ids);
  }

  async deleteRun(id: string): Promise<void> {
    if (this.job === 'training' && this.policy?.summary.runId === id) throw new LabError('busy', 'this run is training', { found: id, hint: 'stop it first' });
    await (await this.runStore()).delete(id);
  }

  async importRun(bytes: Uint8Array, fileName: string): Promise<{ run: RunSummary; copy: boolean }> {
    return importRun(await this.runStore(), bytes, fileName);
  }

  async exportRun(id: string): Promise<{ name: string; bytes: Uint8Array }> {
    const run = await (await this.runStore()).get(id);
    if (!run) throw new LabError('no-run', 'no stored run has this id', { found: id });
    return encodeRunFile(run);
  }
}

/** `over` written onto `base`, section by section (a resumed run's config with the changes asked for). */
function mergeConfig(base: Record<string, unknown>, over: RunConfigInput): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = value !== null && typeof value === 'object' && !Array.isArray(value) && current !== null && typeof current === 'object' ? { ...(current as object), ...(value as object) } : value;
  }
  return out;
}

/** The problems a run config names: synthetic splits, or a JSON-lines file for training (its held-out split stays synthetic). */
export async function configProblems(c: RunConfig, split: 'train' | 'test', readProblemsFile?: LabEnv['readProblemsFile']): Promise<Problem[]> {
  if (c.task.source === 'synthetic' || split === 'test') {
    return generateTasks({ seed: c.seed, count: split === 'train' ? c.task.trainSize : c.task.testSize, split, kinds: c.task.kinds, difficulties: c.task.difficulties, testFraction: c.task.testFraction });
  }
  if (!readProblemsFile) throw new LabError('BAD_RUN_CONFIG', 'files cannot be read by path here', { field: 'task.file', found: c.task.file, hint: 'upload the file in the Data panel: its questions go with the run' });
  return (await readProblemsFile(c.task.file!, c.task.maxQuestionTokens)).slice(0, c.task.trainSize);
}
