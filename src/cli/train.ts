/**
 * `npm run cli -- train`: an RL run (GRPO, or THOR with the step level) from a model folder, written
 * to a run folder: config.json, metrics.jsonl, evals.jsonl, rollouts/, checkpoint/, report.md.
 */
import { join } from 'node:path';
import { sandboxChecker } from '../core/reward/sandbox-checker';
import { GrpoTrainer } from '../core/rl/trainer';
import { evaluate, evalSettingsOf, evalSummary, evaluationDue } from '../core/eval/evaluate';
import { rewardOptions } from '../core/rl/trainer';
import { createNodePythonPool } from '../node/python';
import { loadModel, loadProblems, nodeBackend, parseBackend, DEFAULT_MODEL_DIR } from '../node/lab';
import { RunFolder } from '../node/runfolder';
import { newRunId } from '../core/run/runfile';
import { parseFlags, runConfigFrom } from './args';
import type { Subcommand } from './main';

const USAGE = 'train [--config FILE.json] [--set section.key=value ...] [--model DIR] [--out DIR] [--backend wasm|webgpu|cpu]';

export const trainCommand: Subcommand = {
  summary: 'RL-train a model with GRPO / THOR on the run config\'s tasks; writes a run folder',
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(args, { config: { type: 'string' }, set: { type: 'string', multiple: true }, model: { type: 'string' }, out: { type: 'string' }, backend: { type: 'string' } }, USAGE);
    const config = runConfigFrom(flags.config, flags.set ?? []);
    const backend = await nodeBackend(parseBackend(flags.backend));
    const { model, tokenizer } = await loadModel(flags.model ?? DEFAULT_MODEL_DIR);
    const data = await loadProblems(config);
    const pool = await createNodePythonPool({ timeoutMs: config.rollout.toolTimeoutMs });
    // The frozen reference policy for the KL term is a second copy of the starting weights.
    const reference = config.grpo.klCoef > 0 ? (await loadModel(flags.model ?? DEFAULT_MODEL_DIR)).model : undefined;
    const env = { model, tokenizer, executor: pool, checker: sandboxChecker(pool), reference };
    const name = newRunId();
    const run = await RunFolder.create(flags.out ?? join('runs', name), name, config);
    console.log(`run ${run.dir}: backend ${backend.name}, ${model.numParameters().toLocaleString()} parameters, ${data.train.length} train / ${data.test.length} test problems`);
    const trainer = new GrpoTrainer(env, config, data.train);
    const evalSettings = evalSettingsOf(config);
    const runEval = async (step: number) => {
      const r = await evaluate(env, data.test, evalSettings, rewardOptions(config));
      const row = { step, ...evalSummary(r) };
      await run.appendEval(row);
      console.log(`eval @${step}: accuracy ${r.accuracy.toFixed(3)}  code ratio ${fmt(r.metrics.code_ratio)}  pass ratio ${fmt(r.metrics.pass_ratio)}  (${r.seconds.toFixed(0)} s)`);
    };
    try {
      await runEval(0);
      const started = Date.now();
      for (let s = 1; s <= config.steps; s++) {
        const { metrics, records } = await trainer.trainStep();
        await run.appendMetrics(metrics);
        if (config.dumpRollouts) await run.writeRollouts(s, records);
        const eta = ((Date.now() - started) / s) * (config.steps - s);
        console.log(
          `step ${s}/${config.steps}  reward ${fmt(metrics.reward_mean)}  acc ${fmt(metrics.accuracy)}  code ${fmt(metrics.code_ratio)}  pass ${fmt(metrics.pass_ratio)}  ` +
            `len ${fmt(metrics.response_length_mean, 0)}  ${fmt(metrics.time_step_s, 1)} s  ETA ${(eta / 60000).toFixed(1)} min`,
        );
        if (evaluationDue(s, config.steps, config.eval.everySteps)) await runEval(s);
      }
      await run.writeCheckpoint({ config: model.cfg, weights: await model.exportWeights(), tokenizer });
      console.log(`report: ${await run.writeReport(`THOR Lab run ${name}`)}`);
      return 0;
    } finally {
      trainer.dispose();
      model.dispose();
      reference?.dispose();
      await pool.close();
    }
  },
};

function fmt(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined ? '—' : v.toFixed(digits);
}
