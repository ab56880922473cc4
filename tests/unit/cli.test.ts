/**
 * The command line as a user drives it (`npm run cli -- …`, here through node and tsx): a training run
 * stopped with Ctrl-C and resumed, and bad flags refused with the flag named, before any work is done.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_DIR } from '../../src/node/lab';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(os.tmpdir(), 'cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ARGS = ['--import', 'tsx', 'src/cli/main.ts'];
/** A small RL run: 2 questions × G = 2 a step, short answers, held-out evaluation before and after on 2 questions. */
const SMALL = ['--set', 'rollout.groupSize=2', '--set', 'rollout.promptsPerStep=1', '--set', 'rollout.maxResponseTokens=60', '--set', 'task.testSize=2', '--set', 'eval.samples=1', '--set', 'eval.everySteps=0', '--set', 'grpo.dynamicSampling=false'];

function cli(args: string[]) {
  const run = spawnSync(process.execPath, [...ARGS, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Runs the CLI, sends Ctrl-C once `when` matches its output, and resolves with what it printed. */
function interrupted(args: string[], when: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...ARGS, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit in time; output so far:\n${stdout}\n${stderr}`));
    }, 240_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && when.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const runJson = (run: string) => JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
const metricSteps = (run: string) =>
  readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l).step);

describe('cli train', () => {
  it('stops with a checkpoint on Ctrl-C, and goes on from it with --resume', async () => {
    const run = join(dir, 'ctrl-c');
    // The signal is handled between decoding steps: the step under way when it comes is finished first.
    const first = await interrupted(['train', '--out', run, '--steps', '6', ...SMALL], /step 1\/6/);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('stopping: the run keeps a checkpoint of its last whole step');
    const stoppedAt = Number(/stopped after step (\d+); go on with: npm run cli -- train --resume (.*)/.exec(first.stdout)?.[1]);
    expect(first.stdout).toContain(`go on with: npm run cli -- train --resume ${run}`);
    expect(stoppedAt).toBeGreaterThanOrEqual(1);
    expect(stoppedAt).toBeLessThan(6);
    expect(runJson(run).state).toEqual({ status: 'stopped', mode: 'rl', totalSteps: 6, checkpointStep: stoppedAt });
    expect(metricSteps(run)).toEqual(Array.from({ length: stoppedAt }, (_, i) => i + 1));

    const second = cli(['train', '--resume', run]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('optimizer moments restored');
    expect(second.stdout).toContain(`going on from step ${stoppedAt} to 6 steps`);
    expect(second.stdout).toContain(`finished 6 steps; report: ${join(run, 'report.md')}`);
    expect(metricSteps(run)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(runJson(run).state).toEqual({ status: 'finished', mode: 'rl', totalSteps: 6, checkpointStep: 6 });
    // held-out evaluations before the first step and after the last, across the two processes
    expect(readFileSync(join(run, 'evals.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([0, 6]);
  });
});

describe('cli eval on a file in another shape', () => {
  it('reads the fields named by flags, says what it read, and skips and counts a question too long for the context', () => {
    const file = join(dir, 'odd.json');
    const long = `Add up: ${Array.from({ length: 60 }, (_, i) => i + 1).join(' + ')}.`;
    writeFileSync(file, JSON.stringify({ data: [{ prompt_text: 'What is 2 + 2?', meta: { gold: 4 } }, { prompt_text: long, meta: { gold: 1830 } }, { prompt_text: 'No answer' }] }));
    const out = cli(['eval', '--file', file, '--question-field', 'prompt_text', '--answer-field', 'meta.gold', '--samples', '1', '--temperature', '0', '--max-tokens', '8', '--no-tools']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain(`read ${file}: 2 of 3 items usable (question: prompt_text [mapped], answer: meta.gold [mapped]); 1 skipped: 1 has no usable answer in "meta.gold"`);
    expect(out.stderr).toContain(`skipped ${file}, item 3, field "meta.gold": no reference answer: the field is missing`);
    expect(out.stderr).toMatch(/1 of 2 questions fit the model's context \(256 tokens, at least 8 left to generate\); 1 longer than 248 prompt tokens \(the longest \d+\) is skipped/);
    const summary = JSON.parse(out.stdout);
    expect(summary).toMatchObject({ questions: 1, questions_given: 2, skipped_too_long: 1 });
    // No tools, so no answer has code whose computation could be checked.
    expect(summary).toHaveProperty('computes_question', null);
  });
});

describe('bad flags are refused with the flag named, before any work', () => {
  const refused = (args: string[], message: RegExp) => {
    const out = cli(args);
    expect(out.code, out.stdout + out.stderr).toBe(2);
    expect(out.stderr).toMatch(message);
    expect(out.stderr.split('\n').filter((l) => l.trim() !== '')).toHaveLength(1);
  };

  it('eval: samples, limit and temperature out of range, and greedy samples', () => {
    refused(['eval', '--samples', '2.5'], /--samples \(eval\.samples\)".*expected a whole number, found 2\.5/);
    refused(['eval', '--samples', '0'], /--samples \(eval\.samples\)".*expected a number > 0, found 0/);
    refused(['eval', '--limit', '-1'], /--limit/);
    refused(['eval', '--limit=-1'], /field "--limit".*expected a whole number ≥ 1, found -1/);
    refused(['eval', '--temperature=-1'], /--temperature \(eval\.temperature\)".*expected a number >= 0, found -1/);
    refused(['eval', '--temperature', '0', '--samples', '3'], /--samples \(eval\.samples\)".*greedy decoding gives the same answer k times/);
  });

  it('eval: a file with no usable line says why and which flag names its fields; a field named with no file', () => {
    refused(['eval', '--file', 'tests/fixtures/datasets/no-answer.jsonl'], /^error: tests\/fixtures\/datasets\/no-answer\.jsonl: 0 of 3 lines usable: 3 have no answer field \(fields found: question, foo, bar\); map one with --answer-field$/m);
    refused(['eval', '--question-field', 'prompt_text'], /field "--question-field": a field is named but no file is read\. give the file with --file/);
    refused(['train', '--answer-field', 'gold'], /field "--answer-field": a field is named but no file is read\. give the file with --set task\.source=file --set task\.file=FILE/);
  });

  it('--weights: only f32 or f16, and f16 only for a model named with --model', () => {
    refused(['infer', '--question', 'What is 2+3?', '--model', 'public/models/thor-tiny', '--weights', 'f8'], /--weights must be f32 or f16, not "f8"/);
    refused(['infer', '--question', 'What is 2+3?', '--weights', 'f16'], /--weights f16 is for real models/);
  });

  it('train: a group of one, a setting that is no knob, an existing folder, a folder that is no run', () => {
    refused(['train', '--set', 'rollout.groupSize=1', '--set', 'grpo.normalizeStd=false'], /rollout\.groupSize.*every advantage is 0/);
    refused(['train', '--set', '__proto__.groupSize=1'], /--set, field "__proto__\.groupSize": no such setting/);
    refused(['train', '--steps', 'ten'], /--steps \(steps\)".*expected a number, found "ten"/);
    mkdirSync(join(dir, 'taken'), { recursive: true });
    refused(['train', '--out', join(dir, 'taken')], /--out.*the run folder exists already/);
    refused(['train', '--resume', join(dir, 'taken')], /not a run folder.*no run\.json/);
    refused(['train', '--resume', join(dir, 'taken'), '--mode', 'sft'], /field "--mode".*keeps its folder, its model and its mode/);
    refused(['train', '--out', join(dir, 'two words')], /field "--out".*needs a plain name.*found two words/);
  });

  it('infer: a model config without its context length', () => {
    const model = join(dir, 'no-context');
    mkdirSync(model, { recursive: true });
    for (const f of ['model.safetensors', 'char_tokenizer.json']) copyFileSync(join(ROOT, DEFAULT_MODEL_DIR, f), join(model, f));
    const config = JSON.parse(readFileSync(join(ROOT, DEFAULT_MODEL_DIR, 'config.json'), 'utf8'));
    delete config.max_position_embeddings;
    writeFileSync(join(model, 'config.json'), JSON.stringify(config));
    refused(['infer', '--model', model, '--question', 'What is 2+2?'], /config\.json, field "max_position_embeddings": missing required field/);
  });
});
