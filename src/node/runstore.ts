/**
 * Runs on disk: a folder of run folders, each in the layout of src/core/run/runfile.ts (the same as a
 * browser export, unpacked). A run's folder is found by the id in its run.json, so a browser export
 * unpacked next to the lab's own runs (thor-run-ID/) is a run like any other. Every file is written
 * beside its place and renamed into it, so a crash leaves the old version or the new one, never half
 * of one; a new checkpoint replaces the old one only once it is whole.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LabError } from '../core/errors';
import {
  CHECKPOINT_DIR,
  CONFIG_JSON,
  DATA_FILES,
  EVALS_JSONL,
  METRICS_JSONL,
  REPORT_MD,
  RUN_JSON,
  checkCheckpointName,
  checkManifest,
  jsonLines,
  parseJson,
  readDataFile,
  readRolloutFile,
  readStepRows,
  rolloutFileName,
  rolloutStepOf,
  runFolderName,
  runFromFiles,
  runManifest,
  runToFiles,
  type CheckpointFiles,
  type EvalRow,
  type RunData,
  type RunRecord,
  type RunState,
  type StepMetrics,
} from '../core/run/runfile';
import { noSuchRun, type RunDetail, type RunStore, type RunSummary } from '../core/run/store';
import type { TrajectoryRecord } from '../core/tir/types';

type Header = Pick<RunRecord, 'id' | 'name' | 'createdAt' | 'model' | 'state'>;

const u8 = (buf: Buffer) => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** A folder name for a run id: the id itself when it is a plain name, else the export's file-safe name. */
const folderNameOf = (id: string) => (/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/.test(id) && !id.startsWith('.') ? id : runFolderName({ id }));

async function filesUnder(dir: string, prefix = ''): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const [name, bytes] of await filesUnder(path, `${prefix}${entry.name}/`)) out.set(name, bytes);
    else if (entry.isFile()) out.set(prefix + entry.name, u8(await readFile(path)));
  }
  return out;
}

export class DiskRunStore implements RunStore {
  /** id -> folder, refreshed by scanning the root when an id is not known. */
  private folders = new Map<string, string>();

  /** `root` holds one folder per run; new runs get `root/ID`. */
  constructor(readonly root: string) {}

  /** The store holding the run folder `dir`, and that run's id (from its run.json). */
  static async forRunFolder(dir: string): Promise<{ store: DiskRunStore; id: string }> {
    const where = { file: join(dir, RUN_JSON) };
    let text: string;
    try {
      text = await readFile(where.file, 'utf8');
    } catch {
      throw new LabError('no-run', 'not a run folder', { file: dir, expected: `a folder with ${RUN_JSON} (written by cli train, or a browser export unpacked with tar -xf)`, found: existsSync(dir) ? `no ${RUN_JSON}` : 'no such folder' });
    }
    const header = checkManifest(parseJson(text, where), where);
    await recoverCheckpoint(dir);
    const store = new DiskRunStore(dirname(dir));
    store.folders.set(header.id, basename(dir));
    return { store, id: header.id };
  }

  /** The folder a run is kept in. */
  dirOf(id: string): Promise<string> {
    return this.folder(id);
  }

  /** The folder of a run; `create` gives a new id the folder root/ID. */
  private async folder(id: string, create = false): Promise<string> {
    let name = this.folders.get(id);
    if (name === undefined) {
      await this.scan();
      name = this.folders.get(id);
    }
    if (name === undefined) {
      if (!create) throw noSuchRun(id);
      name = folderNameOf(id);
      this.folders.set(id, name);
    }
    return join(this.root, name);
  }

