/**
 * `npm run cli -- compare A.jsonl B.jsonl`: two evaluations' per-problem logs (eval --log) problem by
 * problem: accuracies on the problems both have, which problems each got right that the other did
 * not, and an exact sign test on those (docs/evaluation.md).
 */
import { readFile } from 'node:fs/promises';
import { parseEvalLog, problemOutcome } from '../core/eval/log';
import { compareRuns } from '../core/eval/metrics';
import { LabError } from '../core/errors';
import { parseArgs } from 'node:util';
import type { Subcommand } from './command';

const USAGE = 'compare A.jsonl B.jsonl [--json] [--show N]';

export const compareCommand: Subcommand = {
  summary: "compare two evaluations' per-problem logs problem by problem (sign test)",
  usage: USAGE,
  run: async (args) => {
    let parsed;
    try {
      parsed = parseArgs({ args, options: { json: { type: 'boolean' }, show: { type: 'string' } }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new LabError('cli-args', (e as Error).message.replace(/\s*\n\s*/g, ' '), { hint: `usage: npm run cli -- ${USAGE}` });
    }
    const files = parsed.positionals;
    if (files.length !== 2) throw new LabError('cli-args', 'compare takes two per-problem logs', { expected: 'A.jsonl B.jsonl', found: files.join(' ') || 'nothing', hint: 'write them with eval --log' });
    const [a, b] = await Promise.all(
      files.map(async (f) => {
        const text = await readFile(f, 'utf8').catch((e: Error) => {
          throw new LabError('files', `cannot read the log: ${e.message}`, { file: f });
        });
        return parseEvalLog(text, f);
      }),
    );
    const c = compareRuns(a.problems.map(problemOutcome), b.problems.map(problemOutcome));
    if (parsed.values.json) {
      console.log(JSON.stringify({ a: { file: files[0], model: a.header.model, label: a.header.label }, b: { file: files[1], model: b.header.model, label: b.header.label }, ...c }, null, 2));
      return 0;
    }
    const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);
    console.log(`A: ${files[0]} (${a.header.model} on ${a.header.label})`);
    console.log(`B: ${files[1]} (${b.header.model} on ${b.header.label})`);
    console.log(`${c.shared} problems in both${c.onlyInA || c.onlyInB ? ` (${c.onlyInA} only in A, ${c.onlyInB} only in B)` : ''}`);
    console.log(`accuracy A ${pct(c.accuracyA)}  B ${pct(c.accuracyB)}`);
    console.log(`A better on ${c.aBetter}, B better on ${c.bBetter}, equal on ${c.ties}; sign test p = ${c.pValue === null ? '—' : c.pValue.toPrecision(3)}`);
    const show = parsed.values.show === undefined ? 10 : Number(parsed.values.show);
    const questions = new Map(a.problems.map((p) => [p.problemId, p.question]));
    for (const d of c.differences.slice(0, show)) console.log(`  ${d.problemId}: A ${pct(d.a)} B ${pct(d.b)}  ${(questions.get(d.problemId) ?? '').replace(/\s+/g, ' ').slice(0, 70)}`);
    return 0;
  },
};
