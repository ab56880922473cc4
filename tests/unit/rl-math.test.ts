import { describe, expect, it } from 'vitest';
/**
 * GRPO's plain-number parts against hand-computed values: advantages and filters (the lab's own code),
 * and the tests' oracle of the objective (grpo-oracle.ts), which the tensor objective is checked against.
 */
import { batchAdvantages, groupAdvantages, isZeroVariance } from '../../src/core/rl/advantages';
import type { ClipOptions } from '../../src/core/rl/objective';
import { groupBy, sampleStd } from '../../src/core/stats';
import {
  applyOverlong,
  fillBatch,
  filterFailedTrajectories,
  needsAnotherRound,
  overlongPenalty,
  selectTrainingGroups,
  splitZeroVariance,
} from '../../src/core/rl/filters';
import { aggregateLoss, clippedTokenLoss, grpoLoss, k3, klEstimate, klLoss, policyLoss, positiveAdvantageNll } from './grpo-oracle';
import type { ExecutionRecord, TrajectoryRecord } from '../../src/core/tir/types';

const DAPO: ClipOptions = { epsLow: 0.2, epsHigh: 0.28, dualClipC: 3 };
const ln = Math.log;

describe('group advantages', () => {
  it('GRPO: (R - mean) / (std + 1e-6) with the sample std', () => {
    // R = [1,0,0,1]: mean 0.5, std = sqrt((4 × 0.25) / 3) = 0.5773503
    expect(sampleStd([1, 0, 0, 1])).toBeCloseTo(Math.sqrt(1 / 3), 12);
    const a = groupAdvantages([1, 0, 0, 1], true);
    expect(a[0]).toBeCloseTo(0.5 / (Math.sqrt(1 / 3) + 1e-6), 12);
    expect(a[0]).toBeCloseTo(0.866024, 6);
    expect(a).toEqual([a[0], -a[0], -a[0], a[0]]);
    // ToRL ±1, R = [1,-1,-1,-1]: mean -0.5, deviations 1.5 / -0.5, variance (2.25 + 3 × 0.25) / 3 = 1
    const torl = groupAdvantages([1, -1, -1, -1], true);
    [1.5, -0.5, -0.5, -0.5].forEach((v, i) => expect(torl[i]).toBeCloseTo(v / (1 + 1e-6), 12));
    // [3, 1]: mean 2, std √2
    expect(groupAdvantages([3, 1], true)[0]).toBeCloseTo(1 / (Math.SQRT2 + 1e-6), 12);
  });

  it('Dr. GRPO: R - mean, no std', () => {
    expect(groupAdvantages([1, 0, 0, 1], false)).toEqual([0.5, -0.5, -0.5, 0.5]);
    expect(groupAdvantages([1, -1, -1, -1], false)).toEqual([1.5, -0.5, -0.5, -0.5]);
  });

  it('gives zero to a zero-variance group and R to a singleton (verl)', () => {
    expect(isZeroVariance([1, 1, 1, 1])).toBe(true);
    expect(isZeroVariance([1, 1, 0])).toBe(false);
    expect(groupAdvantages([1, 1, 1, 1], true)).toEqual([0, 0, 0, 0]);
    expect(groupAdvantages([1], true)[0]).toBeCloseTo(1 / (1 + 1e-6), 12);
    expect(groupAdvantages([1], false)).toEqual([1]);
  });

  it('normalises each reward within its own group, wherever it sits in the batch', () => {
    const a = batchAdvantages([1, 5, 0, 1, 3, 0], ['a', 'b', 'a', 'a', 'b', 'a'], true);
    const s = 0.5 / (Math.sqrt(1 / 3) + 1e-6);
    const t = 1 / (Math.SQRT2 + 1e-6);
    [s, t, -s, s, -t, -s].forEach((v, i) => expect(a[i]).toBeCloseTo(v, 12));
    expect(groupBy(['x1', 'y1', 'x2'], (s) => s[0])).toEqual([
      { id: 'x', members: ['x1', 'x2'] },
      { id: 'y', members: ['y1'] },
    ]);
    expect(() => batchAdvantages([1], ['a', 'b'], true)).toThrow(RangeError);
  });
});

