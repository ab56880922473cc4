/**
 * The lab as a service: what the browser's policy worker and the command line serve alike, and all
 * the UI talks to. Every method returns a promise, so the same interface is met by the service in
 * this process (LabService) and by a client of another process (the page's client of the worker;
 * any other door that carries these calls). A job (inference, evaluation, TIRGen, training) reports what
 * happens as one stream of LabEvents.
 */
import type { BackendInfo, BackendName } from '../backend';
import type { RunConfigInput } from '../config/schema';
import type { FitReport } from '../data/fit';
import type { DownloadProgress } from '../hub/hub';
import type { Problem } from '../data/types';
import type { ProblemLog } from '../eval/evaluate';
import type { CodeCorrectnessTable } from '../eval/metrics';
import type { SpeedPlan, SpeedReport } from '../engine/speed';
import type { ModelConfig, NewModelSize } from '../model/config';
import type { DeviceLimits, MemoryEstimate } from '../model/memory';
import type { WeightFormat } from '../model/transformer';
import type { CheckpointFiles, EvalRow, RunRecord, RunState, StepMetrics } from '../run/runfile';
import type { RunDetail, RunSummary } from '../run/store';
import type { PoolHealth } from '../sandbox/pool';
import type { SandboxInfo } from '../sandbox/types';
import type { Demonstration } from '../tir/demonstrations';
import type { QuestionResult, StepEvent, TirgenProgress } from '../tirgen/pipeline';
import type { TirgenReport } from '../tirgen/report';
import type { TirgenSettings } from '../tirgen/settings';
import type { TrajectoryRecord } from '../tir/types';
import type { GenerationDefaults } from '../tokenizer/generation-config';
import type { Tokenizer } from '../tokenizer/types';
import type { ControlValue } from './control';
import type { ShippedModelName } from './models';

export type { NewModelSize };

/** Where a model comes from. */
export type ModelSource =
  /** A tiny model that ships with the lab (src/core/lab/models.ts): absent name, thor-tiny. */
  | { kind: 'shipped'; name?: ShippedModelName }
  /** A Hugging Face style folder the user picked (browser). */
  | ({ kind: 'files'; files: File[]; label: string } & WeightChoice)
  /** A folder on disk (Node). */
  | ({ kind: 'path'; path: string } & WeightChoice)
  /** A repository on the Hugging Face Hub or a mirror (docs/models.md#loading-from-the-hub): an id or an address. */
  | ({ kind: 'hub'; repo: string; revision?: string; baseUrl?: string; token?: string } & WeightChoice)
  /** The checkpoint of a stored run (or a saved model). */
  | { kind: 'stored'; runId: string };

/**
 * How a real model's matrices are held: float32 (the default; everything trains), or float16 pairs
 * on WebGPU, half the memory, for inference and LoRA on a frozen base (docs/engine.md#packed-f16-weights).
 */
export interface WeightChoice {
  weights?: WeightFormat;
}

export interface ModelSummary {
  label: string;
  origin: ModelSource['kind'] | 'new';
  config: ModelConfig;
  parameters: number;
  tokenizer: Tokenizer['kind'];
  /** Bytes of the weights on the device. */
  weightBytes: number;
  /** 'f16' when the matrices are packed as float16 pairs (absent: float32). */
  weightFormat?: WeightFormat;
  loadMs: number;
  /** The shipped model's pretraining notes (pretrain.json). */
  pretrain?: Record<string, unknown>;
  /** Which shipped model this is, when it is one. */
  shipped?: ShippedModelName;
  /** The stored run whose checkpoint this is, or which trains it. */
  runId?: string;
  /** Its prompt format, stop ids and sampling defaults, from its own files (docs/models.md#prompts-and-stop-tokens). */
  prompting?: ModelPrompting;
}

/** What the sandbox can do where it runs. */
export interface SandboxCapabilities {
  /** Timeouts interrupt Python instead of replacing the worker (needs SharedArrayBuffer). */
  interrupts: boolean;
  crossOriginIsolated: boolean;
  online: boolean;
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
  /** WebGPU: bytes of the buffers in use, and of all the buffers its pool holds. */
  gpuBytes?: number;
  gpuAllocatedBytes?: number;
  /** wasm: the size of its heap now (it grows and never shrinks). */
  heapBytes?: number;
}

/** Settings of a job: any part of the run config (a single answer reads rollout, infer, selfCorrection and seed). */
export type JobSettings = RunConfigInput;

