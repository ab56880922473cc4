/**
 * A trajectory while it is written (the Inference panel's stream) and SFT demonstration files:
 * the live row folded from streaming callbacks must end as the record the rollout loop builds.
 */
import { describe, expect, it } from 'vitest';
import { render } from 'svelte/server';
import TrajectoryView from '../../src/app/components/TrajectoryView.svelte';
import { addExecution, addToken, emptyLiveRow, liveRecord } from '../../src/core/tir/live';
import { readDemonstrationsJsonl } from '../../src/core/tir/demonstrations';
import { blockBody } from '../../src/core/tir/format';
import { handMadeTrajectory, tokenizer } from './ui-fixtures';

const decode = (ids: number[]) => tokenizer.decode(ids);

describe('live trajectory', () => {
  const done = handMadeTrajectory();
  const header = { id: done.id, question: done.question, reference: done.reference, promptTokens: done.promptTokens };
  const codeEnd = done.executions[0].codeTokenEnd;

  /** Replays the hand-made trajectory as the rollout loop streams it: a failed attempt first, then the real one. */
  function replay(upTo = done.tokens.length) {
    const row = emptyLiveRow();
    const attempt = done.discarded[0];
    const add = (i: number) => addToken(row, done.tokens[i], done.sampledMask[i] === 1);
    for (let i = 0; i < attempt.rewindTo; i++) add(i);
    for (const t of attempt.tokens) addToken(row, t, true);
    addExecution(row, attempt.execution, attempt);
    expect(row.tokens).toEqual(done.tokens.slice(0, attempt.rewindTo)); // rewound to the start of the failed code
    for (let i = attempt.rewindTo; i < upTo; i++) {
      add(i);
      if (i + 1 === codeEnd) addExecution(row, done.executions[0]);
    }
    return liveRecord(header, row, decode);
  }

  it('ends as the finished record: segments, masks, executions, discarded attempts', () => {
    const live = replay();
    expect(live.segments).toEqual(done.segments);
    expect(live.sampledMask).toEqual(done.sampledMask);
    expect(live.executions).toEqual(done.executions);
    expect(live.discarded).toEqual(done.discarded);
  });

  it('shows a code block still being written as code, and running', () => {
    const partial = replay(done.executions[0].codeTokenStart + 12);
    expect(partial.segments.map((s) => s.kind)).toEqual(['text', 'code']);
    expect(blockBody(partial.segments[1].text)).toBe('print(123*456)\n```'.slice(0, 12 - '```python\n'.length));
    const html = render(TrajectoryView, { props: { record: partial, live: true } }).body;
    expect(html).toContain('running…');
    expect(html).not.toContain('data-testid="final-answer"');
    expect(html).not.toContain('data-testid="correctness"');
    expect(html).toContain('data-testid="discarded"');
  });

  it('shows an ungraded answer without correctness', () => {
    const html = render(TrajectoryView, { props: { record: handMadeTrajectory(), graded: false } }).body;
    expect(html).toContain('data-testid="final-answer"');
    expect(html).not.toContain('data-testid="correctness"');
    expect(html).not.toContain('Reference');
  });
});

describe('SFT demonstration files', () => {
  it('reads good lines and lists bad ones by line number', () => {
    const lines = [
      JSON.stringify({ question: 'What is 2+2?', response: 'Use Python.\n```python\nprint(2+2)\n```\n```output\n4\n```\nSo \\boxed{4}.' }),
      '{not json',
      JSON.stringify({ question: '', response: 'x' }),
      JSON.stringify({ prompt: 'What is 3*3?', completion: 'Directly: \\boxed{9}.' }),
      JSON.stringify({ question: 'q', response: '```output\n4\n' }),
      '',
      JSON.stringify({ question: 'q' }),
    ];
    const { demonstrations, skipped } = readDemonstrationsJsonl(lines.join('\n'), 'demos.jsonl');
    expect(demonstrations.map((d) => d.question)).toEqual(['What is 2+2?', 'What is 3*3?']);
    expect(skipped.map((s) => [s.line, s.message.split(' ')[0]])).toEqual([
      [2, 'line'],
      [3, 'question'],
      [5, 'an'],
      [7, 'response'],
    ]);
    expect(skipped.every((s) => s.file === 'demos.jsonl')).toBe(true);
  });
});
