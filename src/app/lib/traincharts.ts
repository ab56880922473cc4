/**
 * The live charts of a training run, each naming the per-step metric keys it draws (the trainer's
 * step metrics) and the held-out figures (heldout_*, from the run's evaluations). Stored runs are
 * drawn from the same specs, so a finished run looks the way it did live.
 */
export interface ChartSpec {
  id: string;
  title: string;
  yLabel?: string;
  /** The y range always shown (shares and rewards: 0 to 1, wider when the data is). */
  yRange?: [number, number];
  series: { key: string; label: string }[];
}

export const TRAIN_CHARTS: ChartSpec[] = [
  { id: 'reward', title: 'Reward', yRange: [0, 1], series: [{ key: 'reward_mean', label: 'trajectory reward' }, { key: 'step_reward_mean', label: 'step-level reward' }] },
  { id: 'accuracy', title: 'Accuracy', yRange: [0, 1], series: [{ key: 'accuracy', label: 'training samples' }, { key: 'heldout_accuracy', label: 'held-out' }] },
  { id: 'code', title: 'Code ratio', yRange: [0, 1], series: [{ key: 'code_ratio', label: 'training samples' }, { key: 'heldout_code_ratio', label: 'held-out' }] },
  {
    id: 'pass',
    title: 'Pass ratio (code that ran)',
    yRange: [0, 1],
    series: [
      { key: 'pass_ratio', label: 'all' },
      { key: 'pass_ratio_correct', label: 'correct answers' },
      { key: 'pass_ratio_incorrect', label: 'wrong answers' },
    ],
  },
  { id: 'length', title: 'Response length', yLabel: 'tokens', series: [{ key: 'response_length_mean', label: 'mean' }, { key: 'response_length_max', label: 'max' }] },
  { id: 'loss', title: 'Loss', series: [{ key: 'loss', label: 'loss' }] },
  { id: 'kl', title: 'KL to reference', series: [{ key: 'kl', label: 'KL' }] },
  { id: 'clip', title: 'Clip fraction', yRange: [0, 1], series: [{ key: 'clip_fraction', label: 'clipped tokens' }] },
  {
    id: 'time',
    title: 'Time per phase',
    yLabel: 'seconds',
    series: [
      { key: 'time_rollout_s', label: 'rollouts' },
      { key: 'time_step_level_s', label: 'step level' },
      { key: 'time_update_s', label: 'update' },
    ],
  },
];

/** An evaluation row's figures under the held-out keys the charts draw. */
export function heldOutValues(row: Record<string, unknown>): Record<string, number | null> {
  const n = (v: unknown) => (typeof v === 'number' ? v : null);
  return { step: n(row.step), heldout_accuracy: n(row.accuracy), heldout_code_ratio: n(row.code_ratio), heldout_pass_ratio: n(row.pass_ratio) };
}