export interface InferRequest {
  question: string;
  /** The first words of the answer, given to the model (e.g. a tool lead-in); part of the prompt. */
  prefix?: string;
  /** Reference answer: when given, the answer is graded. */
  reference?: string;
  settings?: JobSettings;
  /** Ask this endpoint instead of the loaded model (the lab still runs the code). */
  endpoint?: EndpointSpec;
}

export interface InferOutcome {
  record: TrajectoryRecord;
  /** What the model was given (InferPrompt); also sent as a 'prompt' event before the answer starts. */
  prompt: InferPrompt;
  stopped: boolean;
  tokens: number;
  seconds: number;
}

/** A model's own prompt format, stop ids and sampling defaults (docs/models.md#prompts-and-stop-tokens). */
export interface ModelPrompting {
  /** chat: the model's chat template; base: ToRL's plain-text prompt (no template); char: the tiny model's format. */
  format: 'chat' | 'base' | 'char';
  /** The chat template reads enable_thinking (Qwen3). */
  thinkingSwitch: boolean;
  /** The ids that end an answer, with their text. */
  stopTokens: { id: number; text: string }[];
  /** Sampling defaults from generation_config.json (empty: the run config's apply). */
  defaults: GenerationDefaults;
  /** The instruction a single answer uses when its request sets none. */
  instruction: string;
}

/** The prompt of a single answer: the exact text the loaded model sees (special tokens written out), or the user turn an endpoint is sent. */
export interface InferPrompt {
  text: string;
  /** chat / base / char: the loaded model's format (ModelPrompting.format); messages: an endpoint's chat turn, which the server renders. */
  format: ModelPrompting['format'] | 'messages' | 'text';
  /** Prompt tokens (the loaded model only). */
  tokens?: number;
}

/** An OpenAI-compatible server to ask instead of the loaded model (docs/engines.md). */
export interface EndpointSpec {
  /** Up to /v1, e.g. http://127.0.0.1:8000/v1 */
  baseURL: string;
  model: string;
  apiKey?: string;
  /** Requests in flight at most (default 16). */
  concurrency?: number;
  timeoutMs?: number;
  maxRetries?: number;
  /** Questions go as chat messages (default; the server applies the model's template) or as raw text. */
  prompt?: 'chat' | 'text';
}

export interface EvalRequest {
  problems: Problem[];
  label: string;
  /** Reads rollout, eval, selfCorrection and seed. */
  settings?: JobSettings;
  /** Evaluate this endpoint instead of the loaded model. */
  endpoint?: EndpointSpec;
  /** The per-problem log of an interrupted evaluation of the same problems and settings: its problems are not sampled again. */
  resume?: ProblemLog[];
}

export interface EvalOutcome {
  label: string;
  /** The model evaluated. */
  model: string;
  summary: Record<string, number | null>;
  table: CodeCorrectnessTable;
  records: TrajectoryRecord[];
  /** Per problem: its graded samples (the log an interrupted evaluation resumes from). */
  problems: ProblemLog[];
}

export interface TrainRequest {
  /** The run config (config.mode: RL or SFT). On a resume: changes to the stored config (e.g. more steps). */
  config?: RunConfigInput;
  name?: string;
  /** An id for a new run (default: a fresh one). */
  runId?: string;
  /** RL questions, or the tasks SFT demonstrations are built from; default: config.task's. */
  train?: Problem[];
  /** Held-out questions evaluated on config.eval's schedule; default: config.task's test split. */
  test?: Problem[];
  /** SFT demonstrations (a TIR JSON-lines file); default: built from the training tasks, their programs run in the sandbox. */
  demonstrations?: Demonstration[];
  /** Go on with a stored run from its checkpoint (its weights, optimiser moments, config and step). */
  resume?: { runId: string };
  /** Send each step's trajectories as 'rollouts' events (they are stored either way). */
  streamRollouts?: boolean;
}

export type TrainState = 'preparing' | 'running' | 'paused' | 'stopped' | 'finished' | 'failed';

export interface TrainOutcome {
  runId: string;
  state: TrainState;
  /** Steps the run has taken (including those before a resume). */
  steps: number;
}

/** Where TIRGen's questions come from: the synthetic train split, or a data set's problems (docs/tirgen.md#the-tirgen-panel). */
export type TirgenSource =
  | { kind: 'synthetic'; count: number; seed: number }
  /** `records` and `skipped`: what the file's reader read and could not use (a line with no answer…), for the report. */
  | { kind: 'problems'; label: string; problems: Pick<Problem, 'id' | 'question' | 'answer'>[]; records?: number; skipped?: Record<string, number> };

