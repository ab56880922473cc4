/**
 * The run folder: one layout for a run on disk (the command line), in the browser's store (IndexedDB)
 * and in an exported file, an uncompressed tar of the folder, so `tar -xf thor-run-NAME.tar` gives a
 * folder the command line resumes and other tools read directly:
 *
 *     thor-run-NAME/run.json                   {format, version, id, name, createdAt, model, state}
 *     thor-run-NAME/config.json                the run's RunConfig
 *     thor-run-NAME/metrics.jsonl              one object per training step (each with "step")
 *     thor-run-NAME/evals.jsonl                held-out evaluations (each with "step"; 0 = before training)
 *     thor-run-NAME/rollouts/step-000012.jsonl one TrajectoryRecord per line
 *     thor-run-NAME/checkpoint/…               model.safetensors (its metadata names the step), config.json,
 *                                              tokenizer files, optimizer.safetensors (AdamW moments),
 *                                              reference.safetensors (the KL term's frozen policy) (optional)
 *     thor-run-NAME/data/train.jsonl, test.jsonl, demonstrations.jsonl
 *                                              the questions the run trains and is evaluated on, and SFT's
 *                                              demonstrations: a resumed run goes on with the same (optional)
 *     thor-run-NAME/report.md, *.svg           the report card and its charts (optional)
 *
 * Tar rather than JSON with base64: weights stay binary (no 4/3 blow-up, no giant string), and the
 * archive unpacks with standard tools. Reading checks every field and names file, line and field
 * when something is wrong. Pure functions (no IndexedDB, no DOM): the same code runs in Node.
 */
import { LabError } from '../errors';
import { bytesToText, textToBytes } from '../files';
import { readTar, writeTar } from '../tar';
import type { Problem } from '../data/types';
import type { Demonstration } from '../tir/demonstrations';
import type { TrajectoryRecord } from '../tir/types';

export const RUN_FORMAT = 'thor-lab-run';
/** 2: run.json has model and state; evals.jsonl; report charts. Version 1 files still read. */
export const RUN_FORMAT_VERSION = 2;

/** One training step's figures; `step` is required, the rest is whatever the trainer measured. */
export type StepMetrics = { step: number } & Record<string, unknown>;

/** One held-out evaluation during a run: the step it followed (0: before training) and its figures. */
export type EvalRow = { step: number } & Record<string, unknown>;

/** The rollouts of one training step. */
export interface RolloutDump {
  step: number;
  trajectories: TrajectoryRecord[];
}

/** A model folder by file name: model.safetensors, config.json, tokenizer files (and the optimiser's moments). */
export type CheckpointFiles = Record<string, Uint8Array>;

/** Where a run trained by the lab stands; what a resume reads. */
export interface RunState {
  status: 'running' | 'paused' | 'stopped' | 'finished' | 'failed';
  mode: 'rl' | 'sft';
  /** Steps the run was started for. */
  totalSteps: number;
  /** Training step the stored checkpoint was taken after (0: the starting weights). */
  checkpointStep: number;
  message?: string;
}

/** What a run trains and is evaluated on, kept with it so a resumed run goes on with the same. */
export interface RunData {
  train?: Problem[];
  test?: Problem[];
  demonstrations?: Demonstration[];
}

export interface RunRecord {
  id: string;
  name: string;
  /** ISO 8601 time of creation. */
  createdAt: string;
  /** The model the run started from, as the lab labelled it. */
  model?: string;
  /** Runs trained by the lab (absent for saved models). */
  state?: RunState;
  config: Record<string, unknown>;
  metrics: StepMetrics[];
  evals: EvalRow[];
  rollouts: RolloutDump[];
  checkpoint?: CheckpointFiles;
  data?: RunData;
  /** The report card (report.md) and its charts (*.svg), by file name. */
  report?: Record<string, string>;
}

