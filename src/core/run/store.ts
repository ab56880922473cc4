/**
 * Where runs are kept, as one small interface: a folder of run folders on disk in Node
 * (src/node/runstore.ts), IndexedDB in the browser (src/browser/runstore.ts). Both hold the run
 * folder layout of runfile.ts, so a run moves between them as one .tar file.
 */
import { LabError } from '../errors';
import type { TrajectoryRecord } from '../tir/types';
import { decodeRunFile, type CheckpointFiles, type EvalRow, type RunData, type RunRecord, type RunState, type StepMetrics } from './runfile';

/** What a list of runs shows: no metrics, rollouts or weights. */
export interface RunSummary {
  id: string;
  name: string;
  createdAt: string;
  model?: string;
  /** Training steps with metrics. */
  steps: number;
  /** Trajectories stored, over all steps. */
  trajectories: number;
  /** Size of the checkpoint's files; 0 without one. */
  checkpointBytes: number;
  hasReport: boolean;
  /** Metrics of the last step, for a one-line summary. */
  lastMetrics?: StepMetrics;
  /** Runs trained by the lab: where they stand. "running" found by a new process or page means it was cut off. */
  state?: RunState;
}

/** A run without its rollouts and checkpoint: what a run's page shows. */
export type RunDetail = Omit<RunRecord, 'rollouts' | 'checkpoint'>;

export interface RunStore {
  /** Stores a whole run, replacing any run with the same id. */
  save(run: RunRecord): Promise<void>;
  /** Newest first. */
  list(): Promise<RunSummary[]>;
  has(id: string): Promise<boolean>;
  get(id: string): Promise<RunRecord | undefined>;
  getDetail(id: string): Promise<RunDetail | undefined>;
  delete(id: string): Promise<void>;
  /** Adds (or replaces) one step of a run: its metrics, and its rollouts when they are kept. */
  appendStep(id: string, metrics: StepMetrics, trajectories?: TrajectoryRecord[]): Promise<void>;
  /** Adds (or replaces) one held-out evaluation. */
  appendEval(id: string, row: EvalRow): Promise<void>;
  /** Forgets the steps and evaluations after `step` (a run going on from an earlier checkpoint trains them again). */
  truncateSteps(id: string, step: number): Promise<void>;
  setState(id: string, state: RunState): Promise<void>;
  /** Replaces the run's config (a resumed run's, with the changes it was resumed with). */
  setConfig(id: string, config: Record<string, unknown>): Promise<void>;
  /** Stores the run's checkpoint, replacing the last one; with `step`, the state's checkpointStep follows. */
  saveCheckpoint(id: string, files: CheckpointFiles, step?: number): Promise<void>;
  getCheckpoint(id: string): Promise<CheckpointFiles | undefined>;
  /** The report card and its charts, by file name. */
  saveReport(id: string, files: Record<string, string>): Promise<void>;
  /** The questions and demonstrations the run was started with ({} for runs that kept none). */
  getData(id: string): Promise<RunData>;
  /** Steps that have stored rollouts, ascending. */
  rolloutSteps(id: string): Promise<number[]>;
  getRollouts(id: string, step: number): Promise<TrajectoryRecord[] | undefined>;
}

/** The error for a run that is not in the store. */
export function noSuchRun(id: string): LabError {
  return new LabError('no-run', 'no stored run has this id', { expected: 'the id of a stored run', found: id, hint: 'the run list shows the ids of the stored runs' });
}

/** A run file (.tar) into a store; a run whose id is already there is kept as a copy beside it. */
export async function importRun(store: RunStore, bytes: Uint8Array, fileName: string): Promise<{ run: RunSummary; copy: boolean }> {
  const run = decodeRunFile(bytes, fileName);
  const copy = await store.has(run.id);
  const stored = copy ? { ...run, id: `${run.id}-copy-${Date.now().toString(36)}`, name: `${run.name} (copy)` } : run;
  await store.save(stored);
  const summary = (await store.list()).find((r) => r.id === stored.id);
  if (!summary) throw new LabError('import', 'the run was not stored', { file: fileName });
  return { run: summary, copy };
}
