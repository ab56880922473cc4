/**
 * Runs kept in the browser (IndexedDB through idb). A run's light part (name, config, report,
 * counts) sits in one store so listing stays quick; metrics and rollouts are stored per step, so a
 * live run appends one step at a time and the viewer loads one step at a time; the checkpoint
 * (model folder bytes) has its own store.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { TrajectoryRecord } from '../../core/rl/types';
import type { CheckpointFiles, RunRecord, StepMetrics } from '../../core/run/runfile';

/** What the Runs list shows: no metrics, rollouts or weights. */
export interface RunSummary {
  id: string;
  name: string;
  createdAt: string;
  /** Training steps with metrics. */
  steps: number;
  /** Trajectories stored, over all steps. */
  trajectories: number;
  /** Size of the checkpoint's files; 0 without one. */
  checkpointBytes: number;
  hasReport: boolean;
  /** Metrics of the last step, for a one-line summary. */
  lastMetrics?: StepMetrics;
  /** Runs trained in this browser: where they stand (absent for imported runs and saved models). */
  live?: LiveRunState;
}

/**
 * A run trained here. "running" found after a reload means the tab closed mid-run: the run can go
 * on from its last checkpoint.
 */
export interface LiveRunState {
  status: 'running' | 'paused' | 'stopped' | 'finished' | 'failed';
  mode: 'rl' | 'sft';
  /** Steps the run was started for. */
  totalSteps: number;
  /** Training step the stored checkpoint was taken after (0: the starting weights). */
  checkpointStep?: number;
  message?: string;
}

interface RunRow extends RunSummary {
  config: Record<string, unknown>;
  report?: string;
}

interface LabDB extends DBSchema {
  runs: { key: string; value: RunRow };
  metrics: { key: [string, number]; value: { runId: string; step: number; metrics: StepMetrics } };
  rollouts: { key: [string, number]; value: { runId: string; step: number; trajectories: TrajectoryRecord[] } };
  checkpoints: { key: string; value: { runId: string; files: CheckpointFiles } };
}

export const DB_NAME = 'thor-lab';
const DB_VERSION = 1;

const stepsOf = (runId: string) => IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]);
const checkpointSize = (files: CheckpointFiles | undefined) => Object.values(files ?? {}).reduce((n, b) => n + b.byteLength, 0);

export interface RunStore {
  /** Stores a whole run, replacing any run with the same id. */
  save(run: RunRecord, live?: LiveRunState): Promise<void>;
  /** Forgets the steps after `step` (a run going on from an earlier checkpoint retrains them). */
  truncateSteps(id: string, step: number): Promise<void>;
  /** Updates where a run trained here stands. */
  setLive(id: string, live: LiveRunState): Promise<void>;
  /** Newest first. */
  list(): Promise<RunSummary[]>;
  has(id: string): Promise<boolean>;
  get(id: string): Promise<RunRecord | undefined>;
  delete(id: string): Promise<void>;
  /** Adds one step of a live run (metrics, and its rollouts when dumped). */
  appendStep(id: string, metrics: StepMetrics, trajectories?: TrajectoryRecord[]): Promise<void>;
  /** Stores the run's checkpoint; `step` says which training step it was taken after. */
  saveCheckpoint(id: string, files: CheckpointFiles, step?: number): Promise<void>;
  saveReport(id: string, report: string): Promise<void>;
  /** Steps that have stored rollouts, ascending. */
  rolloutSteps(id: string): Promise<number[]>;
  getRollouts(id: string, step: number): Promise<TrajectoryRecord[] | undefined>;
  getMetrics(id: string): Promise<StepMetrics[]>;
  getConfig(id: string): Promise<Record<string, unknown> | undefined>;
  /** What the Runs panel shows of one run: everything but rollouts and checkpoint. */
  getDetail(id: string): Promise<Omit<RunRecord, 'rollouts' | 'checkpoint'> | undefined>;
  getCheckpoint(id: string): Promise<CheckpointFiles | undefined>;
}