export const RUN_JSON = 'run.json';
export const CONFIG_JSON = 'config.json';
export const METRICS_JSONL = 'metrics.jsonl';
export const EVALS_JSONL = 'evals.jsonl';
export const REPORT_MD = 'report.md';
export const CHECKPOINT_DIR = 'checkpoint/';
/** The optimiser's moments in a checkpoint (AdamW m and v per parameter, and the update count). */
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** A KL run's frozen reference policy (its starting weights) in a checkpoint. */
export const REFERENCE_FILE = 'reference.safetensors';
/** The data files, by part. */
export const DATA_FILES = { train: 'data/train.jsonl', test: 'data/test.jsonl', demonstrations: 'data/demonstrations.jsonl' } as const;
const ROLLOUT_FILE = /^rollouts\/step-(\d+)\.jsonl$/;
const REPORT_FILE = /^(report\.md|[a-z0-9_-]{1,40}\.svg)$/;
// A tar (ustar) header holds paths of at most 100 bytes: folder (≤ 36) + "/checkpoint/" + name (≤ 50).
const CHECKPOINT_NAME = /^[A-Za-z0-9._-]{1,50}$/;

export const rolloutFileName = (step: number) => `rollouts/step-${String(step).padStart(6, '0')}.jsonl`;

/** Folder (and file) name of an exported run: "thor-run-" and a file-safe form of the id. */
export function runFolderName(run: Pick<RunRecord, 'id'>): string {
  const slug = run.id.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 27);
  return `thor-run-${slug || 'unnamed'}`;
}

