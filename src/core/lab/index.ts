/**
 * What the UI may use of the core: the lab service's interface and types, and the small pure helpers
 * a page needs before it asks the service anything (the config's description for forms, the task
 * generator and file readers for previews, the TIR format for drawing trajectories). Nothing here
 * loads tfjs or Pyodide: the page stays light, and the service can live in a worker or on a node.
 */
export type * from './api';
export { CONTROL, type ControlValue } from './control';
export { MAX_WASM_THREADS } from './threads';
export type { NodeAddress, NodeHello } from './rpc';
export { COT_SHIPPED_MODEL, DEFAULT_SHIPPED_MODEL, SHIPPED_MODEL_FILES, SHIPPED_MODELS, shippedModel, type ShippedModel, type ShippedModelName } from './models';

export { defaultRunConfig, describeRunConfig, LORA_TARGET_MODULES, parseRunConfig, type Knob, type LoraTargetModule, type RunConfig, type RunConfigInput } from '../config/schema';
export { applySettings, type Setting } from '../config/settings';
export { generateTasks, MAX_DIFFICULTY, TASK_KINDS, type Split, type Task, type TaskKind } from '../data/tasks';
export type { Problem } from '../data/types';
export { describeRead, readProblems, readProblemsJsonl, SKIP_REASONS, unusableFileError, whereSkipped, type Detection, type FieldChoice, type FieldMapping, type MappingControls, type ReadResult, type SkippedLine, type SkipReason } from '../data/readers';
export { describeFit, DEFAULT_MIN_NEW_TOKENS } from '../data/fit';
export { parquetToJsonLines } from '../data/records';
export { DIRECT_OPENINGS, readDemonstrationsJsonl, TOOL_OPENINGS, type BadLine, type Demonstration } from '../tir/demonstrations';
export { blockBody, splitFences, type FencedPiece } from '../tir/format';
export type { DiscardedAttempt, ExecutionRecord, ExecutionStatus, Segment, TrajectoryRecord } from '../tir/types';
export { CRITIC_INVALID_REASONS, CRITIC_PROMPT, type CriticInvalidReason } from '../tirgen/critic';
export { SAMPLE_FILTERS, type SampleFilter } from '../tirgen/filters';
export { FAILURE_REASONS, SELECTION_DROPS, type FailureReason, type TirgenCounts } from '../tirgen/report';
export { parseTirgenSettings, THOR_TIRGEN, TIRGEN_DEFAULTS, type CodeQualityRule } from '../tirgen/settings';
export { compareRuns, type CodeCorrectnessTable, type ProblemOutcome, type RunComparison } from '../eval/metrics';
export { logHeaderLine, logProblemLine, parseEvalLog, problemOutcome } from '../eval/log';
export type { ProblemLog } from '../eval/evaluate';
export { countParameters, newModelConfig, parseModelConfig, type ModelConfig } from '../model/config';
export type { SpeedReport } from '../engine/speed';
export { DEFAULT_CHARSET, SPECIAL_TOKENS } from '../tokenizer/char';
export { errorToPlain, LabError } from '../errors';
export { DEFAULT_HUB_URL } from '../hub/hub';
export { runFolderName, type EvalRow, type RunState, type StepMetrics } from '../run/runfile';
export type { RunDetail, RunSummary } from '../run/store';
export { writeTar } from '../tar';
