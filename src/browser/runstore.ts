/**
 * Runs kept in the browser (IndexedDB through idb), in the layout of src/core/run/runfile.ts: a
 * run's light part (run.json's fields, config, report, counts) in one store so listing stays quick;
 * metrics, held-out evaluations and rollouts per step, so a live run appends one step at a time and
 * the viewer loads one step at a time; the checkpoint (model folder bytes) in a store of its own.
 * The policy worker writes here; the page reads the same database.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { LabError } from '../core/errors';
import type { CheckpointFiles, EvalRow, RunData, RunRecord, RunState, StepMetrics } from '../core/run/runfile';
import { noSuchRun, type RunStore, type RunSummary } from '../core/run/store';
import type { TrajectoryRecord } from '../core/tir/types';

interface RunRow extends RunSummary {
  config: Record<string, unknown>;
  report?: Record<string, string>;
}

interface LabDB extends DBSchema {
  runs: { key: string; value: RunRow };
  metrics: { key: [string, number]; value: { runId: string; step: number; metrics: StepMetrics } };
  evals: { key: [string, number]; value: { runId: string; step: number; row: EvalRow } };
  rollouts: { key: [string, number]; value: { runId: string; step: number; trajectories: TrajectoryRecord[] } };
  checkpoints: { key: string; value: { runId: string; files: CheckpointFiles } };
  data: { key: string; value: { runId: string; data: RunData } };
}

export const DB_NAME = 'thor-lab';
/** 2: held-out evaluations, run data, run state (was "live"), model label, report charts. */
const DB_VERSION = 2;
const STORES = ['runs', 'metrics', 'evals', 'rollouts', 'checkpoints', 'data'] as const;

/** run.json's fields of a stored row. */
const header = (row: RunRow): Pick<RunRecord, 'id' | 'name' | 'createdAt' | 'model' | 'state'> => ({
  id: row.id,
  name: row.name,
  createdAt: row.createdAt,
  ...(row.model !== undefined && { model: row.model }),
  ...(row.state && { state: row.state }),
});

const stepsOf = (runId: string) => IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]);
const checkpointSize = (files: CheckpointFiles | undefined) => Object.values(files ?? {}).reduce((n, b) => n + b.byteLength, 0);

/** A version 1 run's config as a run config: the model label and an SFT run's settings lived in it. */
function configOfVersion1(config: Record<string, unknown>): { config: Record<string, unknown>; model?: string } {
  const { model, mode, sft, seed, eval: evalSection, ...rest } = config as Record<string, unknown> & { sft?: Record<string, unknown>; eval?: Record<string, unknown> };
  const label = typeof model === 'string' ? { model } : {};
  if (mode === 'sft') {
    const { demonstrations: _count, ...settings } = sft ?? {};
    return { config: { mode: 'sft', ...(seed !== undefined && { seed }), sft: settings }, ...label };
  }
  const { benchmarks: _unused, ...evalSettings } = evalSection ?? {};
  return { config: { ...rest, ...(seed !== undefined && { seed }), ...(evalSection && { eval: evalSettings }) }, ...label };
}

