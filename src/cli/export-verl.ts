/**
 * `npm run cli -- export-verl --out DIR`: the hand-off to verl (docs/verl.md). The questions `train`
 * would use (the synthetic task, or a problems file in any form the lab reads) become verl's
 * train.parquet and test.parquet; the run config's GRPO settings become verl_grpo.yaml under verl's
 * names; the reward function and the TIR agent loop verl loads are copied next to them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { splitOf } from '../core/data/tasks';
import type { Problem } from '../core/data/types';
import { LabError } from '../core/errors';
import { exportVerl, VERL_FILES } from '../core/verl/export';
import { configProblems } from '../core/lab/service';
import { readProblemsFile } from '../node/lab';
import { configFrom, countFlag, mappingFrom, MAPPING_OPTIONS, parseFlags } from './args';
import type { Subcommand } from './command';

const USAGE =
  'export-verl --out DIR [--task KIND,KIND] [--count N] [--test-count N] [--seed S] [--file PROBLEMS] [--test-file PROBLEMS] [--question-field F] [--answer-field F] [--id-field F] [--config FILE.json] [--set section.key=value ...] [--instruction TEXT] [--name NAME] [--remote-dir PATH] [--max-prompt-length N]';

/** The Python modules verl loads, kept in the repository (docs/verl.md#the-files). */
const PYTHON_DIR = fileURLToPath(new URL('../../server/verl/', import.meta.url));

export const exportVerlCommand: Subcommand = {
  summary: "write verl's data (train/test Parquet), its GRPO config, the reward function and the TIR agent loop into a folder",
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        out: { type: 'string' },
        task: { type: 'string' },
        count: { type: 'string' },
        'test-count': { type: 'string' },
        seed: { type: 'string' },
        file: { type: 'string' },
        'test-file': { type: 'string' },
        ...MAPPING_OPTIONS,
        config: { type: 'string' },
        set: { type: 'string', multiple: true },
        instruction: { type: 'string' },
        name: { type: 'string' },
        'remote-dir': { type: 'string' },
        'max-prompt-length': { type: 'string' },
      },
      USAGE,
    );
    if (!flags.out) throw new LabError('cli-args', '--out is missing', { field: '--out', expected: 'a folder to write', found: 'nothing', hint: `usage: npm run cli -- ${USAGE}` });
    if (existsSync(flags.out) && readdirSync(flags.out).length > 0) throw new LabError('cli-args', 'the output folder exists and is not empty', { field: '--out', found: flags.out, hint: 'pick a new folder' });
    if (flags['test-file'] && !flags.file) throw new LabError('cli-args', '--test-file goes with --file', { field: '--test-file', hint: 'give the training problems with --file' });
    if (flags.file && flags.task) throw new LabError('cli-args', '--task names synthetic tasks, --file a problems file: give one', { field: '--task' });
    const maxPromptLength = countFlag(flags['max-prompt-length'], '--max-prompt-length');

    const { config, input } = configFrom(
      {
        file: flags.config,
        sets: flags.set,
        flags: [
          { flag: '--task', path: 'task.kinds', value: flags.task === undefined ? undefined : JSON.stringify(flags.task.split(',').map((k) => k.trim())) },
          { flag: '--count', path: 'task.trainSize', value: flags.count },
          { flag: '--test-count', path: 'task.testSize', value: flags['test-count'] },
          { flag: '--seed', path: 'seed', value: flags.seed },
          ...(flags.file ? [{ flag: '--file', path: 'task.source', value: '"file"' }, { flag: '--file', path: 'task.file', value: flags.file }] : []),
        ],
      },
      'run',
    );
    const mapping = mappingFrom(flags, { given: config.task.source === 'file', by: '--file' });
    const task = (input.task ?? {}) as Record<string, unknown>;

    let train: Problem[];
    let test: Problem[];
    let source: string;
    if (config.task.source === 'file') {
      // Questions are not cut at the tiny model's task.maxQuestionTokens unless it is set: verl drops prompts over
      // data.max_prompt_length itself, counted in tokens of the model it trains (data.filter_overlong_prompts).
      const read = async (path: string) => (await readProblemsFile(path, { mapping, maxQuestionLength: task.maxQuestionTokens === undefined ? undefined : config.task.maxQuestionTokens })).problems;
      const problems = await read(config.task.file!);
      if (flags['test-file']) {
        train = problems;
        test = await read(flags['test-file']);
        source = `${config.task.file} (train), ${flags['test-file']} (held-out)`;
      } else {
        // The same rule as the generators' splits: a question's split is a function of its text alone.
        train = problems.filter((p) => splitOf(p.question, config.task.testFraction) === 'train');
        test = problems.filter((p) => splitOf(p.question, config.task.testFraction) === 'test');
        source = `${config.task.file}, split by question hash (task.testFraction ${config.task.testFraction})`;
      }
      if (task.trainSize !== undefined) train = train.slice(0, config.task.trainSize);
      if (task.testSize !== undefined) test = test.slice(0, config.task.testSize);
    } else {
      [train, test] = await Promise.all([configProblems(config, 'train'), configProblems(config, 'test')]);
      source = `synthetic tasks ${config.task.kinds.join(',')} at difficulties ${config.task.difficulties.join(',')} (seed ${config.seed})`;
    }

    const rolloutInput = (input.rollout ?? {}) as Record<string, unknown>;
    const instruction = flags.instruction ?? (rolloutInput.instruction === undefined ? undefined : config.rollout.instruction);
    const out = resolve(flags.out);
    const result = exportVerl({
      config,
      train,
      test,
      instruction,
      remoteDir: flags['remote-dir'] ?? out,
      experimentName: flags.name ?? basename(out),
      maxPromptLength,
      rewardModule: readFileSync(join(PYTHON_DIR, VERL_FILES.reward), 'utf8'),
      agentLoopModule: readFileSync(join(PYTHON_DIR, VERL_FILES.agentLoop), 'utf8'),
    });
    mkdirSync(out, { recursive: true });
    for (const f of result.files) writeFileSync(join(out, f.name), f.data);

    console.log(`read ${source}`);
    console.log(`wrote ${result.rows.train.length} training and ${result.rows.test.length} held-out questions, data.max_prompt_length ${result.maxPromptLength}, to ${out}: ${result.files.map((f) => f.name).join(', ')}`);
    for (const s of result.notCarried) console.log(`not carried to upstream verl: ${s.setting} = ${JSON.stringify(s.value)}: ${s.why}`);
    console.log(`run on a GPU machine with verl (docs/verl.md#running-it):\n  PYTHONPATH=${flags['remote-dir'] ?? out}:$PYTHONPATH python3 -m verl.trainer.main_ppo --config-path ${flags['remote-dir'] ?? out} --config-name verl_grpo actor_rollout_ref.model.path=Qwen/Qwen2.5-Math-1.5B trainer.n_gpus_per_node=8`);
    return 0;
  },
};
