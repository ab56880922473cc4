/**
 * The trajectory viewer rendered on the server side (svelte/server) in Node: cells, outputs,
 * self-correction, token masks, and model text that must stay text.
 */
import { describe, expect, it } from 'vitest';
import { render } from 'svelte/server';
import TrajectoryView from '../../src/app/components/TrajectoryView.svelte';
import MathText from '../../src/app/components/MathText.svelte';
import { splitMath } from '../../src/app/lib/mathtext';
import { blockBody } from '../../src/core/tir/format';
import { tokenCounts, tokenSpans, trajectoryCells } from '../../src/app/lib/trajectory';
import { handMadeStepSample, handMadeTrajectory, tokenizer } from './ui-fixtures';

const decodeToken = (id: number) => tokenizer.decode([id]);

/** Text content of the elements carrying a data-testid (enough of a parser for these checks). */
function byTestId(html: string, id: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<(\\w+)[^>]*data-testid="${id}"[^>]*>`, 'g');
  for (let m = re.exec(html); m; m = re.exec(html)) {
    let depth = 1;
    let at = re.lastIndex;
    const tag = new RegExp(`<(/?)${m[1]}\\b[^>]*>`, 'g');
    tag.lastIndex = at;
    for (let t = tag.exec(html); t; t = tag.exec(html)) {
      depth += t[1] ? -1 : 1;
      if (depth === 0) {
        out.push(html.slice(at, t.index));
        break;
      }
    }
    at = re.lastIndex;
  }
  return out;
}

const textOf = (html: string) => html.replace(/<[^>]+>/g, '').replace(/<!--.*?-->/g, '');

describe('TrajectoryView', () => {
  const record = handMadeTrajectory();

  it('shows reasoning, the code cell with its status and the output cell', () => {
    const { body } = render(TrajectoryView, { props: { record, decodeToken } });
    const code = byTestId(body, 'code-cell');
    expect(code).toHaveLength(1);
    expect(textOf(code[0])).toContain('print(123*456)');
    expect(textOf(code[0])).not.toContain('```');
    expect(textOf(code[0])).toMatch(/round 1 · ok · 12 ms/);
    const outputs = byTestId(body, 'output-cell');
    expect(outputs).toHaveLength(1);
    expect(textOf(outputs[0])).toContain('56088');
    expect(body).toMatch(/data-testid="output-cell" data-status="ok"/);
    expect(textOf(byTestId(body, 'reward')[0])).toBe('reward 1');
    expect(textOf(byTestId(body, 'correctness')[0])).toBe('correct');
    // math in the reasoning and the answer goes through KaTeX
    expect(body).toContain('class="katex"');
    expect(byTestId(body, 'final-answer')[0]).toContain('katex');
  });

  it('escapes model text: a <script> in the response stays text', () => {
    const { body } = render(TrajectoryView, { props: { record, decodeToken } });
    expect(body).not.toContain('<script>');
    expect(body).toContain('&lt;script>alert(1)&lt;/script>');
    const evil = { ...record, question: '<img src=x onerror=alert(1)> $<b>x</b>$', finalAnswer: '<script>alert(2)</script>' };
    const html = render(TrajectoryView, { props: { record: evil } }).body;
    expect(html).not.toMatch(/<img|<script|<b>/);
  });

  it('strikes through the discarded self-correction attempt, before the code that replaced it', () => {
    const { body } = render(TrajectoryView, { props: { record } });
    const discarded = byTestId(body, 'discarded');
    expect(discarded).toHaveLength(1);
    expect(discarded[0]).toMatch(/<del[\s>]/);
    expect(textOf(discarded[0])).toContain('print(x)');
    expect(textOf(discarded[0])).toContain("NameError: name 'x' is not defined");
    expect(body.indexOf('data-testid="discarded"')).toBeLessThan(body.indexOf('data-testid="code-cell"'));
    expect(trajectoryCells(record).map((c) => c.kind)).toEqual(['text', 'discarded', 'code', 'output', 'text']);
  });

  it('shows every response token coloured by mask, with a legend', () => {
    const { body } = render(TrajectoryView, { props: { record, decodeToken, showTokens: true } });
    const tokens = byTestId(body, 'tokens')[0];
    const forced = tokens.match(/class="tok forced[^"]*"/g) ?? [];
    const trained = tokens.match(/class="tok trained[^"]*"/g) ?? [];
    const counts = tokenCounts(record);
    expect(forced.length).toBe(counts.forced);
    expect(trained.length).toBe(counts.trained);
    expect(forced.length).toBe('```output\n56088\n```\n'.length);
    expect(forced.length + trained.length).toBe(record.tokens.length);
    expect(body).toContain('forced, masked out of the loss (' + counts.forced + ')');
    // the decoded text is all there, newlines marked
    expect(textOf(tokens).replace(/↵/g, '')).toContain('```output\n56088\n```');
    expect(tokens).not.toContain('<script>');
  });

  it('marks sampled tokens taken out of the loss separately', () => {
    const masked = { ...record, lossMask: record.lossMask.map((v, i) => (i < 5 ? 0 : v)) };
    const spans = tokenSpans(masked, decodeToken).spans;
    expect(spans.slice(0, 5).every((s) => s.cls === 'masked')).toBe(true);
    const { body } = render(TrajectoryView, { props: { record: masked, decodeToken, showTokens: true } });
    expect((byTestId(body, 'tokens')[0].match(/class="tok masked/g) ?? []).length).toBe(5);
  });

  it('reports masks that do not match the tokens instead of guessing', () => {
    const broken = { ...record, sampledMask: record.sampledMask.slice(1) };
    expect(tokenSpans(broken, decodeToken).problem).toMatch(/masks do not match/);
    const { body } = render(TrajectoryView, { props: { record: broken, showTokens: true } });
    expect(body).toContain('masks do not match the tokens');
  });

  it('notes where a step-level sample came from', () => {
    const { body } = render(TrajectoryView, { props: { record: handMadeStepSample() } });
    const note = textOf(byTestId(body, 'step-origin')[0]);
    expect(note).toContain('traj-1');
    expect(note).toMatch(/failed code action 1/);
    expect(note).toMatch(/cut at response token 10/);
  });

  it('colours failed and timed-out outputs', () => {
    const failed = {
      ...record,
      executions: [{ ...record.executions[0], status: 'timeout' as const, succeeded: false }],
    };
    const { body } = render(TrajectoryView, { props: { record: failed } });
    expect(body).toMatch(/class="cell output timeout[^"]*" data-testid="output-cell" data-status="timeout"/);
  });
});

describe('MathText', () => {
  it('splits formulas from prose with every delimiter', () => {
    expect(splitMath('a $x^2$ b $$y$$ c \\(z\\) d \\[w\\] e \\boxed{\\frac{1}{2}} f')).toEqual([
      { kind: 'text', text: 'a ' },
      { kind: 'math', tex: 'x^2', display: false },
      { kind: 'text', text: ' b ' },
      { kind: 'math', tex: 'y', display: true },
      { kind: 'text', text: ' c ' },
      { kind: 'math', tex: 'z', display: false },
      { kind: 'text', text: ' d ' },
      { kind: 'math', tex: 'w', display: true },
      { kind: 'text', text: ' e ' },
      { kind: 'math', tex: '\\boxed{\\frac{1}{2}}', display: false },
      { kind: 'text', text: ' f' },
    ]);
  });

  it('leaves prices, escaped dollars and unclosed delimiters as text', () => {
    expect(splitMath('costs $5 and $10 today')).toEqual([{ kind: 'text', text: 'costs $5 and $10 today' }]);
    expect(splitMath('a \\$ sign')).toEqual([{ kind: 'text', text: 'a $ sign' }]);
    expect(splitMath('open $$x and \\boxed{y')).toEqual([{ kind: 'text', text: 'open $$x and \\boxed{y' }]);
  });

  it('renders bad TeX without throwing and never passes HTML through', () => {
    const { body } = render(MathText, { props: { text: 'bad $\\frac{1}{$ and <b>bold</b> and $\\href{javascript:alert(1)}{x}$' } });
    expect(body).toContain('&lt;b>bold&lt;/b>');
    expect(body).not.toContain('<b>');
    expect(body).not.toContain('href="javascript');
    expect(body).toContain('katex');
  });

  it('strips fences from code and output segments only', () => {
    expect(blockBody('```python\nprint(1)\n```')).toBe('print(1)');
    expect(blockBody('```output\n1\n```\n')).toBe('1');
    expect(blockBody('plain')).toBe('plain');
  });
});
