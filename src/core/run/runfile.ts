/**
 * A run as one file: an uncompressed tar of the run folder, the same layout a run has on disk, so
 * `tar -xf thor-run-NAME.tar` gives a folder the command line and other tools read directly:
 *
 *     thor-run-NAME/run.json                  {format, version, id, name, createdAt}
 *     thor-run-NAME/config.json               the run's config
 *     thor-run-NAME/metrics.jsonl             one object per training step (each with "step")
 *     thor-run-NAME/rollouts/step-000012.jsonl one TrajectoryRecord per line
 *     thor-run-NAME/checkpoint/…              model.safetensors, config.json, tokenizer files (optional)
 *     thor-run-NAME/report.md                 (optional)
 *
 * Tar rather than JSON with base64: weights stay binary (no 4/3 blow-up, no giant string), and the
 * archive unpacks with standard tools. Import checks every field and names file, line and field
 * when something is wrong. Pure functions (no IndexedDB, no DOM): the same code runs in Node.
 */
import { LabError } from '../errors';
import { bytesToText, tarFolder, textToBytes } from '../files';
import type { TrajectoryRecord } from '../rl/types';

export const RUN_FORMAT = 'thor-lab-run';
export const RUN_FORMAT_VERSION = 1;

/** One training step's figures; `step` is required, the rest is whatever the trainer measured. */
export type StepMetrics = { step: number } & Record<string, unknown>;

/** The rollouts of one training step. */
export interface RolloutDump {
  step: number;
  trajectories: TrajectoryRecord[];
}

/** A model folder by file name: model.safetensors, config.json, tokenizer files. */
export type CheckpointFiles = Record<string, Uint8Array>;

export interface RunRecord {
  id: string;
  name: string;
  /** ISO 8601 time of creation. */
  createdAt: string;
  config: Record<string, unknown>;
  metrics: StepMetrics[];
  rollouts: RolloutDump[];
  checkpoint?: CheckpointFiles;
  /** Markdown. */
  report?: string;
}

const RUN_JSON = 'run.json';
const CONFIG_JSON = 'config.json';
const METRICS_JSONL = 'metrics.jsonl';
const REPORT_MD = 'report.md';
const ROLLOUT_FILE = /^rollouts\/step-(\d+)\.jsonl$/;
const CHECKPOINT_DIR = 'checkpoint/';
// A tar (ustar) header holds paths of at most 100 bytes: folder (≤ 36) + "/checkpoint/" + name (≤ 50).
const CHECKPOINT_NAME = /^[A-Za-z0-9._-]{1,50}$/;

const rolloutFileName = (step: number) => `rollouts/step-${String(step).padStart(6, '0')}.jsonl`;

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

const jsonLines = (rows: readonly unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');

/** The run folder's files, by path inside the folder. */
export function runToFiles(run: RunRecord): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const manifest = { format: RUN_FORMAT, version: RUN_FORMAT_VERSION, id: run.id, name: run.name, createdAt: run.createdAt };
  files.set(RUN_JSON, textToBytes(JSON.stringify(manifest, null, 2) + '\n'));
  files.set(CONFIG_JSON, textToBytes(JSON.stringify(run.config, null, 2) + '\n'));
  files.set(METRICS_JSONL, textToBytes(jsonLines(run.metrics)));
  for (const dump of run.rollouts) files.set(rolloutFileName(dump.step), textToBytes(jsonLines(dump.trajectories)));
  for (const [name, bytes] of Object.entries(run.checkpoint ?? {})) {
    if (!CHECKPOINT_NAME.test(name))
      throw new LabError('BAD_RUN', 'checkpoint file name cannot be exported', {
        field: `checkpoint.${name}`,
        expected: 'letters, digits, ".", "_" or "-", at most 50 characters',
        found: JSON.stringify(name),
      });
    files.set(CHECKPOINT_DIR + name, bytes);
  }
  if (run.report !== undefined) files.set(REPORT_MD, textToBytes(run.report));
  return files;
}

