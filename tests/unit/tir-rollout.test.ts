/**
 * TIR rollouts with a real model and real Pyodide: observation tokens are forced and masked, the
 * tool-call budget C is enforced, rows do not wait for each other, self-correction rewinds a failed
 * step, step-level continuations stop after their one execution, and prefixes are cut at the right token.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Transformer } from '../../src/core/model/transformer';
import { stepCut, stepPrompt } from '../../src/core/rl/step-level';
import type { PythonPool } from '../../src/core/sandbox/pool';
import type { Executor } from '../../src/core/sandbox/types';
import { encodePrompt } from '../../src/core/tir/prompt';
import { runRollouts, tokenIndexAtChar, type RolloutRequest, type RolloutSettings } from '../../src/core/tir/rollout';
import { selectNodeBackend } from '../../src/node/backend';
import { createNodePythonPool } from '../../src/node/python';
import { memorisingModel, tokenizer } from './tir-helpers';

const TWO_CALLS = 'Use code.\n```python\nprint(6*7)\n```\n```output\n42\n```\nAgain.\n```python\nprint(2+2)\n```\n```output\n4\n```\nSo \\boxed{42}.';
// Stateful: fails the first time in a session (n = 0), prints 1.0 the second time.
const FLAKY = 'Try.\n```python\ntry:\n    n += 1\nexcept NameError:\n    n = 0\nprint(1/n)\n```\n```output\n1.0\n```\nGot \\boxed{1}.';

let model: Transformer;
let pool: PythonPool;

beforeAll(async () => {
  await selectNodeBackend(['wasm']);
  [model, pool] = await Promise.all([
    memorisingModel([
      { question: 'A', response: TWO_CALLS },
      { question: 'B', response: FLAKY },
    ]),
    createNodePythonPool({ size: 2, preload: [] }),
  ]);
}, 240_000);

afterAll(async () => {
  model?.dispose();
  await pool?.close();
});

function request(question: string, id: string): RolloutRequest {
  return { id, groupId: 'g', level: 'trajectory', problemId: question, question, reference: '42', promptTokens: encodePrompt(tokenizer, question, '') };
}

const greedy: RolloutSettings = { maxToolCalls: 2, maxResponseTokens: 200, temperature: 0, topP: 1, topK: 0, seed: 1, toolTimeoutMs: 5000 };

describe('TIR rollouts (real model, real Pyodide)', () => {
  it('forces observation tokens, masks them, and records segments token-exactly', async () => {
    const before = tf.memory().numTensors;
    const { records, timing } = await runRollouts({ model, tokenizer, executor: pool }, [request('A', 'a')], greedy);
    const r = records[0];
    expect(r.executions.map((e) => e.stdout.trim())).toEqual(['42', '4']);
    expect(r.executions.every((e) => e.succeeded)).toBe(true);
    const outputs = r.segments.filter((s) => s.kind === 'output');
    expect(outputs.map((s) => s.text)).toEqual(['\n```output\n42\n```\n', '\n```output\n4\n```\n']);
    // Exactly the output tokens are forced (sampled 0) and out of the loss.
    r.tokens.forEach((_, t) => {
      const inOutput = outputs.some((s) => t >= s.tokenStart && t < s.tokenEnd);
      expect(r.sampledMask[t]).toBe(inOutput ? 0 : 1);
      expect(r.lossMask[t]).toBe(inOutput ? 0 : 1);
      if (inOutput) expect(r.logprobs[t]).toBe(0);
    });
    expect(tokenizer.decode(r.tokens)).toBe(TWO_CALLS + '<|eos|>');
    const codes = r.segments.filter((s) => s.kind === 'code');
    expect(codes[0].text).toBe('```python\nprint(6*7)\n```');
    expect(r.executions[0].codeTokenStart).toBe(codes[0].tokenStart);
    expect(timing.generationTokens).toBe(r.sampledMask.reduce((a, b) => a + b, 0));
    expect(r.finishReason).toBe('eos');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('enforces the tool-call budget C', async () => {
    const { records } = await runRollouts({ model, tokenizer, executor: pool }, [request('A', 'c1')], { ...greedy, maxToolCalls: 1 });
    const r = records[0];
    expect(r.executions).toHaveLength(1);
    expect(r.segments.filter((s) => s.kind === 'output')).toHaveLength(1);
    // The second block stays unexecuted text the policy wrote.
    expect(r.sampledMask.filter((m) => m === 0).length).toBe(r.segments.find((s) => s.kind === 'output')!.tokenEnd - r.segments.find((s) => s.kind === 'output')!.tokenStart);
    const none = (await runRollouts({ model, tokenizer, executor: pool }, [request('A', 'c0')], { ...greedy, maxToolCalls: 0 })).records[0];
    expect(none.executions).toHaveLength(0);
    expect(none.sampledMask.every((m) => m === 1)).toBe(true);
  });

  it('runs rows side by side: a slow tool call does not hold the other row', async () => {
    // Row A's first call takes 5 s more; row B's call fails at once and B goes on to its end.
    let slowCallDone = false;
    const slow: Executor = {
      run: async (code, options) => {
        if (!code.includes('6*7')) return pool.run(code, options);
        await new Promise((resolve) => setTimeout(resolve, 5000));
        const result = await pool.run(code, options);
        slowCallDone = true;
        return result;
      },
      endSession: (session) => pool.endSession(session),
      close: async () => undefined,
    };
    const finished: boolean[] = [];
    const { records } = await runRollouts(
      { model, tokenizer, executor: slow, onProgress: () => finished.push(slowCallDone) },
      [request('A', 'r1'), request('B', 'r2')],
      { ...greedy, statefulPython: true },
    );
    // B finished while A's call was still running; A finished after it.
    expect(finished).toEqual([false, true]);
    expect(records[1].executions[0].status).toBe('error');
    expect(records[1].executions[0].observation).toContain('ZeroDivisionError');
    expect(records[1].finishReason).toBe('eos');
    expect(records[0].executions.map((e) => e.stdout.trim())).toEqual(['42', '4']);
  });

  it('self-correction rewinds a failed step, keeps the attempt, and regenerates it', async () => {
    const { records } = await runRollouts({ model, tokenizer, executor: pool }, [request('B', 'sc')], {
      ...greedy,
      statefulPython: true,
      selfCorrection: { backtrackTokens: 3, maxRetries: 4 },
    });
    const r = records[0];
    expect(r.discarded).toHaveLength(1);
    expect(r.discarded[0].execution.status).toBe('error');
    expect(r.discarded[0].execution.observation).toContain('ZeroDivisionError');
    expect(r.discarded[0].retry).toBe(1);
    expect(r.discarded[0].text.startsWith('y.\n```python')).toBe(true); // backed up 3 tokens before the fence
    expect(r.executions).toHaveLength(1);
    expect(r.executions[0].stdout.trim()).toBe('1.0');
    // The error never reached the model: the kept response has one observation, the successful one.
    expect(tokenizer.decode(r.tokens)).toBe(FLAKY + '<|eos|>');
  });

  it('step level: stops right after the one execution, output not appended; prefix cut L_suf tokens before the fence', async () => {
    const full = (await runRollouts({ model, tokenizer, executor: pool }, [request('A', 'full')], greedy)).records[0];
    const cutAt = stepCut(full, 1, 5);
    const fence = full.executions[1].codeTokenStart;
    expect(cutAt).toBe(fence - 5);
    expect(tokenizer.decode(full.tokens.slice(cutAt, fence))).toBe('ain.\n');
    // Never into an earlier observation.
    const outputEnd = full.segments.find((s) => s.kind === 'output')!.tokenEnd;
    expect(stepCut(full, 1, 1000)).toBe(outputEnd);
    const prompt = stepPrompt(full, cutAt);
    const { records } = await runRollouts(
      { model, tokenizer, executor: pool },
      [{ ...request('A', 'st'), level: 'step', promptTokens: prompt }],
      { ...greedy, maxToolCalls: 1, stopAfterExecution: true },
    );
    const s = records[0];
    expect(s.executions).toHaveLength(1);
    expect(s.executions[0].stdout.trim()).toBe('4');
    expect(s.segments.some((seg) => seg.kind === 'output')).toBe(false);
    expect(tokenizer.decode(s.tokens)).toBe('ain.\n```python\nprint(2+2)\n```');
  });

  it('maps characters to token indices', () => {
    const ids = tokenizer.encode('ab```python\n');
    expect(tokenIndexAtChar(ids, 2, (x) => tokenizer.decode(x))).toBe(2);
  });
});
