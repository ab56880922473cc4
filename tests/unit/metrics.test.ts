import { describe, expect, it } from 'vitest';
import {
  avgAtK,
  bestOfNAccuracy,
  bestOfNIndex,
  chiSquare2x2,
  chiSquarePValue,
  compareRuns,
  signTestPValue,
  codeCorrectnessTable,
  majAtK,
  majorityIndex,
  meanPassAtK,
  passAtK,
  trajectoryMetrics,
} from '../../src/core/eval/metrics';
import { groupMetrics } from '../../src/core/rl/metrics';
import type { ExecutionRecord, TrajectoryRecord } from '../../src/core/tir/types';

function execution(succeeded: boolean, round = 0): ExecutionRecord {
  return {
    round,
    code: 'print(2**10)',
    status: succeeded ? 'ok' : 'error',
    stdout: succeeded ? '1024\n' : '',
    stderr: succeeded ? '' : 'Traceback ...\nZeroDivisionError: division by zero',
    errorLine: succeeded ? undefined : 'ZeroDivisionError: division by zero',
    durationMs: 3,
    truncated: false,
    observation: succeeded ? '1024' : 'ZeroDivisionError: division by zero',
    succeeded,
    codeTokenStart: 0,
    codeTokenEnd: 5,
  };
}

let nextId = 0;
function record(
  groupId: string,
  o: { correct: boolean; runs?: boolean[]; length: number; truncated?: boolean; answer?: string | null; level?: 'trajectory' | 'step'; reward?: number },
): TrajectoryRecord {
  return {
    id: `t${nextId++}`,
    groupId,
    level: o.level ?? 'trajectory',
    problemId: groupId,
    question: 'What is 2^10?',
    reference: '1024',
    promptTokens: [1, 2, 3],
    tokens: new Array(o.length).fill(5),
    sampledMask: new Array(o.length).fill(1),
    lossMask: new Array(o.length).fill(1),
    logprobs: new Array(o.length).fill(-0.5),
    segments: [],
    executions: (o.runs ?? []).map((ok, i) => execution(ok, i)),
    finalAnswer: o.answer === undefined ? '1024' : o.answer,
    correct: o.correct,
    reward: o.reward ?? (o.correct ? 1 : 0),
    truncated: o.truncated ?? false,
    finishReason: o.truncated ? 'length' : 'eos',
    discarded: [],
  };
}

const r1 = record('g1', { correct: true, runs: [true, true], length: 10 });
const r2 = record('g1', { correct: true, runs: [false], length: 20 });
r2.discarded.push({ rewindTo: 3, tokens: [9, 9], text: 'xx', execution: execution(false), retry: 1 });
const r3 = record('g1', { correct: false, runs: [true, false], length: 30, truncated: true });
const r4 = record('g1', { correct: false, length: 40, answer: null });
const r5 = record('g2', { correct: true, length: 50 });
const r6 = record('g2', { correct: true, runs: [true], length: 60 });
const s1 = record('step-1', { correct: false, runs: [true], length: 8, level: 'step', reward: 1 });
const s2 = record('step-1', { correct: false, runs: [false], length: 8, level: 'step', reward: 0 });
const episodes = [r1, r2, r3, r4, r5, r6];