export async function openRunStore(name = DB_NAME): Promise<RunStore> {
  let opened: IDBPDatabase<LabDB> | undefined;
  const db: IDBPDatabase<LabDB> = await new Promise((resolve, reject) => {
    openDB<LabDB>(name, DB_VERSION, {
      async upgrade(d, oldVersion, _newVersion, tx) {
        if (oldVersion < 1) {
          d.createObjectStore('runs', { keyPath: 'id' });
          d.createObjectStore('metrics', { keyPath: ['runId', 'step'] });
          d.createObjectStore('rollouts', { keyPath: ['runId', 'step'] });
          d.createObjectStore('checkpoints', { keyPath: 'runId' });
        }
        if (oldVersion < 2) {
          d.createObjectStore('evals', { keyPath: ['runId', 'step'] });
          d.createObjectStore('data', { keyPath: 'runId' });
          if (oldVersion < 1) return;
          // Version 1 kept a run's state as "live", its report as text, and the model label (and an
          // SFT run's settings) inside its config.
          for (let cursor = await tx.objectStore('runs').openCursor(); cursor; cursor = await cursor.continue()) {
            const { live, report, ...row } = cursor.value as RunRow & { live?: Omit<RunState, 'checkpointStep'> & { checkpointStep?: number }; report?: unknown };
            const { config, model } = configOfVersion1(row.config);
            await cursor.update({
              ...row,
              config,
              ...(model !== undefined && { model }),
              ...(live && { state: { ...live, checkpointStep: live.checkpointStep ?? 0 } }),
              ...(typeof report === 'string' && { report: { 'report.md': report } }),
            });
          }
        }
      },
      // Another tab of the lab, opened before this one was updated, holds the database at its old version.
      blocked() {
        reject(new LabError('run-store', 'another tab of THOR Lab keeps the run storage open with an older version of the lab', { hint: 'close or reload the other tabs of the lab, then reload this one' }));
      },
      // This tab holds the database while a newer lab in another tab wants to update it: let it.
      blocking() {
        opened?.close();
      },
    }).then((d) => resolve((opened = d)), reject);
  });

  const mustGet = async (id: string): Promise<RunRow> => {
    const row = await db.get('runs', id);
    if (!row) throw noSuchRun(id);
    return row;
  };
  /** Replaces fields of a run's row in one transaction. */
  const patchRow = async (id: string, patch: Partial<RunRow>): Promise<void> => {
    const tx = db.transaction('runs', 'readwrite');
    const row = await tx.store.get(id);
    if (!row) throw noSuchRun(id);
    await tx.store.put({ ...row, ...patch });
    await tx.done;
  };

  const store: RunStore = {
    async save(run) {
      const tx = db.transaction(STORES, 'readwrite');
      await Promise.all([tx.objectStore('metrics').delete(stepsOf(run.id)), tx.objectStore('evals').delete(stepsOf(run.id)), tx.objectStore('rollouts').delete(stepsOf(run.id)), tx.objectStore('checkpoints').delete(run.id), tx.objectStore('data').delete(run.id)]);
      const row: RunRow = {
        id: run.id,
        name: run.name,
        createdAt: run.createdAt,
        ...(run.model !== undefined && { model: run.model }),
        ...(run.state && { state: run.state }),
        config: run.config,
        ...(run.report && { report: run.report }),
        steps: run.metrics.length,
        trajectories: run.rollouts.reduce((n, d) => n + d.trajectories.length, 0),
        checkpointBytes: checkpointSize(run.checkpoint),
        hasReport: run.report !== undefined,
        ...(run.metrics.length > 0 && { lastMetrics: run.metrics[run.metrics.length - 1] }),
      };
      await Promise.all([
        tx.objectStore('runs').put(row),
        ...run.metrics.map((m) => tx.objectStore('metrics').put({ runId: run.id, step: m.step, metrics: m })),
        ...run.evals.map((e) => tx.objectStore('evals').put({ runId: run.id, step: e.step, row: e })),
        ...run.rollouts.map((d) => tx.objectStore('rollouts').put({ runId: run.id, step: d.step, trajectories: d.trajectories })),
        ...(run.checkpoint ? [tx.objectStore('checkpoints').put({ runId: run.id, files: run.checkpoint })] : []),
        ...(run.data ? [tx.objectStore('data').put({ runId: run.id, data: run.data })] : []),
      ]);
      await tx.done;
    },

    async list() {
      const rows = await db.getAll('runs');
      return rows.map(({ config: _config, report: _report, ...summary }) => summary).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },

    async has(id) {
      return (await db.getKey('runs', id)) !== undefined;
    },

    async get(id) {
      // One transaction: a run training now cannot change between its parts (a checkpoint newer than its steps).
      const tx = db.transaction(STORES, 'readonly');
      const row = await tx.objectStore('runs').get(id);
      if (!row) return undefined;
      const [metrics, evals, rollouts, checkpoint, data] = await Promise.all([
        tx.objectStore('metrics').getAll(stepsOf(id)),
        tx.objectStore('evals').getAll(stepsOf(id)),
        tx.objectStore('rollouts').getAll(stepsOf(id)),
        tx.objectStore('checkpoints').get(id),
        tx.objectStore('data').get(id),
      ]);
      const record: RunRecord = {
        ...header(row),
        config: row.config,
        metrics: metrics.map((r) => r.metrics),
        evals: evals.map((r) => r.row),
        rollouts: rollouts.map((r) => ({ step: r.step, trajectories: r.trajectories })),
        ...(checkpoint && { checkpoint: checkpoint.files }),
        ...(data && { data: data.data }),
        ...(row.report && { report: row.report }),
      };
      return record;
    },

    async getDetail(id) {
      const tx = db.transaction(['runs', 'metrics', 'evals'], 'readonly');
      const row = await tx.objectStore('runs').get(id);
      if (!row) return undefined;
      const [metrics, evals] = await Promise.all([tx.objectStore('metrics').getAll(stepsOf(id)), tx.objectStore('evals').getAll(stepsOf(id))]);
      return { ...header(row), config: row.config, metrics: metrics.map((r) => r.metrics), evals: evals.map((r) => r.row), ...(row.report && { report: row.report }) };
    },

    async getData(id) {
      return (await db.get('data', id))?.data ?? {};
    },

    async delete(id) {
      const tx = db.transaction(STORES, 'readwrite');
      await Promise.all([tx.objectStore('runs').delete(id), tx.objectStore('metrics').delete(stepsOf(id)), tx.objectStore('evals').delete(stepsOf(id)), tx.objectStore('rollouts').delete(stepsOf(id)), tx.objectStore('checkpoints').delete(id), tx.objectStore('data').delete(id)]);
      await tx.done;
    },

    async appendStep(id, metrics, trajectories) {
      const tx = db.transaction(['runs', 'metrics', 'rollouts'], 'readwrite');
      const row = await tx.objectStore('runs').get(id);
      if (!row) throw noSuchRun(id);
      const previous = trajectories ? await tx.objectStore('rollouts').get([id, metrics.step]) : undefined;
      const hadStep = (await tx.objectStore('metrics').getKey([id, metrics.step])) !== undefined;
      await Promise.all([
        tx.objectStore('metrics').put({ runId: id, step: metrics.step, metrics }),
        ...(trajectories ? [tx.objectStore('rollouts').put({ runId: id, step: metrics.step, trajectories })] : []),
        tx.objectStore('runs').put({
          ...row,
          steps: row.steps + (hadStep ? 0 : 1),
          trajectories: row.trajectories + (trajectories?.length ?? 0) - (previous?.trajectories.length ?? 0),
          lastMetrics: metrics,
        }),
      ]);
      await tx.done;
    },

    async appendEval(id, evalRow) {
      await mustGet(id);
      await db.put('evals', { runId: id, step: evalRow.step, row: evalRow });
    },

    async truncateSteps(id, step) {
      const tx = db.transaction(['runs', 'metrics', 'evals', 'rollouts'], 'readwrite');
      const row = await tx.objectStore('runs').get(id);
      if (!row) throw noSuchRun(id);
      const after = IDBKeyRange.bound([id, step], [id, Infinity], true, false);
      const [metrics, rollouts] = await Promise.all([tx.objectStore('metrics').getAll(after), tx.objectStore('rollouts').getAll(after)]);
      const kept = await tx.objectStore('metrics').getAll(IDBKeyRange.bound([id, -Infinity], [id, step]));
      await Promise.all([
        tx.objectStore('metrics').delete(after),
        tx.objectStore('evals').delete(after),
        tx.objectStore('rollouts').delete(after),
        tx.objectStore('runs').put({
          ...row,
          steps: row.steps - metrics.length,
          trajectories: row.trajectories - rollouts.reduce((n, r) => n + r.trajectories.length, 0),
          lastMetrics: kept.at(-1)?.metrics,
        }),
      ]);
      await tx.done;
    },

    setState: (id, state) => patchRow(id, { state }),
    setConfig: (id, config) => patchRow(id, { config }),

    async saveCheckpoint(id, files, step) {
      const tx = db.transaction(['runs', 'checkpoints'], 'readwrite');
      const row = await tx.objectStore('runs').get(id);
      if (!row) throw noSuchRun(id);
      const state = row.state && step !== undefined ? { ...row.state, checkpointStep: step } : row.state;
      await Promise.all([tx.objectStore('checkpoints').put({ runId: id, files }), tx.objectStore('runs').put({ ...row, checkpointBytes: checkpointSize(files), ...(state && { state }) })]);
      await tx.done;
    },

    async getCheckpoint(id) {
      return (await db.get('checkpoints', id))?.files;
    },

    async saveReport(id, files) {
      const row = await mustGet(id);
      await db.put('runs', { ...row, report: files, hasReport: true });
    },

    async rolloutSteps(id) {
      return (await db.getAllKeys('rollouts', stepsOf(id))).map((k) => k[1]);
    },

    async getRollouts(id, step) {
      return (await db.get('rollouts', [id, step]))?.trajectories;
    },
  };
  return store;
}
