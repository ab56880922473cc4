/**
 * `npm run bench -- learning [--minutes 30] [--steps N] [--variants thor,grpo,no-tools] [--test 100]`:
 * does RL with tools teach the shipped tiny model? From the same start and seed, one run per variant:
 *   thor      tools (C = 2) with THOR's step level,
 *   grpo      tools without the step level,
 *   no-tools  C = 0,
 * each for the same wall-clock budget of RL steps, evaluated greedily on the held-out synthetic test
 * split before and after; the THOR run also with self-correction at inference. Variants run side by
 * side in child processes (one each, so they share the machine equally). Writes
 * bench/results/learning.json and the THOR run's folder under runs/learning-thor/.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo, writeResult } from './lib';
import { parseRunConfig, type RunConfigInput } from '../src/core/run/config';
import { GrpoTrainer, rewardOptions } from '../src/core/rl/trainer';
import { evaluate, evalSettingsOf, evalSummary, type EvalResult } from '../src/core/eval/evaluate';
import { sandboxChecker } from '../src/core/reward/sandbox-checker';
import { createNodePythonPool } from '../src/node/python';
import { loadModel, loadProblems, nodeBackend } from '../src/node/lab';
import { RunFolder } from '../src/node/runfolder';

/** The run settings of the evidence: RunConfig defaults except where set here. */
export const LEARNING_CONFIG: RunConfigInput = {
  seed: 7,
  steps: 10_000,
  task: { testSize: 100 },
  rollout: { groupSize: 8, promptsPerStep: 6, maxToolCalls: 2, maxResponseTokens: 200 },
  optim: { lr: 5e-4 },
  grpo: { maxExtraRounds: 1 },
  eval: { everySteps: 0, temperature: 0 },
};

const VARIANTS: Record<string, RunConfigInput> = {
  thor: {},
  grpo: { stepLevel: { enabled: false } },
  'no-tools': { rollout: { ...LEARNING_CONFIG.rollout, maxToolCalls: 0 }, stepLevel: { enabled: false } },
};

interface VariantResult {
  variant: string;
  steps: number;
  minutes: number;
  before: Record<string, number | null>;
  after: Record<string, number | null>;
  selfCorrection?: Record<string, number | null>;
  table: EvalResult['table'];
  curve: { step: number; reward: number | null; code_ratio: number | null; accuracy: number | null }[];
}

function configOf(variant: string, testSize: number) {
  const v = VARIANTS[variant];
  if (!v) throw new Error(`unknown variant ${variant} (expected ${Object.keys(VARIANTS).join(', ')})`);
  return parseRunConfig({ ...LEARNING_CONFIG, ...v, task: { ...LEARNING_CONFIG.task, testSize } });
}

