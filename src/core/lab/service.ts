/**
 * The lab service: the one place where a model is loaded, a question answered, an evaluation and a
 * training run driven (training.ts holds the run loop). The browser's policy worker and the command
 * line construct it with their own LabEnv and expose it; the UI talks to it through the LabApi
 * interface only.
 *
 * One job at a time holds the model (training, inference, evaluation, TIRGen); a second is refused with a
 * message. Jobs pause and stop through a ControlWord.
 */
import { rolloutPrompt } from '../tir/prompt';
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo, BackendName } from '../backend';
import { parseRunConfig, type ConfigUse, type RunConfig, type RunConfigInput } from '../config/schema';
import { applySettings, settingsOf } from '../config/settings';
import { checkContextFit, describeFit, minNewTokensFor, type FitReport } from '../data/fit';
import { generateTasks } from '../data/tasks';
import type { Problem } from '../data/types';
import { LabError } from '../errors';
import { f16Unavailable } from '../model/packed-f16';
import { evaluate, evalSettingsOf, evalSummary } from '../eval/evaluate';
import { EndpointPolicy, LocalPolicy, type PolicyModel } from '../llm/policy';
import { liveTextRecord, textRollout } from '../tir/text-rollout';
import { EndpointModel } from '../llm/client';
import { LocalModel, type LocalModelOptions } from '../llm/local';
import type { CompleteOptions, Completion, Prompt, SamplingRequest, TextModel } from '../llm/types';
import { MemoryFiles, type FileSource } from '../files';
import { isDownloading, type DownloadProgress } from '../hub/hub';
import { saveModelFolder, WEIGHTS_FILE } from '../model/checkpoint';
import { loadModelStreaming } from '../model/load';
import { assertBudget, checkBudget, currentDeviceLimits, estimateMemory, type DeviceLimits, type MemoryUse } from '../model/memory';
import { countParameters, newModelConfig, type ModelConfig, type NewModelSize } from '../model/config';
import { Transformer, type WeightFormat } from '../model/transformer';
import { readSafetensorsHeader, writeSafetensors } from '../model/safetensors';
import type { AdamW } from '../optim/adamw';
import { gradeRecords, policyText } from '../reward/grade';
import { extractAnswer } from '../reward/extract';
import { sandboxChecker } from '../reward/sandbox-checker';
import { encodeRunFile, newRunId, OPTIMIZER_FILE, REFERENCE_FILE, type CheckpointFiles } from '../run/runfile';
import { importRun, type RunDetail, type RunStore, type RunSummary } from '../run/store';
import { RunTokenTexts } from '../run/token-texts';
import type { PythonPool } from '../sandbox/pool';
import type { Executor, SandboxInfo } from '../sandbox/types';
import { addExecution, addToken, emptyLiveRow, liveRecord } from '../tir/live';
import { runRollouts, type RolloutEnv } from '../tir/rollout';
import { inferenceSettings } from '../tir/settings';
import type { TrajectoryRecord } from '../tir/types';
import { CharTokenizer } from '../tokenizer/char';
import type { Tokenizer } from '../tokenizer/types';
import { ModelCritic, type Critic } from '../tirgen/critic';
import { checkResume, messagesLine, progressHeaderLine, progressLine, resumeState, sampleLine } from '../tirgen/outputs';
import { runTirgen, type QuestionResult, type TirgenProblem } from '../tirgen/pipeline';
import { addCounts, emptyCounts, type TirgenInput } from '../tirgen/report';
import { RuleCritic } from '../tirgen/rule-critic';
import { measureSpeed, type SpeedPlan, type SpeedReport } from '../engine/speed';
import { MAX_WASM_THREADS } from './threads';
import { parseTirgenSettings, type TirgenSettings } from '../tirgen/settings';
import type {
  EndpointSpec,
  EvalOutcome,
  EvalRequest,
  EventSink,
  InferOutcome,
  InferRequest,
  JobSettings,
  LabApi,
  MemoryInfo,
  RunningJobInfo,
  ModelSource,
  ModelSummary,
  SandboxCapabilities,
  SandboxStatus,
  TirgenOutcome,
  TirgenRequest,
  TrainOutcome,
  TrainRequest,
} from './api';
import { CONTROL, ControlWord, type ControlValue } from './control';
import { shippedModel, type ShippedModelName } from './models';
import { runTraining, throttled, type Policy, type TrainingContext } from './training';
import { endpointPrompt, modelPrompting, singleAnswer } from './prompting';
import { adapterCheckpointFiles, adapterCheckpointStep, attachCheckpointAdapter, isAdapterCheckpoint, prepareAdapter, readBaseRef, type BaseModelRef } from './lora-runs';
import { LoraAdapter, saveMergedModel } from '../model/lora';

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
  /** `threads`: for tfjs's threaded wasm build, where the place has one (a cross-origin isolated page). */
  /** threads: tfjs's wasm thread count; engineHelpers: false keeps the engine's own kernels on one thread (docs/engine.md#the-engines-products-on-several-threads). */
  selectBackend(order?: BackendName[], options?: { threads?: number; engineHelpers?: boolean }): Promise<BackendInfo>;
  startPython(): Promise<PythonSandbox>;
  /** The files of a model folder (stored runs are read from the run store); `signal` stops a download. */
  modelFiles(source: Exclude<ModelSource, { kind: 'stored' }>, signal?: AbortSignal): ModelFiles;
  openRunStore(): Promise<RunStore>;
  /** Problems of a JSON-lines file named by task.file, where files are read by path (Node). */
  readProblemsFile?(path: string, maxQuestionTokens: number): Promise<Problem[]>;
  /** Files fetched so far, to keep for offline use (browsers). */
  resourceUrls?(): string[];
  /** Largest optimiser state a checkpoint keeps (browser storage is limited); default: no limit. */
  maxMomentBytes?: number;
  /** What the device holds, for the memory check of a loaded model; default: the current backend's limits. */
  deviceLimits?(): DeviceLimits;
}

