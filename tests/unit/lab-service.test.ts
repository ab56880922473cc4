/**
 * The lab service (what the policy worker, the command line and a node serve) driven in Node: the
 * shipped tiny model on the wasm backend, the real Pyodide sandbox, runs kept as folders on disk,
 * one training loop for RL and SFT with pause / stop / resume, streaming inference, evaluation,
 * model export and the one-job-at-a-time rule.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig, type RunConfigInput } from '../../src/core/config/schema';
import { generateTasks } from '../../src/core/data/tasks';
import type { LabEvent } from '../../src/core/lab/api';
import { CONTROL } from '../../src/core/lab/control';
import { LabService } from '../../src/core/lab/service';
import { countParameters, parameterShapes } from '../../src/core/model/config';
import { readSafetensors, readSafetensorsHeader } from '../../src/core/model/safetensors';
import { OPTIMIZER_FILE } from '../../src/core/run/runfile';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';
import { tinyRl } from '../fixtures/run-configs';

const dir = mkdtempSync(join(os.tmpdir(), 'lab-service-'));
const store = new DiskRunStore(join(dir, 'runs'));
const service = new LabService(nodeLabEnv({ store, python: { size: 1, preload: [] } }));

const tasks = generateTasks({ seed: 5, count: 20, split: 'train', difficulties: [1] });
const test = generateTasks({ seed: 5, count: 4, split: 'test', difficulties: [1] });

/** Events of one job, with a hook per event. */
function recorder(on?: (e: LabEvent) => void) {
  const events: LabEvent[] = [];
  const sink = (e: LabEvent) => {
    events.push(e);
    on?.(e);
  };
  const of = <T extends LabEvent['type']>(type: T) => events.filter((e): e is Extract<LabEvent, { type: T }> => e.type === type);
  return { sink, events, of, states: () => of('state').map((e) => e.state), phases: () => new Set(of('progress').map((e) => e.phase)) };
}

/** The tensors of a model.safetensors file, by name (its metadata aside: a run's checkpoint names its step there). */
const tensorsOf = (bytes: Uint8Array) => new Map([...readSafetensors(bytes, 'model.safetensors')].map(([name, t]) => [name, Array.from(t.data)]));
const weightsNow = async () => tensorsOf((await service.exportModel())['model.safetensors']);
const checkpointWeights = async (id: string) => tensorsOf((await store.getCheckpoint(id))!['model.safetensors']);

beforeAll(async () => {
  const info = await service.init({ order: ['wasm', 'cpu'] });
  expect(info.name).toBe('wasm');
});

afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('lab service', () => {
  it('loads the shipped model and reports the sandbox and memory', async () => {
    const summary = await service.loadModel({ kind: 'shipped' });
    expect(summary.origin).toBe('shipped');
    expect(summary.parameters).toBe(countParameters(summary.config));
    expect(summary.tokenizer).toBe('char');
    expect(summary.pretrain?.steps).toBeGreaterThan(0);
    expect((await service.memory()).numBytes).toBeGreaterThanOrEqual(summary.weightBytes);
    const sandbox = await service.sandboxWarm();
    expect(sandbox.state).toBe('ready');
    expect(sandbox.info?.pythonVersion).toMatch(/^3\./);
    expect(sandbox.info?.packages.find((p) => p.name === 'sympy')?.available).toBe(true);
  });

  it('streams an answer token by token, and a stop that lands before the answer ends is reported as stopped', async () => {
    const streamed = recorder();
    const first = await service.infer({ question: 'What is 17 + 25?', reference: '42', settings: { infer: { temperature: 0 }, rollout: { maxResponseTokens: 60, maxToolCalls: 1 } } }, streamed.sink);
    expect(first.stopped).toBe(false);
    const lengths = streamed.of('trajectory').map((e) => e.record.tokens.length);
    expect(lengths[0]).toBe(1); // the first token is sent at once
    expect(Math.max(...lengths)).toBeLessThanOrEqual(first.record.tokens.length);
    expect(first.record.reference).toBe('42');

    const before = tf.memory().numTensors;
    // The stop is asked for with the first streamed token: it lands at the next one.
    const stopped = await service.infer({ question: 'What is 9 * 9?', settings: { infer: { temperature: 1 }, rollout: { maxResponseTokens: 200, maxToolCalls: 0 } } }, () => void service.setControl(CONTROL.stop));
    expect(stopped.stopped).toBe(true);
    expect(stopped.tokens).toBeLessThanOrEqual(2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses settings out of range, naming the setting', async () => {
    await expect(service.infer({ question: 'x', settings: { infer: { temperature: 7 } } })).rejects.toThrow(/infer\.temperature.*<= 2, found 7/);
    await expect(service.evaluate({ problems: test, label: 't', settings: { eval: { samples: 2.5 } } })).rejects.toThrow(/eval\.samples.*a whole number, found 2\.5/);
    await expect(service.train({ config: { rollout: { groupSize: 1 }, grpo: { normalizeStd: false } }, train: tasks })).rejects.toThrow(/rollout\.groupSize.*every advantage is 0/);
  });

  it('trains two RL steps, storing metrics, rollouts, held-out evaluations, checkpoints with moments and a report', async () => {
    const before = tf.memory().numTensors;
    const rec = recorder();
    const out = await service.train({ config: tinyRl(2), train: tasks, test, name: 'two steps', streamRollouts: true }, rec.sink);
    expect(out).toMatchObject({ state: 'finished', steps: 2 });
    expect(rec.of('step').map((e) => e.step)).toEqual([1, 2]);
    for (const { metrics } of rec.of('step')) {
      expect(typeof metrics.reward_mean).toBe('number');
      expect(metrics.time_step_s).toBeGreaterThan(0);
    }
    expect(rec.of('rollouts').map((e) => e.step)).toEqual([1, 2]);
    expect(rec.phases().has('rollout')).toBe(true);
    expect(rec.phases().has('held-out evaluation')).toBe(true);
    // held-out evaluation: before the first step, and after step 2 (every 2 steps, and the last)
    expect(rec.of('heldout').map((e) => e.step)).toEqual([0, 2]);
    for (const e of rec.of('heldout')) expect(e.figures.heldout_accuracy).toBeGreaterThanOrEqual(0);
    expect(rec.states().at(-1)).toBe('finished');

    const run = await store.get(out.runId);
    expect(run?.metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(run?.evals.map((e) => e.step)).toEqual([0, 2]);
    expect(run?.rollouts.map((d) => d.step)).toEqual([1, 2]);
    expect(run?.rollouts[0].trajectories.length).toBeGreaterThanOrEqual(2);
    expect(run?.report?.['report.md']).toMatch(/## Held-out evaluation[\s\S]*\| 0 \| [\d.]+ \|[\s\S]*\| 2 \| [\d.]+ \|/);
    expect(run?.report?.['reward.svg']).toMatch(/^<svg/);
    expect(run?.state).toEqual({ status: 'finished', mode: 'rl', totalSteps: 2, checkpointStep: 2 });
    expect(run?.model).toBe('thor-tiny (shipped)');
    // the stored checkpoint is the trained model, byte for byte, with the optimiser's moments
    expect(tensorsOf(run!.checkpoint!['model.safetensors'])).toEqual(await weightsNow());
    expect(readSafetensorsHeader(run!.checkpoint!['model.safetensors'], 'model.safetensors').metadata.thor_lab_run_step).toBe('2');
    const moments = readSafetensorsHeader(run!.checkpoint![OPTIMIZER_FILE], OPTIMIZER_FILE);
    expect(moments.entries.length).toBe(2 * parameterShapes((await service.model())!.config).size);
    expect(Number(moments.metadata.step)).toBe(2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('pauses with a checkpoint, stops with the weights of the last whole step, and a resumed run equals one never stopped', async () => {
    await service.loadModel({ kind: 'shipped' });
    const start = await weightsNow();
    const rec = recorder((e) => {
      if (e.type === 'step' && e.step === 1) void service.setControl(CONTROL.pause);
    });
    const run = service.train({ config: tinyRl(3), train: tasks, test, runId: 'paused-run', name: 'paused' }, rec.sink);
    await expect.poll(() => rec.states().at(-1), { timeout: 120_000, interval: 200 }).toBe('paused');
    expect(await service.runningJob()).toMatchObject({ what: 'training', state: 'pause', orphaned: false });
    // pausing keeps a checkpoint of where the run stands
    expect((await store.getDetail('paused-run'))?.state).toMatchObject({ status: 'paused', checkpointStep: 1 });
    // trajectories are stored, and sent as events only when asked for
    expect(rec.of('step').length).toBe(1);
    expect(rec.of('rollouts')).toEqual([]);
    const afterStep1 = await weightsNow();
    expect(afterStep1).not.toEqual(start);
    expect(await checkpointWeights('paused-run')).toEqual(afterStep1);
    // one job at a time: the paused run still holds the model
    await expect(service.infer({ question: 'x' })).rejects.toThrow(/busy training/);
    await service.setControl(CONTROL.stop);
    expect(await run).toMatchObject({ runId: 'paused-run', state: 'stopped', steps: 1 });
    expect((await store.getDetail('paused-run'))?.state).toMatchObject({ status: 'stopped', checkpointStep: 1, totalSteps: 3 });
    // nothing trained after the pause: the stored checkpoint and the live model are still step 1's
    expect(await weightsNow()).toEqual(afterStep1);
    expect(await checkpointWeights('paused-run')).toEqual(afterStep1);

    // resume: the service loads the run's checkpoint and moments itself and goes on to the last step
    await service.loadModel({ kind: 'shipped' });
    const more = recorder();
    expect(await service.train({ resume: { runId: 'paused-run' }, train: tasks, test }, more.sink)).toMatchObject({ runId: 'paused-run', state: 'finished', steps: 3 });
    expect(more.of('step').map((e) => e.step)).toEqual([2, 3]);
    expect(more.of('message').map((e) => e.text)).toContain('optimizer moments restored');
    expect((await service.model())?.runId).toBe('paused-run');
    const resumed = await store.get('paused-run');
    expect(resumed?.metrics.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(resumed?.evals.map((e) => e.step)).toEqual([0, 2, 3]);

    // the same run never stopped: the same rollouts, the same figures, the same weights
    await service.loadModel({ kind: 'shipped' });
    await service.train({ config: tinyRl(3), train: tasks, test, runId: 'unbroken', name: 'unbroken' });
    const unbroken = await store.get('unbroken');
    const figures = (m: Record<string, unknown>) => [m.step, m.reward_mean, m.response_length_mean, m.loss, m.grad_norm];
    expect(resumed!.metrics.map(figures)).toEqual(unbroken!.metrics.map(figures));
    expect(resumed!.rollouts.map((d) => d.trajectories.map((t) => t.tokens))).toEqual(unbroken!.rollouts.map((d) => d.trajectories.map((t) => t.tokens)));
    expect(tensorsOf(resumed!.checkpoint!['model.safetensors'])).toEqual(tensorsOf(unbroken!.checkpoint!['model.safetensors']));
  });

  it('waits for a held-out evaluation before pausing; a stop during it ends the run, and the evaluation is made when it goes on', async () => {
    await service.loadModel({ kind: 'shipped' });
    let evaluations = 0;
    const rec = recorder((e) => {
      // Stop during the evaluation after step 1.
      if (e.type === 'step' && e.step === 1) evaluations = 1;
      if (e.type === 'progress' && e.phase === 'held-out evaluation' && evaluations === 1) void service.setControl(CONTROL.stop);
    });
    const config = { ...tinyRl(3), eval: { samples: 1, everySteps: 1 } };
    expect(await service.train({ config, train: tasks, test, runId: 'stopped-in-eval', name: 'stopped in eval' }, rec.sink)).toMatchObject({ state: 'stopped', steps: 1 });
    expect(rec.of('heldout').map((e) => e.step)).toEqual([0]);
    expect((await store.getDetail('stopped-in-eval'))?.state).toMatchObject({ status: 'stopped', checkpointStep: 1 });
    const more = recorder();
    expect(await service.train({ resume: { runId: 'stopped-in-eval' } }, more.sink)).toMatchObject({ state: 'finished', steps: 3 });
    // the evaluation after step 1 comes first, then the steps
    expect(more.events.filter((e) => e.type === 'heldout' || e.type === 'step').map((e) => `${e.type} ${(e as { step: number }).step}`)).toEqual(['heldout 1', 'step 2', 'heldout 2', 'step 3', 'heldout 3']);
    expect((await store.getDetail('stopped-in-eval'))?.evals.map((e) => e.step)).toEqual([0, 1, 2, 3]);

    // A pause asked for during an evaluation waits for it to end.
    const paused = recorder((e) => {
      if (e.type === 'progress' && e.phase === 'held-out evaluation') void service.setControl(CONTROL.pause);
      if (e.type === 'state' && e.state === 'paused') void service.setControl(CONTROL.stop);
    });
    await service.loadModel({ kind: 'shipped' });
    expect(await service.train({ config, train: tasks, test, runId: 'paused-in-eval', name: 'paused in eval' }, paused.sink)).toMatchObject({ state: 'stopped', steps: 0 });
    expect(paused.of('heldout').map((e) => e.step)).toEqual([0]);
  });

  it("keeps a KL run's frozen reference (its starting weights) with its checkpoints", async () => {
    await service.loadModel({ kind: 'shipped' });
    const start = await weightsNow();
    await service.train({ config: { ...tinyRl(1), grpo: { dynamicSampling: false, klCoef: 0.05 } }, train: tasks, test: [], runId: 'kl-run', name: 'kl' });
    const checkpoint = (await store.getCheckpoint('kl-run'))!;
    const reference = new Map([...readSafetensors(checkpoint['reference.safetensors'], 'reference')].map(([name, t]) => [name, Array.from(t.data)]));
    expect(reference).toEqual(start);
    const more = recorder();
    await service.train({ resume: { runId: 'kl-run' }, config: { steps: 2 } }, more.sink);
    expect(more.of('message').map((e) => e.text)).not.toContain('the run kept no reference policy: the KL term measures from the resumed weights');
    expect(typeof more.of('step')[0].metrics.kl).toBe('number');
  });

  it('cuts a step short when stopped mid-rollout, leaving the weights and tensors as they were', async () => {
    // Several questions, so rows finish at different times and the stop lands while others still decode.
    const weights = await weightsNow();
    const before = tf.memory().numTensors;
    const rec = recorder((e) => {
      if (e.type === 'progress' && e.phase === 'rollout') void service.setControl(CONTROL.stop);
    });
    const config = { ...tinyRl(3), rollout: { groupSize: 4, promptsPerStep: 3, maxResponseTokens: 60 }, eval: { everySteps: 0 } };
    const out = await service.train({ config, train: tasks, test: [], name: 'cut short' }, rec.sink);
    expect(out).toMatchObject({ state: 'stopped', steps: 0 });
    expect(rec.of('step')).toEqual([]);
    expect(await weightsNow()).toEqual(weights);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs SFT in the same loop (demonstrations given, or built from tasks), stops and resumes it', async () => {
    const demonstrations = [
      { question: 'What is 2 + 2?', response: 'Use Python.\n```python\nprint(2 + 2)\n```\n```output\n4\n```\nSo \\boxed{4}.' },
      { question: 'What is 3 * 3?', response: 'Directly: \\boxed{9}.' },
    ];
    const rec = recorder();
    const out = await service.train({ config: { mode: 'sft', seed: 1, sft: { steps: 2, batchSize: 2, warmupSteps: 0 }, eval: { everySteps: 0, samples: 1 } }, demonstrations, test: test.slice(0, 2), name: 'sft' }, rec.sink);
    expect(out.state).toBe('finished');
    expect(rec.of('step').map((e) => [e.step, Number.isFinite(e.metrics.loss)])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(rec.of('heldout').map((e) => e.step)).toEqual([0, 2]);
    expect((await store.getDetail(out.runId))?.state).toMatchObject({ mode: 'sft', status: 'finished', totalSteps: 2 });

    // demonstrations built from synthetic tasks: their programs run in the sandbox first; a stop after step 1, then a resume
    const fromTasks = recorder((e) => {
      if (e.type === 'step' && e.step === 1) void service.setControl(CONTROL.stop);
    });
    const sftConfig: RunConfigInput = { mode: 'sft', seed: 1, sft: { steps: 3, batchSize: 4, toolShare: 1, warmupSteps: 0 }, eval: { everySteps: 0, samples: 1 } };
    const built = await service.train({ config: sftConfig, train: tasks.slice(0, 6), test: [], name: 'sft from tasks' }, fromTasks.sink);
    expect(built).toMatchObject({ state: 'stopped', steps: 1 });
    expect(fromTasks.phases().has('running task programs')).toBe(true);
    expect(fromTasks.of('step')[0].metrics.sequences).toBe(6);
    const resumed = recorder();
    expect(await service.train({ resume: { runId: built.runId }, train: tasks.slice(0, 6), test: [] }, resumed.sink)).toMatchObject({ state: 'finished', steps: 3 });
    expect(resumed.of('step').map((e) => e.step)).toEqual([2, 3]);
    expect(resumed.of('message').map((e) => e.text)).toContain('optimizer moments restored');
  });

  it('evaluates with avg@k and the code × answer table, streaming progress', async () => {
    const rec = recorder();
    const evaluation = await service.evaluate({ problems: tasks.slice(0, 2), label: 'two tasks', settings: { eval: { samples: 2, temperature: 1 }, rollout: { maxResponseTokens: 40, maxToolCalls: 1 } } }, rec.sink);
    expect(evaluation.records).toHaveLength(4);
    expect(evaluation.summary.questions).toBe(2);
    expect(evaluation.summary.samples).toBe(2);
    const t = evaluation.table;
    expect(t.succeededCorrect + t.succeededIncorrect + t.failedCorrect + t.failedIncorrect + t.noCode).toBe(4);
    expect(rec.of('progress').at(-1)).toMatchObject({ done: 4, total: 4 });
  });

  it('creates a new model, exports it as a folder, saves it in the store and loads it back', async () => {
    const summary = await service.createModel({ layers: 2, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, context: 64 }, 7);
    expect(summary.parameters).toBe(countParameters(summary.config));
    const files = await service.exportModel();
    expect(Object.keys(files).sort()).toEqual(['char_tokenizer.json', 'config.json', 'model.safetensors']);
    const id = await service.saveModel('my model');
    expect((await service.listRuns()).find((r) => r.id === id)?.checkpointBytes).toBeGreaterThan(0);
    const reloaded = await service.loadModel({ kind: 'stored', runId: id });
    expect(reloaded.parameters).toBe(summary.parameters);
    expect(reloaded.runId).toBe(id);
    await expect(service.loadModel({ kind: 'stored', runId: 'no-such-run' })).rejects.toThrow(/no stored run has this id \(expected the id of a stored run, found no-such-run\)/);
    // a saved model is no run to go on with
    await expect(service.train({ resume: { runId: id } })).rejects.toThrow(/no state to go on from/);
  });

  it('exports a run as one file that another store imports and resumes', async () => {
    const { bytes, name } = await service.exportRun('paused-run');
    expect(name).toBe('thor-run-paused-run.tar');
    const other = new DiskRunStore(join(dir, 'elsewhere'));
    const elsewhere = new LabService(nodeLabEnv({ store: other, python: { size: 1, preload: [] } }));
    try {
      await elsewhere.init({ order: ['wasm'] });
      const { run, copy } = await elsewhere.importRun(bytes, name);
      expect(copy).toBe(false);
      expect(run).toMatchObject({ id: 'paused-run', steps: 3, state: { status: 'finished', checkpointStep: 3 } });
      // two more steps on top of the imported checkpoint, on the questions the run keeps (not the ones offered)
      expect((await other.getData('paused-run')).train?.map((p) => p.id)).toEqual(tasks.map((p) => p.id));
      const elsewhereTasks = generateTasks({ seed: 99, count: 20, split: 'train', difficulties: [2] });
      const resumed = recorder();
      const out = await elsewhere.train({ resume: { runId: 'paused-run' }, config: { steps: 5 }, train: elsewhereTasks, test }, resumed.sink);
      expect(resumed.of('message').map((e) => e.text).join('\n')).not.toMatch(/kept no/);
      const trained = new Set((await other.get('paused-run'))!.rollouts.filter((d) => d.step > 3).flatMap((d) => d.trajectories.map((t) => t.problemId)));
      expect([...trained].every((id) => tasks.some((p) => p.id === id))).toBe(true);
      expect(out).toMatchObject({ state: 'finished', steps: 5 });
      expect((await other.getMetrics('paused-run')).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
      expect(parseRunConfig((await other.getDetail('paused-run'))!.config).steps).toBe(5);
      // A run kept by an earlier version has no questions stored: it goes on with those given, and says so.
      const { run: older } = await elsewhere.importRun(bytes, name);
      expect(older.id).not.toBe('paused-run');
      rmSync(join(dir, 'elsewhere', older.id, 'data'), { recursive: true });
      expect(await other.getData(older.id)).toEqual({});
      const olderEvents = recorder();
      await elsewhere.train({ resume: { runId: older.id }, config: { steps: 4 }, train: elsewhereTasks, test }, olderEvents.sink);
      expect(olderEvents.of('message').map((e) => e.text)).toContain("the run kept no training questions and held-out questions: it goes on with those given now (the Data panel's, or the run config's task)");
      const given = new Set((await other.get(older.id))!.rollouts.filter((d) => d.step > 3).flatMap((d) => d.trajectories.map((t) => t.problemId)));
      expect([...given].length).toBeGreaterThan(0);
      expect([...given].every((id) => elsewhereTasks.some((p) => p.id === id))).toBe(true);
    } finally {
      await elsewhere.close();
    }
  });

  it('refuses to delete the run it is training', async () => {
    await service.loadModel({ kind: 'shipped' });
    const run = service.train({ config: tinyRl(2), train: tasks, test: [], runId: 'busy-run', name: 'busy' }, (e) => {
      if (e.type === 'run') void service.setControl(CONTROL.pause);
    });
    await expect.poll(async () => (await store.getDetail('busy-run'))?.state?.status, { timeout: 60_000, interval: 200 }).toBe('paused');
    await expect(service.deleteRun('busy-run')).rejects.toThrow(/this run is training/);
    await service.setControl(CONTROL.stop);
    await run;
    await service.deleteRun('busy-run');
    expect(await store.has('busy-run')).toBe(false);
  });
});
