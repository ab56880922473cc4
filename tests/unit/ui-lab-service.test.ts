/**
 * The lab service (what the policy worker exposes) driven in Node: the shipped tiny model on the
 * wasm backend, the real Pyodide sandbox, training stored step by step, pause / stop / resume,
 * streaming inference, evaluation, model export and the one-job-at-a-time rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { CONTROL } from '../../src/app/services/control';
import { LabService, type HeldOutFigures, type TrainEvents, type TrainState } from '../../src/app/services/lab-service';
import { generateTasks } from '../../src/core/data/tasks';
import { readSafetensorsHeader } from '../../src/core/model/safetensors';
import { countParameters, parameterShapes } from '../../src/core/model/config';
import { parseRunConfig } from '../../src/core/run/config';
import type { StepMetrics } from '../../src/core/run/runfile';
import { MemoryFiles } from '../../src/core/files';
import { loadModelFolder } from '../../src/core/model/checkpoint';
import { selectNodeBackend } from '../../src/node/backend';
import { folderSource } from '../../src/node/files';
import { DEFAULT_MODEL_DIR } from '../../src/node/lab';
import { createNodePythonPool } from '../../src/node/python';
import { memoryRunStore } from './ui-memory-runstore';
import type { PythonPool } from '../../src/core/sandbox/pool';

const store = memoryRunStore();
let pool: PythonPool | undefined;
const control = new Int32Array(1);
const service = new LabService({
  selectBackend: (order) => selectNodeBackend(order ?? ['wasm', 'cpu']),
  startPython: async () => {
    pool = await createNodePythonPool({ size: 1, preload: [] });
    return { pool, info: pool.info()!, capabilities: { interrupts: true, crossOriginIsolated: false, online: false } };
  },
  shippedModel: () => ({
    source: folderSource(DEFAULT_MODEL_DIR),
    notes: async () => JSON.parse(await readFile(`${DEFAULT_MODEL_DIR}/pretrain.json`, 'utf8')) as Record<string, unknown>,
  }),
  openRunStore: async () => store,
});

const tasks = generateTasks({ seed: 5, count: 20, split: 'train', difficulties: [1] });
const tinyRl = (steps: number) =>
  parseRunConfig({ seed: 3, steps, rollout: { groupSize: 2, promptsPerStep: 1, maxResponseTokens: 40 }, grpo: { dynamicSampling: false }, stepLevel: { groupSize: 2, maxPrefixes: 1, suffixTokens: 8 } });

/** Events recorded, with a hook per step. */
function recorder(onStep?: (step: number) => void) {
  const steps: StepMetrics[] = [];
  const states: TrainState[] = [];
  const phases = new Set<string>();
  const evaluations: { step: number; figures: HeldOutFigures }[] = [];
  const events: TrainEvents = {
    started: () => undefined,
    progress: (phase) => phases.add(phase),
    step: (step, metrics) => {
      steps.push(metrics);
      onStep?.(step);
    },
    evaluated: (step, figures) => evaluations.push({ step, figures }),
    state: (state) => states.push(state),
  };
  return { events, steps, states, phases, evaluations };
}

beforeAll(async () => {
  const info = await service.init({ order: ['wasm', 'cpu'], control });
  expect(info.name).toBe('wasm');
});

afterAll(async () => {
  await pool?.close();
});