describe('per-step rollout metrics', () => {
  it('computes each figure by hand', () => {
    const m = { ...trajectoryMetrics([...episodes, s1, s2]), ...groupMetrics([...episodes, s1, s2]) };
    expect(m.trajectories).toBe(6);
    expect(m.groups).toBe(2);
    expect(m.reward_mean).toBeCloseTo(4 / 6, 12);
    expect(m.accuracy).toBeCloseTo(4 / 6, 12);
    expect(m.answer_ratio).toBeCloseTo(5 / 6, 12);
    expect(m.code_ratio).toBeCloseTo(4 / 6, 12); // r1 r2 r3 r6
    expect(m.pass_ratio).toBeCloseTo(4 / 6, 12); // 6 executions, 4 ran
    expect(m.pass_ratio_correct).toBeCloseTo(3 / 4, 12); // r1 (2 of 2), r2 (0 of 1), r6 (1 of 1)
    expect(m.pass_ratio_incorrect).toBeCloseTo(1 / 2, 12); // r3
    expect(m.tool_calls_per_response).toBe(1);
    expect(m.response_length_mean).toBe(35);
    expect(m.response_length_max).toBe(60);
    expect(m.truncation_ratio).toBeCloseTo(1 / 6, 12);
    expect(m.zero_variance_ratio).toBe(0.5); // g2: rewards 1, 1
    expect(m.all_correct_groups).toBe(1);
    expect(m.all_wrong_groups).toBe(0);
    expect(m.self_corrections).toBe(1);
    expect(m.step_samples).toBe(2);
    expect(m.step_reward_mean).toBe(0.5);
  });

  it('reports undefined ratios as null (valid JSON)', () => {
    const m = trajectoryMetrics([r4, r5]);
    expect(m.pass_ratio).toBeNull();
    expect(m.pass_ratio_correct).toBeNull();
    expect(m.step_reward_mean).toBeNull();
    expect(JSON.parse(JSON.stringify(m))).toEqual(m);
    expect(trajectoryMetrics([]).accuracy).toBeNull();
    expect(groupMetrics([]).zero_variance_ratio).toBeNull();
  });
});

