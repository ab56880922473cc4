/**
 * Progress arithmetic for long jobs (training steps, evaluation questions): the rate so far and the
 * time left at that rate. Pure functions, so the progress bar only formats.
 */

export interface ProgressEstimate {
  /** done / total, clamped to [0, 1]; 0 when total is 0. */
  fraction: number;
  /** Items per second so far; null before the first item or before any time passed. */
  ratePerSecond: number | null;
  /** Milliseconds left at the average rate so far; 0 when finished; null when unknown. */
  etaMs: number | null;
}

/** ETA = elapsed / done × (total − done): the average time per item so far, times the items left. */
export function estimateProgress(done: number, total: number, elapsedMs: number): ProgressEstimate {
  const safeTotal = Math.max(0, total);
  const safeDone = Math.min(Math.max(0, done), safeTotal);
  const fraction = safeTotal > 0 ? safeDone / safeTotal : 0;
  if (safeTotal > 0 && safeDone >= safeTotal) return { fraction: 1, ratePerSecond: elapsedMs > 0 ? (safeDone * 1000) / elapsedMs : null, etaMs: 0 };
  if (safeDone === 0 || !(elapsedMs > 0)) return { fraction, ratePerSecond: null, etaMs: null };
  return {
    fraction,
    ratePerSecond: (safeDone * 1000) / elapsedMs,
    etaMs: (elapsedMs / safeDone) * (safeTotal - safeDone),
  };
}

/** "850 ms", "12 s", "3 min 05 s", "2 h 04 min": precise enough to plan around, short enough to read. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** "4.2 steps/s" when fast, "38 s/step" when slow (a rate below one per second reads better inverted). */
export function formatRate(ratePerSecond: number | null, unit: string, unitPlural = `${unit}s`): string {
  if (ratePerSecond === null || !(ratePerSecond > 0)) return '—';
  if (ratePerSecond >= 1) return `${ratePerSecond.toFixed(ratePerSecond >= 10 ? 0 : 1)} ${unitPlural}/s`;
  const seconds = 1 / ratePerSecond;
  return `${seconds.toFixed(seconds >= 10 ? 0 : 1)} s/${unit}`;
}