/** A fresh run id: time-ordered, readable, unique enough for one browser's storage. */
export function newRunId(now = new Date(), random = Math.random): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${stamp}-${Math.floor(random() * 0xffffff).toString(16).padStart(6, '0')}`;
}


/** run.json of a run. */
export function runManifest(run: Pick<RunRecord, 'id' | 'name' | 'createdAt' | 'model' | 'state'>): Record<string, unknown> {
  return { format: RUN_FORMAT, version: RUN_FORMAT_VERSION, id: run.id, name: run.name, createdAt: run.createdAt, ...(run.model !== undefined && { model: run.model }), ...(run.state && { state: run.state }) };
}

export const jsonLines = (rows: readonly unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');

/** Checks a checkpoint file name before it becomes a path in the folder. */
export function checkCheckpointName(name: string): void {
  if (!CHECKPOINT_NAME.test(name))
    throw new LabError('BAD_RUN', 'checkpoint file name cannot be stored', {
      field: `checkpoint.${name}`,
      expected: 'letters, digits, ".", "_" or "-", at most 50 characters',
      found: JSON.stringify(name),
    });
}

/** The run folder's files, by path inside the folder. */
export function runToFiles(run: RunRecord): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  files.set(RUN_JSON, textToBytes(JSON.stringify(runManifest(run), null, 2) + '\n'));
  files.set(CONFIG_JSON, textToBytes(JSON.stringify(run.config, null, 2) + '\n'));
  files.set(METRICS_JSONL, textToBytes(jsonLines(run.metrics)));
  if (run.evals.length) files.set(EVALS_JSONL, textToBytes(jsonLines(run.evals)));
  for (const dump of run.rollouts) files.set(rolloutFileName(dump.step), textToBytes(jsonLines(dump.trajectories)));
  for (const [name, bytes] of Object.entries(run.checkpoint ?? {})) {
    checkCheckpointName(name);
    files.set(CHECKPOINT_DIR + name, bytes);
  }
  for (const [part, file] of Object.entries(DATA_FILES) as [keyof RunData, string][]) {
    const rows = run.data?.[part];
    if (rows) files.set(file, textToBytes(jsonLines(rows)));
  }
  for (const [name, text] of Object.entries(run.report ?? {})) if (REPORT_FILE.test(name)) files.set(name, textToBytes(text));
  return files;
}

/** The run as one .tar file. */
export function encodeRunFile(run: RunRecord): { name: string; bytes: Uint8Array } {
  const folder = runFolderName(run);
  return { name: `${folder}.tar`, bytes: writeTar(folder, runToFiles(run)) };
}

// ---- validating what was read ------------------------------------------------------------------

const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
};

export type Where = { file: string; line?: number };

function bad(where: Where, field: string, expected: string, found: unknown, message = 'invalid value'): LabError {
  return new LabError('BAD_RUN_FILE', message, {
    ...where,
    field,
    expected,
    found: show(found),
    hint: 'the file was changed or written by another program: export the run again, or fix the field',
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Field checks for one JSON object, each error naming the field by its path. */
function checker(obj: Record<string, unknown>, where: Where, prefix: string) {
  const path = (key: string) => (prefix ? `${prefix}.${key}` : key);
  const fail = (key: string, expected: string) => {
    throw bad(where, path(key), expected, obj[key]);
  };
  return {
    string(key: string): void {
      if (typeof obj[key] !== 'string') fail(key, 'a string');
    },
    boolean(key: string): void {
      if (typeof obj[key] !== 'boolean') fail(key, 'true or false');
    },
    number(key: string): void {
      if (typeof obj[key] !== 'number' || !Number.isFinite(obj[key])) fail(key, 'a finite number');
    },
    int(key: string): void {
      if (!isInt(obj[key]) || (obj[key] as number) < 0) fail(key, 'a non-negative integer');
    },
    oneOf(key: string, values: readonly string[]): void {
      if (!values.includes(obj[key] as string)) fail(key, `one of ${values.map((v) => JSON.stringify(v)).join(' | ')}`);
    },
    ints(key: string, length?: number, only01 = false): void {
      const v = obj[key];
      const expected = `an array of ${only01 ? '0/1 values' : 'integers'}${length === undefined ? '' : ` with ${length} entries (one per response token)`}`;
      if (!Array.isArray(v) || (length !== undefined && v.length !== length)) fail(key, expected);
      const items = v as unknown[];
      const i = items.findIndex((x) => !isInt(x) || (only01 && x !== 0 && x !== 1));
      if (i >= 0) throw bad(where, `${path(key)}[${i}]`, only01 ? '0 or 1' : 'an integer', items[i]);
    },
    numbers(key: string, length: number): void {
      const v = obj[key];
      if (!Array.isArray(v) || v.length !== length) fail(key, `an array of numbers with ${length} entries (one per response token)`);
      const items = v as unknown[];
      const i = items.findIndex((x) => typeof x !== 'number' || Number.isNaN(x));
      if (i >= 0) throw bad(where, `${path(key)}[${i}]`, 'a number', items[i]);
    },
    objects(key: string): Record<string, unknown>[] {
      const v = obj[key];
      if (!Array.isArray(v)) fail(key, 'an array');
      const items = v as unknown[];
      const i = items.findIndex((x) => !isObject(x));
      if (i >= 0) throw bad(where, `${path(key)}[${i}]`, 'an object', items[i]);
      return items as Record<string, unknown>[];
    },
  };
}

const LEVELS = ['trajectory', 'step'] as const;
const SEGMENT_KINDS = ['text', 'code', 'output'] as const;
const STATUSES = ['ok', 'error', 'timeout', 'memory', 'killed'] as const;
const FINISH_REASONS = ['eos', 'length', 'stop'] as const;

function checkExecution(e: Record<string, unknown>, where: Where, prefix: string): void {
  const c = checker(e, where, prefix);
  c.int('round');
  c.string('code');
  c.oneOf('status', STATUSES);
  c.string('stdout');
  c.string('stderr');
  if (e.errorLine !== undefined) c.string('errorLine');
  c.number('durationMs');
  c.boolean('truncated');
  c.string('observation');
  c.boolean('succeeded');
  c.int('codeTokenStart');
  c.int('codeTokenEnd');
}

/** Checks that a parsed JSON value is a complete TrajectoryRecord (masks one entry per response token). */
export function checkTrajectory(v: unknown, where: Where): TrajectoryRecord {
  if (!isObject(v)) throw bad(where, '(line)', 'a trajectory record (a JSON object)', v);
  const c = checker(v, where, '');
  for (const key of ['id', 'groupId', 'problemId', 'question', 'reference']) c.string(key);
  c.oneOf('level', LEVELS);
  c.ints('promptTokens');
  c.ints('tokens');
  const n = (v.tokens as number[]).length;
  c.ints('sampledMask', n, true);
  c.ints('lossMask', n, true);
  c.numbers('logprobs', n);
  c.objects('segments').forEach((s, i) => {
    const cs = checker(s, where, `segments[${i}]`);
    cs.oneOf('kind', SEGMENT_KINDS);
    cs.string('text');
    cs.int('tokenStart');
    cs.int('tokenEnd');
  });
  c.objects('executions').forEach((e, i) => checkExecution(e, where, `executions[${i}]`));
  if (v.finalAnswer !== null) c.string('finalAnswer');
  c.boolean('correct');
  c.number('reward');
  c.boolean('truncated');
  c.oneOf('finishReason', FINISH_REASONS);
  c.objects('discarded').forEach((d, i) => {
    const cd = checker(d, where, `discarded[${i}]`);
    cd.int('rewindTo');
    cd.ints('tokens');
    cd.string('text');
    cd.int('retry');
    if (!isObject(d.execution)) throw bad(where, `discarded[${i}].execution`, 'an execution record', d.execution);
    checkExecution(d.execution, where, `discarded[${i}].execution`);
  });
  if (v.stepOrigin !== undefined) {
    if (!isObject(v.stepOrigin)) throw bad(where, 'stepOrigin', 'an object', v.stepOrigin);
    const co = checker(v.stepOrigin, where, 'stepOrigin');
    co.string('trajectoryId');
    co.int('executionIndex');
    co.int('cutAt');
  }
  return v as unknown as TrajectoryRecord;
}

export function parseJson(text: string, where: Where): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LabError('BAD_RUN_FILE', `not valid JSON: ${(e as Error).message}`, { ...where, hint: 'the file is damaged: export the run again' });
  }
}

/** Non-empty lines of a JSON-lines file, each parsed, with its 1-based line number. */
function* jsonLinesOf(bytes: Uint8Array, file: string): Generator<{ value: unknown; line: number }> {
  const lines = bytesToText(bytes).split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) if (lines[i].trim() !== '') yield { value: parseJson(lines[i], { file, line: i + 1 }), line: i + 1 };
}

const RUN_STATUSES = ['running', 'paused', 'stopped', 'finished', 'failed'] as const;

/** Checks run.json and returns its fields (a version 1 manifest has no model and no state). */
export function checkManifest(manifest: unknown, where: Where): Pick<RunRecord, 'id' | 'name' | 'createdAt' | 'model' | 'state'> {
  if (!isObject(manifest)) throw bad(where, '(file)', 'a JSON object', manifest);
  if (manifest.format !== RUN_FORMAT) throw bad(where, 'format', JSON.stringify(RUN_FORMAT), manifest.format, 'not a THOR Lab run');
  if (!isInt(manifest.version) || manifest.version < 1) throw bad(where, 'version', 'a positive integer', manifest.version);
  if (manifest.version > RUN_FORMAT_VERSION)
    throw new LabError('BAD_RUN_FILE', 'the run was written by a newer THOR Lab', { ...where, field: 'version', expected: `at most ${RUN_FORMAT_VERSION}`, found: String(manifest.version), hint: 'open it with a newer version of the lab' });
  const m = checker(manifest, where, '');
  m.string('id');
  m.string('name');
  m.string('createdAt');
  if ((manifest.id as string).trim() === '') throw bad(where, 'id', 'a non-empty string', manifest.id);
  if (!Number.isFinite(Date.parse(manifest.createdAt as string))) throw bad(where, 'createdAt', 'an ISO 8601 date', manifest.createdAt);
  if (manifest.model !== undefined) m.string('model');
  let state: RunState | undefined;
  if (manifest.state !== undefined) {
    if (!isObject(manifest.state)) throw bad(where, 'state', 'an object', manifest.state);
    const c = checker(manifest.state, where, 'state');
    c.oneOf('status', RUN_STATUSES);
    c.oneOf('mode', ['rl', 'sft']);
    c.int('totalSteps');
    c.int('checkpointStep');
    if (manifest.state.message !== undefined) c.string('message');
    state = manifest.state as unknown as RunState;
  }
  return {
    id: manifest.id as string,
    name: manifest.name as string,
    createdAt: manifest.createdAt as string,
    ...(manifest.model !== undefined && { model: manifest.model as string }),
    ...(state && { state }),
  };
}

/** Rows of a JSON-lines file of objects that each carry a "step" (metrics.jsonl, evals.jsonl). */
export function readStepRows(bytes: Uint8Array | undefined, file: string): ({ step: number } & Record<string, unknown>)[] {
  const rows: ({ step: number } & Record<string, unknown>)[] = [];
  if (!bytes) return rows;
  for (const { value, line } of jsonLinesOf(bytes, file)) {
    const where = { file, line };
    if (!isObject(value)) throw bad(where, '(line)', 'a JSON object', value);
    checker(value, where, '').int('step');
    rows.push(value as { step: number } & Record<string, unknown>);
  }
  return rows;
}

/** The trajectories of one rollouts/step-N.jsonl file, each checked. */
export function readRolloutFile(bytes: Uint8Array, file: string): TrajectoryRecord[] {
  return [...jsonLinesOf(bytes, file)].map(({ value, line }) => checkTrajectory(value, { file, line }));
}

/** The rows of one of a run's data files, each checked (problems: id, question, answer, source; demonstrations: question, response). */
export function readDataFile(part: keyof RunData, bytes: Uint8Array, file: string): Problem[] | Demonstration[] {
  const fields = part === 'demonstrations' ? ['question', 'response'] : ['id', 'question', 'answer', 'source'];
  return [...jsonLinesOf(bytes, file)].map(({ value, line }) => {
    const where = { file, line };
    if (!isObject(value)) throw bad(where, '(line)', 'a JSON object', value);
    const c = checker(value, where, '');
    for (const f of fields) c.string(f);
    return value as unknown as Problem & Demonstration;
  });
}

/** The step a rollouts/ path holds, or undefined when it is no rollout file. */
export function rolloutStepOf(path: string): number | undefined {
  const m = ROLLOUT_FILE.exec(path);
  return m ? Number(m[1]) : undefined;
}

/** The run folder's files (paths inside the folder) back into a run, checking every field. */
export function runFromFiles(files: Map<string, Uint8Array>, label: string): RunRecord {
  const at = (name: string) => `${label}/${name}`;
  const need = (name: string): Uint8Array => {
    const bytes = files.get(name);
    if (!bytes) throw new LabError('BAD_RUN_FILE', `the run has no ${name}`, { file: label, expected: `${name} in the run folder`, found: `only ${[...files.keys()].slice(0, 6).join(', ') || 'nothing'}`, hint: 'export the run again' });
    return bytes;
  };
  const manifestWhere = { file: at(RUN_JSON) };
  const header = checkManifest(parseJson(bytesToText(need(RUN_JSON)), manifestWhere), manifestWhere);

  const configWhere = { file: at(CONFIG_JSON) };
  const config = parseJson(bytesToText(need(CONFIG_JSON)), configWhere);
  if (!isObject(config)) throw bad(configWhere, '(file)', 'a JSON object', config);

  const metrics = readStepRows(files.get(METRICS_JSONL), at(METRICS_JSONL)) as StepMetrics[];
  const evals = readStepRows(files.get(EVALS_JSONL), at(EVALS_JSONL)) as EvalRow[];
  const rollouts: RolloutDump[] = [];
  const checkpoint: CheckpointFiles = {};
  const report: Record<string, string> = {};
  for (const [name, bytes] of files) {
    const step = rolloutStepOf(name);
    if (step !== undefined) {
      rollouts.push({ step, trajectories: readRolloutFile(bytes, at(name)) });
    } else if (name.startsWith('rollouts/')) {
      throw new LabError('BAD_RUN_FILE', 'unexpected file among the rollouts', { file: at(name), expected: 'rollouts/step-NNNNNN.jsonl', found: name });
    } else if (name.startsWith(CHECKPOINT_DIR)) {
      const base = name.slice(CHECKPOINT_DIR.length);
      if (!CHECKPOINT_NAME.test(base)) throw new LabError('BAD_RUN_FILE', 'unexpected file in the checkpoint', { file: at(name), expected: 'files directly inside checkpoint/ (model.safetensors, config.json, tokenizer files)', found: name });
      checkpoint[base] = bytes;
    } else if (REPORT_FILE.test(name)) {
      report[name] = bytesToText(bytes);
    } else if (name.startsWith('data/') && !Object.values(DATA_FILES).includes(name as (typeof DATA_FILES)[keyof RunData])) {
      throw new LabError('BAD_RUN_FILE', 'unexpected file among the data', { file: at(name), expected: Object.values(DATA_FILES).join(', '), found: name });
    }
  }
  rollouts.sort((a, b) => a.step - b.step);
  checkCheckpointFiles(checkpoint, at(CHECKPOINT_DIR));
  const data: RunData = {};
  for (const [part, file] of Object.entries(DATA_FILES) as [keyof RunData, string][]) {
    const bytes = files.get(file);
    if (bytes) Object.assign(data, { [part]: readDataFile(part, bytes, at(file)) });
  }
  const hasCheckpoint = Object.keys(checkpoint).length > 0;
  return {
    ...header,
    config,
    metrics,
    evals,
    rollouts,
    ...(hasCheckpoint && { checkpoint }),
    ...(Object.keys(data).length > 0 && { data }),
    ...(report[REPORT_MD] !== undefined && { report }),
  };
}

/** A checkpoint, when there is one, holds a model config and weights. */
export function checkCheckpointFiles(checkpoint: CheckpointFiles, label: string): void {
  const names = Object.keys(checkpoint);
  if (names.length === 0) return;
  if (!checkpoint[CONFIG_JSON]) throw new LabError('BAD_RUN_FILE', 'the checkpoint has no config.json', { file: label, expected: 'checkpoint/config.json', found: names.join(', ') });
  parseJson(bytesToText(checkpoint[CONFIG_JSON]), { file: label + CONFIG_JSON });
  if (!names.some((n) => n.endsWith('.safetensors') && n !== OPTIMIZER_FILE && n !== REFERENCE_FILE))
    throw new LabError('BAD_RUN_FILE', 'the checkpoint has no weights', { file: label, expected: 'checkpoint/model.safetensors', found: names.join(', ') });
}

/**
 * A run from an exported .tar. The files may sit in one top folder (as exported) or at the root of
 * the archive (re-packed from inside the folder).
 */
export function decodeRunFile(bytes: Uint8Array, file: string): RunRecord {
  const entries = readTar(bytes, file).map((e) => ({ ...e, path: e.path.replace(/^(\.\/)+/, '') }));
  const paths = entries.map((e) => e.path);
  let prefix = '';
  if (!paths.includes(RUN_JSON)) {
    const top = paths.find((p) => p.endsWith(`/${RUN_JSON}`) && p.split('/').length === 2);
    if (!top) throw new LabError('BAD_RUN_FILE', 'the archive holds no run', { file, expected: `a folder with ${RUN_JSON}`, found: paths.slice(0, 5).join(', '), hint: 'pick a .tar file written by Export in the Runs panel' });
    prefix = top.slice(0, -RUN_JSON.length);
  }
  const files = new Map<string, Uint8Array>();
  for (const e of entries) if (e.path.startsWith(prefix)) files.set(e.path.slice(prefix.length), e.bytes);
  return runFromFiles(files, file);
}
