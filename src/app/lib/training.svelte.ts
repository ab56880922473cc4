/**
 * The training run this page started (or resumed), as the panels see it: state, progress of the
 * current step, held-out figures and the live charts. The run itself lives in the lab service,
 * which stores it step by step; this side only draws what its events report.
 */
import { CONTROL, type HeldOutFigures, type LabEvent, type StepMetrics, type TrainRequest, type TrainState } from '../../core/lab/index';
import { ChartData } from './chartdata.svelte';
import { lab } from './lab.svelte';
import { storedRuns } from './runs.svelte';
import { heldOutValues, TRAIN_CHARTS, type ChartSpec } from './traincharts';

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
  /** Why the run failed. */
  message = $state<string | null>(null);
  /** The service's last word on the run that is no failure (e.g. optimiser moments restored). */
  note = $state<string | null>(null);
  /** Figures of the last step, for the summary line. */
  last = $state.raw<StepMetrics | null>(null);
  /** The latest held-out evaluation of the run (step 0: before training). */
  heldOut = $state.raw<{ step: number; figures: HeldOutFigures } | null>(null);
  /** One chart per spec, fed as steps and evaluations arrive. */
  readonly charts: { spec: ChartSpec; data: ChartData }[] = TRAIN_CHARTS.map((spec) => ({ spec, data: new ChartData(spec.series.length) }));

  get failed(): boolean {
    return this.state === 'failed';
  }

  get active(): boolean {
    return this.state === 'preparing' || this.state === 'running' || this.state === 'paused';
  }

  private plot(step: number, values: Record<string, unknown>): void {
    for (const { spec, data } of this.charts) {
      const row = spec.series.map((s) => values[s.key] as number | null | undefined);
      if (row.some((v) => typeof v === 'number')) data.put(step, row);
    }
  }

  private onEvent = (e: LabEvent): void => {
    switch (e.type) {
      case 'run':
        this.runId = e.id;
        this.runName = e.name;
        this.fromStep = e.fromStep;
        this.done = e.fromStep;
        this.total = e.totalSteps;
        this.mode = e.mode;
        this.startedAt = Date.now();
        storedRuns.selected = e.id;
        void storedRuns.refresh();
        // A resumed run trains the checkpoint the service loaded for it.
        void lab.refreshModel();
        break;
      case 'progress':
        this.phase = { name: e.phase, done: e.done, total: e.total };
        break;
      case 'step':
        this.done = e.step;
        this.last = e.metrics;
        this.plot(e.step, e.metrics);
        performance.mark('thor:train-step');
        storedRuns.changed();
        break;
      case 'heldout':
        this.heldOut = { step: e.step, figures: e.figures };
        this.plot(e.step, heldOutValues(e.row));
        break;
      case 'message':
        this.note = this.note ? `${this.note}; ${e.text}` : e.text;
        break;
      case 'state':
        this.state = e.state;
        this.message = e.message ?? null;
        if (e.state !== 'running') this.phase = null;
        break;
    }
  };

  /** Starts (or resumes) a run in the service; resolves when it ends. */
  async start(request: TrainRequest): Promise<void> {
    for (const { data } of this.charts) data.clear();
    this.state = 'preparing';
    this.message = null;
    this.note = null;
    this.last = null;
    this.heldOut = null;
    this.done = 0;
    this.total = 0;
    this.startedAt = null;
    this.phase = null;
    try {
      if (request.resume) await this.replayStored(request.resume.runId);
      await lab.job('training', (api) => api.train(request, this.onEvent));
    } catch (e) {
      // The service reports its own failures; this catches calls that never reached it.
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

  /** A resumed run's charts start with the steps and evaluations it already has (up to its checkpoint). */
  private async replayStored(runId: string): Promise<void> {
    const detail = await lab.service().runDetail(runId);
    const upTo = detail?.state?.checkpointStep ?? 0;
    const rows = [...(detail?.metrics ?? []), ...(detail?.evals ?? []).map((e) => ({ ...heldOutValues(e), step: e.step }))].filter((r) => r.step <= upTo).sort((a, b) => a.step - b.step);
    for (const r of rows) this.plot(r.step, r);
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