/** One variant, in this process: evaluate, train for the budget, evaluate again. */
export async function runVariant(variant: string, minutes: number, maxSteps: number, testSize: number, modelDir?: string): Promise<VariantResult> {
  await nodeBackend();
  const cfg = configOf(variant, testSize);
  const pool = await createNodePythonPool();
  const checker = sandboxChecker(pool);
  try {
    const data = await loadProblems(cfg);
    const m = await loadModel(modelDir);
    const env = { model: m.model, tokenizer: m.tokenizer, executor: pool, checker };
    const evalNow = (selfCorrection = false) => evaluate(env, data.test, evalSettingsOf(cfg, selfCorrection ? { selfCorrection: { ...cfg.selfCorrection } } : {}), rewardOptions(cfg));
    const before = await evalNow();
    const trainer = new GrpoTrainer(env, cfg, data.train);
    const run = variant === 'thor' ? await RunFolder.create('runs/learning-thor', 'learning-thor', cfg) : undefined;
    await run?.appendEval({ step: 0, ...evalSummary(before) });
    const curve: VariantResult['curve'] = [];
    const started = Date.now();
    let steps = 0;
    while (steps < maxSteps && Date.now() - started < minutes * 60_000) {
      const { metrics, records } = await trainer.trainStep();
      steps++;
      curve.push({ step: steps, reward: metrics.reward_mean, code_ratio: metrics.code_ratio, accuracy: metrics.accuracy });
      await run?.appendMetrics(metrics);
      if (run && steps % 10 === 0) await run.writeRollouts(steps, records);
      console.log(`[${variant}] step ${steps} reward ${metrics.reward_mean?.toFixed(3)} code ${metrics.code_ratio?.toFixed(2)} pass ${metrics.pass_ratio?.toFixed(2) ?? '—'} ${metrics.time_step_s?.toFixed(1)} s`);
    }
    const trainMinutes = (Date.now() - started) / 60_000;
    const after = await evalNow();
    const result: VariantResult = { variant, steps, minutes: trainMinutes, before: evalSummary(before), after: evalSummary(after), table: after.table, curve };
    if (variant === 'thor') result.selfCorrection = evalSummary(await evalNow(true));
    if (run) {
      await run.appendEval({ step: steps, ...evalSummary(after) });
      await run.writeCheckpoint({ config: m.model.cfg, weights: await m.model.exportWeights(), tokenizer: m.tokenizer });
      await run.writeReport('THOR Lab learning benchmark: the THOR run');
    }
    console.log(`[${variant}] ${steps} steps in ${trainMinutes.toFixed(1)} min: accuracy ${before.accuracy.toFixed(3)} -> ${after.accuracy.toFixed(3)}`);
    trainer.dispose();
    m.model.dispose();
    return result;
  } finally {
    await pool.close();
  }
}

function child(variant: string, args: string[], out: string): Promise<void> {
  const entry = fileURLToPath(new URL('./learning.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', entry, '--variant', variant, '--out', out, ...args], { stdio: 'inherit' });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`variant ${variant} exited with ${code}`))));
  });
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '30' },
      steps: { type: 'string' },
      variants: { type: 'string', default: 'thor,grpo,no-tools' },
      test: { type: 'string', default: '100' },
      model: { type: 'string' },
    },
  });
  const variants = values.variants!.split(',');
  const passOn = ['--minutes', values.minutes!, '--test', values.test!, ...(values.steps ? ['--steps', values.steps] : []), ...(values.model ? ['--model', values.model] : [])];
  const dir = mkdtempSync(join(tmpdir(), 'thor-learning-'));
  await Promise.all(variants.map((v) => child(v, passOn, join(dir, `${v}.json`))));
  const results = variants.map((v) => JSON.parse(readFileSync(join(dir, `${v}.json`), 'utf8')) as VariantResult);
  const by = Object.fromEntries(results.map((r) => [r.variant, r]));
  const summary: Record<string, number> = {};
  const first = results[0];
  summary.accuracy_before = first.before.accuracy ?? 0;
  summary.code_ratio_before = first.before.code_ratio ?? 0;
  if (by.thor) {
    summary.accuracy_after = by.thor.after.accuracy ?? 0;
    summary.code_ratio_after = by.thor.after.code_ratio ?? 0;
    summary.pass_ratio_after = by.thor.after.pass_ratio ?? 0;
    summary.accuracy_self_correction = by.thor.selfCorrection?.accuracy ?? 0;
    summary.cpu_minutes = by.thor.minutes;
    summary.rl_steps = by.thor.steps;
  }
  if (by['no-tools']) summary.accuracy_after_no_tools = by['no-tools'].after.accuracy ?? 0;
  if (by.grpo) summary.accuracy_after_no_step_level = by.grpo.after.accuracy ?? 0;
  const backend = await nodeBackend();
  writeResult('learning', summary, results, machineInfo({ backend: backend.name, budget_minutes: Number(values.minutes), variants_in_parallel: variants.length }));
}

// Child process: one variant.
if (process.argv.includes('--variant')) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { variant: { type: 'string' }, out: { type: 'string' }, minutes: { type: 'string' }, steps: { type: 'string' }, test: { type: 'string' }, model: { type: 'string' } },
  });
  const r = await runVariant(values.variant!, Number(values.minutes), values.steps ? Number(values.steps) : Infinity, Number(values.test), values.model);
  writeFileSync(values.out!, JSON.stringify(r));
  process.exit(0);
}
