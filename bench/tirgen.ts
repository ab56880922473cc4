/**
 * `npm run bench -- tirgen [--questions 40] [--held-out 180]`: TIRGen's throughput offline (the
 * shipped actor, the rule critic, synthetic questions: attempts and kept samples per minute, kept
 * ratio), and, for each shipped tiny model, the share of its greedy held-out answers whose code
 * computes the question asked (`copy_accuracy_*`, src/core/eval/copy.ts), over every task kind and
 * difficulty the generators make. THOR's Table 3 at lab scale (acc_cot, acc_sft_tirgen, ...) is not
 * measured by this benchmark yet: its figures are absent, not zero.
 * Writes bench/results/tirgen.json.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { machineInfo, writeResult } from './lib';
import { generateTasks, MAX_DIFFICULTY, TASK_KINDS } from '../src/core/data/tasks';
import { copyAccuracy } from '../src/core/eval/copy';
import { LocalModel } from '../src/core/llm/local';
import { sandboxChecker } from '../src/core/reward/sandbox-checker';
import { parseTirgenSettings, RuleCritic, runTirgen } from '../src/core/tirgen';
import { selectNodeBackend } from '../src/node/backend';
import { DEFAULT_MODEL_DIR, loadModel, nodeLab } from '../src/node/lab';
import { createNodePythonPool } from '../src/node/python';

const COT_MODEL_DIR = 'public/models/thor-tiny-cot';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { questions: { type: 'string', default: '40' }, 'held-out': { type: 'string', default: '180' } } });
  const questions = Number(values.questions);
  const heldOut = Number(values['held-out']);
  await selectNodeBackend(['wasm', 'cpu']);
  const details: unknown[] = [];
  const summary: Record<string, number> = {};

  // ---- TIRGen throughput ----
  const pool = await createNodePythonPool();
  try {
    const actorDir = existsSync(COT_MODEL_DIR) ? COT_MODEL_DIR : DEFAULT_MODEL_DIR;
    const { model, tokenizer } = await loadModel(actorDir);
    const actor = new LocalModel(model, tokenizer, actorDir);
    const problems = generateTasks({ seed: 11, count: questions, split: 'train' }).map((t) => ({ id: t.id, question: t.question, answer: t.answer }));
    const started = performance.now();
    const { report } = await runTirgen({ problems, settings: parseTirgenSettings([]), seed: 11 }, { actor, critic: new RuleCritic(), executor: pool, checker: sandboxChecker(pool) });
    const minutes = (performance.now() - started) / 60_000;
    model.dispose();
    summary.attempted_per_min = report.counts.attempts / minutes;
    summary.kept_per_min = report.counts.kept / minutes;
    summary.kept_ratio = report.keptRatio;
    details.push({ tirgen: { actor: actorDir, critic: 'rule', questions, minutes, counts: report.counts } });
    console.log(`tirgen: ${questions} questions, ${report.counts.attempts} attempts, kept ${report.counts.kept} in ${(minutes * 60).toFixed(1)} s`);
  } finally {
    await pool.close();
  }

  // ---- code that computes the question asked, greedy, every kind and difficulty ----
  // Every kind and difficulty (the generator spreads a count over them).
  const tasks = generateTasks({ seed: 5, count: heldOut, split: 'test', kinds: [...TASK_KINDS], difficulties: Array.from({ length: MAX_DIFFICULTY }, (_, d) => d + 1) });
  const kinds = new Map(tasks.map((t) => [t.id, t.kind]));
  const lab = await nodeLab();
  try {
    for (const [name, dir] of [['thor_tiny', DEFAULT_MODEL_DIR], ['cot_tiny', COT_MODEL_DIR]] as const) {
      if (!existsSync(dir)) {
        details.push({ copy: { model: dir, measured: false, why: 'no such model folder' } });
        continue;
      }
      await lab.loadModel({ kind: 'path', path: dir });
      const r = await lab.evaluate({ problems: tasks.map((t) => ({ id: t.id, question: t.question, answer: t.answer, source: 'synthetic', kind: t.kind, difficulty: t.difficulty })), label: 'held-out', settings: { eval: { samples: 1, temperature: 0 } } });
      const copy = await copyAccuracy(r.records, (id) => kinds.get(id));
      if (copy.share !== null) summary[`copy_accuracy_${name}`] = copy.share;
      summary[`code_ratio_${name}`] = r.summary.code_ratio ?? 0;
      details.push({ copy: { model: dir, questions: tasks.length, accuracy: r.summary.accuracy, ...copy } });
      console.log(`${dir}: ${copy.computesQuestion} of ${copy.withCode} answers with code compute the question asked`);
    }
  } finally {
    await lab.close();
  }
  details.push({ table3: 'not measured by this benchmark yet: acc_cot, acc_sft_tirgen, acc_sft_template, acc_grpo, acc_thor, acc_thor_selfcorr are absent' });
  writeResult('tirgen', summary, details, machineInfo({ backend: 'wasm' }));
}