export class LabService implements LabApi {
  private backend: BackendInfo | undefined;
  private policy: Policy | undefined;
  private sandbox: Promise<PythonSandbox> | undefined;
  private sandboxError: string | undefined;
  private sandboxReady: PythonSandbox | undefined;
  private store: Promise<RunStore> | undefined;
  private job: string | undefined;
  private jobSince = 0;
  private text: { policy: Policy; model: LocalModel } | undefined;
  /** Where the loaded model's base weights come from: a LoRA run's checkpoints name it. */
  private baseRef: BaseModelRef | undefined;
  private readonly tokenTexts = new RunTokenTexts(() => this.runStore());
  readonly control = new ControlWord();

  constructor(private readonly env: LabEnv) {}

  // ---- setup ------------------------------------------------------------------------------

  async init(options: { order?: BackendName[]; control?: Int32Array; threads?: number; engineHelpers?: boolean } = {}): Promise<BackendInfo> {
    if (options.control) this.control.adopt(options.control);
    if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= MAX_WASM_THREADS))
      throw new LabError('backend', 'threads must be a whole number of threads', { field: 'threads', expected: `1 to ${MAX_WASM_THREADS}`, found: String(options.threads) });
    this.backend ??= await this.env.selectBackend(options.order, {
      ...(options.threads !== undefined && { threads: options.threads }),
      ...(options.engineHelpers !== undefined && { engineHelpers: options.engineHelpers }),
    });
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
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
    const backend = tf.getBackend();
    const wasm = backend === 'wasm' ? (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm : undefined;
    return {
      numTensors: m.numTensors,
      numBytes: m.numBytes,
      backend,
      ...(m.numBytesInGPU !== undefined && { gpuBytes: m.numBytesInGPU }),
      ...(m.numBytesAllocatedInGPU !== undefined && { gpuAllocatedBytes: m.numBytesAllocatedInGPU }),
      ...(wasm?.HEAPU8 && { heapBytes: wasm.HEAPU8.buffer.byteLength }),
    };
  }

  async setControl(value: ControlValue): Promise<void> {
    this.control.set(value);
  }

  async runningJob(): Promise<RunningJobInfo | null> {
    if (!this.job) return null;
    return { what: this.job, state: this.control.requested(), seconds: Math.round((Date.now() - this.jobSince) / 1000), orphaned: false, waiting: 0 };
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

  loadModel(source: ModelSource, onEvent?: EventSink): Promise<ModelSummary> {
    return this.exclusive('loading a model', () => this.loadModelNow(source, onEvent));
  }

  private async loadModelNow(source: ModelSource, onEvent?: EventSink): Promise<ModelSummary> {
    if (source.kind === 'stored') {
      const store = await this.runStore();
      const [checkpoint, detail] = await Promise.all([store.getCheckpoint(source.runId), store.getDetail(source.runId)]);
      if (!checkpoint) throw new LabError('checkpoint', 'this run has no stored checkpoint', { file: source.runId, hint: 'Pick a run listed with a checkpoint' });
      return this.loadCheckpoint(checkpoint, detail?.name ?? source.runId, source.runId);
    }
    // An unknown shipped name is refused here, the same wherever the lab runs.
    const shipped = source.kind === 'shipped' ? shippedModel(source.name).name : undefined;
    const weights: WeightFormat = source.kind === 'shipped' ? 'f32' : (source.weights ?? 'f32');
    // Refused before anything is downloaded.
    const unpackable = weights === 'f16' ? f16Unavailable() : undefined;
    if (unpackable) throw new LabError('model', `float16 weights are not available here: ${unpackable}`, { field: 'weights', expected: 'f32', found: 'f16', hint: 'load the model with float32 weights, or run the lab on WebGPU' });
    // A stop ends a download; what arrived stays in the cache and the next load goes on from there.
    const watcher = this.control.watch(['stop']);
    const looking = setInterval(() => watcher.check(), 200);
    let summary: ModelSummary;
    try {
      summary = await this.loadFiles(this.env.modelFiles(source, watcher.signal), source.kind, undefined, shipped, onEvent, weights);
    } catch (e) {
      if (watcher.signal.aborted) throw new LabError('stopped', 'loading the model was stopped', { hint: 'What was downloaded is kept: loading it again goes on from there' });
      throw e;
    } finally {
      clearInterval(looking);
    }
    // A run's checkpoints name their base model: never with the access token that fetched it.
    const label = source.kind === 'shipped' ? shipped! : source.kind === 'path' ? source.path : summary.label;
    if (source.kind === 'files') this.baseRef = { label };
    else if (source.kind === 'hub') this.baseRef = { label, source: { kind: 'hub', repo: source.repo, ...(source.revision && { revision: source.revision }), ...(source.baseUrl && { baseUrl: source.baseUrl }), ...(source.weights && { weights: source.weights }) } };
    else this.baseRef = { label, source: source.kind === 'shipped' ? { kind: 'shipped', name: shipped } : source };
    return summary;
  }

  /** A run's checkpoint as the policy. */
  private async loadCheckpoint(checkpoint: CheckpointFiles, name: string, runId: string): Promise<ModelSummary> {
    if (isAdapterCheckpoint(checkpoint)) return this.loadAdapterCheckpoint(checkpoint, name, runId);
    const summary = await this.loadFiles({ files: new MemoryFiles(name, checkpoint), label: name }, 'stored', runId);
    this.baseRef = { label: name, source: { kind: 'stored', runId } };
    return summary;
  }

  /** A LoRA run's checkpoint: its base model (loaded again from where it came, or the one loaded now), then its adapter (docs/lora.md#runs). */
  private async loadAdapterCheckpoint(checkpoint: CheckpointFiles, name: string, runId: string): Promise<ModelSummary> {
    const ref = readBaseRef(checkpoint, name);
    if (ref.source?.kind === 'new') await this.createModelNow(ref.source.size, ref.source.seed);
    else if (ref.source?.kind === 'stored' && ref.source.runId === runId) throw new LabError('lora', 'the adapter names its own run as its base model', { file: name, field: 'source.runId', found: runId });
    else if (ref.source) await this.loadModelNow(ref.source as ModelSource);
    else if (this.policy?.summary.label !== ref.label || this.policy.model.adapter) {
      throw new LabError('lora', `the base model "${ref.label}" was picked from files and cannot be loaded again from here`, { file: name, expected: `"${ref.label}" loaded in the Model panel`, found: this.policy ? `"${this.policy.summary.label}"` : 'no model', hint: 'load that base model, then go on with the run' });
    }
    const policy = this.requirePolicy();
    await attachCheckpointAdapter(policy.model, checkpoint, name);
    policy.summary = { ...policy.summary, label: name, origin: 'stored', runId };
    this.baseRef = ref;
    return policy.summary;
  }

  private async loadFiles(files: ModelFiles, origin: ModelSummary['origin'], runId?: string, shipped?: ShippedModelName, onEvent?: EventSink, weights: WeightFormat = 'f32'): Promise<ModelSummary> {
    const started = Date.now();
    const beforeWeights = (config: ModelConfig) => this.beforeWeights(config, files.files, origin, onEvent, weights);
    const [folder, notes] = await Promise.all([loadModelStreaming(files.files, { beforeWeights, weights }), files.notes?.().catch(() => undefined)]);
    const model = folder.model;
    const parameters = countParameters(folder.config);
    return this.setPolicy(model, folder.tokenizer, {
      label: origin === 'shipped' ? `${files.label} (shipped)` : files.label,
      origin,
      config: folder.config,
      tokenizer: folder.tokenizer.kind,
      parameters,
      weightBytes: model.deviceBytes(),
      ...(model.weightFormat === 'f16' && { weightFormat: model.weightFormat }),
      loadMs: Date.now() - started,
      prompting: modelPrompting(folder.config, folder.tokenizer),
      ...(notes && { pretrain: notes }),
      ...(runId !== undefined && { runId }),
      ...(shipped !== undefined && { shipped }),
    });
  }

  /**
   * Between a model's config.json and its weights: a folder or Hub model the device cannot hold is
   * refused with the numbers (docs/models.md#memory-budget), and a Hub model is downloaded with progress.
   */
  private async beforeWeights(config: ModelConfig, files: FileSource, origin: ModelSummary['origin'], onEvent?: EventSink, weights: WeightFormat = 'f32'): Promise<void> {
    if (origin === 'path' || origin === 'hub' || origin === 'files') {
      const defaults = parseRunConfig({});
      const use: MemoryUse = { mode: 'infer', batch: defaults.rollout.groupSize, context: trainingUse(config, defaults).context, weights };
      const limits = this.env.deviceLimits?.() ?? currentDeviceLimits();
      const infer = checkBudget(config, use, limits);
      if (onEvent) {
        // What a LoRA run at the defaults would hold, shown beside the answer's budget (not a reason to refuse the model).
        const trainAt = { ...trainingUse(config, { ...defaults, lora: { ...defaults.lora, enabled: true } }), weights };
        const train = estimateMemory(config, trainAt, limits.backend);
        const trainUse = `LoRA rank ${trainAt.lora!.rank} on ${trainAt.lora!.targetModules.join(', ')}, ${trainAt.batch} rows of ${trainAt.context} tokens, micro-batches of ${trainAt.updateBatch}`;
        onEvent({ type: 'memory-budget', infer: infer.estimate, train, trainUse, limits, fits: infer.fits });
      }
      assertBudget(config, use, limits, `${files.label}/config.json`, infer);
    }
    if (isDownloading(files)) {
      let latest: DownloadProgress | undefined;
      const send = throttled((done, total) => {
        onEvent?.({ type: 'progress', phase: 'download', done, total });
        if (latest) onEvent?.({ type: 'download', progress: latest });
      });
      await files.download((p) => {
        latest = p;
        send(p.done, p.total);
      });
    }
  }

  createModel(size: NewModelSize, seed: number): Promise<ModelSummary> {
    return this.exclusive('creating a model', () => this.createModelNow(size, seed));
  }

  /** How fast this place runs the engine (src/core/engine/speed.ts): its own model, the loaded one untouched. */
  measureSpeed(request: { plan?: SpeedPlan } = {}, onEvent?: EventSink): Promise<SpeedReport> {
    return this.exclusive('measuring speed', async () => {
      if (!this.backend) throw new LabError('backend', 'no compute backend yet', { hint: 'wait for the lab to start' });
      const watcher = this.control.watch(['stop']);
      try {
        return await measureSpeed({
          ...(request.plan && { plan: request.plan }),
          signal: watcher.signal,
          // The parts run without yielding to timers: the stop word is read at each part.
          progress: (done, total, part) => {
            onEvent?.({ type: 'progress', phase: part, done, total });
            watcher.check();
          },
        });
      } catch (e) {
        if (watcher.signal.aborted) throw new LabError('stopped', 'measuring speed was stopped');
        throw e;
      }
    });
  }

  private async createModelNow(size: NewModelSize, seed: number): Promise<ModelSummary> {
    const started = Date.now();
    const tokenizer = CharTokenizer.fromCharset();
    const config = newModelConfig(size, tokenizer);
    const model = Transformer.create(config, { seed });
    const label = `new ${size.layers}×${size.hidden} model (seed ${seed})`;
    this.baseRef = { label, source: { kind: 'new', size, seed } };
    return this.setPolicy(model, tokenizer, {
      label,
      origin: 'new',
      config,
      tokenizer: tokenizer.kind,
      parameters: model.numParameters(),
      weightBytes: model.numParameters() * 4,
      loadMs: Date.now() - started,
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

  /**
   * The model as a Hugging Face style folder. A run's checkpoint also keeps the step it was taken after
   * (in the weights' metadata), the optimiser's moments (when they fit the store) and a KL run's
   * frozen reference.
   */
  private async checkpointFiles(run?: { step: number; optimizer: AdamW; reference?: Transformer }): Promise<CheckpointFiles> {
    const { model, tokenizer, summary } = this.requirePolicy();
    const sink = new MemoryFiles('checkpoint');
    // With a LoRA adapter a run keeps the adapter and its base's reference; a saved model has the adapter merged in (docs/lora.md#runs).
    const lora = model.adapter instanceof LoraAdapter;
    if (lora && run) for (const [name, bytes] of Object.entries(await adapterCheckpointFiles(model, this.baseRef ?? { label: summary.label }, { [RUN_STEP_KEY]: String(run.step) }))) await sink.write(name, bytes);
    else if (lora) await saveMergedModel(sink, model, tokenizer);
    else await saveModelFolder(sink, { config: model.cfg, weights: await model.exportWeights(), tokenizer }, run && { metadata: { [RUN_STEP_KEY]: String(run.step) } });
    const files: CheckpointFiles = Object.fromEntries(sink.files);
    const trained = model.trainableVariables().reduce((n, v) => n + v.size, 0);
    if (run && 2 * 4 * trained <= (this.env.maxMomentBytes ?? Infinity)) {
      const state = await run.optimizer.exportState((v) => model.nameOf(v) ?? v.name);
      files[OPTIMIZER_FILE] = writeSafetensors(state.moments, { step: String(state.step), layout: 'AdamW moments m.NAME / v.NAME, device layout' });
    }
    // A LoRA run's reference is its base model, loaded again with the run.
    if (run?.reference && !lora) files[REFERENCE_FILE] = writeSafetensors(await run.reference.exportWeights(), { purpose: 'the frozen reference policy of the KL term' });
    return files;
  }

  // ---- jobs -------------------------------------------------------------------------------

  /** Runs a job that needs the model to itself; a second one is refused with a message. */
  private async exclusive<T>(what: string, job: () => Promise<T>): Promise<T> {
    if (this.job) throw new LabError('busy', `the lab is busy ${this.job}`, { hint: `Wait for it to finish or stop it before ${what}` });
    this.job = what;
    this.jobSince = Date.now();
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
      const c = this.settings(req.settings, 'inference', 'inference settings');
      if (req.question.trim() === '') throw new LabError('infer', 'no question', { field: 'question', expected: 'the question text', found: 'nothing' });
      if (req.endpoint) return this.inferEndpoint(req, req.endpoint, c, onEvent);
      const { model, tokenizer } = this.requirePolicy();
      // What the request leaves out comes from the model's own files (docs/models.md#prompts-and-stop-tokens).
      const answer = singleAnswer(tokenizer, req.question, req.settings, c, inferenceSettings(c));
      const prompt = tokenizer.encode(answer.prompt.text);
      if (req.prefix) prompt.push(...tokenizer.encode(req.prefix));
      const shown = { ...answer.prompt, text: tokenizer.decode(prompt), tokens: prompt.length };
      onEvent({ type: 'prompt', prompt: shown });
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
        const { records } = await runRollouts(env, [{ id: header.id, groupId: header.id, level: 'trajectory', problemId: 'inference', question: req.question, reference: header.reference, promptTokens: prompt }], answer.settings);
        const record = records[0];
        // Without a reference there is nothing to grade, but the answer is still read out.
        if (header.reference.trim() !== '') await gradeRecords(records, c.reward, sandboxChecker(executor));
        else record.finalAnswer = extractAnswer(policyText(record))?.answer ?? null;
        return { record, prompt: shown, stopped: false, tokens: record.tokens.length, seconds: (Date.now() - started) / 1000 };
      } catch (e) {
        if (!(watcher.signal.aborted && e === watcher.signal.reason)) throw e;
        return { record: liveRecord(header, row, decode), prompt: shown, stopped: true, tokens: row.tokens.length, seconds: (Date.now() - started) / 1000 };
      }
    });
  }

  /** One answer from an endpoint, streamed as it is written; the lab runs its code (docs/engines.md). */
  private async inferEndpoint(req: InferRequest, endpoint: EndpointSpec, c: RunConfig, onEvent: EventSink): Promise<InferOutcome> {
    const policy = new EndpointPolicy(endpoint);
    const executor = this.executor();
    const watcher = this.control.watch(['stop']);
    const header = { id: 'inference', question: req.question, reference: req.reference ?? '' };
    let latest = '';
    let sentAt = 0;
    const started = Date.now();
    const sent = policy.prompt(req.question, c.rollout.instruction);
    const shown = endpointPrompt(sent);
    onEvent({ type: 'prompt', prompt: shown });
    try {
      const record = await textRollout(policy.text, { ...header, groupId: header.id, problemId: 'inference', prompt: sent, ...(req.prefix && { prefix: req.prefix }) }, inferenceSettings(c), {
        executor,
        signal: watcher.signal,
        onText: (response) => {
          latest = response;
          const now = Date.now();
          if (now - sentAt < 60) return;
          sentAt = now;
          onEvent({ type: 'trajectory', record: liveTextRecord(header, response) });
        },
      });
      if (header.reference.trim() !== '') await gradeRecords([record], c.reward, sandboxChecker(executor));
      else record.finalAnswer = extractAnswer(policyText(record))?.answer ?? null;
      return { record, prompt: shown, stopped: false, tokens: record.generatedTokens ?? 0, seconds: (Date.now() - started) / 1000 };
    } catch (e) {
      if (!watcher.signal.aborted) throw e;
      return { record: liveTextRecord(header, latest), prompt: shown, stopped: true, tokens: 0, seconds: (Date.now() - started) / 1000 };
    }
  }

  evaluate(req: EvalRequest, onEvent: EventSink = () => undefined): Promise<EvalOutcome> {
    return this.exclusive('evaluating', async () => {
      const c = this.settings(req.settings, 'evaluation', 'evaluation settings');
      if (req.problems.length === 0) throw new LabError('eval', 'no problems to evaluate', { hint: 'Generate a test split or upload a benchmark file in the Data panel' });
      const policy = req.endpoint ? new EndpointPolicy(req.endpoint) : this.localPolicy(8);
      // Questions too long for the model's context are skipped and counted, not a failed run (docs/datasets.md#context-fit).
      const fit = withinContext(req.problems, policy, c, onEvent);
      req = { ...req, problems: fit.problems };
      const executor = this.executor();
      const watcher = this.control.watch(['stop']);
      const progress = throttled((done: number, total: number) => onEvent({ type: 'progress', phase: 'evaluation', done, total }));
      let logged = req.resume?.length ?? 0;
      try {
        // Local batches of 8 rollouts: small enough for a tiny device, and a stop loses at most one batch.
        const r = await evaluate(
          {
            policy,
            executor,
            checker: sandboxChecker(executor),
            signal: watcher.signal,
            onToken: () => watcher.check(),
            onProgress: progress,
            onProblem: (log) => onEvent({ type: 'problem', log, done: ++logged, total: req.problems.length }),
          },
          req.problems,
          evalSettingsOf(c, { batchSize: 8 }),
          c.reward,
          req.resume,
        );
        progress(r.records.length, r.records.length, true);
        return { label: req.label, model: policy.label, summary: { ...evalSummary(r), ...fit.figures }, table: r.table, records: r.records, problems: r.problems };
      } catch (e) {
        if (!(watcher.signal.aborted && e === watcher.signal.reason)) throw e;
        throw new LabError('eval', `evaluation stopped after ${logged} of ${req.problems.length} problems`, { hint: 'the finished problems are in the per-problem log: run it again with resume to go on' });
      }
    });
  }

  tirgen(req: TirgenRequest, onEvent: EventSink = () => undefined): Promise<TirgenOutcome> {
    return this.exclusive('generating TIR data', async () => {
      const settings = parseTirgenSettings(
        Object.entries(req.settings ?? {})
          .filter(([, value]) => value !== undefined)
          .map(([key, value]) => ({ key, value })),
        'TIRGen settings',
      );
      const seed = req.seed ?? 0;
      if (!Number.isInteger(seed) || seed < 0) throw new LabError('tirgen', 'not a seed', { field: 'seed', expected: 'a whole number ≥ 0', found: String(seed) });
      const { problems, input } = tirgenProblems(req);
      const actor: TextModel = req.actor ? new EndpointModel(req.actor) : this.textModel();
      const critic = this.tirgenCritic(req, settings);
      const meta = { actor: actor.label, critic: critic.label };
      const header = { ...meta, seed, settings, source: input.source };

      // What a stopped run left: its finished questions, their lines, and a check that it was made the same way.
      let previous: QuestionResult[] = [];
      let progress = progressHeaderLine({ type: 'tirgen-progress', version: 1, createdAt: new Date().toISOString(), ...header });
      let data = '';
      let messages = '';
      let dropped = 0;
      if (req.previous && req.previous.progress.trim() !== '') {
        const state = resumeState(req.previous);
        if (!state.header) throw new LabError('tirgen-resume', 'the progress lines have no TIRGen header', { file: 'progress.jsonl', expected: 'the progress lines of a TIRGen run', hint: 'resume from the lines the run that stopped gave' });
        checkResume(state.header, header, 'the earlier run');
        ({ progress, data, messages, dropped } = state);
        previous = state.done;
      }
      const ids = new Set(problems.map((p) => p.id));
      const doneBefore = previous.filter((r) => ids.has(r.id)).length;
      const todoAtStart = ids.size - doneBefore;

      const watcher = this.control.watch(['stop']);
      // The stop word is read between steps and while the actor decodes (local batches yield to timers).
      const poll = setInterval(() => watcher.check(), 100);
      const checked: TextModel = {
        label: actor.label,
        kind: actor.kind,
        complete: (prompt, request, options) => {
          watcher.check();
          return actor.complete(prompt, request, options);
        },
        ...(actor.check && { check: actor.check.bind(actor) }),
      };
      const executor = this.executor();
      const started = Date.now();
      const figures = (done: number, doneNow: number, attempts: number, kept: number) => ({ done, total: ids.size, doneNow, todoAtStart, attempts, kept, elapsedMs: Date.now() - started });
      const before = previous.reduce((c, r) => addCounts(c, r.counts), emptyCounts());
      onEvent({ type: 'tirgen-progress', progress: figures(doneBefore, 0, before.attempts, before.kept), counts: before });
      try {
        const { report } = await runTirgen(
          { problems, settings, seed, previous, input },
          {
            actor: checked,
            critic,
            executor,
            checker: sandboxChecker(executor),
            signal: watcher.signal,
            onStep: (step) => {
              watcher.check();
              onEvent({ type: 'tirgen-step', step });
            },
            onQuestion: (r) => {
              const d = r.samples.map((x) => sampleLine(x, meta)).join('');
              const m = r.samples.map((x) => messagesLine(x, settings.dataInstruction)).join('');
              // A question's sample lines come before its progress line (docs/tirgen.md#stopping-and-resuming).
              data += d;
              messages += m;
              progress += progressLine(r);
              onEvent({ type: 'tirgen-question', result: r, data: d, messages: m });
            },
            onProgress: (p) => onEvent({ type: 'tirgen-progress', progress: figures(p.done, p.doneNow, p.counts.attempts, p.counts.kept), counts: p.counts }),
          },
        );
        return { report, data, messages, progress, dropped };
      } finally {
        clearInterval(poll);
      }
    });
  }

  /** TIRGen's critic as the request names it (docs/tirgen.md#critic). */
  private tirgenCritic(req: TirgenRequest, s: TirgenSettings): Critic {
    if (req.critic.kind === 'rule') {
      if (req.criticPrompt !== undefined) throw new LabError('tirgen', 'a critic prompt is for a model critic', { field: 'criticPrompt', hint: 'pick the loaded model or an endpoint as the critic, or leave the prompt empty' });
      return new RuleCritic();
    }
    const model = req.critic.kind === 'endpoint' ? new EndpointModel(req.critic.endpoint) : this.textModel();
    if (req.criticPrompt !== undefined && !req.criticPrompt.includes('{step}')) throw new LabError('tirgen', 'the critic prompt has no {step}', { field: 'criticPrompt', expected: 'a prompt with {step} where the step goes', found: req.criticPrompt.slice(0, 80) });
    return new ModelCritic(model, { temperature: s.criticTemperature, maxTokens: s.criticMaxTokens, topK: s.topK, topP: s.topP, minOverlap: s.minRewriteOverlap, ...(req.criticPrompt !== undefined && { template: req.criticPrompt }) });
  }

  async checkFit(problems: readonly Pick<Problem, 'question'>[], settings?: JobSettings): Promise<FitReport> {
    const c = this.settings(settings, 'evaluation', 'evaluation settings');
    return fitReport(problems, this.localPolicy(), c)!;
  }

  /**
   * Text from the loaded model (the OpenAI-compatible server's engine): requests that arrive together
   * share batched decoding. Refused while a training run is changing the weights.
   */
  complete(prompt: Prompt, request: SamplingRequest, options: CompleteOptions = {}): Promise<Completion> {
    if (this.job === 'training') return Promise.reject(new LabError('busy', 'the lab is training this model', { hint: 'completions are served again when the run ends' }));
    return this.textModel().complete(prompt, request, options);
  }

  /** The loaded model's config (the node's OpenAI API reports its context length). */
  loadedConfig(): ModelConfig | undefined {
    return this.policy?.summary.config;
  }

  /** Batching figures of the loaded model's completions, once it has served one. */
  engineStats(): LocalModel['stats'] | undefined {
    return this.text?.model.stats;
  }

  /** The loaded model as a TextModel; one per loaded model, so its batches are shared. */
  textModel(options: LocalModelOptions = {}): LocalModel {
    const policy = this.requirePolicy();
    if (this.text?.policy !== policy) this.text = { policy, model: new LocalModel(policy.model, policy.tokenizer, policy.summary.label, options) };
    return this.text.model;
  }

  /** The loaded model as a policy for evaluation and completions. */
  private localPolicy(batch = 64): LocalPolicy {
    const { model, tokenizer, summary } = this.requirePolicy();
    return new LocalPolicy(model, tokenizer, summary.label, batch);
  }

  train(req: TrainRequest, onEvent: EventSink = () => undefined): Promise<TrainOutcome> {
    return this.exclusive('training', async () => {
      const store = await this.runStore();
      if (req.resume) return this.resume(store, req.resume.runId, req, onEvent);
      const config = parseRunConfig(req.config ?? {}, { source: 'training settings' });
      const runId = req.runId ?? newRunId();
      const policy = this.requirePolicy();
      this.checkTrainingBudget(policy.model.cfg, config, policy.model.weightFormat);
      prepareAdapter(policy.model, config, false);
      policy.summary.runId = runId;
      return runTraining(this.trainingContext(store, onEvent), {
        config,
        runId,
        name: req.name ?? `${config.mode === 'rl' ? 'RL' : 'SFT'} run ${runId}`,
        fromStep: 0,
        resumed: false,
        streamRollouts: req.streamRollouts,
        train: req.train ?? (await configProblems(config, 'train', this.env.readProblemsFile)),
        test: req.test ?? (await configProblems(config, 'test')),
        demonstrations: req.demonstrations,
      });
    });
  }

  /**
   * Goes on with a stored run from its checkpoint: its weights, optimiser moments and reference, its
   * config (with the changes asked for), the questions it was started with, from the step the
   * checkpoint was taken after.
   */
  private async resume(store: RunStore, id: string, req: TrainRequest, onEvent: EventSink): Promise<TrainOutcome> {
    const stored = await store.getDetail(id);
    if (!stored) throw new LabError('resume', 'no stored run has this id', { found: id, hint: 'the run list shows the runs that can go on' });
    if (!stored.state) throw new LabError('resume', 'this run was not trained by the lab (a saved model or an older run file): it has no state to go on from', { file: stored.name });
    const checkpoint = await store.getCheckpoint(stored.id);
    if (!checkpoint) throw new LabError('resume', 'this run has no checkpoint to go on from', { file: stored.name });
    const config = parseRunConfig(applySettings(stored.config, settingsOf(req.config ?? {}, 'resume settings')), { source: `${stored.name}/config.json` });
    await this.loadCheckpoint(checkpoint, stored.name, stored.id);
    prepareAdapter(this.requirePolicy().model, config, true);
    const data = await store.getData(stored.id);
    // Runs stored by an earlier version kept no questions: they go on with those given now.
    const missing = [...(config.mode === 'sft' ? (data.demonstrations ? [] : ['demonstrations']) : data.train ? [] : ['training questions']), ...(data.test ? [] : ['held-out questions'])];
    if (missing.length > 0) onEvent({ type: 'message', text: `the run kept no ${missing.join(' and ')}: it goes on with those given now (the Data panel's, or the run config's task)` });
    return runTraining(this.trainingContext(store, onEvent), {
      config,
      runId: stored.id,
      name: stored.name,
      // The checkpoint names the step it was taken after; run.json says it too, but is written after it.
      fromStep: checkpointRunStep(checkpoint) ?? stored.state.checkpointStep,
      resumed: true,
      streamRollouts: req.streamRollouts,
      train: data.train ?? req.train ?? (await configProblems(config, 'train', this.env.readProblemsFile)),
      test: data.test ?? req.test ?? (await configProblems(config, 'test')),
      demonstrations: data.demonstrations ?? req.demonstrations,
      checkpoint,
    });
  }

  /**
   * A run the device cannot hold is refused before it starts, with the numbers and the settings that
   * would fit (docs/models.md#memory-budget): rollouts of `groupSize × promptsPerStep` rows (SFT:
   * `sft.batchSize`), updates in micro-batches of `optim.microBatchTokens`, gradients and AdamW
   * moments for every weight or for the LoRA adapter only, and a frozen reference for a KL term.
   */
  private checkTrainingBudget(model: ModelConfig, config: RunConfig, weights: WeightFormat): void {
    assertBudget(model, { ...trainingUse(model, config), weights }, this.env.deviceLimits?.() ?? currentDeviceLimits(), 'training settings');
  }

  private trainingContext(store: RunStore, emit: EventSink): TrainingContext {
    return { policy: this.requirePolicy(), executor: this.executor(), store, control: this.control, emit, checkpointFiles: (step, optimizer, reference) => this.checkpointFiles({ step, optimizer, reference }) };
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

  runTokenTexts(id: string, ids: number[]): Promise<string[] | undefined> {
    return this.tokenTexts.texts(id, ids);
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

/** The problems a run config names: synthetic splits, or a JSON-lines file for training (its held-out split stays synthetic). */
export async function configProblems(c: RunConfig, split: 'train' | 'test', readProblemsFile?: LabEnv['readProblemsFile']): Promise<Problem[]> {
  if (c.task.source === 'synthetic' || split === 'test') {
    return generateTasks({ seed: c.seed, count: split === 'train' ? c.task.trainSize : c.task.testSize, split, kinds: c.task.kinds, difficulties: c.task.difficulties, testFraction: c.task.testFraction });
  }
  if (!readProblemsFile) throw new LabError('BAD_RUN_CONFIG', 'files cannot be read by path here', { field: 'task.file', found: c.task.file, hint: 'upload the file in the Data panel: its questions go with the run' });
  return (await readProblemsFile(c.task.file!, c.task.maxQuestionTokens)).slice(0, c.task.trainSize);
}

/** TIRGen's questions: the synthetic train split (as `tirgen --synthetic N --seed S`), or a data set's problems. */
function tirgenProblems(req: TirgenRequest): { problems: TirgenProblem[]; input: TirgenInput } {
  const src = req.source;
  if (src.kind === 'synthetic') {
    if (!Number.isInteger(src.count) || src.count < 1) throw new LabError('tirgen', 'no questions', { field: 'source.count', expected: 'a whole number ≥ 1', found: String(src.count) });
    if (!Number.isInteger(src.seed) || src.seed < 0) throw new LabError('tirgen', 'not a seed', { field: 'source.seed', expected: 'a whole number ≥ 0', found: String(src.seed) });
    const problems = generateTasks({ seed: src.seed, count: src.count, split: 'train' }).map((t) => ({ id: t.id, question: t.question, answer: t.answer }));
    return { problems, input: { source: `synthetic ${src.count} (seed ${src.seed})` } };
  }
  if (src.problems.length === 0) throw new LabError('tirgen', 'the data set has no questions', { file: src.label, hint: 'pick a data set with usable lines in the Data panel' });
  // A problem with no answer is skipped and counted by the run (report.counts.skipped.noAnswer).
  const problems = src.problems.map((p) => ({ id: String(p.id), question: p.question, answer: typeof p.answer === 'string' ? p.answer : '' }));
  const skipped = Object.fromEntries(Object.entries(src.skipped ?? {}).filter(([, n]) => n > 0));
  return { problems, input: { source: src.label, ...(src.records !== undefined && { records: src.records }), ...(Object.keys(skipped).length > 0 && { skipped }) } };
}

/** Which questions fit a model's context, their prompts built as evaluation builds them; undefined where the model's tokenizer or context is unknown (an endpoint). */
function fitReport(problems: readonly Pick<Problem, 'question'>[], policy: PolicyModel, c: RunConfig): FitReport | undefined {
  const { promptTokens, contextLength } = policy;
  if (!promptTokens || contextLength === undefined) return undefined;
  return checkContextFit(
    problems.map((p) => p.question),
    { promptTokens: (q) => promptTokens.call(policy, q, rolloutPrompt(c)), contextLength, minNewTokens: minNewTokensFor(c.rollout.maxResponseTokens) },
  );
}

/** The problems an evaluation runs: those that fit the model's context; the others are counted in its figures and said in a message. */
function withinContext(problems: Problem[], policy: PolicyModel, c: RunConfig, onEvent: EventSink): { problems: Problem[]; figures: Record<string, number> } {
  const fit = fitReport(problems, policy, c);
  if (!fit) return { problems, figures: {} };
  if (fit.fit === 0) {
    throw new LabError('eval', "no question fits the model's context", {
      expected: `prompts of at most ${fit.maxPromptTokens} tokens (${fit.contextLength} in the context, ${fit.minNewTokens} left to generate)`,
      found: `${fit.total} question${fit.total === 1 ? '' : 's'}, the shortest ${Math.min(...fit.promptTokens)} tokens`,
      hint: 'pick shorter questions, or a model with a longer context',
    });
  }
  if (fit.tooLong.length > 0) onEvent({ type: 'message', text: describeFit(fit, "the model's") });
  const skip = new Set(fit.tooLong);
  return { problems: problems.filter((_, i) => !skip.has(i)), figures: { questions_given: fit.total, skipped_too_long: fit.tooLong.length } };
}

/** Where a run's checkpoint keeps the step it was taken after: the weights' safetensors metadata. */
const RUN_STEP_KEY = 'thor_lab_run_step';

/** The step a run's checkpoint was taken after, when it says. */
function checkpointRunStep(checkpoint: CheckpointFiles): number | undefined {
  if (isAdapterCheckpoint(checkpoint)) return adapterCheckpointStep(checkpoint, RUN_STEP_KEY);
  const weights = checkpoint[WEIGHTS_FILE];
  const step = weights && Number(readSafetensorsHeader(weights, WEIGHTS_FILE).metadata[RUN_STEP_KEY]);
  return Number.isInteger(step) && step >= 0 ? step : undefined;
}

/** What a run of these settings holds at once (docs/models.md#memory-budget). */
function trainingUse(model: ModelConfig, config: RunConfig): MemoryUse & { updateBatch: number } {
  const context = Math.min(model.max_position_embeddings, config.task.maxQuestionTokens + config.rollout.maxResponseTokens);
  const rows = config.mode === 'sft' ? config.sft.batchSize : config.rollout.groupSize * config.rollout.promptsPerStep;
  return {
    mode: 'train',
    batch: rows,
    context,
    updateBatch: Math.max(1, Math.min(rows, Math.floor(config.optim.microBatchTokens / context))),
    ...(config.lora.enabled && { lora: { rank: config.lora.rank, targetModules: config.lora.targetModules } }),
    ...(config.mode === 'rl' && config.grpo.klCoef > 0 && !config.lora.enabled && { reference: true }),
  };
}
