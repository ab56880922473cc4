/**
 * Runs kept in the browser (IndexedDB through idb), in the layout of src/core/run/runfile.ts: a
 * run's light part (run.json's fields, config, report, counts) in one store so listing stays quick;
 * metrics, held-out evaluations and rollouts per step, so a live run appends one step at a time and
 * the viewer loads one step at a time; the checkpoint (model folder bytes) in a store of its own.
 * The policy worker writes here; the page reads the same database.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { CheckpointFiles, EvalRow, RunRecord, RunState, StepMetrics } from '../core/run/runfile';
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
}

export const DB_NAME = 'thor-lab';
/** 2: held-out evaluations, run state (was "live"), model label, report charts. */
const DB_VERSION = 2;
const STORES = ['runs', 'metrics', 'evals', 'rollouts', 'checkpoints'] as const;

const stepsOf = (runId: string) => IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]);
const checkpointSize = (files: CheckpointFiles | undefined) => Object.values(files ?? {}).reduce((n, b) => n + b.byteLength, 0);

export async function openRunStore(name = DB_NAME): Promise<RunStore> {
  const db: IDBPDatabase<LabDB> = await openDB<LabDB>(name, DB_VERSION, {
    async upgrade(d, oldVersion, _newVersion, tx) {
      if (oldVersion < 1) {
        d.createObjectStore('runs', { keyPath: 'id' });
        d.createObjectStore('metrics', { keyPath: ['runId', 'step'] });
        d.createObjectStore('rollouts', { keyPath: ['runId', 'step'] });
        d.createObjectStore('checkpoints', { keyPath: 'runId' });
      }
      if (oldVersion < 2) {
        d.createObjectStore('evals', { keyPath: ['runId', 'step'] });
        // Version 1 kept a run's state as "live" (without checkpointStep until the first checkpoint) and its report as text.
        for (let cursor = await tx.objectStore('runs').openCursor(); cursor; cursor = await cursor.continue()) {
          const { live, report, ...row } = cursor.value as RunRow & { live?: Omit<RunState, 'checkpointStep'> & { checkpointStep?: number }; report?: unknown };
          await cursor.update({
            ...row,
            ...(live && { state: { ...live, checkpointStep: live.checkpointStep ?? 0 } }),
            ...(typeof report === 'string' && { report: { 'report.md': report } }),
          });
        }
      }
    },
  });

  const mustGet = async (id: string): Promise<RunRow> => {
    const row = await db.get('runs', id);
    if (!row) throw noSuchRun(id);
    return row;
  };

  const store: RunStore = {
    async save(run) {
      const tx = db.transaction(STORES, 'readwrite');
      await Promise.all([tx.objectStore('metrics').delete(stepsOf(run.id)), tx.objectStore('evals').delete(stepsOf(run.id)), tx.objectStore('rollouts').delete(stepsOf(run.id)), tx.objectStore('checkpoints').delete(run.id)]);
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
      const row = await db.get('runs', id);
      if (!row) return undefined;
      const [metrics, evals, rollouts, checkpoint] = await Promise.all([store.getMetrics(id), store.getEvals(id), db.getAll('rollouts', stepsOf(id)), db.get('checkpoints', id)]);
      const record: RunRecord = {
        id: row.id,
        name: row.name,
        createdAt: row.createdAt,
        ...(row.model !== undefined && { model: row.model }),
        ...(row.state && { state: row.state }),
        config: row.config,
        metrics,
        evals,
        rollouts: rollouts.map((r) => ({ step: r.step, trajectories: r.trajectories })),
        ...(checkpoint && { checkpoint: checkpoint.files }),
        ...(row.report && { report: row.report }),
      };
      return record;
    },

    async getDetail(id) {
      const row = await db.get('runs', id);
      if (!row) return undefined;
      const [metrics, evals] = await Promise.all([store.getMetrics(id), store.getEvals(id)]);
      return {
        id: row.id,
        name: row.name,
        createdAt: row.createdAt,
        ...(row.model !== undefined && { model: row.model }),
        ...(row.state && { state: row.state }),
        config: row.config,
        metrics,
        evals,
        ...(row.report && { report: row.report }),
      };
    },

    async delete(id) {
      const tx = db.transaction(STORES, 'readwrite');
      await Promise.all([tx.objectStore('runs').delete(id), tx.objectStore('metrics').delete(stepsOf(id)), tx.objectStore('evals').delete(stepsOf(id)), tx.objectStore('rollouts').delete(stepsOf(id)), tx.objectStore('checkpoints').delete(id)]);
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

    async setState(id, state) {
      const tx = db.transaction('runs', 'readwrite');
      const row = await tx.store.get(id);
      if (!row) throw noSuchRun(id);
      await tx.store.put({ ...row, state });
      await tx.done;
    },

    async setConfig(id, config) {
      const tx = db.transaction('runs', 'readwrite');
      const row = await tx.store.get(id);
      if (!row) throw noSuchRun(id);
      await tx.store.put({ ...row, config });
      await tx.done;
    },

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

    async getMetrics(id) {
      return (await db.getAll('metrics', stepsOf(id))).map((r) => r.metrics);
    },

    async getEvals(id) {
      return (await db.getAll('evals', stepsOf(id))).map((r) => r.row);
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
