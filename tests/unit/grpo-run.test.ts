/**
 * A short seeded GRPO run with real rollouts, real Pyodide and real updates: a model that answers one
 * question half the time with code (right) and half the time directly (wrong) learns to use code.
 * Also checks what a step records: metrics, step-level samples from a failing code action, masks.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Transformer } from '../../src/core/model/transformer';
import { GrpoTrainer } from '../../src/core/rl/trainer';
import { parseRunConfig } from '../../src/core/config/schema';
import type { PythonPool } from '../../src/core/sandbox/pool';
import { selectNodeBackend } from '../../src/node/backend';
import { createNodePythonPool } from '../../src/node/python';
import { memorisingModel, tokenizer } from './tir-helpers';

const WITH_CODE = 'Use code.\n```python\nprint(6*7)\n```\n```output\n42\n```\nSo \\boxed{42}.';
const DIRECT = 'Guess: \\boxed{40}.';
// Failing code (a NameError) that the step level will regenerate.
const BROKEN = 'Use code.\n```python\nprint(x*7)\n```\n```output\nNameError\n```\nSo \\boxed{42}.';

let model: Transformer;
let pool: PythonPool;

beforeAll(async () => {
  await selectNodeBackend(['wasm']);
  [model, pool] = await Promise.all([
    memorisingModel(
      [
        { question: 'Q', response: WITH_CODE },
        { question: 'Q', response: DIRECT },
        { question: 'Q', response: DIRECT },
        { question: 'Q', response: BROKEN },
      ],
      200,
    ),
    createNodePythonPool({ size: 1, preload: [] }),
  ]);
}, 300_000);

afterAll(async () => {
  model?.dispose();
  await pool?.close();
});

describe('GRPO run', () => {
  it('raises the reward of an easy task and records what algorithms.md says', async () => {
    const config = parseRunConfig({
      seed: 3,
      steps: 10,
      rollout: { groupSize: 8, promptsPerStep: 4, maxToolCalls: 1, maxResponseTokens: 80 },
      optim: { lr: 1e-3 },
      grpo: { dynamicSampling: false, failureFilter: false },
      stepLevel: { enabled: true, suffixTokens: 4, groupSize: 4, maxPrefixes: 2 },
    });
    const trainer = new GrpoTrainer({ model, tokenizer, executor: pool }, config, [{ id: 'q', question: 'Q', answer: '42', source: 'test' }]);
    const rewards: number[] = [];
    const baseline = tf.memory().numTensors;
    let sawStepLevel = false;
    for (let s = 0; s < config.steps; s++) {
      const { metrics, records } = await trainer.trainStep();
      rewards.push(metrics.reward_mean as number);
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
    expect(sawStepLevel).toBe(true);
    expect(tf.memory().numTensors).toBe(baseline);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(rewards.slice(0, 3));
    const last = mean(rewards.slice(-3));
    expect(first, rewards.join(' ')).toBeLessThan(0.75);
    expect(last, rewards.join(' ')).toBeGreaterThan(first + 0.15);
    trainer.dispose();
  });
});
