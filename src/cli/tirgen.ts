/**
 * `npm run cli -- tirgen`: THOR's TIRGen (docs/tirgen.md). The actor (the shipped model, a model
 * folder or an endpoint) writes each answer a step at a time; the critic (the rules, a model folder or
 * an endpoint) rewrites each step's computation as Python that the lab runs; the filtered samples go
 * to DIR/data.jsonl (for `train --mode sft --sft-file`), DIR/messages.jsonl (chat, for TRL or verl)
 * and DIR/report.json. --resume goes on from DIR/progress.jsonl. Progress and the ETA go to stderr.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateTasks } from '../core/data/tasks';
import { LabError } from '../core/errors';
import { EndpointModel } from '../core/llm/client';
import { LocalModel } from '../core/llm/local';
import type { TextModel } from '../core/llm/types';
import { sandboxChecker } from '../core/reward/sandbox-checker';
import { ModelCritic, parseTirgenSettings, problemsOfFile, reportSummary, RuleCritic, runTirgen, type Critic, type StepEvent, type TirgenInput, type TirgenProblem } from '../core/tirgen';
import { selectNodeBackend } from '../node/backend';
import { DEFAULT_MODEL_DIR, loadModel, parseBackend, readProblemsFile } from '../node/lab';
import { createNodePythonPool } from '../node/python';
import { openTirgenFolder } from '../node/tirgen';
import { countFlag, mappingFrom, MAPPING_OPTIONS, parseFlags } from './args';
import type { Subcommand } from './command';
import { etaText } from './progress';

const USAGE =
  'tirgen (--file PROBLEMS [--question-field F] [--answer-field F] [--id-field F] | --synthetic N) [--limit N] [--actor-model DIR | --actor-endpoint URL --actor-endpoint-model NAME [--actor-api-key KEY]] [--critic rule | --critic-model DIR | --critic-endpoint URL --critic-endpoint-model NAME [--critic-api-key KEY]] [--critic-prompt FILE] [--out DIR] [--resume] [--seed N] [--set tirgen.key=value ...] [--verbose] [--backend wasm|webgpu|cpu]';

/** Where runs go unless --out says otherwise. */
export const DEFAULT_TIRGEN_DIR = 'runs/tirgen';

const oneLine = (s: string, max = 160) => {
  const t = JSON.stringify(s);
  return t.length > max ? `${t.slice(0, max - 1)}…"` : t;
};

/** A step, before and after, for --verbose. */
export function renderStep(e: StepEvent): string {
  const lines = [`[${e.questionId} #${e.attempt} step ${e.step}] ${e.verdict}${e.reason ? ` (${e.reason})` : ''}`, `  actor:  ${oneLine(e.actor)}`];
  if (e.critic !== undefined && e.verdict !== 'unchanged') lines.push(`  critic: ${oneLine(e.critic)}`);
  for (const x of e.executions) lines.push(`  code:   ${oneLine(x.code)} -> ${x.status}: ${oneLine(x.observation, 80)}`);
  if (e.appended && e.verdict === 'rewrite') lines.push(`  now:    ${oneLine(e.appended)}`);
  return lines.join('\n');
}

