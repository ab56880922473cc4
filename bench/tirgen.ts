/**
 * `npm run bench -- tirgen [--parts throughput,copy,evidence] [--questions 40] [--held-out 180]
 *  [--seeds 1,2,3] [--evidence-questions 160] [--evidence-held-out 60] [--sft-steps 40] [--sft-lr 1e-3]
 *  [--rl-steps 20] [--thor-model DIR] [--cot-model DIR]`, three parts (the two models default to the shipped
 *  ones; another folder measures a candidate the same way, into bench/results/tirgen-candidate.json):
 *   throughput  TIRGen offline (the chain-of-thought actor, the rule critic, synthetic questions):
 *               attempts and kept samples per minute, kept ratio;
 *   copy        for each shipped tiny model, the share of its greedy held-out answers whose code
 *               computes the question asked (`copy_accuracy_*`, src/core/eval/copy.ts), over every
 *               task kind and difficulty the generators make;
 *   evidence    THOR's Table 3 at lab scale (bench/tirgen/evidence.ts): one process per seed, the
 *               means over seeds `acc_<arm>` (avg@4 at T = 1) with `acc_<arm>_std`, and greedy,
 *               code and pass ratios, per arm.
 * A part left out keeps its figures and details from the previous result file, its figures listed
 * under `carried` in the details with that file's date and commit. Writes bench/results/tirgen.json.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo, RESULTS_DIR, writeResult, type BenchResult } from './lib';
import { ARMS, readSeed, type SeedEvidence } from './tirgen/evidence';
import { generateTasks, MAX_DIFFICULTY, TASK_KINDS, type Task } from '../src/core/data/tasks';
import { copyAccuracy, copyAccuracyOfCalls } from '../src/core/eval/copy';
import { LocalModel } from '../src/core/llm/local';
import { sandboxChecker } from '../src/core/reward/sandbox-checker';
import { parseTirgenSettings, RuleCritic, runTirgen } from '../src/core/tirgen';
import { selectNodeBackend } from '../src/node/backend';
import { DEFAULT_MODEL_DIR, loadModel, nodeLab } from '../src/node/lab';
import { createNodePythonPool } from '../src/node/python';

const COT_MODEL_DIR = 'public/models/thor-tiny-cot';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      parts: { type: 'string', default: 'throughput,copy,evidence' },
      questions: { type: 'string', default: '40' },
      'held-out': { type: 'string', default: '180' },
      seeds: { type: 'string', default: '1,2,3' },
      'evidence-questions': { type: 'string', default: '160' },
      'evidence-held-out': { type: 'string', default: '60' },
      'sft-steps': { type: 'string', default: '40' },
      'sft-lr': { type: 'string', default: '1e-3' },
      'rl-steps': { type: 'string', default: '20' },
      'thor-model': { type: 'string', default: DEFAULT_MODEL_DIR },
      'cot-model': { type: 'string', default: COT_MODEL_DIR },
    },
  });
  const parts = new Set(values.parts.split(','));
  for (const p of parts) if (!['throughput', 'copy', 'evidence'].includes(p)) throw new Error(`--parts: unknown part ${p} (throughput, copy, evidence)`);
  const questions = Number(values.questions);
  const heldOut = Number(values['held-out']);
  const thorDir = values['thor-model'];
  const cotDir = values['cot-model'];
  // A candidate's figures go to their own file, never under the shipped models' names.
  const candidate = thorDir !== DEFAULT_MODEL_DIR || cotDir !== COT_MODEL_DIR;
  const resultName = candidate ? 'tirgen-candidate' : 'tirgen';
  for (const [flag, dir, given] of [['--thor-model', thorDir, thorDir !== DEFAULT_MODEL_DIR], ['--cot-model', cotDir, cotDir !== COT_MODEL_DIR]] as const)
    if (given && !existsSync(join(dir, 'config.json'))) throw new Error(`${flag}: ${dir} is not a model folder (no config.json)`);
  await selectNodeBackend(['wasm', 'cpu']);
  const details: unknown[] = [];
  const summary: Record<string, number> = {};
  const previous = readPrevious(resultName);
  const carried: string[] = [];
  // A part left out keeps its figures and details from the previous result, marked as carried.
  const carry = (part: string, match: (key: string) => boolean) => {
    for (const [k, v] of Object.entries(previous?.summary ?? {})) if (match(k)) (summary[k] = v), carried.push(k);
    for (const d of previous?.details ?? []) if (d !== null && typeof d === 'object' && part in d) details.push(d);
  };

  // ---- TIRGen throughput ----
  if (!parts.has('throughput')) carry('tirgen', (k) => ['attempted_per_min', 'kept_per_min', 'kept_ratio'].includes(k));
  else {
    const pool = await createNodePythonPool();
    try {
      const actorDir = existsSync(cotDir) ? cotDir : thorDir;
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
  }

  // ---- code that computes the question asked, greedy, every kind and difficulty ----
  // Every kind and difficulty (the generator spreads a count over them).
  if (!parts.has('copy')) carry('copy', (k) => k.startsWith('copy_accuracy_') || k.startsWith('code_ratio_thor_tiny') || k.startsWith('code_ratio_cot_tiny'));
  else {
    const tasks = generateTasks({ seed: 5, count: heldOut, split: 'test', kinds: [...TASK_KINDS], difficulties: Array.from({ length: MAX_DIFFICULTY }, (_, d) => d + 1) });
    const kinds = new Map(tasks.map((t) => [t.id, t.kind]));
    const lab = await nodeLab();
    try {
      for (const [name, dir] of [['thor_tiny', thorDir], ['cot_tiny', cotDir]] as const) {
        if (!existsSync(dir)) {
          details.push({ copy: { model: dir, measured: false, why: 'no such model folder' } });
          continue;
        }
        if (name === 'cot_tiny') {
          // A model that writes no code: the code is what TIRGen's rule critic makes of its own greedy steps.
          const copy = await cotCopyAccuracy(dir, tasks, kinds);
          if (copy.share !== null) summary[`copy_accuracy_${name}`] = copy.share;
          details.push({ copy: { model: dir, questions: tasks.length, code: "TIRGen's rule critic on the model's greedy steps (1 attempt a question)", ...copy } });
          console.log(`${dir}: ${copy.computesQuestion} of ${copy.withCode} answers with code compute the question asked`);
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
  }

  // ---- THOR's Table 3 at lab scale ----
  if (!parts.has('evidence'))
    carry('evidence', (k) => /^(acc|greedy|code_ratio|pass_ratio)_/.test(k) && !/_(thor|cot)_tiny$/.test(k) ? true : ['seeds', 'evidence_minutes', 'evidence_tirgen_samples_mean'].includes(k));
  else {
    const seeds = values.seeds.split(',').map(Number);
    const dir = mkdtempSync(join(tmpdir(), 'thor-evidence-'));
    const started = performance.now();
    const runs = await Promise.all(
      seeds.map(async (seed) => {
        const out = join(dir, `seed-${seed}.json`);
        await evidenceChild([
          '--out', out, '--cot-model', cotDir, '--seed', String(seed), '--questions', values['evidence-questions'], '--held-out', values['evidence-held-out'],
          '--sft-steps', values['sft-steps'], '--sft-lr', values['sft-lr'], '--rl-steps', values['rl-steps'],
        ]);
        return readSeed(out);
      }),
    );
    const minutes = (performance.now() - started) / 60_000;
    Object.assign(summary, evidenceSummary(runs));
    summary.seeds = seeds.length;
    summary.evidence_minutes = minutes;
    details.push({ evidence: { minutes, seeds: runs } });
  }
  if (carried.length > 0) details.push({ carried, from: { date: previous?.date, commit: previous?.commit } });
  if (candidate) details.push({ candidate: { thorModel: thorDir, cotModel: cotDir } });
  writeResult(resultName, summary, details, machineInfo({ backend: 'wasm' }));
}

/** Greedy TIRGen (one attempt a question, rule critic) on the held-out tasks: does the code made of the model's steps compute the question asked? */
async function cotCopyAccuracy(dir: string, tasks: readonly Task[], kinds: ReadonlyMap<string, string>) {
  const pool = await createNodePythonPool();
  const { model, tokenizer } = await loadModel(dir);
  try {
    const printed = new Map<string, string[]>();
    await runTirgen(
      { problems: tasks.map((t) => ({ id: t.id, question: t.question, answer: t.answer })), settings: parseTirgenSettings(['attempts=1', 'temperature=0']), seed: 5 },
      {
        actor: new LocalModel(model, tokenizer, dir),
        critic: new RuleCritic(),
        executor: pool,
        checker: sandboxChecker(pool),
        onStep: (e) => {
          const list = printed.get(e.questionId) ?? [];
          for (const x of e.executions) if (x.succeeded) list.push(x.observation);
          printed.set(e.questionId, list);
        },
      },
    );
    return await copyAccuracyOfCalls(
      tasks.map((t) => ({ problemId: t.id, reference: t.answer, printed: printed.get(t.id) ?? [] })),
      (id) => kinds.get(id),
    );
  } finally {
    model.dispose();
    await pool.close();
  }
}