describe('clipped policy loss', () => {
  it('clips the ratio at 1 + ε_high for positive advantages', () => {
    // ρ = 1.5: max(-1.5, -1.28) = -1.28
    const r = clippedTokenLoss(ln(1.5), 0, 1, DAPO);
    expect(r.ratio).toBeCloseTo(1.5, 12);
    expect(r.loss).toBeCloseTo(-1.28, 12);
    expect(r).toMatchObject({ clipped: true, dualClipped: false });
    // ρ = 0.5 < 1 - ε_low with A > 0: the unclipped -0.5 is larger, no clip
    expect(clippedTokenLoss(ln(0.5), 0, 1, DAPO)).toMatchObject({ clipped: false });
    expect(clippedTokenLoss(ln(0.5), 0, 1, DAPO).loss).toBeCloseTo(-0.5, 12);
    // ρ = 1.1 inside the trust region
    expect(clippedTokenLoss(ln(1.1), 0, 2, DAPO).loss).toBeCloseTo(-2.2, 12);
  });

  it('clips at 1 - ε_low for negative advantages, and caps at c·|A| (dual clip)', () => {
    // A = -1, ρ = 0.5: max(0.5, 0.8) = 0.8
    const low = clippedTokenLoss(ln(0.5), 0, -1, DAPO);
    expect(low.loss).toBeCloseTo(0.8, 12);
    expect(low).toMatchObject({ clipped: true, dualClipped: false });
    // A = -1, ρ = 5: max(5, 1.28) = 5, capped at 3
    const high = clippedTokenLoss(ln(5), 0, -1, DAPO);
    expect(high.loss).toBeCloseTo(3, 12);
    expect(high).toMatchObject({ clipped: false, dualClipped: true });
    // Dual clip off: 2 × 5 = 10
    expect(clippedTokenLoss(ln(5), 0, -2, { ...DAPO, dualClipC: null }).loss).toBeCloseTo(10, 12);
  });

  it('survives extreme log-ratios (clamped to ±20 as verl)', () => {
    const r = clippedTokenLoss(1000, 0, -1, DAPO);
    expect(r.ratio).toBeCloseTo(Math.exp(20), 0);
    expect(r.loss).toBe(3);
  });
});

describe('aggregation over a loss mask', () => {
  const values = [
    [1, 2, 3, 9],
    [4, 9, 9, 9],
  ];
  const mask = [
    [1, 1, 1, 0],
    [1, 0, 0, 0],
  ];

  it('token-mean: all unmasked tokens of the batch', () => {
    expect(aggregateLoss(values, mask, 'token-mean')).toBeCloseTo((1 + 2 + 3 + 4) / 4, 12);
  });

  it('seq-mean-token-mean: mean of per-sequence means', () => {
    expect(aggregateLoss(values, mask, 'seq-mean-token-mean')).toBeCloseTo((6 / 3 + 4 / 1) / 2, 12);
  });

  it('seq-mean-token-sum-norm (Dr. GRPO): sums over B × L_max', () => {
    expect(aggregateLoss(values, mask, 'seq-mean-token-sum-norm')).toBeCloseTo((6 + 4) / (2 * 4), 12);
    expect(aggregateLoss(values, mask, 'seq-mean-token-sum-norm', 10)).toBeCloseTo((6 + 4) / (2 * 10), 12);
  });

  it('gives 0, not NaN, when nothing is in the loss', () => {
    const none = [[0, 0]];
    expect(aggregateLoss([[1, 2]], none, 'token-mean')).toBe(0);
    expect(aggregateLoss([[1, 2]], none, 'seq-mean-token-mean')).toBe(0);
    expect(aggregateLoss([[1, 2]], none, 'seq-mean-token-sum-norm')).toBe(0);
  });

  it('accepts Float32Array rows', () => {
    expect(aggregateLoss([Float32Array.from([1, 2, 3])], [Float32Array.from([1, 0, 1])], 'token-mean')).toBe(2);
  });
});

// Row 0: A = +1, ratios 1.5 and 1. Row 1: A = -1, ratios 0.5, 5 and a masked token (ratio 3).
const batch = {
  logpOld: [
    [-1, -1],
    [-2, -2, -2],
  ],
  logpNew: [
    [-1 + ln(1.5), -1],
    [-2 + ln(0.5), -2 + ln(5), -2 + ln(3)],
  ],
  advantages: [1, -1],
  mask: [
    [1, 1],
    [1, 1, 0],
  ],
};

