/**
 * `npm run cli -- eval`: evaluates a model folder on the synthetic test split or a benchmark file
 * (GSM8K / MATH style JSON lines): avg@k, maj@k, pass@k, code and pass ratios, and THOR's
 * code-succeeded × answer-correct table (docs/evaluation.md).
 */
import { writeFile } from 'node:fs/promises';
import { configProblems } from '../core/lab/service';
import { nodeLab, parseBackend, readProblemsFile } from '../node/lab';
import { configFrom, countFlag, parseFlags } from './args';
import type { Subcommand } from './command';

const USAGE =
  'eval [--model DIR] [--file BENCH.jsonl] [--limit N] [--samples K] [--temperature T] [--max-tokens N] [--seed N] [--self-correction] [--no-tools] [--set section.key=value ...] [--out FILE.jsonl] [--backend wasm|webgpu|cpu]';

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
        'max-tokens': { type: 'string' },
        seed: { type: 'string' },
        'self-correction': { type: 'boolean' },
        'no-tools': { type: 'boolean' },
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        backend: { type: 'string' },
      },
      USAGE,
    );
    // Greedy decoding gives one answer however often it is asked: --temperature 0 alone means k = 1.
    const greedyAlone = flags.temperature !== undefined && Number(flags.temperature) === 0 && flags.samples === undefined;
    const { config, input } = configFrom(
      {
        sets: flags.set,
        flags: [
          { flag: '--samples', path: 'eval.samples', value: greedyAlone ? '1' : flags.samples },
          { flag: '--temperature', path: 'eval.temperature', value: flags.temperature },
          { flag: '--max-tokens', path: 'rollout.maxResponseTokens', value: flags['max-tokens'] },
          { flag: '--seed', path: 'seed', value: flags.seed },
          { flag: '--self-correction', path: 'eval.selfCorrection', value: flags['self-correction'] },
          { flag: '--no-tools', path: 'rollout.maxToolCalls', value: flags['no-tools'] ? '0' : undefined },
        ],
      },
      'evaluation',
    );
    const limit = countFlag(flags.limit, '--limit');
    const problems = flags.file ? (await readProblemsFile(flags.file, config.task.maxQuestionTokens)).problems : await configProblems(config, 'test');
    const lab = await nodeLab({ backend: parseBackend(flags.backend) });
    try {
      await lab.loadModel(flags.model ? { kind: 'path', path: flags.model } : { kind: 'shipped' });
      const started = Date.now();
      const r = await lab.evaluate({ problems: problems.slice(0, limit), label: flags.file ?? 'test split', settings: input }, (e) => {
        if (e.type !== 'progress') return;
        const eta = e.done > 0 ? ((Date.now() - started) / e.done) * (e.total - e.done) : NaN;
        process.stderr.write(`\r${e.done}/${e.total} rollouts${Number.isFinite(eta) ? `, ETA ${(eta / 1000).toFixed(0)} s` : ''}   `);
      });
      process.stderr.write('\n');
      console.log(JSON.stringify({ ...r.summary, table: r.table }, null, 2));
      if (flags.out) await writeFile(flags.out, r.records.map((x) => JSON.stringify(x)).join('\n') + '\n');
      return 0;
    } finally {
      await lab.close();
    }
  },
};