export async function openRunStore(name = DB_NAME): Promise<RunStore> {
  const db: IDBPDatabase<LabDB> = await openDB<LabDB>(name, DB_VERSION, {
    upgrade(d) {
      d.createObjectStore('runs', { keyPath: 'id' });
      d.createObjectStore('metrics', { keyPath: ['runId', 'step'] });
      d.createObjectStore('rollouts', { keyPath: ['runId', 'step'] });
      d.createObjectStore('checkpoints', { keyPath: 'runId' });
    },
  });

  const mustGet = async (id: string): Promise<RunRow> => {
    const row = await db.get('runs', id);
    if (!row) throw new Error(`no stored run with id ${id}`);
    return row;
  };

  const store: RunStore = {
    async save(run, live) {
      const tx = db.transaction(['runs', 'metrics', 'rollouts', 'checkpoints'], 'readwrite');
      const [runs, metrics, rollouts, checkpoints] = [tx.objectStore('runs'), tx.objectStore('metrics'), tx.objectStore('rollouts'), tx.objectStore('checkpoints')];
      await Promise.all([metrics.delete(stepsOf(run.id)), rollouts.delete(stepsOf(run.id)), checkpoints.delete(run.id)]);
      const row: RunRow = {
        id: run.id,
        name: run.name,
        createdAt: run.createdAt,
        config: run.config,
        ...(run.report !== undefined && { report: run.report }),
        steps: run.metrics.length,
        trajectories: run.rollouts.reduce((n, d) => n + d.trajectories.length, 0),
        checkpointBytes: checkpointSize(run.checkpoint),
        hasReport: run.report !== undefined,
        ...(run.metrics.length > 0 && { lastMetrics: run.metrics[run.metrics.length - 1] }),
        ...(live && { live }),
      };
      await Promise.all([
        runs.put(row),
        ...run.metrics.map((m) => metrics.put({ runId: run.id, step: m.step, metrics: m })),
        ...run.rollouts.map((d) => rollouts.put({ runId: run.id, step: d.step, trajectories: d.trajectories })),
        ...(run.checkpoint ? [checkpoints.put({ runId: run.id, files: run.checkpoint })] : []),
      ]);
      await tx.done;
    },

    async list() {
      const rows = await db.getAll('runs');
      return rows
        .map(({ config: _config, report: _report, ...summary }) => summary)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },

    async has(id) {
      return (await db.getKey('runs', id)) !== undefined;
    },

    async get(id) {
      const row = await db.get('runs', id);
      if (!row) return undefined;
      const [metrics, rollouts, checkpoint] = await Promise.all([
        store.getMetrics(id),
        db.getAll('rollouts', stepsOf(id)),
        db.get('checkpoints', id),
      ]);
      return {
        id: row.id,
        name: row.name,
        createdAt: row.createdAt,
        config: row.config,
        metrics,
        rollouts: rollouts.map((r) => ({ step: r.step, trajectories: r.trajectories })),
        ...(checkpoint && { checkpoint: checkpoint.files }),
        ...(row.report !== undefined && { report: row.report }),
      };
    },

    async delete(id) {
      const tx = db.transaction(['runs', 'metrics', 'rollouts', 'checkpoints'], 'readwrite');
      await Promise.all([
        tx.objectStore('runs').delete(id),
        tx.objectStore('metrics').delete(stepsOf(id)),
        tx.objectStore('rollouts').delete(stepsOf(id)),
        tx.objectStore('checkpoints').delete(id),
      ]);
      await tx.done;
    },

    async appendStep(id, metrics, trajectories) {
      const tx = db.transaction(['runs', 'metrics', 'rollouts'], 'readwrite');
      const runs = tx.objectStore('runs');
      const row = await runs.get(id);
      if (!row) throw new Error(`no stored run with id ${id}`);
      const previous = trajectories ? await tx.objectStore('rollouts').get([id, metrics.step]) : undefined;
      const hadStep = (await tx.objectStore('metrics').getKey([id, metrics.step])) !== undefined;
      await Promise.all([
        tx.objectStore('metrics').put({ runId: id, step: metrics.step, metrics }),
        ...(trajectories ? [tx.objectStore('rollouts').put({ runId: id, step: metrics.step, trajectories })] : []),
        runs.put({
          ...row,
          steps: row.steps + (hadStep ? 0 : 1),
          trajectories: row.trajectories + (trajectories?.length ?? 0) - (previous?.trajectories.length ?? 0),
          lastMetrics: metrics,
        }),
      ]);
      await tx.done;
    },

    async truncateSteps(id, step) {
      const tx = db.transaction(['runs', 'metrics', 'rollouts'], 'readwrite');
      const row = await tx.objectStore('runs').get(id);
      if (!row) throw new Error(`no stored run with id ${id}`);
      const after = IDBKeyRange.bound([id, step], [id, Infinity], true, false);
      const [metrics, rollouts] = await Promise.all([tx.objectStore('metrics').getAll(after), tx.objectStore('rollouts').getAll(after)]);
      const kept = await tx.objectStore('metrics').getAll(IDBKeyRange.bound([id, -Infinity], [id, step]));
      await Promise.all([
        tx.objectStore('metrics').delete(after),
        tx.objectStore('rollouts').delete(after),
        tx.objectStore('runs').put({
          ...row,
          steps: row.steps - metrics.length,
          trajectories: row.trajectories - rollouts.reduce((n, r) => n + r.trajectories.length, 0),
          ...(kept.length > 0 ? { lastMetrics: kept[kept.length - 1].metrics } : { lastMetrics: undefined }),
        }),
      ]);
      await tx.done;
    },

    async setLive(id, live) {
      const tx = db.transaction('runs', 'readwrite');
      const row = await tx.store.get(id);
      if (!row) throw new Error(`no stored run with id ${id}`);
      await tx.store.put({ ...row, live });
      await tx.done;
    },

    async saveCheckpoint(id, files, step) {
      const tx = db.transaction(['runs', 'checkpoints'], 'readwrite');
      const row = await tx.objectStore('runs').get(id);
      if (!row) throw new Error(`no stored run with id ${id}`);
      const live = row.live && step !== undefined ? { ...row.live, checkpointStep: step } : row.live;
      await Promise.all([
        tx.objectStore('checkpoints').put({ runId: id, files }),
        tx.objectStore('runs').put({ ...row, checkpointBytes: checkpointSize(files), ...(live && { live }) }),
      ]);
      await tx.done;
    },

    async saveReport(id, report) {
      const row = await mustGet(id);
      await db.put('runs', { ...row, report, hasReport: true });
    },

    async rolloutSteps(id) {
      const keys = await db.getAllKeys('rollouts', stepsOf(id));
      return keys.map((k) => k[1]);
    },

    async getRollouts(id, step) {
      return (await db.get('rollouts', [id, step]))?.trajectories;
    },

    async getMetrics(id) {
      return (await db.getAll('metrics', stepsOf(id))).map((r) => r.metrics);
    },

    async getConfig(id) {
      return (await db.get('runs', id))?.config;
    },

    async getDetail(id) {
      const row = await db.get('runs', id);
      if (!row) return undefined;
      const metrics = await store.getMetrics(id);
      return { id: row.id, name: row.name, createdAt: row.createdAt, config: row.config, metrics, ...(row.report !== undefined && { report: row.report }) };
    },

    async getCheckpoint(id) {
      return (await db.get('checkpoints', id))?.files;
    },
  };
  return store;
}