/** The run as one .tar file. */
export function encodeRunFile(run: RunRecord): { name: string; bytes: Uint8Array } {
  const folder = runFolderName(run);
  return { name: `${folder}.tar`, bytes: tarFolder(folder, runToFiles(run)) };
}

// ---- reading a tar ---------------------------------------------------------------------------

export interface TarEntry {
  path: string;
  bytes: Uint8Array;
}

const BLOCK = 512;

function cString(bytes: Uint8Array, offset: number, length: number): string {
  const field = bytes.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return bytesToText(end < 0 ? field : field.subarray(0, end));
}

function octal(bytes: Uint8Array, offset: number, length: number): number {
  const text = cString(bytes, offset, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** Path from a pax extended header ("LEN path=VALUE\n" records), if it sets one. */
function paxPath(data: Uint8Array): string | undefined {
  const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(bytesToText(data));
  return m?.[1];
}

/**
 * Regular files of a ustar / pax / GNU tar archive (directories and links skipped), which must end
 * with its end-of-archive block. Each file's bytes are a copy, so storing one does not keep the
 * whole archive alive.
 */
export function readTar(bytes: Uint8Array, file: string): TarEntry[] {
  const notTar = (found: string) =>
    new LabError('BAD_RUN_FILE', 'not a run file: expected a tar archive', {
      file,
      expected: 'a .tar file written by Export in the Runs panel',
      found,
      hint: 'pick the .tar file as it was downloaded, without unpacking or recompressing it',
    });
  const entries: TarEntry[] = [];
  let longPath: string | undefined;
  let at = 0;
  while (at + BLOCK <= bytes.length) {
    const header = bytes.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) return entries;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
    if (sum !== octal(header, 148, 8))
      throw notTar(at === 0 ? `a file that starts with ${JSON.stringify(bytesToText(bytes.subarray(0, 16)))}` : `a damaged header at byte ${at}`);
    const size = octal(header, 124, 12);
    const start = at + BLOCK;
    if (start + size > bytes.length) throw notTar(`an archive cut short (${bytes.length} bytes, an entry needs ${start + size})`);
    const data = bytes.subarray(start, start + size);
    at = start + Math.ceil(size / BLOCK) * BLOCK;
    const type = String.fromCharCode(header[156]);
    if (type === 'L') longPath = cString(data, 0, data.length);
    else if (type === 'x') longPath = paxPath(data) ?? longPath;
    else if (type === '0' || type === '\0' || type === '7') {
      const prefix = cString(header, 257, 5) === 'ustar' ? cString(header, 345, 155) : '';
      const name = cString(header, 0, 100);
      entries.push({ path: longPath ?? (prefix ? `${prefix}/${name}` : name), bytes: data.slice() });
      longPath = undefined;
    } else longPath = undefined;
  }
  // No end-of-archive block: the download or copy stopped early, and files may be missing.
  throw notTar(bytes.length === 0 ? 'an empty file' : `an archive cut short after ${entries.length} file(s) (${bytes.length} bytes, no end-of-archive block)`);
}

// ---- validating what was read ------------------------------------------------------------------

const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
};

type Where = { file: string; line?: number };

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

