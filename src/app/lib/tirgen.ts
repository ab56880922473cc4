/**
 * What the TIRGen panel draws, as pure functions (docs/tirgen.md#the-tirgen-panel): a step before and
 * after the critic as cells (prose, code, real output), and the report's counts as bars.
 */
import { CRITIC_INVALID_REASONS, FAILURE_REASONS, SAMPLE_FILTERS, SELECTION_DROPS, splitFences, type StepEvent, type TirgenCounts } from '../../core/lab/index';

export interface StepCell {
  kind: 'text' | 'code' | 'output';
  text: string;
  /** An output's run status ("ok", "error", "timeout", …) and whether it counts as a success (ran, printed something). */
  status?: string;
  succeeded?: boolean;
}

/** Prose and fenced blocks of a text, as cells; a block never closed stays code or output all the same. */
export function textCells(text: string): StepCell[] {
  return splitFences(text)
    .filter((p) => p.kind !== 'text' || p.body.trim() !== '')
    .map((p) => ({ kind: p.kind, text: p.kind === 'text' ? p.body.trim() : p.body }));
}

/**
 * The after side of a step. A rewrite: the text that joined the answer, each output block with its
 * run's status. Code that failed: the critic's blocks, each followed by what its run printed (the
 * critic's expected outputs left out). Otherwise nothing: the step was kept as written or ended the attempt.
 */
export function afterCells(e: StepEvent): StepCell[] {
  if (e.verdict === 'rewrite') {
    let run = 0;
    return textCells(e.appended).map((c) => {
      if (c.kind !== 'output') return c;
      const x = e.executions[run++];
      return { ...c, ...(x && { status: x.status, succeeded: x.succeeded }) };
    });
  }
  if (e.verdict === 'code-failed' && e.critic !== undefined) {
    const cells: StepCell[] = [];
    let run = 0;
    for (const c of textCells(e.critic)) {
      if (c.kind === 'output') continue;
      cells.push(c);
      const x = c.kind === 'code' ? e.executions[run++] : undefined;
      if (x) cells.push({ kind: 'output', text: x.observation, status: x.status, succeeded: x.succeeded });
    }
    return cells;
  }
  return [];
}

/** How a verdict reads in the panel. */
export const VERDICT_TEXT: Record<StepEvent['verdict'], string> = {
  rewrite: 'rewritten with code and its real output',
  unchanged: 'unchanged: no computation',
  short: 'kept as written: shorter than criticMinTokens',
  'after-thinking': 'kept as written: after the thinking ended',
  invalid: 'critic reply unusable',
  'code-failed': 'code failed: attempt abandoned',
  'no-step-end': 'no line end to cut the step at: attempt abandoned',
};

export interface Bar {
  label: string;
  value: number;
  /** A group the bar belongs to, for colour and for the chart's description. */
  group?: string;
}

/** Samples each filter dropped (first failing filter), then the selection's drops. */
export function droppedBars(c: TirgenCounts): Bar[] {
  return [...SAMPLE_FILTERS.map((f) => ({ label: f, value: c.droppedBy[f] ?? 0, group: 'filter' })), ...SELECTION_DROPS.map((f) => ({ label: f, value: c.droppedBy[f] ?? 0, group: 'selection' }))];
}

/** Attempts that ended early, by reason; an unusable critic reply by its own reason. */
export function failureBars(c: TirgenCounts): Bar[] {
  return FAILURE_REASONS.flatMap((r) =>
    r === 'critic-invalid' ? CRITIC_INVALID_REASONS.map((k) => ({ label: `critic: ${k}`, value: c.criticInvalid[k] ?? 0, group: 'critic' })) : [{ label: r, value: c.failures[r] ?? 0, group: 'attempt' }],
  );
}

/** Kept samples by their number of code calls, in order (1, or fewer if seen, up to the most seen). */
export function callBars(c: TirgenCounts): Bar[] {
  const keys = Object.keys(c.calls).map(Number).filter(Number.isInteger);
  if (keys.length === 0) return [];
  const least = Math.min(1, ...keys);
  const most = Math.max(...keys);
  return Array.from({ length: most - least + 1 }, (_, i) => least + i).map((k) => ({ label: `${k} call${k === 1 ? '' : 's'}`, value: c.calls[String(k)] ?? 0 }));
}
