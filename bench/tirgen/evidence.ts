/**
 * THOR's Table 3 at lab scale (docs/tirgen.md#table-3-at-lab-scale): which cold-start data serves a
 * policy better, data in its own style (TIRGen) or template tool-use demonstrations? For one seed,
 * from the chain-of-thought tiny model, through the lab service as a user would run it:
 *   cot            the model alone;
 *   sft_tirgen     SFT on its own TIRGen data (rule critic, synthetic training questions);
 *   sft_template   SFT on as many template tool-use demonstrations of the same questions;
 *   grpo           sft_tirgen + GRPO (no step level);
 *   thor           sft_tirgen + THOR (GRPO with the step level);
 *   thor_selfcorr  thor, answering with self-correction.
 * Each is evaluated on the same held-out questions: avg@4 at T = 1, greedy, code and pass ratios and
 * the code × answer table. `runSeed` does one seed; `npm run bench -- tirgen` runs the seeds as
 * separate processes (one core of tfjs each) through `main` below and writes the means and spreads.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateTasks, type Task } from '../../src/core/data/tasks';
import type { CodeCorrectnessTable } from '../../src/core/eval/metrics';
import type { Problem } from '../../src/core/data/types';
import type { LabService } from '../../src/core/lab/service';
import { LocalModel } from '../../src/core/llm/local';
import { sandboxChecker } from '../../src/core/reward/sandbox-checker';
import { createRng } from '../../src/core/rng';
import { buildDemonstrations, readDemonstrationsJsonl, type Demonstration } from '../../src/core/tir/demonstrations';
import { parseTirgenSettings, RuleCritic, runTirgen, sampleLine } from '../../src/core/tirgen';
import { selectNodeBackend } from '../../src/node/backend';
import { loadModel, nodeLab } from '../../src/node/lab';
import { createNodePythonPool } from '../../src/node/python';
import { DiskRunStore } from '../../src/node/runstore';

export const ARMS = ['cot', 'sft_tirgen', 'sft_template', 'grpo', 'thor', 'thor_selfcorr'] as const;
export type Arm = (typeof ARMS)[number];

export interface EvidenceOptions {
  /** The chain-of-thought model every arm starts from. */
  cotModel: string;
  seed: number;
  /** Synthetic training questions TIRGen is run on. */
  questions: number;
  /** Held-out questions (the same for every seed). */
  heldOut: number;
  sftSteps: number;
  sftLr: number;
  rlSteps: number;
}

export interface ArmFigures {
  /** avg@4 at T = 1. */
  accuracy: number;
  greedy: number;
  code_ratio: number | null;
  pass_ratio: number | null;
  table: CodeCorrectnessTable;
  minutes: number;
}

export interface SeedEvidence {
  seed: number;
  options: EvidenceOptions;
  tirgen: { kept: number; attempts: number; keptRatio: number; minutes: number; calls: Record<string, number> };
  demonstrations: number;
  arms: Partial<Record<Arm, ArmFigures>>;
  /** Why an arm was not measured (e.g. TIRGen kept nothing to train on). */
  skipped: Partial<Record<Arm, string>>;
  minutes: number;
}

/** The held-out questions: the synthetic test split, every kind, difficulties 1 to 3, one fixed seed for all runs. */
export function heldOutProblems(count: number): Problem[] {
  return generateTasks({ seed: 5, count, split: 'test', difficulties: [1, 2, 3] }).map((t) => ({ id: t.id, question: t.question, answer: t.answer, source: 'synthetic', kind: t.kind, difficulty: t.difficulty }));
}

async function measure(lab: LabService, problems: Problem[], label: string, seed: number, selfCorrection: boolean): Promise<ArmFigures> {
  const started = performance.now();
  const sampled = await lab.evaluate({ problems, label, settings: { seed, eval: { samples: 4, temperature: 1, selfCorrection } } });
  const greedy = await lab.evaluate({ problems, label: `${label} (greedy)`, settings: { seed, eval: { samples: 1, temperature: 0, selfCorrection } } });
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    accuracy: num(sampled.summary.accuracy) ?? 0,
    greedy: num(greedy.summary.accuracy) ?? 0,
    code_ratio: num(sampled.summary.code_ratio),
    pass_ratio: num(sampled.summary.pass_ratio),
    table: sampled.table,
    minutes: (performance.now() - started) / 60_000,
  };
}