export const tirgenCommand: Subcommand = {
  summary: "THOR's TIRGen: the actor writes step by step, the critic turns each step's computation into Python the lab runs; filtered samples for SFT",
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        file: { type: 'string' },
        ...MAPPING_OPTIONS,
        synthetic: { type: 'string' },
        limit: { type: 'string' },
        'actor-model': { type: 'string' },
        'actor-endpoint': { type: 'string' },
        'actor-endpoint-model': { type: 'string' },
        'actor-api-key': { type: 'string' },
        critic: { type: 'string' },
        'critic-model': { type: 'string' },
        'critic-endpoint': { type: 'string' },
        'critic-endpoint-model': { type: 'string' },
        'critic-api-key': { type: 'string' },
        'critic-prompt': { type: 'string' },
        out: { type: 'string' },
        resume: { type: 'boolean' },
        seed: { type: 'string' },
        set: { type: 'string', multiple: true },
        verbose: { type: 'boolean' },
        backend: { type: 'string' },
      },
      USAGE,
    );
    const hint = `usage: npm run cli -- ${USAGE}`;
    if ((flags.file === undefined) === (flags.synthetic === undefined)) throw new LabError('cli-args', 'give the questions with --file or --synthetic, one of them', { field: flags.file ? '--synthetic' : '--file', hint });
    const settings = parseTirgenSettings(flags.set ?? [], '--set');
    const seed = flags.seed === undefined ? 0 : Number(flags.seed);
    if (!Number.isInteger(seed) || seed < 0) throw new LabError('cli-args', 'not a seed', { field: '--seed', expected: 'a whole number ≥ 0', found: flags.seed });
    const limit = countFlag(flags.limit, '--limit');

    // Actor and critic: each a model folder (the shipped one by default for the actor) or an endpoint.
    const endpointOf = (role: 'actor' | 'critic') => {
      const url = flags[`${role}-endpoint`];
      const name = flags[`${role}-endpoint-model`];
      const key = flags[`${role}-api-key`];
      if (url === undefined) {
        for (const f of [`${role}-endpoint-model`, `${role}-api-key`] as const) if (flags[f] !== undefined) throw new LabError('cli-args', `--${f} needs --${role}-endpoint`, { field: `--${f}` });
        return undefined;
      }
      if (flags[`${role}-model`] !== undefined) throw new LabError('cli-args', `give --${role}-model or --${role}-endpoint, not both`, { field: `--${role}-model` });
      if (!name) throw new LabError('cli-args', `--${role}-endpoint needs --${role}-endpoint-model (a name the server lists under /v1/models)`, { field: `--${role}-endpoint-model` });
      const apiKey = key ?? process.env.OPENAI_API_KEY;
      return new EndpointModel({ baseURL: url, model: name, ...(apiKey && { apiKey }) });
    };
    const actorEndpoint = endpointOf('actor');
    const criticEndpoint = endpointOf('critic');
    const criticKind = flags.critic ?? (criticEndpoint || flags['critic-model'] ? 'model' : 'rule');
    if (criticKind !== 'rule' && criticKind !== 'model') throw new LabError('cli-args', 'unknown critic', { field: '--critic', expected: 'rule, or a model given by --critic-model or --critic-endpoint', found: criticKind });
    if (criticKind === 'rule' && (criticEndpoint || flags['critic-model'])) throw new LabError('cli-args', '--critic rule takes no critic model', { field: '--critic' });
    if (criticKind === 'model' && !criticEndpoint && !flags['critic-model']) throw new LabError('cli-args', 'a model critic needs --critic-model DIR or --critic-endpoint URL', { field: '--critic' });
    if (flags['critic-prompt'] !== undefined && criticKind === 'rule') throw new LabError('cli-args', '--critic-prompt is for a model critic', { field: '--critic-prompt' });

    const mapping = mappingFrom(flags, { given: flags.file !== undefined, by: '--file' });
    let problems: TirgenProblem[];
    let input: TirgenInput;
    if (flags.file) {
      // Lines the reader cannot use (no answer, no question, not JSON) are skipped, said on stderr and counted in the report.
      ({ problems, input } = problemsOfFile(await readProblemsFile(flags.file, { mapping }), flags.file));
    } else {
      const n = countFlag(flags.synthetic, '--synthetic')!;
      problems = generateTasks({ seed, count: n, split: 'train' }).map((t) => ({ id: t.id, question: t.question, answer: t.answer }));
      input = { source: `--synthetic ${n} (seed ${seed})` };
    }
    const source = input.source;
    problems = problems.slice(0, limit);

    const locals = new Map<string, LocalModel>();
    const local = async (dir: string) => {
      if (locals.size === 0) await selectNodeBackend(parseBackend(flags.backend) ?? ['wasm', 'cpu']);
      let m = locals.get(dir);
      if (!m) {
        const { model, tokenizer } = await loadModel(dir);
        m = new LocalModel(model, tokenizer, dir === DEFAULT_MODEL_DIR ? 'thor-tiny (shipped)' : dir);
        locals.set(dir, m);
      }
      return m;
    };
    const actor: TextModel = actorEndpoint ?? (await local(flags['actor-model'] ?? DEFAULT_MODEL_DIR));
    let critic: Critic;
    if (criticKind === 'rule') critic = new RuleCritic();
    else {
      const template = flags['critic-prompt'] === undefined ? undefined : await readFile(flags['critic-prompt'], 'utf8').catch((e: Error) => Promise.reject(new LabError('files', `cannot read the critic prompt: ${e.message}`, { file: flags['critic-prompt'] })));
      critic = new ModelCritic(criticEndpoint ?? (await local(flags['critic-model']!)), {
        temperature: settings.criticTemperature,
        maxTokens: settings.criticMaxTokens,
        topK: settings.topK,
        topP: settings.topP,
        minOverlap: settings.minRewriteOverlap,
        ...(template !== undefined && { template }),
      });
    }

    const dir = flags.out ?? DEFAULT_TIRGEN_DIR;
    const folder = await openTirgenFolder(dir, { actor: actor.label, critic: critic.label, seed, settings, source }, { resume: flags.resume === true, dataInstruction: settings.dataInstruction });
    if (flags.resume) console.error(`resuming: ${folder.done.length} question(s) already done in ${dir}${folder.dropped ? `, ${folder.dropped} unfinished or broken line(s) dropped` : ''}`);
    console.error(`tirgen: ${problems.length} question(s), actor ${actor.label}, critic ${critic.label}, ${settings.attempts} attempt(s) each, writing to ${dir}`);

    const pool = await createNodePythonPool();
    const stop = new AbortController();
    let interrupts = 0;
    const onSigint = () => {
      if (++interrupts > 1) process.exit(130);
      console.error('\nstopping: questions in flight are dropped, finished ones are kept (Ctrl-C again to quit now)');
      stop.abort(new Error('Ctrl-C'));
    };
    process.on('SIGINT', onSigint);
    const started = Date.now();
    try {
      const { report } = await runTirgen(
        { problems, settings, seed, previous: folder.done, input },
        {
          actor,
          critic,
          executor: pool,
          checker: sandboxChecker(pool),
          signal: stop.signal,
          onQuestion: (r) => folder.write(r),
          onStep: flags.verbose ? (e) => console.error(renderStep(e)) : undefined,
          onProgress: (p) => {
            const c = p.counts;
            process.stderr.write(`\r${p.done}/${p.total} questions, ${c.attempts} attempts, kept ${c.kept}${etaText(started, p.doneNow, p.total - p.done + p.doneNow)}   `);
          },
        },
      );
      process.stderr.write('\n');
      await folder.writeReport(report);
      console.error(reportSummary(report));
      console.error(`time: ${((Date.now() - started) / 1000).toFixed(1)} s; wrote ${join(dir, 'data.jsonl')}, ${join(dir, 'messages.jsonl')}, ${join(dir, 'report.json')}`);
      console.log(JSON.stringify({ out: dir, total: report.total, questions: report.counts.questions, attempts: report.counts.attempts, kept: report.counts.kept, keptRatio: report.keptRatio, droppedBy: report.counts.droppedBy, failures: report.counts.failures, calls: report.counts.calls, ...(report.stopped && { stopped: report.stopped }) }, null, 2));
      return report.stopped ? 1 : 0;
    } finally {
      process.off('SIGINT', onSigint);
      await pool.close();
    }
  },
};
