/**
 * `npm run cli -- eval`: evaluates the lab's model (a folder) or an OpenAI-compatible endpoint on the
 * synthetic test split or a benchmark file: avg@k, maj@k, pass@k, THOR's self-rewarded best-of-N,
 * code and pass ratios, and THOR's code-succeeded × answer-correct table with its χ² and p-value
 * (docs/evaluation.md). With --log, each problem is appended to a per-problem log as it finishes;
 * --resume goes on from that log.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { configProblems } from '../core/lab/service';
import { checkResume, logHeaderLine, logProblemLine, parseEvalLog, type EvalLog } from '../core/eval/log';
import { LabError } from '../core/errors';
import { CONTROL } from '../core/lab/control';
import { nodeLab, parseBackend, readProblemsFile } from '../node/lab';
import { configFrom, countFlag, mappingFrom, MAPPING_OPTIONS, parseFlags } from './args';
import type { Subcommand } from './command';
import { ENDPOINT_FLAGS, endpointFrom } from './endpoint';
import { etaText } from './progress';
import { loadCliModel } from './model-source';
import { copyAccuracy } from '../core/eval/copy';

const USAGE =
  'eval [--model DIR|hf:OWNER/NAME[@REV] [--weights f32|f16] | --endpoint URL --endpoint-model NAME [--api-key KEY] [--concurrency N] [--prompt chat|text]] [--file BENCH.jsonl [--question-field F] [--answer-field F] [--id-field F]] [--limit N] [--samples K] [--temperature T] [--max-tokens N] [--seed N] [--self-correction] [--no-tools] [--set section.key=value ...] [--log LOG.jsonl [--resume]] [--out RECORDS.jsonl] [--backend wasm|webgpu|cpu]';

export const evalCommand: Subcommand = {
  summary: 'evaluate a model or an endpoint on the test split or a benchmark file (avg@k, maj@k, best-of-N, code × correct table)',
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        model: { type: 'string' },
        weights: { type: 'string' },
        ...ENDPOINT_FLAGS,
        concurrency: { type: 'string' },
        file: { type: 'string' },
        ...MAPPING_OPTIONS,
        limit: { type: 'string' },
        samples: { type: 'string' },
        temperature: { type: 'string' },
        'max-tokens': { type: 'string' },
        seed: { type: 'string' },
        'self-correction': { type: 'boolean' },
        'no-tools': { type: 'boolean' },
        set: { type: 'string', multiple: true },
        log: { type: 'string' },
        resume: { type: 'boolean' },
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
    const endpoint = endpointFrom(flags);
    if (flags.resume && !flags.log) throw new LabError('cli-args', '--resume needs --log (the log to go on from)', { field: '--resume' });
    const limit = countFlag(flags.limit, '--limit');
    const mapping = mappingFrom(flags, { given: flags.file !== undefined, by: '--file' });
    const problems = (flags.file ? (await readProblemsFile(flags.file, { mapping })).problems : await configProblems(config, 'test')).slice(0, limit);
    const label = flags.file ?? 'test split';
    const lab = await nodeLab({ backend: parseBackend(flags.backend) });
    try {
      // The prompt form is part of what is evaluated: a resume must use the same.
      const model = endpoint ? `${endpoint.model} @ ${endpoint.baseURL}${endpoint.prompt === 'text' ? ' (text prompts)' : ''}` : (await loadCliModel(lab, flags.model, flags.weights)).label;
      const header = { label, model, settings: input as Record<string, unknown>, problems: problems.length, samples: config.eval.samples };
      let previous: EvalLog | undefined;
      if (flags.log && !flags.resume && (await readFile(flags.log, 'utf8').then(() => true, () => false))) {
        throw new LabError('cli-args', 'the log already exists', { file: flags.log, hint: 'add --resume to go on from it, or remove it or name another to start anew' });
      }
      if (flags.log && flags.resume) {
        const text = await readFile(flags.log, 'utf8').catch(() => undefined);
        if (text === undefined) console.error(`no log at ${flags.log} yet: starting a new one`);
        else {
          previous = parseEvalLog(text, flags.log);
          checkResume(previous, header, flags.log);
          console.error(`resuming: ${previous.problems.length} of ${problems.length} problems already in ${flags.log}`);
        }
      }
      // A resumed log is written anew with what it kept: a line cut short by a kill must not run into the next.
      if (flags.log) await writeFile(flags.log, previous ? logHeaderLine(previous.header) + previous.problems.map(logProblemLine).join('') : logHeaderLine({ type: 'eval-log', version: 1, createdAt: new Date().toISOString(), ...header }));
      // Appends go one after another, so lines never interleave; the first that fails stops the evaluation.
      let writing = Promise.resolve();
      let writeError: unknown;
      const started = Date.now();
      let startDone: number | undefined;
      try {
        const r = await lab.evaluate({ problems, label, settings: input, endpoint, resume: previous?.problems }, (e) => {
          if (e.type === 'problem' && flags.log) {
            const line = logProblemLine(e.log);
            writing = writing
              .then(() => (writeError === undefined ? appendFile(flags.log!, line) : undefined))
              .catch((err: unknown) => {
                if (writeError !== undefined) return;
                writeError = err;
                console.error(`\nerror: cannot append to ${flags.log}: ${(err as Error).message}; stopping`);
                void lab.setControl(CONTROL.stop);
              });
          }
          if (e.type === 'message') console.error(e.text);
          if (e.type !== 'progress') return;
          startDone ??= e.done;
          process.stderr.write(`\r${e.done}/${e.total} samples${etaText(started, e.done - startDone, e.total - startDone)}   `);
        });
        process.stderr.write('\n');
        // Of the answers with code, those one of whose calls printed the reference: the code computed the question asked (docs/evaluation.md#code-that-computes-the-question).
        const copy = await copyAccuracy(r.records);
        console.log(JSON.stringify({ model: r.model, ...r.summary, computes_question: copy.share, table: r.table }, null, 2));
        if (flags.out) await writeFile(flags.out, r.records.map((x) => JSON.stringify(x)).join('\n') + '\n');
        return 0;
      } finally {
        await writing;
        if (writeError !== undefined) throw new LabError('files', `the per-problem log could not be written: ${(writeError as Error).message}`, { file: flags.log });
      }
    } finally {
      await lab.close();
    }
  },
};