/** TIRGen's critic: the rules (synthetic tasks), the loaded model through its text interface, or an endpoint. */
export type TirgenCriticSpec = { kind: 'rule' } | { kind: 'model' } | { kind: 'endpoint'; endpoint: EndpointSpec };

export interface TirgenRequest {
  source: TirgenSource;
  /** The actor: this endpoint, or the loaded model when absent. */
  actor?: EndpointSpec;
  critic: TirgenCriticSpec;
  /** Replaces the model critic's prompt (its {step} is the step). */
  criticPrompt?: string;
  /** Changes to TIRGen's defaults, checked as `--set tirgen.key=value` is. */
  settings?: Partial<Record<keyof TirgenSettings, unknown>>;
  seed?: number;
  /** What a stopped run left (its outcome's progress, data and messages lines): its finished questions are not done again. */
  previous?: { progress: string; data?: string; messages?: string };
}

/** Progress of a TIRGen run: questions done (earlier runs' included) of all, and this run's own share for the ETA. */
export interface TirgenProgressFigures {
  done: number;
  total: number;
  /** Questions done by this run, and the questions it had to do when it started. */
  doneNow: number;
  todoAtStart: number;
  attempts: number;
  kept: number;
  elapsedMs: number;
}

export interface TirgenOutcome {
  report: TirgenReport;
  /** data.jsonl: one kept sample a line (the SFT data `train --mode sft --sft-file` reads). */
  data: string;
  /** messages.jsonl: the same samples as chat messages. */
  messages: string;
  /** progress.jsonl: the header and one line per finished question; with `data` and `messages`, what a resume goes on from. */
  progress: string;
  /** Lines of `previous` dropped (cut short, repeated, or of questions that never finished). */
  dropped: number;
}

/** Held-out evaluation during a run, as metric keys. */
export interface HeldOutFigures {
  heldout_questions: number;
  heldout_accuracy: number;
  heldout_code_ratio: number | null;
  heldout_pass_ratio: number | null;
}

export interface RunningJobInfo {
  /** e.g. "training", or on a node "training for client-3". */
  what: string;
  state: 'run' | 'pause' | 'stop';
  seconds: number;
  /** On a node: the page that started it went away (any page may resume or stop it). */
  orphaned: boolean;
  /** On a node: jobs waiting behind it. */
  waiting: number;
}

/** What a job reports while it runs. */
export type LabEvent =
  /** A phase of the job advanced (rollouts finished, programs run, updates done). */
  | { type: 'progress'; phase: string; done: number; total: number }
  /** A single answer's prompt, before its first token. */
  | { type: 'prompt'; prompt: InferPrompt }
  /** A single answer as it is written (streamed a few times a second). */
  | { type: 'trajectory'; record: TrajectoryRecord }
  /** A training run started or resumed. */
  | { type: 'run'; id: string; name: string; mode: 'rl' | 'sft'; fromStep: number; totalSteps: number }
  | { type: 'state'; state: TrainState; message?: string }
  /** A training step ended: its metrics (stored before this is sent). */
  | { type: 'step'; step: number; metrics: StepMetrics }
  /** The trajectories of that step (sampled, and step-level continuations). */
  | { type: 'rollouts'; step: number; records: TrajectoryRecord[] }
  /** A held-out evaluation (step 0: before training). */
  | { type: 'heldout'; step: number; figures: HeldOutFigures; row: EvalRow }
  /** An evaluated problem's graded samples, as soon as they are all in (append it to a per-problem log). */
  | { type: 'problem'; log: ProblemLog; done: number; total: number }
  /** TIRGen: one step of one attempt, before and after the critic. */
  | { type: 'tirgen-step'; step: StepEvent }
  /** TIRGen: a question finished, with its data lines (also in the outcome). */
  | { type: 'tirgen-question'; result: QuestionResult; data: string; messages: string }
  | { type: 'tirgen-progress'; progress: TirgenProgressFigures; counts: TirgenProgress['counts'] }
  /** A model download: bytes of the file and of all files, rate and time left (sent with a 'progress' event). */
  | { type: 'download'; progress: DownloadProgress }
  /** A model's memory budget from its config.json, before its weights are read (docs/models.md#memory-budget): answering, and a LoRA run at the run config's defaults. */
  | { type: 'memory-budget'; infer: MemoryEstimate; train: MemoryEstimate; trainUse: string; limits: DeviceLimits; fits: boolean }
  /** Something the user should know that is not an error (e.g. optimiser moments restored). */
  | { type: 'message'; text: string };

export type EventSink = (event: LabEvent) => void;

