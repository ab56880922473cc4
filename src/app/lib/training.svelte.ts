/**
 * The training run this page started (or resumed), as the panels see it: state, progress of the
 * current step, and the live charts. The run itself lives in the policy worker, which stores it
 * step by step; this side only draws what the worker's callbacks report.
 */
import * as Comlink from 'comlink';
import type { StepMetrics } from '../../core/run/runfile';
import type { HeldOutFigures, TrainEvents, TrainRequest, TrainState } from '../services/lab-service';
import { CONTROL } from '../services/control';
import { ChartData } from './chartdata.svelte';
import { lab } from './lab.svelte';
import { runStore, storedRuns } from './runs.svelte';
import { TRAIN_CHARTS, type ChartSpec } from './traincharts';

/** What starts (or resumes) a run: the worker's request as it is. */
export type StartOptions = TrainRequest;

class Training {
  state = $state<TrainState | 'idle'>('idle');
  mode = $state<'rl' | 'sft'>('rl');
  runId = $state<string | null>(null);
  runName = $state<string | null>(null);
  done = $state(0);
  total = $state(0);
  fromStep = $state(0);
  startedAt = $state<number | null>(null);
  phase = $state<{ name: string; done: number; total: number } | null>(null);
  message = $state<string | null>(null);
  /** Figures of the last step, for the summary line. */
  last = $state.raw<StepMetrics | null>(null);
  /** The latest held-out evaluation of an RL run (step 0: before training). */
  heldOut = $state.raw<{ step: number; figures: HeldOutFigures } | null>(null);
  /** One chart per spec, fed as steps arrive. */
  readonly charts: { spec: ChartSpec; data: ChartData }[] = TRAIN_CHARTS.map((spec) => ({ spec, data: new ChartData(spec.series.length) }));

  get failed(): boolean {
    return this.state === 'failed';
  }

  get active(): boolean {
    return this.state === 'preparing' || this.state === 'running' || this.state === 'paused';
  }

  private events(): TrainEvents {
    return {
      started: (run) => {
        this.runId = run.id;
        this.runName = run.name;
        this.fromStep = run.fromStep;
        this.done = run.fromStep;
        this.total = run.totalSteps;
        this.mode = run.mode;
        this.startedAt = Date.now();
        storedRuns.selected = run.id;
        void storedRuns.refresh();
      },
      progress: (name, done, total) => {
        this.phase = { name, done, total };
      },
      step: (step, metrics) => {
        this.done = step;
        this.last = metrics;
        if (typeof metrics.heldout_accuracy === 'number') this.heldOut = { step, figures: metrics as unknown as HeldOutFigures };
        for (const { spec, data } of this.charts) data.push(step, spec.series.map((s) => metrics[s.key] as number | null | undefined));
        performance.mark('thor:train-step');
        storedRuns.changed();
      },
      evaluated: (step, figures) => {
        this.heldOut = { step, figures };
        const values = figures as unknown as Record<string, number | null>;
        for (const { spec, data } of this.charts) data.push(step, spec.series.map((s) => values[s.key]));
      },
      state: (state, message) => {
        this.state = state;
        this.message = message ?? null;
        if (state !== 'running') this.phase = null;
      },
    };
  }

  /** Starts a run in the worker; resolves when it ends. */
  async start(options: StartOptions): Promise<void> {
    for (const { data } of this.charts) data.clear();
    this.state = 'preparing';
    this.message = null;
    this.last = null;
    this.heldOut = null;
    this.done = 0;
    this.total = options.mode === 'sft' ? (options.sft?.steps ?? 0) : options.config.steps;
    this.startedAt = null;
    this.phase = null;
    if (options.resume) await this.replayStoredMetrics(options.resume.runId, options.resume.fromStep);
    try {
      await lab.job('training', (policy) =>
        policy.train(
          {
            mode: options.mode,
            config: options.config,
            train: options.train,
            ...(options.test && { test: options.test }),
            name: options.name,
            checkpointEvery: options.checkpointEvery,
            ...(options.sft && { sft: options.sft }),
            ...(options.resume && { resume: options.resume }),
          },
          Comlink.proxy(this.events()),
        ),
      );
    } catch (e) {
      // The worker reports its own failures; this catches calls that never reached it.
      if (!this.failed) {
        this.state = 'failed';
        this.message = e instanceof Error ? e.message : String(e);
      }
    } finally {
      this.phase = null;
      await storedRuns.refresh().catch(() => undefined);
      storedRuns.changed();
    }
  }

  /** A resumed run's charts start with the steps it already has. */
  private async replayStoredMetrics(runId: string, upTo: number): Promise<void> {
    const metrics = await (await runStore()).getMetrics(runId);
    for (const m of metrics.filter((x) => x.step <= upTo)) {
      for (const { spec, data } of this.charts) data.push(m.step, spec.series.map((s) => m[s.key] as number | null | undefined));
    }
  }

  pause(): void {
    lab.setControl(CONTROL.pause);
  }

  resume(): void {
    lab.setControl(CONTROL.run);
  }

  stop(): void {
    lab.setControl(CONTROL.stop);
  }
}

export const training = new Training();
