/** The share of answers whose code computes the question asked, on hand-made records. */
import { describe, expect, it } from 'vitest';
import { copyAccuracy } from '../../src/core/eval/copy';
import type { ExecutionRecord, TrajectoryRecord } from '../../src/core/tir/types';

const exec = (stdout: string, succeeded = true): ExecutionRecord => ({ round: 0, code: 'print(1)', status: succeeded ? 'ok' : 'error', stdout, stderr: '', durationMs: 1, truncated: false, observation: stdout, succeeded, codeTokenStart: 0, codeTokenEnd: 0 });
const record = (problemId: string, reference: string, outputs: string[]): TrajectoryRecord => ({
  id: problemId, groupId: problemId, level: 'trajectory', problemId, question: '?', reference, promptTokens: [], tokens: [], sampledMask: [], lossMask: [], logprobs: [],
  segments: [], executions: outputs.map((o) => exec(o)), finalAnswer: null, correct: false, reward: 0, truncated: false, finishReason: 'stop', discarded: [],
});

describe('copyAccuracy', () => {
  it('counts answers with code, and those whose code printed the reference answer, by kind', async () => {
    const records = [
      record('a', '287663', ['287663']), // print(347*829)
      record('b', '287663', ['32451']), // print(373*87): wrong numbers copied
      record('c', '3/4', ['0.75', '3/4']), // a later call printed it
      record('d', '5', []), // no code: outside the count
      record('e', '12', ['']), // printed nothing
    ];
    const kinds: Record<string, string> = { a: 'multiply', b: 'multiply', c: 'fraction', e: 'gcd' };
    const r = await copyAccuracy(records, (id) => kinds[id]);
    expect(r.withCode).toBe(4);
    expect(r.computesQuestion).toBe(2);
    expect(r.share).toBe(0.5);
    expect(r.byKind).toEqual({ multiply: { withCode: 2, computesQuestion: 1 }, fraction: { withCode: 1, computesQuestion: 1 }, gcd: { withCode: 1, computesQuestion: 0 } });
    expect((await copyAccuracy([record('d', '5', [])])).share).toBeNull();
  });

  it("reads each line of a call's output: the critic's code prints one result a line", async () => {
    const r = await copyAccuracy([
      record('a', '634071', ['634071\n634071']), // print(877*723) and print(877*700 + 877*23)
      record('b', '7/5', ['98\n7/5\n']),
      record('c', '12', ['112\n1 2']), // no line is the answer
    ]);
    expect(r.computesQuestion).toBe(2);
  });
});
