/**
 * `npm run cli -- eval`: evaluates a model folder on the synthetic test split or a benchmark file
 * (GSM8K / MATH style JSON lines): avg@k, maj@k, pass@k, code and pass ratios, and THOR's
 * code-succeeded × answer-correct table.
 */
import { writeFile } from 'node:fs/promises';
import { sandboxChecker } from '../core/reward/sandbox-checker';
import { evaluate, evalSettingsOf, evalSummary } from '../core/eval/evaluate';
import { rewardOptions } from '../core/rl/trainer';
import { createNodePythonPool } from '../node/python';
import { loadModel, loadProblems, nodeBackend, parseBackend, readProblemsFile, DEFAULT_MODEL_DIR } from '../node/lab';
import { numberFlag, parseFlags, runConfigFrom } from './args';
import type { Subcommand } from './main';

const USAGE =
  'eval [--model DIR] [--file BENCH.jsonl] [--limit N] [--samples K] [--temperature T] [--self-correction] [--no-tools] [--set section.key=value ...] [--out FILE.jsonl] [--backend wasm|webgpu|cpu]';

export const evalCommand: Subcommand = {
  summary: 'evaluate a model on the test split or a benchmark file (avg@k, maj@k, code × correct table)',
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        model: { type: 'string' },
        file: { type: 'string' },
        limit: { type: 'string' },
        samples: { type: 'string' },
        temperature: { type: 'string' },
        'self-correction': { type: 'boolean' },
        'no-tools': { type: 'boolean' },
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        backend: { type: 'string' },
      },
      USAGE,
    );
    const sets = [...(flags.set ?? [])];
    if (flags['no-tools']) sets.push('rollout.maxToolCalls=0', 'stepLevel.enabled=false');
    const config = runConfigFrom(undefined, sets);
    await nodeBackend(parseBackend(flags.backend));
    const { model, tokenizer } = await loadModel(flags.model ?? DEFAULT_MODEL_DIR);
    const problems = flags.file ? (await readProblemsFile(flags.file)).problems : (await loadProblems(config)).test;
    const limited = problems.slice(0, numberFlag(flags.limit, '--limit', problems.length));
    const pool = await createNodePythonPool({ timeoutMs: config.rollout.toolTimeoutMs });
    try {
      const temperature = numberFlag(flags.temperature, '--temperature', config.eval.temperature)!;
      // Greedy decoding gives one answer however often it is asked: k = 1 unless --samples says otherwise.
      const samples = numberFlag(flags.samples, '--samples', temperature === 0 ? 1 : config.eval.samples);
      const settings = evalSettingsOf(config, {
        samples,
        temperature,
        ...(flags['self-correction'] ? { selfCorrection: { ...config.selfCorrection } } : {}),
      });
      const r = await evaluate({ model, tokenizer, executor: pool, checker: sandboxChecker(pool), onProgress: (d, t) => process.stderr.write(`\r${d}/${t}`) }, limited, settings, rewardOptions(config));
      process.stderr.write('\n');
      console.log(JSON.stringify({ ...evalSummary(r), table: r.table }, null, 2));
      if (flags.out) await writeFile(flags.out, r.records.map((x) => JSON.stringify(x)).join('\n') + '\n');
      return 0;
    } finally {
      model.dispose();
      await pool.close();
    }
  },
};
