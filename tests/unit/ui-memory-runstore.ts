/**
 * The run store's interface over plain maps, for driving the lab service in Node (which has no
 * IndexedDB). The browser tests exercise the IndexedDB store itself.
 */
import type { LiveRunState, RunStore, RunSummary } from '../../src/app/lib/runstore';
import type { TrajectoryRecord } from '../../src/core/rl/types';
import type { CheckpointFiles, RunRecord, StepMetrics } from '../../src/core/run/runfile';

interface Entry {
  run: RunRecord;
  live?: LiveRunState;
  metrics: Map<number, StepMetrics>;
  rollouts: Map<number, TrajectoryRecord[]>;
}

export function memoryRunStore(): RunStore & { entries: Map<string, Entry> } {
  const entries = new Map<string, Entry>();
  const must = (id: string) => {
    const e = entries.get(id);
    if (!e) throw new Error(`no stored run with id ${id}`);
    return e;
  };
  const sorted = <T>(m: Map<number, T>) => [...m.entries()].sort((a, b) => a[0] - b[0]);
  const summary = (e: Entry): RunSummary => {
    const metrics = sorted(e.metrics).map(([, m]) => m);
    return {
      id: e.run.id,
      name: e.run.name,
      createdAt: e.run.createdAt,
      steps: metrics.length,
      trajectories: [...e.rollouts.values()].reduce((n, t) => n + t.length, 0),
      checkpointBytes: Object.values(e.run.checkpoint ?? {}).reduce((n, b) => n + b.byteLength, 0),
      hasReport: e.run.report !== undefined,
      ...(metrics.length > 0 && { lastMetrics: metrics[metrics.length - 1] }),
      ...(e.live && { live: e.live }),
    };
  };
  return {
    entries,
    async save(run, live) {
      entries.set(run.id, {
        run: { ...run },
        live,
        metrics: new Map(run.metrics.map((m) => [m.step, m])),
        rollouts: new Map(run.rollouts.map((d) => [d.step, d.trajectories])),
      });
    },
    async truncateSteps(id, step) {
      const e = must(id);
      for (const s of [...e.metrics.keys()]) if (s > step) e.metrics.delete(s);
      for (const s of [...e.rollouts.keys()]) if (s > step) e.rollouts.delete(s);
    },
    async setLive(id, live) {
      must(id).live = live;
    },
    async list() {
      return [...entries.values()].map(summary).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },
    async has(id) {
      return entries.has(id);
    },
    async get(id) {
      const e = entries.get(id);
      if (!e) return undefined;
      return { ...e.run, metrics: sorted(e.metrics).map(([, m]) => m), rollouts: sorted(e.rollouts).map(([step, trajectories]) => ({ step, trajectories })) };
    },
    async delete(id) {
      entries.delete(id);
    },
    async appendStep(id, metrics, trajectories) {
      const e = must(id);
      e.metrics.set(metrics.step, metrics);
      if (trajectories) e.rollouts.set(metrics.step, trajectories);
    },
    async saveCheckpoint(id, files: CheckpointFiles, step) {
      const e = must(id);
      e.run.checkpoint = files;
      if (e.live && step !== undefined) e.live = { ...e.live, checkpointStep: step };
    },
    async saveReport(id, report) {
      must(id).run.report = report;
    },
    async rolloutSteps(id) {
      return sorted(must(id).rollouts).map(([s]) => s);
    },
    async getRollouts(id, step) {
      return entries.get(id)?.rollouts.get(step);
    },
    async getMetrics(id) {
      return sorted(entries.get(id)?.metrics ?? new Map<number, StepMetrics>()).map(([, m]) => m);
    },
    async getConfig(id) {
      return entries.get(id)?.run.config;
    },
    async getDetail(id) {
      const e = entries.get(id);
      if (!e) return undefined;
      const { rollouts: _r, checkpoint: _c, ...rest } = e.run;
      return { ...rest, metrics: sorted(e.metrics).map(([, m]) => m) };
    },
    async getCheckpoint(id) {
      return entries.get(id)?.run.checkpoint;
    },
  };
}