describe('evaluation', () => {
  it('unbiased pass@k by hand', () => {
    expect(passAtK(5, 2, 1)).toBeCloseTo(0.4, 12); // 1 - C(3,1)/C(5,1)
    expect(passAtK(5, 2, 2)).toBeCloseTo(0.7, 12); // 1 - C(3,2)/C(5,2) = 1 - 3/10
    expect(passAtK(4, 0, 2)).toBe(0);
    expect(passAtK(4, 3, 2)).toBe(1);
    expect(passAtK(16, 4, 4)).toBeCloseTo(1 - 495 / 1820, 12); // C(12,4) / C(16,4)
    expect(() => passAtK(2, 1, 3)).toThrow(RangeError);
    expect(meanPassAtK([[true, false, false, false, false], [false, false, false, false, false]], 1)).toBeCloseTo(0.1, 12);
  });

  it('avg@k', () => {
    expect(avgAtK([[true, false, false, true], [false, false, false, false], [true, true, true, true]])).toBeCloseTo(0.5, 12);
  });

  it('maj@k votes over equivalent answers, ties to the first', () => {
    expect(majorityIndex(['3', '\\frac{1}{2}', '0.5', null])).toBe(1);
    expect(majorityIndex(['7', '8'])).toBe(0);
    expect(majorityIndex([null, null])).toBe(-1);
    expect(
      majAtK([
        [
          { answer: '3', correct: false },
          { answer: '\\frac{1}{2}', correct: true },
          { answer: '0.5', correct: true },
        ],
        [
          { answer: '4', correct: true },
          { answer: '5', correct: false },
          { answer: '5', correct: false },
        ],
        [{ answer: null, correct: false }],
      ]),
    ).toBeCloseTo(1 / 3, 12);
  });

  it("reproduces THOR's App. D table from trajectories: 71.8 % vs 30.4 % correct, χ² = 336", () => {
    // THOR App. D: code succeeded & correct 3950, succeeded & wrong 1549, failed & correct 139, failed & wrong 318.
    const counts: [boolean, boolean, number][] = [
      [true, true, 3950],
      [true, false, 1549],
      [false, true, 139],
      [false, false, 318],
    ];
    const records = counts.flatMap(([ran, correct, n]) => Array.from({ length: n }, () => record('app-d', { correct, runs: ran ? [true, true] : [true, false], length: 4 })));
    records.push(record('app-d', { correct: true, length: 4 })); // no code: outside the table
    const t = codeCorrectnessTable(records);
    expect(t).toMatchObject({ succeededCorrect: 3950, succeededIncorrect: 1549, failedCorrect: 139, failedIncorrect: 318, noCode: 1 });
    expect(t.pCorrectGivenSucceeded).toBeCloseTo(0.718, 3);
    expect(t.pCorrectGivenFailed).toBeCloseTo(0.304, 3);
    expect(t.chiSquare).toBeCloseTo(336.29, 2);
    expect(chiSquare2x2(1, 0, 1, 0)).toBeNull();
  });

  it('builds the code-succeeded × answer-correct table from records', () => {
    const t = codeCorrectnessTable([...episodes, s1, s2]);
    expect(t).toMatchObject({ succeededCorrect: 2, succeededIncorrect: 0, failedCorrect: 1, failedIncorrect: 1, noCode: 2 });
    expect(t.pCorrectGivenSucceeded).toBe(1);
    expect(t.pCorrectGivenFailed).toBe(0.5);
    expect(t.chiSquare).toBeCloseTo((4 * (2 * 1 - 0 * 1) ** 2) / (2 * 2 * 3 * 1), 12); // 4/3
  });

  it('χ² p-values (one degree of freedom) at the textbook critical values, and far in the tail', () => {
    expect(chiSquarePValue(3.841459)).toBeCloseTo(0.05, 6);
    expect(chiSquarePValue(6.634897)).toBeCloseTo(0.01, 6);
    expect(chiSquarePValue(10.827566)).toBeCloseTo(0.001, 7);
    expect(chiSquarePValue(0)).toBeCloseTo(1, 6);
    expect(chiSquarePValue(null)).toBeNull();
    expect(chiSquarePValue(-1)).toBeNull();
    // THOR's χ² = 336.29: erfc(z) by its asymptotic series, z = √(χ²/2).
    const z = Math.sqrt(336.29 / 2);
    const asymptotic = (Math.exp(-z * z) / (z * Math.sqrt(Math.PI))) * (1 - 1 / (2 * z * z) + 3 / (4 * z ** 4));
    expect(chiSquarePValue(336.29)! / asymptotic).toBeCloseTo(1, 5);
    expect(codeCorrectnessTable([]).pValue).toBeNull();
  });

  it("THOR's self-rewarded best-of-N picks by code pass rate, then passed calls, then the first", () => {
    expect(bestOfNIndex([{ calls: 2, passed: 1 }, { calls: 1, passed: 1 }, { calls: 0, passed: 0 }])).toBe(1);
    expect(bestOfNIndex([{ calls: 2, passed: 2 }, { calls: 1, passed: 1 }])).toBe(0);
    expect(bestOfNIndex([{ calls: 0, passed: 0 }, { calls: 0, passed: 0 }])).toBe(0);
    expect(bestOfNIndex([{ calls: 3, passed: 0 }, { calls: 0, passed: 0 }])).toBe(0);
    expect(bestOfNIndex([])).toBe(-1);
    // Question 1: the pick (rate 1) is wrong though another sample is right; question 2: the pick is right.
    const acc = bestOfNAccuracy([
      [{ calls: 2, passed: 1, correct: true }, { calls: 1, passed: 1, correct: false }],
      [{ calls: 1, passed: 0, correct: false }, { calls: 2, passed: 2, correct: true }],
    ]);
    expect(acc).toBe(0.5);
  });

  it('compares two evaluations problem by problem with an exact sign test', () => {
    expect(signTestPValue(5, 0)).toBeCloseTo(2 / 32, 12);
    expect(signTestPValue(10, 2)).toBeCloseTo((2 * (1 + 12 + 66)) / 4096, 12);
    expect(signTestPValue(3, 3)).toBe(1);
    expect(signTestPValue(0, 0)).toBe(1);
    const a = [
      { problemId: 'p1', accuracy: 1 },
      { problemId: 'p2', accuracy: 0 },
      { problemId: 'p3', accuracy: 0.5 },
      { problemId: 'only-a', accuracy: 1 },
    ];
    const b = [
      { problemId: 'p1', accuracy: 0 },
      { problemId: 'p2', accuracy: 0 },
      { problemId: 'p3', accuracy: 0.75 },
      { problemId: 'only-b', accuracy: 0 },
    ];
    const c = compareRuns(a, b);
    expect(c).toMatchObject({ shared: 3, onlyInA: 1, onlyInB: 1, aBetter: 1, bBetter: 1, ties: 1, pValue: 1 });
    expect(c.accuracyA).toBeCloseTo(0.5, 12);
    expect(c.accuracyB).toBeCloseTo(0.25, 12);
    expect(c.differences.map((d) => d.problemId)).toEqual(['p1', 'p3']);
  });
});
