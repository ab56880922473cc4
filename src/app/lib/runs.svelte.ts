/** The app's one connection to the run store, and the list of stored runs every panel sees. */
import { openRunStore, type RunStore, type RunSummary } from './runstore';

let storePromise: Promise<RunStore> | undefined;

export function runStore(): Promise<RunStore> {
  storePromise ??= openRunStore();
  return storePromise;
}

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
    this.items = await (await runStore()).list();
    this.loaded = true;
    if (this.selected && !this.items.some((r) => r.id === this.selected)) this.selected = null;
  }
}

export const storedRuns = new StoredRuns();