describe('policy loss over a batch', () => {
  it('token losses, clip fractions and approximate KL by hand', () => {
    const r = policyLoss(batch, DAPO, 'token-mean');
    // tokens: -1.28 (clipped), -1, 0.8 (clipped), 3 (dual clip)
    expect(r.tokenLosses[0][0]).toBeCloseTo(-1.28, 12);
    expect(r.tokenLosses[0][1]).toBeCloseTo(-1, 12);
    expect(r.tokenLosses[1][0]).toBeCloseTo(0.8, 12);
    expect(r.tokenLosses[1][1]).toBeCloseTo(3, 12);
    expect(r.loss).toBeCloseTo((-1.28 - 1 + 0.8 + 3) / 4, 12); // 0.38
    expect(r.clipFraction).toBeCloseTo(2 / 4, 12);
    expect(r.dualClipFraction).toBeCloseTo(1 / 4, 12);
    expect(r.approxKl).toBeCloseTo((-ln(1.5) - ln(0.5) - ln(5)) / 4, 12); // -0.330439
    expect(policyLoss(batch, DAPO, 'seq-mean-token-sum-norm', 4).loss).toBeCloseTo((-2.28 + 3.8) / 8, 12); // 0.19
  });

  it('ignores masked tokens entirely (tool output, prefixes)', () => {
    const wild = { ...batch, logpNew: [batch.logpNew[0], [batch.logpNew[1][0], batch.logpNew[1][1], 50]] };
    expect(policyLoss(wild, DAPO, 'token-mean').loss).toBeCloseTo(0.38, 12);
  });
});

describe('KL, entropy and THOR NLL terms', () => {
  it('k1, k2 and k3 estimators by hand', () => {
    expect(k3(-1, -1)).toBe(0);
    expect(k3(0, ln(2))).toBeCloseTo(2 - ln(2) - 1, 12); // 0.306853
    expect(k3(ln(2), 0)).toBeCloseTo(0.5 + ln(2) - 1, 12); // 0.193147
    expect(k3(0, 20)).toBe(10);
    expect(klEstimate(ln(2), 0, 'k1')).toBeCloseTo(ln(2), 12);
    expect(klEstimate(ln(2), 0, 'k2')).toBeCloseTo(0.5 * ln(2) ** 2, 12);
    expect(klLoss([[0, 0]], [[ln(2), 0]], [[1, 1]])).toBeCloseTo((2 - ln(2) - 1) / 2, 12);
  });

  it('α·NLL is the token mean of -logp over positive-advantage samples only', () => {
    const logp = [
      [-1, -2],
      [-3, -4],
    ];
    expect(positiveAdvantageNll(logp, [0.5, -0.5], [[1, 1], [1, 0]])).toBeCloseTo(1.5, 12);
    expect(positiveAdvantageNll(logp, [0.5, 0.2], [[1, 0], [1, 1]])).toBeCloseTo((1 + 3 + 4) / 3, 12);
    expect(positiveAdvantageNll(logp, [0, -1], [[1, 1], [1, 1]])).toBe(0);
  });

  it('L = L_policy + β·KL - c·H + α·NLL', () => {
    const r = grpoLoss(
      { ...batch, logpRef: batch.logpOld, entropy: [[1, 1], [2, 2, 2]] },
      { clip: DAPO, aggregation: 'token-mean', klCoef: 0.5, entropyCoef: 0.1, nllAlpha: 0.01 },
    );
    const kl = (1 / 1.5 + ln(1.5) - 1 + 0 + (2 - ln(2) - 1) + (0.2 + ln(5) - 1)) / 4; // 0.297106
    const nll = (1 - ln(1.5) + 1) / 2; // 0.797267
    expect(r.kl).toBeCloseTo(kl, 12);
    expect(r.entropy).toBeCloseTo(1.5, 12);
    expect(r.nll).toBeCloseTo(nll, 12);
    expect(r.loss).toBeCloseTo(0.38 + 0.5 * kl - 0.1 * 1.5 + 0.01 * nll, 12);
    expect(r.loss).toBeCloseTo(0.386526, 5);
    expect(() => grpoLoss(batch, { clip: DAPO, aggregation: 'token-mean', klCoef: 0.1, entropyCoef: 0, nllAlpha: 0 })).toThrow(/logpRef/);
  });
});

// ---- filters ------------------------------------------------------------------------------

function execution(succeeded: boolean): ExecutionRecord {
  return {
    round: 0,
    code: 'print(1)',
    status: succeeded ? 'ok' : 'error',
    stdout: succeeded ? '1\n' : '',
    stderr: succeeded ? '' : 'NameError',
    durationMs: 1,
    truncated: false,
    observation: succeeded ? '1' : "NameError: name 'x' is not defined",
    succeeded,
    codeTokenStart: 0,
    codeTokenEnd: 1,
  };
}

let nextId = 0;
function trajectory(groupId: string, reward: number, opts: { failed?: boolean; truncated?: boolean; length?: number } = {}): TrajectoryRecord {
  const length = opts.length ?? 4;
  return {
    id: `${groupId}-${nextId++}`,
    groupId,
    level: 'trajectory',
    problemId: groupId,
    question: 'q',
    reference: '1',
    promptTokens: [1],
    tokens: new Array(length).fill(7),
    sampledMask: new Array(length).fill(1),
    lossMask: new Array(length).fill(1),
    logprobs: new Array(length).fill(-1),
    segments: [],
    executions: opts.failed === undefined ? [] : [execution(!opts.failed)],
    finalAnswer: '1',
    correct: reward > 0,
    reward,
    truncated: opts.truncated ?? false,
    finishReason: opts.truncated ? 'length' : 'eos',
    discarded: [],
  };
}

