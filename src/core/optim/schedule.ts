/** Learning-rate schedules: linear warmup, then cosine, linear or constant. */

export interface LrSchedule {
  /** Peak learning rate, reached at the end of warmup. */
  peak: number;
  /** Steps of linear warmup from 0 to peak. */
  warmupSteps: number;
  /** Total optimisation steps; decay ends here. */
  totalSteps: number;
  kind: 'cosine' | 'linear' | 'constant';
  /** Final learning rate as a fraction of peak (cosine and linear). Default 0. */
  minRatio?: number;
}

/**
 * Learning rate at step s (0-based): peak·(s+1)/warmup during warmup (the first step gets a
 * non-zero rate), then decay from peak to peak·minRatio: cosine (SGDR, Loshchilov & Hutter 2017)
 * lr = min + (peak - min)·(1 + cos(π·p))/2, or linear lr = peak - (peak - min)·p, p the decay progress.
 */
export function learningRate(step: number, s: LrSchedule): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.peak;
  const min = s.peak * (s.minRatio ?? 0);
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / decaySteps);
  if (s.kind === 'linear') return s.peak - (s.peak - min) * p;
  return min + ((s.peak - min) * (1 + Math.cos(Math.PI * p))) / 2;
}
