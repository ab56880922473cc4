/**
 * A hand-written trajectory (built token by token with the character tokenizer, so tokens, masks,
 * segments and execution spans agree) and a small run holding it, for the UI's tests.
 */
import { CharTokenizer } from '../../src/core/tokenizer/char';
import type { ExecutionRecord, Segment, TrajectoryRecord } from '../../src/core/tir/types';
import type { RunRecord } from '../../src/core/run/runfile';

export const tokenizer = CharTokenizer.fromCharset();

export function handMadeTrajectory(): TrajectoryRecord {
  const tokens: number[] = [];
  const sampledMask: number[] = [];
  const segments: Segment[] = [];
  const add = (kind: Segment['kind'], text: string, sampled: boolean) => {
    const ids = tokenizer.encode(text);
    segments.push({ kind, text, tokenStart: tokens.length, tokenEnd: tokens.length + ids.length });
    tokens.push(...ids);
    sampledMask.push(...ids.map(() => (sampled ? 1 : 0)));
  };
  add('text', 'Multiply with Python, not by hand <script>alert(1)</script>.\n', true);
  const codeStart = tokens.length;
  add('code', '```python\nprint(123*456)\n```', true);
  const codeEnd = tokens.length;
  add('output', '```output\n56088\n```\n', false);
  add('text', 'So $123 \\times 456 = 56088$ and the answer is \\boxed{56088}.', true);

  const execution: ExecutionRecord = {
    round: 0,
    code: 'print(123*456)',
    status: 'ok',
    stdout: '56088\n',
    stderr: '',
    durationMs: 12,
    truncated: false,
    observation: '56088',
    succeeded: true,
    codeTokenStart: codeStart,
    codeTokenEnd: codeEnd,
  };
  const failedText = '```python\nprint(x)\n```';
  return {
    id: 'traj-1',
    groupId: 'group-1',
    level: 'trajectory',
    problemId: 'syn-0001',
    question: 'What is $123 \\times 456$?',
    reference: '56088',
    promptTokens: tokenizer.encode('What is 123*456?'),
    tokens,
    sampledMask,
    lossMask: [...sampledMask],
    logprobs: sampledMask.map((s) => (s ? -0.5 : 0)),
    segments,
    executions: [execution],
    finalAnswer: '56088',
    correct: true,
    reward: 1,
    truncated: false,
    finishReason: 'eos',
    discarded: [
      {
        rewindTo: codeStart,
        tokens: tokenizer.encode(failedText),
        text: failedText,
        retry: 1,
        execution: {
          ...execution,
          code: 'print(x)',
          status: 'error',
          stdout: '',
          stderr: "NameError: name 'x' is not defined",
          errorLine: "NameError: name 'x' is not defined",
          observation: "NameError: name 'x' is not defined",
          succeeded: false,
        },
      },
    ],
  };
}

/** A step-level continuation of the hand-made trajectory. */
export function handMadeStepSample(): TrajectoryRecord {
  const base = handMadeTrajectory();
  return {
    ...base,
    id: 'step-1',
    level: 'step',
    discarded: [],
    stepOrigin: { trajectoryId: base.id, executionIndex: 0, cutAt: 10 },
  };
}

export function handMadeRun(): RunRecord {
  return {
    id: '20250101-120000-abc123',
    name: 'hand-made run',
    createdAt: '2025-01-01T12:00:00.000Z',
    model: 'thor-tiny (shipped)',
    state: { status: 'stopped', mode: 'rl', totalSteps: 4, checkpointStep: 2 },
    config: { seed: 7, steps: 4, rollout: { groupSize: 2 } },
    metrics: [
      { step: 1, reward_mean: 0.25, accuracy: 0.25, code_ratio: 0.5 },
      { step: 2, reward_mean: 0.5, accuracy: 0.5, code_ratio: null },
    ],
    evals: [
      { step: 0, accuracy: 0.2, code_ratio: 0.4, pass_ratio: 1 },
      { step: 2, accuracy: 0.4, code_ratio: 0.6, pass_ratio: 0.9 },
    ],
    rollouts: [
      { step: 1, trajectories: [handMadeTrajectory()] },
      { step: 2, trajectories: [handMadeTrajectory(), handMadeStepSample()] },
    ],
    checkpoint: {
      'config.json': new TextEncoder().encode('{"hidden_size": 8}'),
      'model.safetensors': new Uint8Array([1, 2, 3, 4, 250, 251, 252, 0]),
      'char_tokenizer.json': new TextEncoder().encode(tokenizer.toFiles()['char_tokenizer.json']),
    },
    report: { 'report.md': '# Report\n\nReward went from 0.25 to 0.5.\n\n![reward](reward.svg)\n', 'reward.svg': '<svg xmlns="http://www.w3.org/2000/svg"></svg>' },
  };
}
