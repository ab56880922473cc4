/** The list of stored runs every panel sees, read from the lab service's run store. */
import type { RunSummary } from '../../core/lab/index';
import { lab } from './lab.svelte';

class StoredRuns {
  /** Newest first. */
  items = $state.raw<RunSummary[]>([]);
  loaded = $state(false);
  /** The run the Runs and Rollouts panels look at. */
  selected = $state<string | null>(null);
  /** Bumped when a live run stores a step: views of its steps load again. */
  version = $state(0);
  private pending: ReturnType<typeof setTimeout> | undefined;

  /** A stored run changed: refresh the list soon (at most a few times a second) and tell the views. */
  changed(): void {
    this.version++;
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      void this.refresh();
    }, 300);
  }

  async refresh(): Promise<void> {
    this.items = await lab.service().listRuns();
    this.loaded = true;
    if (this.selected && !this.items.some((r) => r.id === this.selected)) this.selected = null;
  }
}

export const storedRuns = new StoredRuns();
