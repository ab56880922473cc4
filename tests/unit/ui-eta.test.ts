import { describe, expect, it } from 'vitest';
import { estimateProgress, formatDuration, formatRate } from '../../src/app/lib/eta';
import { formatBytes, formatCount } from '../../src/app/lib/format';

describe('progress estimate', () => {
  it('extrapolates the average time per item to the items left', () => {
    // 3 of 10 steps in 6 s: 2 s per step, 7 steps left -> 14 s, 0.5 steps/s.
    expect(estimateProgress(3, 10, 6000)).toEqual({ fraction: 0.3, ratePerSecond: 0.5, etaMs: 14000 });
  });

  it('knows nothing before the first item or before time passes', () => {
    expect(estimateProgress(0, 10, 5000)).toEqual({ fraction: 0, ratePerSecond: null, etaMs: null });
    expect(estimateProgress(2, 10, 0)).toEqual({ fraction: 0.2, ratePerSecond: null, etaMs: null });
  });

  it('is done at the end, and clamps counts past it', () => {
    expect(estimateProgress(10, 10, 4000)).toEqual({ fraction: 1, ratePerSecond: 2.5, etaMs: 0 });
    expect(estimateProgress(12, 10, 4000).fraction).toBe(1);
    expect(estimateProgress(0, 0, 1000)).toEqual({ fraction: 0, ratePerSecond: null, etaMs: null });
  });
});

describe('formatting', () => {
  it('writes durations at a useful precision', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_400)).toBe('12 s');
    expect(formatDuration(185_000)).toBe('3 min 05 s');
    expect(formatDuration(2 * 3600_000 + 4 * 60_000 + 20_000)).toBe('2 h 04 min');
    expect(formatDuration(Number.NaN)).toBe('—');
  });

  it('inverts slow rates', () => {
    expect(formatRate(4.25, 'step')).toBe('4.3 steps/s');
    expect(formatRate(25, 'step')).toBe('25 steps/s');
    expect(formatRate(1 / 38, 'step')).toBe('38 s/step');
    expect(formatRate(0.4, 'question')).toBe('2.5 s/question');
    expect(formatRate(null, 'step')).toBe('—');
  });
});

describe('sizes', () => {
  it('uses binary multiples with three significant digits', () => {
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(3.5 * 1024)).toBe('3.50 kB');
    expect(formatBytes(12.5 * 2 ** 20)).toBe('12.5 MB');
    expect(formatBytes(10 * 2 ** 30)).toBe('10.0 GB');
    expect(formatCount(800_896)).toBe('800.9 k');
    expect(formatCount(1_240_000)).toBe('1.24 M');
    expect(formatCount(512)).toBe('512');
  });
});
