/**
 * `npm run bench -- learning [--minutes 30] [--steps N] [--variants thor,grpo,no-tools] [--test 100]`:
 * does RL with tools teach the shipped tiny model? From the same start, seeded runs of
 *   thor      tools (C = 2) with THOR's step level,
 *   grpo      tools without the step level,
 *   no-tools  C = 0,
 * each for the same wall-clock budget of RL steps, evaluated on the held-out synthetic test split
 * (greedy) before and after; the THOR run also with self-correction at inference.
 * Writes bench/results/learning.json and the THOR run's folder under runs/.
 */
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
  rollout: { groupSize: 8, promptsPerStep: 8, maxToolCalls: 2, maxResponseTokens: 200 },
  optim: { lr: 2e-4 },
  eval: { everySteps: 0, temperature: 0 },
};

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
  const minutes = Number(values.minutes);
  const variants = values.variants!.split(',');
  const backend = await nodeBackend();
  const pool = await createNodePythonPool();
  const checker = sandboxChecker(pool);
  const details: unknown[] = [];
  const summary: Record<string, number> = {};
  try {
    const base = parseRunConfig({ ...LEARNING_CONFIG, task: { ...LEARNING_CONFIG.task, testSize: Number(values.test) } });
    const data = await loadProblems(base);
    const evalOf = async (model: Awaited<ReturnType<typeof loadModel>>, cfg = base, selfCorrection = false): Promise<EvalResult> =>
      evaluate({ model: model.model, tokenizer: model.tokenizer, executor: pool, checker }, data.test, evalSettingsOf(cfg, selfCorrection ? { selfCorrection: { ...cfg.selfCorrection } } : {}), rewardOptions(cfg));

    const start = await loadModel(values.model);
    const before = await evalOf(start);
    console.log(`before RL: accuracy ${before.accuracy.toFixed(3)}, code ratio ${before.metrics.code_ratio}`);
    details.push({ variant: 'start', eval: evalSummary(before), table: before.table });
    summary.accuracy_before = before.accuracy;
    summary.code_ratio_before = before.metrics.code_ratio ?? 0;
    start.model.dispose();

    for (const variant of variants) {
      const overrides: RunConfigInput =
        variant === 'thor' ? {} : variant === 'grpo' ? { stepLevel: { enabled: false } } : { rollout: { ...LEARNING_CONFIG.rollout, maxToolCalls: 0 }, stepLevel: { enabled: false } };
      const cfg = parseRunConfig({ ...LEARNING_CONFIG, ...overrides, task: { ...LEARNING_CONFIG.task, testSize: Number(values.test) } });
      const m = await loadModel(values.model);
      const trainer = new GrpoTrainer({ model: m.model, tokenizer: m.tokenizer, executor: pool, checker }, cfg, data.train);
      const run = variant === 'thor' ? await RunFolder.create(`runs/learning-${variant}`, `learning-${variant}`, cfg) : undefined;
      const started = Date.now();
      const maxSteps = values.steps ? Number(values.steps) : Infinity;
      let steps = 0;
      while (steps < maxSteps && Date.now() - started < minutes * 60_000) {
        const { metrics, records } = await trainer.trainStep();
        steps++;
        await run?.appendMetrics(metrics);
        if (run && steps % 10 === 0) await run.writeRollouts(steps, records);
        console.log(`[${variant}] step ${steps} reward ${metrics.reward_mean?.toFixed(3)} code ${metrics.code_ratio?.toFixed(2)} pass ${metrics.pass_ratio?.toFixed(2) ?? '—'} ${metrics.time_step_s?.toFixed(1)} s`);
      }
      const cpuMinutes = (Date.now() - started) / 60_000;
      const after = await evalOf(m, cfg);
      console.log(`[${variant}] after ${steps} steps (${cpuMinutes.toFixed(1)} min): accuracy ${after.accuracy.toFixed(3)}, code ratio ${after.metrics.code_ratio}`);
      const entry: Record<string, unknown> = { variant, steps, minutes: cpuMinutes, eval: evalSummary(after), table: after.table };
      if (variant === 'thor') {
        summary.accuracy_after = after.accuracy;
        summary.code_ratio_after = after.metrics.code_ratio ?? 0;
        summary.pass_ratio_after = after.metrics.pass_ratio ?? 0;
        summary.cpu_minutes = cpuMinutes;
        summary.rl_steps = steps;
        const corrected = await evalOf(m, cfg, true);
        summary.accuracy_self_correction = corrected.accuracy;
        entry.selfCorrection = evalSummary(corrected);
        if (run) {
          await run.appendEval({ step: 0, ...evalSummary(before) });
          await run.appendEval({ step: steps, ...evalSummary(after) });
          await run.writeCheckpoint({ config: m.model.cfg, weights: await m.model.exportWeights(), tokenizer: m.tokenizer });
          await run.writeReport('THOR Lab learning benchmark: THOR run');
        }
      } else if (variant === 'grpo') summary.accuracy_after_no_step_level = after.accuracy;
      else summary.accuracy_after_no_tools = after.accuracy;
      details.push(entry);
      trainer.dispose();
      m.model.dispose();
    }
  } finally {
    await pool.close();
  }
  writeResult('learning', summary, details, machineInfo({ backend: backend.name, budget_minutes: minutes }));
}
