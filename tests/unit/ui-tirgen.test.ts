/**
 * What the TIRGen panel draws (docs/tirgen.md#the-tirgen-panel): a step after the critic as prose,
 * code and each block's real output; the report's counts as bars; the bar chart's SVG with its
 * description for screen readers.
 */
import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import BarChart from '../../src/app/components/BarChart.svelte';
import { afterCells, callBars, droppedBars, failureBars, textCells } from '../../src/app/lib/tirgen';
import { ruleRewrite } from '../../src/core/tirgen/rule-critic';
import { emptyCounts } from '../../src/core/tirgen/report';
import type { StepEvent } from '../../src/core/tirgen/pipeline';

const base = { questionId: 'q', attempt: 0, step: 0, actor: 'So 347 times 829 = 287663.', final: false };

describe('a step before and after the critic', () => {
  it('shows a rewrite as its prose, its code and each real output with the run status', () => {
    const critic = ruleRewrite(base.actor)!;
    const code = textCells(critic).find((c) => c.kind === 'code')!.text;
    const step: StepEvent = { ...base, verdict: 'rewrite', critic, executions: [{ code, status: 'ok', observation: '287663', succeeded: true }], appended: `So\n\`\`\`python\n${code}\n\`\`\`\n\`\`\`output\n287663\n\`\`\`\n` };
    const cells = afterCells(step);
    expect(cells.map((c) => c.kind)).toEqual(['text', 'code', 'output']);
    expect(cells[1].text).toContain('print(');
    expect(cells[2]).toEqual({ kind: 'output', text: '287663', status: 'ok', succeeded: true });
  });

  it("shows failed code with what it printed, not the critic's expected output", () => {
    const critic = 'We compute:\n```python\nprint(1/0)\n```\n```output\n5\n```\n';
    const step: StepEvent = { ...base, verdict: 'code-failed', critic, reason: 'error: ZeroDivisionError', executions: [{ code: 'print(1/0)', status: 'error', observation: 'ZeroDivisionError: division by zero', succeeded: false }], appended: '' };
    const cells = afterCells(step);
    expect(cells.map((c) => c.kind)).toEqual(['text', 'code', 'output']);
    expect(cells[2]).toMatchObject({ text: 'ZeroDivisionError: division by zero', status: 'error', succeeded: false });
    expect(afterCells({ ...base, verdict: 'unchanged', executions: [], appended: base.actor })).toEqual([]);
  });
});

describe("the report's counts as bars", () => {
  it('has a bar for every filter and selection drop, every failure reason, and calls from 1 to the most seen', () => {
    const c = emptyCounts();
    c.droppedBy.answer = 5;
    c.droppedBy.onePerQuestion = 2;
    c.failures['code-failed'] = 1;
    c.criticInvalid['no-code'] = 3;
    c.calls = { '1': 4, '3': 1 };
    const dropped = droppedBars(c);
    expect(dropped.length).toBe(9);
    expect(dropped.find((b) => b.label === 'answer')).toEqual({ label: 'answer', value: 5, group: 'filter' });
    expect(dropped.find((b) => b.label === 'onePerQuestion')?.group).toBe('selection');
    expect(failureBars(c).find((b) => b.label === 'critic: no-code')?.value).toBe(3);
    expect(failureBars(c).some((b) => b.label === 'critic-invalid')).toBe(false);
    expect(callBars(c)).toEqual([
      { label: '1 call', value: 4 },
      { label: '2 calls', value: 0 },
      { label: '3 calls', value: 1 },
    ]);
    expect(callBars(emptyCounts())).toEqual([]);
  });

  it('draws an SVG image titled and described bar by bar', () => {
    const { body } = render(BarChart, { props: { title: 'Dropped', bars: [{ label: 'answer', value: 5 }, { label: 'code', value: 0 }], unit: 'samples' } });
    expect(body).toMatch(/<svg[^>]*role="img"/);
    expect(body).toContain('answer: 5 samples; code: 0 samples');
    expect((body.match(/data-testid="bar"/g) ?? []).length).toBe(2);
    expect(body).toMatch(/<rect[^>]*width="0"/);
  });
});
