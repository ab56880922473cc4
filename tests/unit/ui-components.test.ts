/** Small components rendered on the server side (svelte/server) in Node. */
import { describe, expect, it } from 'vitest';
import { render } from 'svelte/server';
import ProgressBar from '../../src/app/components/ProgressBar.svelte';
import ErrorBanner from '../../src/app/components/ErrorBanner.svelte';
import { messages } from '../../src/app/lib/messages.svelte';
import { LabError } from '../../src/core/errors';

const text = (html: string) => html.replace(/<!--.*?-->/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('ProgressBar', () => {
  it('shows counts, rate and ETA from the elapsed time', () => {
    const { body } = render(ProgressBar, { props: { label: 'RL steps', done: 3, total: 10, startedAt: Date.now() - 6000 } });
    const t = text(body);
    expect(t).toContain('3 / 10 steps');
    expect(t).toContain('30%');
    expect(t).toContain('2.0 s/step');
    expect(t).toContain('ETA 14 s');
    expect(body).toContain('role="progressbar"');
    expect(body).toContain('aria-valuenow="3"');
  });

  it('says when it has not started, is paused or is done', () => {
    expect(text(render(ProgressBar, { props: { label: 'x', done: 0, total: 5, startedAt: null } }).body)).toContain('not started');
    expect(text(render(ProgressBar, { props: { label: 'x', done: 2, total: 5, startedAt: Date.now() - 1000, paused: true } }).body)).toContain('paused');
    expect(text(render(ProgressBar, { props: { label: 'x', done: 5, total: 5, startedAt: Date.now() - 1000 } }).body)).toContain('done');
  });
});

describe('error messages', () => {
  it('collects errors with their place, counting repeats', () => {
    messages.clear();
    const e = new LabError('BAD', 'no such file', { file: 'a.jsonl', line: 3 });
    messages.report(e, 'upload');
    messages.report(e, 'upload');
    messages.report(new Error('worker crashed'), 'policy worker');
    expect(messages.list.map((m) => [m.context, m.text, m.count])).toEqual([
      ['upload', 'a.jsonl, line 3: no such file', 2],
      ['policy worker', 'worker crashed', 1],
    ]);
    messages.dismiss(messages.list[0].id);
    expect(messages.list.map((m) => m.context)).toEqual(['policy worker']);
  });

  it('shows each message with a dismiss button, escaped', () => {
    const list = [
      { id: 1, context: 'policy worker', text: 'out of memory <b>now</b>', count: 3 },
      { id: 2, context: 'import', text: 'bad file', count: 1 },
    ];
    const { body } = render(ErrorBanner, { props: { messages: list, ondismiss: () => {} } });
    expect(body).toContain('role="alert"');
    expect(text(body)).toContain('policy worker out of memory &lt;b>now&lt;/b> ×3');
    expect(body.match(/aria-label="Dismiss message"/g)).toHaveLength(2);
    expect(render(ErrorBanner, { props: { messages: [], ondismiss: () => {} } }).body).not.toContain('alert');
  });
});
