/**
 * The TIRGen run this page started, as the TIRGen panel shows it (docs/tirgen.md#the-tirgen-panel):
 * the latest steps before and after the critic, progress, the counts as they grow, and what was
 * produced. The run lives in the lab service; this side only keeps what its events and outcome report.
 * Whatever ends the run (a stop, an endpoint that fails, a worker that dies), the finished questions'
 * lines are kept here, and a stopped run resumes from them.
 */
import { CONTROL, type LabEvent, type QuestionResult, type StepEvent, type TirgenCounts, type TirgenOutcome, type TirgenProgressFigures, type TirgenReport, type TirgenRequest } from '../../core/lab/index';
import { lab } from './lab.svelte';

/** Steps kept for display (the newest); a long run's older steps are counted, not drawn. */
export const SHOWN_STEPS = 120;

export type TirgenState = 'idle' | 'running' | 'stopped' | 'finished' | 'failed';

export interface ShownStep extends StepEvent {
  /** Order of arrival, for keys. */
  n: number;
}

export interface QuestionRow {
  id: string;
  skipped?: QuestionResult['skipped'];
  kept: number;
}

class TirgenJob {
  state = $state<TirgenState>('idle');
  steps = $state.raw<ShownStep[]>([]);
  stepsSeen = $state(0);
  progress = $state.raw<TirgenProgressFigures | null>(null);
  counts = $state.raw<TirgenCounts | null>(null);
  startedAt = $state<number | null>(null);
  /** Per finished question: its id, samples kept and why it was skipped, newest last. */
  questions = $state.raw<QuestionRow[]>([]);
  report = $state.raw<TirgenReport | null>(null);
  /** The lines produced so far (the outcome's when the run ended, else the finished questions'). */
  data = $state('');
  messages = $state('');
  progressLines = $state('');
  /** Why the job failed outright (a refused setting, a service that went away). */
  error = $state<string | null>(null);
  /** The request of the last run, for a resume. */
  request = $state.raw<TirgenRequest | null>(null);

  get active(): boolean {
    return this.state === 'running';
  }

  /** A stopped run (or one whose actor or critic failed) with questions left: Resume goes on from its lines. */
  get resumable(): boolean {
    return !this.active && this.report !== null && this.report.stopped !== undefined && this.progressLines !== '' && this.report.counts.questions < this.report.total;
  }

  /**
   * Events come over their own channel, so some may land after the outcome: the outcome's lines and
   * counts then stand, and a late event only adds what it alone says (a step, a question's row).
   */
  private onEvent = (e: LabEvent): void => {
    const ended = this.report !== null;
    switch (e.type) {
      case 'tirgen-step': {
        const step: ShownStep = { ...e.step, n: this.stepsSeen++ };
        this.steps = [step, ...this.steps.slice(0, SHOWN_STEPS - 1)];
        break;
      }
      case 'tirgen-question':
        if (!ended) {
          this.data += e.data;
          this.messages += e.messages;
        }
        this.questions = [...this.questions, { id: e.result.id, ...(e.result.skipped && { skipped: e.result.skipped }), kept: e.result.samples.length }];
        break;
      case 'tirgen-progress':
        this.startedAt ??= Date.now() - e.progress.elapsedMs;
        if (this.progress && e.progress.done < this.progress.done) break;
        this.progress = e.progress;
        if (!ended) this.counts = e.counts;
        break;
    }
  };

  /** Runs TIRGen in the service; `resume` goes on from the last run's lines (same request). */
  async start(request: TirgenRequest, resume = false): Promise<void> {
    const previous = resume && this.resumable ? { progress: this.progressLines, data: this.data, messages: this.messages } : undefined;
    this.state = 'running';
    this.error = null;
    this.steps = [];
    this.stepsSeen = 0;
    this.progress = null;
    this.startedAt = null;
    this.questions = [];
    this.report = null;
    if (!previous) {
      this.counts = null;
      this.data = '';
      this.messages = '';
      this.progressLines = '';
    }
    this.request = request;
    try {
      const outcome: TirgenOutcome = await lab.job('TIRGen', (api) => api.tirgen(previous ? { ...request, previous } : request, this.onEvent));
      this.report = outcome.report;
      this.counts = outcome.report.counts;
      this.data = outcome.data;
      this.messages = outcome.messages;
      this.progressLines = outcome.progress;
      this.state = outcome.report.stopped ? 'stopped' : 'finished';
    } catch (e) {
      // The finished questions' lines stay: they came with the question events.
      this.error = e instanceof Error ? e.message : String(e);
      this.state = 'failed';
    }
  }

  stop(): void {
    lab.setControl(CONTROL.stop);
  }
}

export const tirgenJob = new TirgenJob();