/** Means and spreads (sample standard deviation) over seeds, per arm; an arm no seed measured is absent. */
export function evidenceSummary(runs: readonly SeedEvidence[]): Record<string, number> {
  const out: Record<string, number> = {};
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
  for (const arm of ARMS) {
    const figures = runs.flatMap((r) => (r.arms[arm] ? [r.arms[arm]!] : []));
    if (figures.length === 0) continue;
    for (const [key, pick] of [
      ['acc', (f: (typeof figures)[number]) => f.accuracy],
      ['greedy', (f: (typeof figures)[number]) => f.greedy],
      ['code_ratio', (f: (typeof figures)[number]) => f.code_ratio],
      ['pass_ratio', (f: (typeof figures)[number]) => f.pass_ratio],
    ] as const) {
      const xs = figures.map(pick).filter((x): x is number => typeof x === 'number');
      if (xs.length === 0) continue;
      out[`${key}_${arm}`] = mean(xs);
      out[`${key}_${arm}_std`] = std(xs);
    }
  }
  const kept = runs.map((r) => r.demonstrations);
  out.evidence_tirgen_samples_mean = mean(kept);
  return out;
}

function readPrevious(name: string): BenchResult | undefined {
  const file = join(RESULTS_DIR, `${name}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as BenchResult) : undefined;
}

function evidenceChild(args: string[]): Promise<void> {
  const entry = fileURLToPath(new URL('./tirgen/evidence.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: 'inherit' });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`evidence ${args.join(' ')} exited with ${code}`))));
  });
}