/** One seed of the comparison, every arm in turn; runs are kept in a temporary folder and removed. */
export async function runSeed(o: EvidenceOptions, log: (line: string) => void = console.log): Promise<SeedEvidence> {
  const t0 = performance.now();
  await selectNodeBackend(['wasm', 'cpu']);
  const dir = mkdtempSync(join(tmpdir(), 'thor-evidence-'));
  const store = new DiskRunStore(dir);
  const lab = await nodeLab({ store });
  const pool = await createNodePythonPool();
  const arms: SeedEvidence['arms'] = {};
  const skipped: SeedEvidence['skipped'] = {};
  const problems = heldOutProblems(o.heldOut);
  try {
    // ---- TIRGen data from the chain-of-thought model's own steps ----
    const tStart = performance.now();
    const tasks = generateTasks({ seed: o.seed, count: o.questions, split: 'train', difficulties: [1, 2, 3] });
    const { model, tokenizer } = await loadModel(o.cotModel);
    const actor = new LocalModel(model, tokenizer, o.cotModel);
    const { report, results } = await runTirgen(
      { problems: tasks.map((t) => ({ id: t.id, question: t.question, answer: t.answer })), settings: parseTirgenSettings([]), seed: o.seed },
      { actor, critic: new RuleCritic(), executor: pool, checker: sandboxChecker(pool) },
    );
    model.dispose();
    const data = results.flatMap((r) => r.samples.map((s) => sampleLine(s, { actor: o.cotModel, critic: 'rule' }))).join('');
    // The lab's SFT reads TIRGen's data.jsonl as it is.
    const tirgenDemos = readDemonstrationsJsonl(data, 'data.jsonl').demonstrations;
    const tirgen = { kept: report.counts.kept, attempts: report.counts.attempts, keptRatio: report.keptRatio, minutes: (performance.now() - tStart) / 60_000, calls: report.counts.calls };
    log(`seed ${o.seed}: TIRGen kept ${tirgen.kept} of ${tirgen.attempts} attempts on ${o.questions} questions in ${tirgen.minutes.toFixed(1)} min`);

    // ---- as many template demonstrations, of the same questions, all with a tool call ----
    const keptIds = new Set(results.flatMap((r) => r.samples.map((s) => s.id)));
    const keptTasks = tasks.filter((t) => keptIds.has(t.id));
    const outputs = new Map<string, string>();
    for (const t of keptTasks) {
      const r = await pool.run(t.program, { timeoutMs: 10_000 });
      if (r.status === 'ok' && r.stdout.trim() !== '') outputs.set(t.program, r.stdout);
    }
    const templateDemos: Demonstration[] = buildDemonstrations(keptTasks, outputs, 1, createRng(o.seed).fork('template')).map(({ question, response }) => ({ question, response }));

    const sft = async (runId: string, demonstrations: Demonstration[]) => {
      await lab.loadModel({ kind: 'path', path: o.cotModel });
      await lab.train({ config: { mode: 'sft', seed: o.seed, sft: { steps: o.sftSteps, lr: o.sftLr, warmupSteps: Math.min(5, o.sftSteps) } }, runId, name: runId, demonstrations, test: [] });
      await lab.loadModel({ kind: 'stored', runId });
    };
    const rl = async (runId: string, stepLevel: boolean) => {
      await lab.loadModel({ kind: 'stored', runId: 'sft-tirgen' });
      await lab.train({ config: { mode: 'rl', seed: o.seed, steps: o.rlSteps, checkpointEvery: o.rlSteps, dumpRollouts: false, rollout: { promptsPerStep: 6, maxResponseTokens: 200 }, stepLevel: { enabled: stepLevel }, eval: { everySteps: 0 } }, runId, name: runId, test: [] });
      await lab.loadModel({ kind: 'stored', runId });
    };
    const note = (arm: Arm) => log(`seed ${o.seed}: ${arm}: avg@4 ${arms[arm]!.accuracy.toFixed(3)}, greedy ${arms[arm]!.greedy.toFixed(3)}, code ${arms[arm]!.code_ratio?.toFixed(2)}, pass ${arms[arm]!.pass_ratio?.toFixed(2)}`);

    await lab.loadModel({ kind: 'path', path: o.cotModel });
    arms.cot = await measure(lab, problems, 'cot', o.seed, false);
    note('cot');
    if (tirgenDemos.length === 0) {
      for (const arm of ARMS.slice(1)) skipped[arm] = 'TIRGen kept no sample to train on';
    } else {
      await sft('sft-tirgen', tirgenDemos);
      arms.sft_tirgen = await measure(lab, problems, 'sft_tirgen', o.seed, false);
      note('sft_tirgen');
      await sft('sft-template', templateDemos);
      arms.sft_template = await measure(lab, problems, 'sft_template', o.seed, false);
      note('sft_template');
      await rl('grpo', false);
      arms.grpo = await measure(lab, problems, 'grpo', o.seed, false);
      note('grpo');
      await rl('thor', true);
      arms.thor = await measure(lab, problems, 'thor', o.seed, false);
      note('thor');
      arms.thor_selfcorr = await measure(lab, problems, 'thor_selfcorr', o.seed, true);
      note('thor_selfcorr');
    }
    return { seed: o.seed, options: o, tirgen, demonstrations: tirgenDemos.length, arms, skipped, minutes: (performance.now() - t0) / 60_000 };
  } finally {
    await pool.close();
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run as a child process: `tsx bench/tirgen/evidence.ts --out FILE --seed N ...` writes one seed's evidence as JSON. */
async function child(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      'cot-model': { type: 'string' },
      seed: { type: 'string' },
      questions: { type: 'string' },
      'held-out': { type: 'string' },
      'sft-steps': { type: 'string' },
      'sft-lr': { type: 'string' },
      'rl-steps': { type: 'string' },
    },
  });
  const o: EvidenceOptions = {
    cotModel: values['cot-model']!,
    seed: Number(values.seed),
    questions: Number(values.questions),
    heldOut: Number(values['held-out']),
    sftSteps: Number(values['sft-steps']),
    sftLr: Number(values['sft-lr']),
    rlSteps: Number(values['rl-steps']),
  };
  const r = await runSeed(o, (line) => console.log(line));
  writeFileSync(values.out!, JSON.stringify(r));
}

export function readSeed(file: string): SeedEvidence {
  return JSON.parse(readFileSync(file, 'utf8')) as SeedEvidence;
}

if (process.argv[1]?.endsWith('evidence.ts')) {
  child(process.argv.slice(2)).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
