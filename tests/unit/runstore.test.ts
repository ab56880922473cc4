/**
 * Runs on disk (src/node/runstore.ts): the run folder layout written and read back, steps replaced
 * and cut, a browser export unpacked beside the lab's own runs, an id that is no plain name, and a
 * crash in the middle of replacing a checkpoint.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runToFiles, runFolderName } from '../../src/core/run/runfile';
import { importRun } from '../../src/core/run/store';
import { writeTar } from '../../src/core/tar';
import { DiskRunStore } from '../../src/node/runstore';
import { handMadeRun, handMadeTrajectory } from './ui-fixtures';

const dir = mkdtempSync(join(os.tmpdir(), 'runstore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runs on disk', () => {
  it('keeps a run in the run folder layout and gives it back whole', async () => {
    const store = new DiskRunStore(join(dir, 'a'));
    const run = { ...handMadeRun(), data: { train: [{ id: 'p1', question: 'What is 2+2?', answer: '4', source: 'synthetic' }], demonstrations: [{ question: 'q', response: 'r' }] } };
    await store.save(run);
    expect(readdirSync(join(dir, 'a', run.id)).sort()).toEqual(['checkpoint', 'config.json', 'data', 'evals.jsonl', 'metrics.jsonl', 'report.md', 'reward.svg', 'rollouts', 'run.json']);
    expect(await store.get(run.id)).toEqual(run);
    expect(await store.getData(run.id)).toEqual(run.data);
    expect((await store.list())[0]).toMatchObject({ id: run.id, steps: 2, trajectories: 3, hasReport: true, state: run.state });
  });

  it('replaces a step trained again, forgets the steps after a resume point, and updates state and config', async () => {
    const store = new DiskRunStore(join(dir, 'b'));
    const run = handMadeRun();
    await store.save(run);
    await store.appendStep(run.id, { step: 2, reward_mean: 0.9 }, [handMadeTrajectory()]);
    await store.appendStep(run.id, { step: 3, reward_mean: 1 });
    expect((await store.getDetail(run.id))?.metrics.map((m) => [m.step, m.reward_mean])).toEqual([
      [1, 0.25],
      [2, 0.9],
      [3, 1],
    ]);
    expect(await store.getRollouts(run.id, 2)).toHaveLength(1);
    await store.appendEval(run.id, { step: 3, accuracy: 1 });
    await store.truncateSteps(run.id, 1);
    const detail = await store.getDetail(run.id);
    expect(detail?.metrics.map((m) => m.step)).toEqual([1]);
    expect(detail?.evals.map((e) => e.step)).toEqual([0]);
    expect(await store.rolloutSteps(run.id)).toEqual([1]);
    await store.setState(run.id, { status: 'running', mode: 'rl', totalSteps: 8, checkpointStep: 1 });
    await store.setConfig(run.id, { steps: 8 });
    expect((await store.getDetail(run.id))?.state?.totalSteps).toBe(8);
    expect((await store.getDetail(run.id))?.config).toEqual({ steps: 8 });
  });

  it('finds a run by the id in its run.json, wherever its folder is named (a browser export unpacked)', async () => {
    const root = join(dir, 'c');
    const run = handMadeRun();
    const folder = join(root, runFolderName(run));
    for (const [path, bytes] of runToFiles(run)) {
      mkdirSync(join(folder, path, '..'), { recursive: true });
      writeFileSync(join(folder, path), bytes);
    }
    const { store, id } = await DiskRunStore.forRunFolder(folder);
    expect(id).toBe(run.id);
    expect(await store.dirOf(id)).toBe(folder);
    expect((await store.get(id))?.metrics).toEqual(run.metrics);
    await expect(DiskRunStore.forRunFolder(join(root, 'nothing-here'))).rejects.toThrow(/not a run folder.*no such folder/);
  });

  it('never makes a path of an id that is no plain name', async () => {
    const root = join(dir, 'd');
    const store = new DiskRunStore(root);
    const files = runToFiles({ ...handMadeRun(), id: '../../escape' });
    const { run } = await importRun(store, writeTar('x', files), 'x.tar');
    expect(run.id).toBe('../../escape');
    expect(readdirSync(root)).toEqual([runFolderName({ id: '../../escape' })]);
    expect(existsSync(join(dir, 'escape'))).toBe(false);
    await store.delete(run.id);
    expect(readdirSync(root)).toEqual([]);
  });

  it('replaces a checkpoint whole: after a crash between the two renames the old one comes back', async () => {
    const store = new DiskRunStore(join(dir, 'e'));
    const run = handMadeRun();
    await store.save(run);
    await store.saveCheckpoint(run.id, { ...run.checkpoint!, 'model.safetensors': new Uint8Array([9, 9, 9]) }, 2);
    expect((await store.getCheckpoint(run.id))?.['model.safetensors']).toEqual(new Uint8Array([9, 9, 9]));
    expect(JSON.parse(readFileSync(join(dir, 'e', run.id, 'run.json'), 'utf8')).state.checkpointStep).toBe(2);
    // The old checkpoint was put aside and the new one never arrived.
    const folder = join(dir, 'e', run.id);
    renameSync(join(folder, 'checkpoint'), join(folder, 'checkpoint.old'));
    expect((await new DiskRunStore(join(dir, 'e')).getCheckpoint(run.id))?.['model.safetensors']).toEqual(new Uint8Array([9, 9, 9]));
    expect(readdirSync(folder)).not.toContain('checkpoint.old');
  });
});