function parseJson(text: string, where: Where): unknown {
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

/** The run folder's files (paths inside the folder) back into a run, checking every field. */
export function runFromFiles(files: Map<string, Uint8Array>, label: string): RunRecord {
  const at = (name: string) => `${label}/${name}`;
  const need = (name: string): Uint8Array => {
    const bytes = files.get(name);
    if (!bytes) throw new LabError('BAD_RUN_FILE', `the run has no ${name}`, { file: label, expected: `${name} in the run folder`, found: `only ${[...files.keys()].slice(0, 6).join(', ') || 'nothing'}`, hint: 'export the run again' });
    return bytes;
  };

  const manifestWhere = { file: at(RUN_JSON) };
  const manifest = parseJson(bytesToText(need(RUN_JSON)), manifestWhere);
  if (!isObject(manifest)) throw bad(manifestWhere, '(file)', 'a JSON object', manifest);
  if (manifest.format !== RUN_FORMAT) throw bad(manifestWhere, 'format', JSON.stringify(RUN_FORMAT), manifest.format, 'not a THOR Lab run');
  if (!isInt(manifest.version) || manifest.version < 1) throw bad(manifestWhere, 'version', 'a positive integer', manifest.version);
  if (manifest.version > RUN_FORMAT_VERSION)
    throw new LabError('BAD_RUN_FILE', 'the run was written by a newer THOR Lab', { ...manifestWhere, field: 'version', expected: `at most ${RUN_FORMAT_VERSION}`, found: String(manifest.version), hint: 'open it with a newer version of the lab' });
  const m = checker(manifest, manifestWhere, '');
  m.string('id');
  m.string('name');
  m.string('createdAt');
  if ((manifest.id as string).trim() === '') throw bad(manifestWhere, 'id', 'a non-empty string', manifest.id);
  if (!Number.isFinite(Date.parse(manifest.createdAt as string))) throw bad(manifestWhere, 'createdAt', 'an ISO 8601 date', manifest.createdAt);

  const configWhere = { file: at(CONFIG_JSON) };
  const config = parseJson(bytesToText(need(CONFIG_JSON)), configWhere);
  if (!isObject(config)) throw bad(configWhere, '(file)', 'a JSON object', config);

  const metrics: StepMetrics[] = [];
  const metricsBytes = files.get(METRICS_JSONL);
  if (metricsBytes)
    for (const { value, line } of jsonLinesOf(metricsBytes, at(METRICS_JSONL))) {
      const where = { file: at(METRICS_JSONL), line };
      if (!isObject(value)) throw bad(where, '(line)', 'a JSON object', value);
      checker(value, where, '').int('step');
      metrics.push(value as StepMetrics);
    }

  const rollouts: RolloutDump[] = [];
  const checkpoint: CheckpointFiles = {};
  for (const [name, bytes] of files) {
    const step = ROLLOUT_FILE.exec(name);
    if (step) {
      const trajectories = [...jsonLinesOf(bytes, at(name))].map(({ value, line }) => checkTrajectory(value, { file: at(name), line }));
      rollouts.push({ step: Number(step[1]), trajectories });
    } else if (name.startsWith('rollouts/')) {
      throw new LabError('BAD_RUN_FILE', 'unexpected file among the rollouts', { file: at(name), expected: 'rollouts/step-NNNNNN.jsonl', found: name });
    } else if (name.startsWith(CHECKPOINT_DIR)) {
      const base = name.slice(CHECKPOINT_DIR.length);
      if (!CHECKPOINT_NAME.test(base)) throw new LabError('BAD_RUN_FILE', 'unexpected file in the checkpoint', { file: at(name), expected: 'files directly inside checkpoint/ (model.safetensors, config.json, tokenizer files)', found: name });
      checkpoint[base] = bytes;
    }
  }
  rollouts.sort((a, b) => a.step - b.step);

  const hasCheckpoint = Object.keys(checkpoint).length > 0;
  if (hasCheckpoint) {
    if (!checkpoint[CONFIG_JSON]) throw new LabError('BAD_RUN_FILE', 'the checkpoint has no config.json', { file: at(CHECKPOINT_DIR), expected: 'checkpoint/config.json', found: Object.keys(checkpoint).join(', ') });
    parseJson(bytesToText(checkpoint[CONFIG_JSON]), { file: at(CHECKPOINT_DIR + CONFIG_JSON) });
    if (!Object.keys(checkpoint).some((n) => n.endsWith('.safetensors')))
      throw new LabError('BAD_RUN_FILE', 'the checkpoint has no weights', { file: at(CHECKPOINT_DIR), expected: 'checkpoint/model.safetensors', found: Object.keys(checkpoint).join(', ') });
  }

  const report = files.get(REPORT_MD);
  return {
    id: manifest.id as string,
    name: manifest.name as string,
    createdAt: manifest.createdAt as string,
    config,
    metrics,
    rollouts,
    ...(hasCheckpoint && { checkpoint }),
    ...(report !== undefined && { report: bytesToText(report) }),
  };
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