describe('filters', () => {
  it('DAPO soft overlong punishment', () => {
    expect(overlongPenalty(80, 100, 20)).toBe(0);
    expect(overlongPenalty(81, 100, 20)).toBeCloseTo(-0.05, 12);
    expect(overlongPenalty(90, 100, 20)).toBeCloseTo(-0.5, 12);
    expect(overlongPenalty(100, 100, 20)).toBeCloseTo(-1, 12);
    expect(overlongPenalty(101, 100, 20)).toBe(-1);
  });

  it('masks or penalises truncated responses', () => {
    const t = trajectory('g', 1, { truncated: true, length: 90 });
    expect(applyOverlong(t, 'mask', 100, 20).lossMask.every((m) => m === 0)).toBe(true);
    expect(applyOverlong(trajectory('g', 1, { length: 90 }), 'mask', 100, 20).lossMask.every((m) => m === 1)).toBe(true);
    expect(applyOverlong(t, 'penalty', 100, 20).reward).toBeCloseTo(0.5, 12);
    expect(applyOverlong(t, 'none', 100, 20)).toBe(t);
    expect(t.lossMask.every((m) => m === 1)).toBe(true); // the input is not modified
  });

  it('drops zero-variance groups and keeps singletons (THOR)', () => {
    const groups = groupBy([trajectory('a', 1), trajectory('a', 1), trajectory('b', 0), trajectory('b', 1), trajectory('c', 1)], (r) => r.groupId);
    const { kept, dropped } = splitZeroVariance(groups);
    expect(kept.map((g) => g.id)).toEqual(['b', 'c']);
    expect(dropped.map((g) => g.id)).toEqual(['a']);
  });

  it('THOR failure filter: drop trajectories with failed code, keep groups with at least half left', () => {
    const records = [
      ...[false, false, true, true].map((f, i) => trajectory('half', i % 2, { failed: f })),
      ...[true, true, true, false].map((f, i) => trajectory('quarter', i % 2, { failed: f })),
      ...[true, true].map(() => trajectory('none', 1, { failed: true })),
      ...[0, 1].map((r) => trajectory('nocode', r)),
    ];
    const r = filterFailedTrajectories(groupBy(records, (t) => t.groupId), 0.5);
    expect(r.kept.map((g) => [g.id, g.members.length])).toEqual([
      ['half', 2],
      ['nocode', 2],
    ]);
    expect(r.droppedTrajectories).toBe(2 + 3 + 2);
    expect(r.droppedGroups).toBe(2);
  });

  it('runs the whole selection: overlong, failure filter, then zero variance', () => {
    const records = [
      trajectory('a', 1),
      trajectory('a', 0, { failed: true }),
      trajectory('a', 0),
      trajectory('b', 1),
      trajectory('b', 1, { truncated: true, length: 100 }),
    ];
    const base = { maxResponseTokens: 100, overlongCacheTokens: 20, minGroupSurvival: 0.5 };
    const plain = selectTrainingGroups(records, { ...base, overlong: 'none', failureFilter: true, dropZeroVariance: true });
    expect(plain.groups.map((g) => [g.id, g.members.length])).toEqual([['a', 2]]);
    expect(plain).toMatchObject({ zeroVarianceGroups: 1, failedTrajectoriesDropped: 1, groupsDroppedBySurvival: 0 });
    // The penalty gives b rewards 1 and 0: it now has a spread and stays.
    const penalised = selectTrainingGroups(records, { ...base, overlong: 'penalty', failureFilter: true, dropZeroVariance: true });
    expect(penalised.groups.map((g) => g.members.map((m) => m.reward))).toEqual([
      [1, 0],
      [1, 0],
    ]);
    const everything = selectTrainingGroups(records, { ...base, overlong: 'none', failureFilter: false, dropZeroVariance: false });
    expect(everything.groups.map((g) => g.members.length)).toEqual([3, 2]);
  });

  it('dynamic sampling bookkeeping', () => {
    expect(needsAnotherRound(3, 8, 0, 2)).toBe(true);
    expect(needsAnotherRound(3, 8, 2, 2)).toBe(false);
    expect(needsAnotherRound(8, 8, 0, 2)).toBe(false);
    expect(fillBatch([1, 2, 3].map((i) => ({ id: `${i}`, members: [i] })), 2).map((g) => g.id)).toEqual(['1', '2']);
  });
});
