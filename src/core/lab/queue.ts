/**
 * One job at a time on a shared lab service, in the order asked (docs/node.md#jobs-and-the-queue): a
 * node serves several pages, each may ask for training, an evaluation or an answer; the model can do
 * one of them at a time, so later ones wait their turn instead of being refused.
 */
import { LabError } from '../errors';

interface Waiting {
  owner: string;
  what: string;
  start(): void;
  cancel(reason: LabError): void;
}

export interface RunningJob {
  owner: string;
  what: string;
  since: number;
  /** Its client went away while it ran. */
  orphaned?: boolean;
}

export class JobQueue {
  private readonly waiting: Waiting[] = [];
  private current: RunningJob | undefined;
  /** Jobs finished (done or failed) since the queue was made. */
  finished = 0;

  get running(): RunningJob | undefined {
    return this.current;
  }

  get length(): number {
    return this.waiting.length;
  }

  /**
   * Runs `job` when every job asked before it has ended. `notify` hears, once, how many jobs are
   * ahead when it has to wait.
   */
  async run<T>(owner: string, what: string, job: () => Promise<T>, notify?: (text: string) => void): Promise<T> {
    if (this.current || this.waiting.length > 0) {
      const ahead = this.waiting.length + (this.current ? 1 : 0);
      notify?.(`waiting for ${ahead} job${ahead === 1 ? '' : 's'} ahead (the node is ${this.current?.what ?? 'starting the next job'})`);
      await new Promise<void>((start, cancel) => this.waiting.push({ owner, what, start, cancel }));
    }
    this.current = { owner, what, since: Date.now() };
    try {
      return await job();
    } finally {
      this.current = undefined;
      this.finished++;
      this.waiting.shift()?.start();
    }
  }

  /** Drops the waiting jobs of `owner` (it went away, or asked to stop); returns how many. */
  cancel(owner: string, why: string): number {
    let dropped = 0;
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (this.waiting[i].owner !== owner) continue;
      const [w] = this.waiting.splice(i, 1);
      w.cancel(new LabError('cancelled', `${w.what} was cancelled before it started: ${why}`));
      dropped++;
    }
    return dropped;
  }
}