describe('lab service', () => {
  it('loads the shipped model and reports the sandbox and memory', async () => {
    const summary = await service.loadShippedModel();
    expect(summary.origin).toBe('shipped');
    expect(summary.parameters).toBe(countParameters(summary.config));
    expect(summary.tokenizer).toBe('char');
    expect(summary.pretrain?.steps).toBeGreaterThan(0);
    expect(service.memory().numBytes).toBeGreaterThanOrEqual(summary.weightBytes);
    const sandbox = await service.sandboxWarm();
    expect(sandbox.state).toBe('ready');
    expect(sandbox.info?.pythonVersion).toMatch(/^3\./);
    expect(sandbox.info?.packages.find((p) => p.name === 'sympy')?.available).toBe(true);
  });

  it('streams an answer token by token, and stops when asked', async () => {
    const updates: number[] = [];
    const first = await service.infer({ question: 'What is 17 + 25?', reference: '42', temperature: 0, maxTokens: 60, maxToolCalls: 1, selfCorrection: true, seed: 0 }, (r) => updates.push(r.tokens.length));
    expect(first.stopped).toBe(false);
    expect(first.record.tokens.length).toBeGreaterThan(0);
    expect(updates.length).toBeGreaterThan(0);
    expect(updates[0]).toBe(1); // the first token is sent at once
    expect(Math.max(...updates)).toBeLessThanOrEqual(first.record.tokens.length);
    expect(first.record.reference).toBe('42');

    const before = tf.memory().numTensors;
    // The stop is asked for at the first update (sent with the first token): it lands at the next
    // token, long before a 200-token budget or the answer's own end.
    const stopped = await service.infer({ question: 'What is 9 * 9?', temperature: 1, maxTokens: 200, maxToolCalls: 0, selfCorrection: false, seed: 1 }, () => service.setControl(CONTROL.stop));
    expect(stopped.stopped).toBe(true);
    expect(stopped.tokens).toBeLessThanOrEqual(2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('trains two RL steps, storing metrics, rollouts, checkpoints and a report', async () => {
    const before = tf.memory().numTensors;
    const rec = recorder();
    const test = generateTasks({ seed: 5, count: 4, split: 'test', difficulties: [1] });
    const config = parseRunConfig({ ...tinyRl(2), eval: { everySteps: 2 } });
    const out = await service.train({ mode: 'rl', config, train: tasks, test, name: 'two steps', checkpointEvery: 1 }, rec.events);
    expect(out.state).toBe('finished');
    expect(rec.steps.map((m) => m.step)).toEqual([1, 2]);
    for (const m of rec.steps) {
      expect(typeof m.reward_mean).toBe('number');
      expect(m.time_step_s).toBeGreaterThan(0);
    }
    expect(rec.phases.has('rollout')).toBe(true);
    // held-out evaluation: before the first step, and inside the metrics of step 2 (every 2 steps)
    expect(rec.evaluations.map((e) => e.step)).toEqual([0]);
    expect(rec.evaluations[0].figures.heldout_accuracy).toBeGreaterThanOrEqual(0);
    expect(rec.evaluations[0].figures.heldout_accuracy).toBeLessThanOrEqual(1);
    expect(rec.steps[0].heldout_accuracy).toBeUndefined();
    expect(typeof rec.steps[1].heldout_accuracy).toBe('number');
    expect(rec.phases.has('held-out evaluation')).toBe(true);
    expect(rec.states.at(-1)).toBe('finished');
    const run = await store.get(out.runId);
    expect(run?.metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(run?.rollouts.map((d) => d.step)).toEqual([1, 2]);
    expect(run?.rollouts[0].trajectories.length).toBeGreaterThanOrEqual(2);
    expect(run?.report).toContain('2 steps');
    expect(run?.report).toMatch(/## Held-out evaluation[\s\S]*\| 0 \| [\d.]+ \|[\s\S]*\| 2 \| [\d.]+ \|/);
    expect((await store.list()).find((r) => r.id === out.runId)?.live).toMatchObject({ status: 'finished', checkpointStep: 2, mode: 'rl' });
    // the stored checkpoint is the trained model
    const folder = await loadModelFolder(new MemoryFiles('checkpoint', run!.checkpoint!));
    const live = await (await service.exportModel())['model.safetensors'];
    expect(live.byteLength).toBe(run!.checkpoint!['model.safetensors'].byteLength);
    expect(folder.config.hidden_size).toBe(service.model()!.config.hidden_size);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('pauses, stops with the weights of the last whole step, and resumes from the checkpoint', async () => {
    const rec = recorder((step) => {
      if (step === 1) service.setControl(CONTROL.pause);
    });
    const states = rec.states;
    const run = service.train({ mode: 'rl', config: tinyRl(4), train: tasks, name: 'paused', checkpointEvery: 10 }, rec.events);
    await expect.poll(() => states.at(-1), { timeout: 60_000 }).toBe('paused');
    const id = (await store.list())[0].id;
    // pausing keeps a checkpoint of where the run stands
    expect((await store.list())[0].live).toMatchObject({ status: 'paused', checkpointStep: 1 });
    // one job at a time: the paused run still holds the model
    await expect(service.infer({ question: 'x', temperature: 0, maxTokens: 5, maxToolCalls: 0, selfCorrection: false, seed: 0 }, () => undefined)).rejects.toThrow(/busy training/);
    service.setControl(CONTROL.stop);
    const out = await run;
    expect(out).toMatchObject({ runId: id, state: 'stopped', steps: 1 });
    expect((await store.list())[0].live).toMatchObject({ status: 'stopped', checkpointStep: 1 });
    // the checkpoint keeps the optimiser's moments: two per parameter, with the update count
    const optimizerFile = (await store.getCheckpoint(id))?.['optimizer.safetensors'];
    expect(optimizerFile).toBeDefined();
    const stoppedAt = readSafetensorsHeader(optimizerFile!, 'optimizer.safetensors');
    expect(stoppedAt.entries.length).toBe(2 * parameterShapes(service.model()!.config).size);
    expect(Number(stoppedAt.metadata.step)).toBeGreaterThanOrEqual(0);

    // resume: the checkpoint goes back into the worker, and the run goes on to its last step
    const loaded = await service.loadStoredModel(id);
    expect(loaded.origin).toBe('browser');
    const more = recorder();
    const resumed = await service.train({ mode: 'rl', config: tinyRl(2), train: tasks, name: 'paused', checkpointEvery: 10, resume: { runId: id, fromStep: 1 } }, more.events);
    expect(resumed).toMatchObject({ runId: id, state: 'finished', steps: 2 });
    expect(more.steps.map((m) => m.step)).toEqual([2]);
    expect((await store.getMetrics(id)).map((m) => m.step)).toEqual([1, 2]);
    // the resumed run went on with the stored moments, not fresh ones
    expect(more.phases.has('optimizer moments restored')).toBe(true);
    const endedAt = readSafetensorsHeader((await store.getCheckpoint(id))!['optimizer.safetensors'], 'optimizer.safetensors');
    expect(Number(endedAt.metadata.step)).toBeGreaterThanOrEqual(Number(stoppedAt.metadata.step));
  });

  it('cuts a step short when stopped mid-rollout, leaving the weights and tensors as they were', async () => {
    // Several questions, so rows finish at different times and the stop lands while others still decode.
    const weights = (await service.exportModel())['model.safetensors'].slice();
    const before = tf.memory().numTensors;
    const rec = recorder();
    rec.events.progress = () => service.setControl(CONTROL.stop);
    const out = await service.train({ mode: 'rl', config: parseRunConfig({ ...tinyRl(3), rollout: { ...tinyRl(3).rollout, groupSize: 4, promptsPerStep: 3, maxResponseTokens: 60 } }), train: tasks, name: 'cut short', checkpointEvery: 10 }, rec.events);
    expect(out).toMatchObject({ state: 'stopped', steps: 0 });
    expect(rec.steps).toEqual([]);
    expect((await service.exportModel())['model.safetensors']).toEqual(weights);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs SFT on TIR demonstrations and evaluates the model', async () => {
    const rec = recorder();
    const demonstrations = [
      { question: 'What is 2 + 2?', response: 'Use Python.\n```python\nprint(2 + 2)\n```\n```output\n4\n```\nSo \\boxed{4}.' },
      { question: 'What is 3 * 3?', response: 'Directly: \\boxed{9}.' },
    ];
    const out = await service.train(
      { mode: 'sft', config: parseRunConfig({ seed: 1 }), train: [], name: 'sft', checkpointEvery: 100, sft: { steps: 2, batchSize: 2, lr: 1e-3, toolShare: 0.3, demonstrations } },
      rec.events,
    );
    expect(out.state).toBe('finished');
    expect(rec.steps.map((m) => [m.step, Number.isFinite(m.loss)])).toEqual([[1, true], [2, true]]);

    // demonstrations built from synthetic tasks: their programs run in the sandbox first
    const fromTasks = recorder();
    const built = await service.train(
      { mode: 'sft', config: parseRunConfig({ seed: 1 }), train: tasks.slice(0, 6), name: 'sft from tasks', checkpointEvery: 100, sft: { steps: 1, batchSize: 4, lr: 1e-3, toolShare: 1 } },
      fromTasks.events,
    );
    expect(built.state).toBe('finished');
    expect(fromTasks.phases.has('running task programs')).toBe(true);
    expect(fromTasks.steps[0].sequences).toBe(6);

    const progress: number[] = [];
    const evaluation = await service.evaluate(
      { problems: tasks.slice(0, 2), label: 'two tasks', samples: 2, temperature: 1, maxTokens: 40, maxToolCalls: 1, selfCorrection: false, seed: 0 },
      (done) => progress.push(done),
    );
    expect(evaluation.records).toHaveLength(4);
    expect(evaluation.summary.questions).toBe(2);
    expect(evaluation.summary.accuracy).toBeGreaterThanOrEqual(0);
    const t = evaluation.table;
    expect(t.succeededCorrect + t.succeededIncorrect + t.failedCorrect + t.failedIncorrect + t.noCode).toBe(4);
    expect(progress.at(-1)).toBe(4);
  });

  it('creates a new model, exports it as a folder and saves it in the store', async () => {
    const summary = await service.createModel({ layers: 2, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, context: 64 }, 7);
    expect(summary.parameters).toBe(countParameters(summary.config));
    const files = await service.exportModel();
    expect(Object.keys(files).sort()).toEqual(['char_tokenizer.json', 'config.json', 'model.safetensors']);
    const id = await service.saveModelToBrowser('my model');
    expect((await store.list()).find((r) => r.id === id)?.checkpointBytes).toBeGreaterThan(0);
    const reloaded = await service.loadStoredModel(id);
    expect(reloaded.parameters).toBe(summary.parameters);
    await expect(service.loadStoredModel('no-such-run')).rejects.toThrow(/no stored checkpoint/);
  });
});
