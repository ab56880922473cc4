/**
 * The whole THOR loop with a LoRA adapter in Node, through the lab service the CLI serves: the shipped
 * Llama-architecture model writes code in its rollouts, the code runs in the Python sandbox, GRPO and
 * the step level train the adapter only, and the run's checkpoint holds the adapter alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrajectoryRecord } from '../../src/core/tir/types';
import { LabService } from '../../src/core/lab/service';
import { ADAPTER_WEIGHTS_FILE } from '../../src/core/model/lora';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';

const dir = mkdtempSync(join(os.tmpdir(), 'lora-thor-'));
const store = new DiskRunStore(join(dir, 'runs'));
let lab: LabService;

beforeAll(async () => {
  lab = new LabService(nodeLabEnv({ store, python: { size: 2, preload: [] } }));
  await lab.init({ order: ['wasm'] });
  await lab.loadModel({ kind: 'shipped' });
});

afterAll(async () => {
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('THOR with LoRA on the shipped model', () => {
  it('runs the rollouts\' code in Python, trains the adapter with GRPO and the step level, and keeps only the adapter', async () => {
    const records: TrajectoryRecord[] = [];
    const out = await lab.train(
      {
        config: {
          seed: 3,
          steps: 1,
          // 16 rollouts, with no extra round to refill groups whose answers all agree: the shipped
          // model chooses code in about half of its sampled answers.
          rollout: { groupSize: 8, promptsPerStep: 2, maxResponseTokens: 120 },
          grpo: { maxExtraRounds: 0 },
          stepLevel: { enabled: true, maxPrefixes: 2, groupSize: 2 },
          eval: { samples: 1, everySteps: 0 },
          lora: { enabled: true, rank: 4, targetModules: ['q_proj', 'v_proj', 'down_proj'] },
        },
        name: 'lora thor',
        runId: 'lora-thor',
        test: [],
        streamRollouts: true,
      },
      (e) => {
        if (e.type === 'rollouts') records.push(...e.records);
      },
    );
    expect(out).toMatchObject({ state: 'finished', steps: 1 });
    const trajectories = records.filter((r) => r.level === 'trajectory');
    expect(trajectories).toHaveLength(16);
    const executions = trajectories.flatMap((r) => r.executions);
    expect(executions.length).toBeGreaterThan(0);
    // Real interpreter output: what the code printed, or the error it raised.
    expect(executions.every((x) => typeof x.stdout === 'string')).toBe(true);
    expect(executions.some((x) => x.stdout.trim() !== '' || (x.stderr ?? '').trim() !== '')).toBe(true);
    const files = (await store.getCheckpoint('lora-thor'))!;
    expect(files[ADAPTER_WEIGHTS_FILE]).toBeDefined();
    expect(files['model.safetensors']).toBeUndefined();
  }, 300_000);
});