export interface LabApi {
  /**
   * Picks the compute backend and starts the Python sandbox in the background; `control` is the
   * page's shared pause/stop word; `threads`, the threads tfjs's threaded wasm build multiplies on
   * (default: tfjs's choice, half the logical cores, at most 4).
   */
  init(options?: { order?: BackendName[]; control?: Int32Array; threads?: number; engineHelpers?: boolean }): Promise<BackendInfo>;
  sandboxStatus(): Promise<SandboxStatus>;
  /** Waits for the sandbox to be ready (or to fail). */
  sandboxWarm(): Promise<SandboxStatus>;
  memory(): Promise<MemoryInfo>;
  /** Pauses, resumes or stops the running job. */
  setControl(value: ControlValue): Promise<void>;
  /** The job running now, if any: what it is, whether it is asked to pause or stop, and (on a node) whether its page went away. */
  runningJob(): Promise<RunningJobInfo | null>;
  /** The files this service fetched (scripts, binaries, the model), to keep for offline use. */
  resourceUrls(): Promise<string[]>;

  model(): Promise<ModelSummary | undefined>;
  /** Loads a model; a Hub model reports its download as 'progress' and 'download' events. */
  loadModel(source: ModelSource, onEvent?: EventSink): Promise<ModelSummary>;
  /** A fresh model with seeded random weights and the character tokenizer. */
  createModel(size: NewModelSize, seed: number): Promise<ModelSummary>;
  /**
   * How fast this place runs the engine: the backend's matrix-product rate, and decoding and
   * training a ~10M-parameter model of its own as shares of it (docs/engine.md#measuring-a-device);
   * 'progress' events name each part. The loaded model is not touched.
   */
  measureSpeed(request?: { plan?: SpeedPlan }, onEvent?: EventSink): Promise<SpeedReport>;
  /** The model as a Hugging Face style folder. */
  exportModel(): Promise<CheckpointFiles>;
  /** Keeps the model in the run store as a run holding only its checkpoint; returns its id. */
  saveModel(name: string): Promise<string>;

  infer(request: InferRequest, onEvent?: EventSink): Promise<InferOutcome>;
  /**
   * Evaluates the problems; with the loaded model, those whose prompt leaves too little of its context
   * to generate in are skipped and counted (summary.skipped_too_long), never a failed run.
   */
  evaluate(request: EvalRequest, onEvent?: EventSink): Promise<EvalOutcome>;
  /** Which questions fit the loaded model's context, their prompts built as evaluation builds them (docs/datasets.md#context-fit). */
  checkFit(problems: readonly Pick<Problem, 'question'>[], settings?: JobSettings): Promise<FitReport>;
  /**
   * TIRGen (docs/tirgen.md): the actor writes step by step, the critic turns each step's computation
   * into Python the lab runs; resolves with the report and the data when the run ends, stopped or not
   * (a stop, or an actor or critic that fails, keeps the questions finished: `report.stopped` says why).
   */
  tirgen(request: TirgenRequest, onEvent?: EventSink): Promise<TirgenOutcome>;
  /** Trains and stores the run step by step; resolves when it ends (finished or stopped), rejects when it fails. */
  train(request: TrainRequest, onEvent?: EventSink): Promise<TrainOutcome>;

  listRuns(): Promise<RunSummary[]>;
  runDetail(id: string): Promise<RunDetail | undefined>;
  runRolloutSteps(id: string): Promise<number[]>;
  runRollouts(id: string, step: number): Promise<TrajectoryRecord[] | undefined>;
  /** The text of each token id under the tokenizer of the run's checkpoint; undefined when the run has none. */
  runTokenTexts(id: string, ids: number[]): Promise<string[] | undefined>;
  deleteRun(id: string): Promise<void>;
  /** A run file (.tar) into the store; a run whose id is already there is kept as a copy. */
  importRun(bytes: Uint8Array, fileName: string): Promise<{ run: RunSummary; copy: boolean }>;
  /** A stored run as one .tar file. */
  exportRun(id: string): Promise<{ name: string; bytes: Uint8Array }>;
}

/** How a page reaches a lab service: its interface, crash reports, and a way to let it go. */
export interface LabConnection {
  api: LabApi;
  /** Reports an error the service could not turn into a rejected call (a worker that crashed, a node that went away). */
  onError(listener: (message: string) => void): void;
  terminate(): void;
}

export type { QuestionResult, StepEvent, TirgenReport, TirgenSettings };
export type { BackendInfo, BackendName, CheckpointFiles, EvalRow, FitReport, RunDetail, RunRecord, RunState, RunSummary, StepMetrics, TrajectoryRecord };
