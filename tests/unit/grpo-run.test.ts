/**
 * A short seeded GRPO run with real rollouts, real Pyodide and real updates. A small model learned,
 * for two training questions, four ways to answer: with code that prints the right answer, directly
 * and wrong (twice), and with code that fails. RL on those questions must teach it to reach for code,
 * and the choice must carry to questions it never saw in training or RL: on held-out questions,
 * sampled 128 times before and after, the code ratio and the accuracy rise by far more than the
 * sampling noise (a proportion of 128 samples has a standard deviation of at most 0.045). Also
 * checks what a step records: metrics, step-level samples from a failing code action, masks.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/core/config/schema';
import type { Problem } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval/evaluate';
import type { Transformer } from '../../src/core/model/transformer';
import { THOR_REWARD } from '../../src/core/reward/reward';
import { GrpoTrainer } from '../../src/core/rl/trainer';
import type { PythonPool } from '../../src/core/sandbox/pool';
import { selectNodeBackend } from '../../src/node/backend';
import { createNodePythonPool } from '../../src/node/python';
import { memorisingModel, tokenizer } from './tir-helpers';

const WITH_CODE = 'Use code.\n```python\nprint(6*7)\n```\n```output\n42\n```\nSo \\boxed{42}.';
const DIRECT = 'Guess: \\boxed{40}.';
// Failing code (a NameError) that the step level will regenerate.
const BROKEN = 'Use code.\n```python\nprint(x*7)\n```\n```output\nNameError\n```\nSo \\boxed{42}.';

const question = (i: number): Problem => ({ id: `q${i}`, question: `Question ${i}: what is the answer?`, answer: '42', source: 'test' });
const TRAIN = [1, 2].map(question);
/** Never seen in SFT or RL. */
const HELD_OUT = [11, 12, 13, 14, 15, 16, 17, 18].map(question);

let model: Transformer;
let pool: PythonPool;

beforeAll(async () => {
  await selectNodeBackend(['wasm']);
  [model, pool] = await Promise.all([
    memorisingModel(
      TRAIN.flatMap((p) => [WITH_CODE, DIRECT, DIRECT, BROKEN].map((response) => ({ question: p.question, response }))),
      150,
    ),
    createNodePythonPool({ size: 1, preload: [] }),
  ]);
}, 300_000);

afterAll(async () => {
  model?.dispose();
  await pool?.close();
});

/** Code ratio and accuracy on the held-out questions, 16 samples each at T = 1. */
async function heldOut(seed: number) {
  const r = await evaluate(
    { model, tokenizer, executor: pool },
    HELD_OUT,
    { samples: 16, instruction: '', maxToolCalls: 1, maxResponseTokens: 80, temperature: 1, topP: 1, topK: 0, seed, toolTimeoutMs: 5000 },
    THOR_REWARD,
  );
  expect(r.records).toHaveLength(128);
  return { codeRatio: r.metrics.code_ratio ?? 0, accuracy: r.accuracy };
}

describe('GRPO run', () => {
  it('teaches the model to use code, on questions it never trained on, and records what docs/step-level.md says', async () => {
    const config = parseRunConfig({
      seed: 3,
      steps: 10,
      rollout: { groupSize: 8, promptsPerStep: 4, maxToolCalls: 1, maxResponseTokens: 80 },
      optim: { lr: 1e-3 },
      grpo: { dynamicSampling: false, failureFilter: false },
      stepLevel: { enabled: true, suffixTokens: 4, groupSize: 4, maxPrefixes: 2 },
    });
    const before = await heldOut(100);
    const baseline = tf.memory().numTensors;
    const trainer = new GrpoTrainer({ model, tokenizer, executor: pool }, config, TRAIN);
    let sawStepLevel = false;
    for (let s = 0; s < config.steps; s++) {
      const { metrics, records } = await trainer.trainStep();
      expect(metrics.trajectories).toBe(32);
      expect(metrics.time_update_s).toBeGreaterThanOrEqual(0);
      for (const r of records.filter((x) => x.level === 'step')) {
        sawStepLevel = true;
        // Step-level samples: one execution, reward = the code ran, prompt = question + kept prefix.
        expect(r.executions).toHaveLength(1);
        expect(r.reward).toBe(r.executions[0].succeeded ? 1 : 0);
        expect(r.stepOrigin).toBeDefined();
        expect(r.segments.some((seg) => seg.kind === 'output')).toBe(false);
      }
      for (const r of records.filter((x) => x.level === 'trajectory')) {
        // Forced tokens never train.
        r.lossMask.forEach((m, t) => expect(m <= r.sampledMask[t]).toBe(true));
      }
    }
    trainer.dispose();
    expect(sawStepLevel).toBe(true);
    expect(tf.memory().numTensors).toBe(baseline);
    const after = await heldOut(200);
    const shown = `held-out before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`;
    // Measured here: code ratio 0.10 -> 0.70, accuracy 0.05 -> 0.76. A rise of 0.3 is over five
    // standard deviations of the difference of two such proportions: no run that learns nothing passes.
    expect(before.codeRatio, shown).toBeLessThan(0.5);
    expect(after.codeRatio, shown).toBeGreaterThan(before.codeRatio + 0.3);
    expect(after.accuracy, shown).toBeGreaterThan(before.accuracy + 0.3);
  });
});