  private async scan(): Promise<Header[]> {
    const headers: Header[] = [];
    if (!existsSync(this.root)) return headers;
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      await recoverCheckpoint(join(this.root, entry.name));
      const header = await this.header(join(this.root, entry.name)).catch(() => undefined);
      if (!header) continue;
      this.folders.set(header.id, entry.name);
      headers.push(header);
    }
    return headers;
  }

  private async header(dir: string): Promise<Header> {
    const where = { file: join(dir, RUN_JSON) };
    return checkManifest(parseJson(await readFile(where.file, 'utf8'), where), where);
  }

  private async writeHeader(dir: string, header: Header): Promise<void> {
    await writeAtomic(join(dir, RUN_JSON), JSON.stringify(runManifest(header), null, 2) + '\n');
  }

  private async rows(dir: string, file: string): Promise<({ step: number } & Record<string, unknown>)[]> {
    const path = join(dir, file);
    return existsSync(path) ? readStepRows(u8(await readFile(path)), path) : [];
  }

  /** Adds a row, replacing one of the same step (a step trained again after a resume). */
  private async putRow(dir: string, file: string, row: { step: number }): Promise<void> {
    const rows = await this.rows(dir, file);
    if (rows.some((r) => r.step >= row.step)) await writeAtomic(join(dir, file), jsonLines([...rows.filter((r) => r.step !== row.step), row].sort((a, b) => a.step - b.step)));
    else await appendFile(join(dir, file), JSON.stringify(row) + '\n');
  }

  async save(run: RunRecord): Promise<void> {
    const dir = await this.folder(run.id, true);
    const staging = `${dir}.new-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    for (const [path, bytes] of runToFiles(run)) {
      await mkdir(dirname(join(staging, path)), { recursive: true });
      await writeFile(join(staging, path), bytes);
    }
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  }

  async list(): Promise<RunSummary[]> {
    const summaries = await Promise.all((await this.scan()).map((h) => this.summary(h)));
    return summaries.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  private async summary(header: Header): Promise<RunSummary> {
    const dir = await this.folder(header.id);
    const metrics = await this.rows(dir, METRICS_JSONL);
    let trajectories = 0;
    const rollouts = join(dir, 'rollouts');
    if (existsSync(rollouts)) for (const name of await readdir(rollouts)) trajectories += (await readFile(join(rollouts, name), 'utf8')).split('\n').filter((l) => l.trim() !== '').length;
    let checkpointBytes = 0;
    const checkpoint = join(dir, CHECKPOINT_DIR);
    if (existsSync(checkpoint)) for (const name of await readdir(checkpoint)) checkpointBytes += (await stat(join(checkpoint, name))).size;
    return {
      ...header,
      steps: metrics.length,
      trajectories,
      checkpointBytes,
      hasReport: existsSync(join(dir, REPORT_MD)),
      ...(metrics.length > 0 && { lastMetrics: metrics[metrics.length - 1] as StepMetrics }),
    };
  }

  async has(id: string): Promise<boolean> {
    return this.folder(id).then(
      () => true,
      () => false,
    );
  }

  async get(id: string): Promise<RunRecord | undefined> {
    if (!(await this.has(id))) return undefined;
    const dir = await this.folder(id);
    return runFromFiles(await filesUnder(dir), dir);
  }

  async getDetail(id: string): Promise<RunDetail | undefined> {
    if (!(await this.has(id))) return undefined;
    const dir = await this.folder(id);
    const configPath = join(dir, CONFIG_JSON);
    const report: Record<string, string> = {};
    for (const name of await readdir(dir)) if (name === REPORT_MD || name.endsWith('.svg')) report[name] = await readFile(join(dir, name), 'utf8');
    return {
      ...(await this.header(dir)),
      config: parseJson(await readFile(configPath, 'utf8'), { file: configPath }) as Record<string, unknown>,
      metrics: (await this.rows(dir, METRICS_JSONL)) as StepMetrics[],
      evals: (await this.rows(dir, EVALS_JSONL)) as EvalRow[],
      ...(report[REPORT_MD] !== undefined && { report }),
    };
  }

  async delete(id: string): Promise<void> {
    if (!(await this.has(id))) return;
    await rm(await this.folder(id), { recursive: true, force: true });
    this.folders.delete(id);
  }

  async appendStep(id: string, metrics: StepMetrics, trajectories?: TrajectoryRecord[]): Promise<void> {
    const dir = await this.folder(id);
    await this.putRow(dir, METRICS_JSONL, metrics);
    if (trajectories) {
      await mkdir(join(dir, 'rollouts'), { recursive: true });
      await writeAtomic(join(dir, rolloutFileName(metrics.step)), jsonLines(trajectories));
    }
  }

  async appendEval(id: string, row: EvalRow): Promise<void> {
    await this.putRow(await this.folder(id), EVALS_JSONL, row);
  }

  async truncateSteps(id: string, step: number): Promise<void> {
    const dir = await this.folder(id);
    for (const file of [METRICS_JSONL, EVALS_JSONL]) {
      const rows = await this.rows(dir, file);
      if (rows.some((r) => r.step > step)) await writeAtomic(join(dir, file), jsonLines(rows.filter((r) => r.step <= step)));
    }
    for (const s of await this.rolloutSteps(id)) if (s > step) await rm(join(dir, rolloutFileName(s)));
  }

  async setState(id: string, state: RunState): Promise<void> {
    const dir = await this.folder(id);
    await this.writeHeader(dir, { ...(await this.header(dir)), state });
  }

  async setConfig(id: string, config: Record<string, unknown>): Promise<void> {
    await writeAtomic(join(await this.folder(id), CONFIG_JSON), JSON.stringify(config, null, 2) + '\n');
  }

  async saveCheckpoint(id: string, files: CheckpointFiles, step?: number): Promise<void> {
    const dir = await this.folder(id);
    const [final, staging, old] = [join(dir, CHECKPOINT_DIR), join(dir, 'checkpoint.new'), join(dir, 'checkpoint.old')];
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) {
      checkCheckpointName(name);
      await writeFile(join(staging, name), bytes);
    }
    // The old checkpoint goes aside before the new one takes its place: at every moment one whole
    // checkpoint is there or beside it (recoverCheckpoint puts it back after a crash).
    await rm(old, { recursive: true, force: true });
    if (existsSync(final)) await rename(final, old);
    await rename(staging, final);
    await rm(old, { recursive: true, force: true });
    if (step !== undefined) {
      const header = await this.header(dir);
      if (header.state) await this.writeHeader(dir, { ...header, state: { ...header.state, checkpointStep: step } });
    }
  }

  async getCheckpoint(id: string): Promise<CheckpointFiles | undefined> {
    await recoverCheckpoint(await this.folder(id));
    const dir = join(await this.folder(id), CHECKPOINT_DIR);
    if (!existsSync(dir)) return undefined;
    return Object.fromEntries(await filesUnder(dir));
  }

  async saveReport(id: string, files: Record<string, string>): Promise<void> {
    const dir = await this.folder(id);
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, basename(name)), text);
  }

  async getData(id: string): Promise<RunData> {
    const dir = await this.folder(id);
    const data: RunData = {};
    for (const [part, file] of Object.entries(DATA_FILES) as [keyof RunData, string][]) {
      const path = join(dir, file);
      if (existsSync(path)) Object.assign(data, { [part]: readDataFile(part, u8(await readFile(path)), path) });
    }
    return data;
  }

  async getMetrics(id: string): Promise<StepMetrics[]> {
    return (await this.rows(await this.folder(id), METRICS_JSONL)) as StepMetrics[];
  }

  async getEvals(id: string): Promise<EvalRow[]> {
    return (await this.rows(await this.folder(id), EVALS_JSONL)) as EvalRow[];
  }

  async rolloutSteps(id: string): Promise<number[]> {
    const dir = join(await this.folder(id), 'rollouts');
    if (!existsSync(dir)) return [];
    return (await readdir(dir))
      .map((name) => rolloutStepOf(`rollouts/${name}`))
      .filter((s): s is number => s !== undefined)
      .sort((a, b) => a - b);
  }

  async getRollouts(id: string, step: number): Promise<TrajectoryRecord[] | undefined> {
    const path = join(await this.folder(id), rolloutFileName(step));
    return existsSync(path) ? readRolloutFile(u8(await readFile(path)), path) : undefined;
  }
}

/** A crash between putting the old checkpoint aside and the new one in place leaves only the old one beside: it goes back. */
async function recoverCheckpoint(dir: string): Promise<void> {
  const [final, old] = [join(dir, CHECKPOINT_DIR), join(dir, 'checkpoint.old')];
  if (existsSync(old) && !existsSync(final)) await rename(old, final);
}
