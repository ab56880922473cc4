/**
 * A training run the device cannot hold is refused before it starts, with the numbers and what would
 * fit (docs/models.md#memory-budget): against a device limit between what a LoRA run and a full
 * fine-tuning of the shipped model need, full fine-tuning is refused naming LoRA, and the same run
 * with LoRA trains.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig, type RunConfigInput } from '../../src/core/config/schema';
import { LabError } from '../../src/core/errors';
import { LabService } from '../../src/core/lab/service';
import { estimateMemory, gb, type MemoryUse } from '../../src/core/model/memory';
import { selectNodeBackend } from '../../src/node/backend';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';

const dir = mkdtempSync(join(os.tmpdir(), 'train-budget-'));
beforeAll(async () => {
  expect((await selectNodeBackend(['wasm'])).name).toBe('wasm');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SFT: RunConfigInput = { mode: 'sft', seed: 1, sft: { steps: 1, batchSize: 2, warmupSteps: 0 }, task: { trainSize: 4, testSize: 1 }, eval: { everySteps: 0 } };

describe('the memory budget of a training run', () => {
  it('refuses full fine-tuning that does not fit, with the numbers and LoRA named; LoRA at the same settings trains', async () => {
    let limit = Infinity;
    const lab = new LabService({ ...nodeLabEnv({ store: new DiskRunStore(join(dir, 'runs')), python: { size: 1, preload: [] } }), deviceLimits: () => ({ backend: 'wasm', totalBytes: limit, source: 'a test limit' }) });
    try {
      const summary = await lab.loadModel({ kind: 'shipped' });
      const cfg = (lab as unknown as { policy: { model: { cfg: Parameters<typeof estimateMemory>[0] } } }).policy.model.cfg;
      const config = parseRunConfig(SFT);
      const context = Math.min(cfg.max_position_embeddings, config.task.maxQuestionTokens + config.rollout.maxResponseTokens);
      const use: MemoryUse = { mode: 'train', batch: 2, context, updateBatch: Math.min(2, Math.floor(config.optim.microBatchTokens / context)) };
      const full = estimateMemory(cfg, use, 'wasm');
      const lora = estimateMemory(cfg, { ...use, lora: { rank: config.lora.rank, targetModules: config.lora.targetModules } }, 'wasm');
      // Full fine-tuning adds gradients and two AdamW moments of every weight; LoRA only of its adapter.
      expect(full.gradients + full.optimizer).toBe(3 * summary.parameters * 4);
      expect(lora.total).toBeLessThan(full.total);
      limit = (full.total + lora.total) / 2;

      const before = tf.memory().numTensors;
      const refused = await lab.train({ config: SFT, demonstrations: [{ question: 'What is 2*3?', response: '```python\nprint(2*3)\n```\n```output\n6\n```\nSo \\boxed{6}.' }], test: [] }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(LabError);
      const message = (refused as Error).message;
      expect(message).toContain('training settings');
      expect(message).toContain(`needs about ${gb(full.total)}`);
      expect(message).toContain(`against the ${gb(limit)} limit of a test limit`);
      expect(message).toMatch(/LoRA/);
      expect(tf.memory().numTensors).toBe(before);

      const done = await lab.train({ config: { ...SFT, lora: { enabled: true } }, demonstrations: [{ question: 'What is 2*3?', response: '```python\nprint(2*3)\n```\n```output\n6\n```\nSo \\boxed{6}.' }], test: [] });
      expect(done.state).toBe('finished');
      expect(done.steps).toBe(1);
    } finally {
      await lab.close();
    }
  }, 240_000);
});
