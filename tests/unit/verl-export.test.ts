/**
 * `npm run cli -- export-verl` (docs/verl.md): the Parquet files read back with hyparquet (rows, nested
 * prompt messages, reward_model and extra_info exact, the footer's schema laid out as pyarrow lays out
 * lists and structs), the configuration parsed by PyYAML and every key it sets found in verl's own
 * trainer configuration (tests/fixtures/verl/ppo-trainer-keys.txt), the mapping table of the docs, and
 * bad input refused with the problem named.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/core/config/schema';
import { generateTasks } from '../../src/core/data/tasks';
import { TIR_INSTRUCTION } from '../../src/core/tir/format';
import { verlEntries } from '../../src/core/verl/config';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(os.tmpdir(), 'verl-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'export-verl', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const readParquet = async (file: string) => {
  const bytes = readFileSync(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return { rows: (await parquetReadObjects({ file: buffer })) as Record<string, unknown>[], metadata: parquetMetadata(buffer) };
};

/** A YAML file as PyYAML (YAML 1.1, Debian's python3-yaml) reads it. */
const pyYaml = (file: string): unknown => JSON.parse(execFileSync('/usr/bin/python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file], { encoding: 'utf8' }));

function leafKeys(node: unknown, prefix = ''): string[] {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return [prefix.slice(0, -1)];
  return Object.entries(node as Record<string, unknown>).flatMap(([k, v]) => leafKeys(v, `${prefix}${k}.`));
}

const VERL_KEYS = readFileSync(join(ROOT, 'tests/fixtures/verl/ppo-trainer-keys.txt'), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
/** The keys verl's trainer configuration does not have (a key under an open map, "x.*", is accepted). */
const unknownToVerl = (keys: readonly string[]) => keys.filter((k) => !VERL_KEYS.includes(k) && !VERL_KEYS.some((v) => v.endsWith('.*') && k.startsWith(v.slice(0, -1))));

const at = (tree: unknown, key: string): unknown => key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], tree);

describe('export-verl, synthetic tasks', () => {
  const out = join(dir, 'synthetic');
  let result: ReturnType<typeof cli>;
  const settings = ['--set', 'rollout.groupSize=16', '--set', 'optim.lr=1e-6', '--set', 'grpo.klCoef=0.001', '--set', 'grpo.klEstimator=k2', '--set', 'rollout.maxResponseTokens=3072', '--set', 'grpo.dualClipC=null', '--set', 'optim.schedule=cosine'];

  it('writes the data, the configuration and the Python modules', () => {
    result = cli(['--out', out, '--task', 'multiply,gcd', '--count', '30', '--test-count', '7', '--seed', '5', ...settings]);
    expect(result.code, result.stderr).toBe(0);
    for (const f of ['train.parquet', 'test.parquet', 'verl_grpo.yaml', 'agent_loop.yaml', 'thor_reward.py', 'thor_agent_loop.py', 'export.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readFileSync(join(out, 'thor_reward.py'), 'utf8')).toBe(readFileSync(join(ROOT, 'server/verl/thor_reward.py'), 'utf8'));
    expect(result.stdout).toContain('wrote 30 training and 7 held-out questions');
    expect(result.stdout).toContain('not carried to upstream verl: stepLevel.enabled = true');
    expect(result.stdout).toContain(`python3 -m verl.trainer.main_ppo --config-path ${out} --config-name verl_grpo`);
  });

  it("reads back with hyparquet: every row, its chat prompt, reward_model and extra_info exact", async () => {
    const config = parseRunConfig({ seed: 5, task: { kinds: ['multiply', 'gcd'] } });
    const common = { seed: 5, kinds: config.task.kinds, difficulties: config.task.difficulties, testFraction: config.task.testFraction };
    for (const [split, count] of [['train', 30], ['test', 7]] as const) {
      const tasks = generateTasks({ ...common, count, split });
      const { rows } = await readParquet(join(out, `${split}.parquet`));
      expect(rows).toHaveLength(count);
      rows.forEach((row, i) => {
        expect(row).toEqual({
          data_source: 'thor_lab/synthetic',
          prompt: [{ role: 'user', content: `${TIR_INSTRUCTION}\n${tasks[i].question}` }],
          ability: 'math',
          reward_model: { style: 'rule', ground_truth: tasks[i].answer },
          extra_info: {
            split,
            index: BigInt(i),
            id: tasks[i].id,
            question: tasks[i].question,
            answer: tasks[i].answer,
            reward: { scheme: 'thor', code_failure_penalty: false, repetition_penalty: true, repetition_ngram: 20n, repetition_max_count: 20n },
          },
        });
      });
    }
  });

  it("lays out lists and structs as pyarrow does (LIST > repeated list > element; optional groups)", async () => {
    const { metadata } = await readParquet(join(out, 'train.parquet'));
    const schema = metadata.schema.map((s) => [s.name, s.repetition_type ?? 'REQUIRED', s.converted_type ?? s.type ?? 'group', s.num_children ?? 0].join(' '));
    expect(schema.slice(0, 12)).toEqual([
      'schema REQUIRED group 5',
      'data_source OPTIONAL UTF8 0',
      'prompt OPTIONAL LIST 1',
      'list REPEATED group 1',
      'element OPTIONAL group 2',
      'role OPTIONAL UTF8 0',
      'content OPTIONAL UTF8 0',
      'ability OPTIONAL UTF8 0',
      'reward_model OPTIONAL group 2',
      'style OPTIONAL UTF8 0',
      'ground_truth OPTIONAL UTF8 0',
      'extra_info OPTIONAL group 6',
    ]);
    expect(metadata.num_rows).toBe(30n);
  });

  it("sets only keys of verl's trainer configuration, with the run config's values", () => {
    const yaml = pyYaml(join(out, 'verl_grpo.yaml')) as Record<string, unknown>;
    expect(yaml.defaults).toEqual(['ppo_trainer', '_self_']);
    expect(yaml.hydra).toEqual({ searchpath: ['pkg://verl.trainer.config'] });
    const { hydra: _h, defaults: _d, ...rest } = yaml;
    const keys = leafKeys(rest);
    expect(keys.length).toBeGreaterThan(50);
    expect(unknownToVerl(keys)).toEqual([]);
    const ar = 'actor_rollout_ref';
    expect(at(yaml, 'algorithm.adv_estimator')).toBe('grpo');
    expect(at(yaml, `${ar}.rollout.n`)).toBe(16);
    expect(at(yaml, `${ar}.actor.optim.lr`)).toBe(1e-6);
    expect(at(yaml, `${ar}.actor.optim.lr_scheduler_type`)).toBe('cosine');
    expect(at(yaml, `${ar}.actor.clip_ratio_high`)).toBe(0.28);
    expect(at(yaml, `${ar}.actor.clip_ratio_c`)).toBe(1e9);
    expect(at(yaml, `${ar}.actor.use_kl_loss`)).toBe(true);
    expect(at(yaml, `${ar}.actor.kl_loss_coef`)).toBe(0.001);
    expect(at(yaml, `${ar}.actor.kl_loss_type`)).toBe('mse');
    expect(at(yaml, `${ar}.actor.optim.betas`)).toEqual([0.9, 0.999]);
    expect(at(yaml, 'data.max_response_length')).toBe(3072);
    expect(at(yaml, 'data.train_files')).toBe(join(out, 'train.parquet'));
    expect(at(yaml, 'custom_reward_function.path')).toBe(join(out, 'thor_reward.py'));
    expect(at(yaml, 'custom_reward_function.name')).toBe('compute_score');
    expect(at(yaml, `${ar}.rollout.agent.agent_loop_config_path`)).toBe(join(out, 'agent_loop.yaml'));
    expect(pyYaml(join(out, 'agent_loop.yaml'))).toEqual([
      { name: 'thor_tir_agent', _target_: 'thor_agent_loop.ThorTirAgentLoop', max_tool_calls: 2, tool_timeout_s: 5, observation_max_chars: 256 },
    ]);
  });

  it('the key check finds a key verl does not have', () => {
    expect(unknownToVerl(['actor_rollout_ref.actor.clip_ratio_hi', 'data.apply_chat_template_kwargs.enable_thinking', 'data.max_prompt_length'])).toEqual(['actor_rollout_ref.actor.clip_ratio_hi']);
  });

  it('every setting the export maps is in the mapping table of docs/verl.md', () => {
    const docs = readFileSync(join(ROOT, 'docs/verl.md'), 'utf8');
    const config = parseRunConfig({ lora: { enabled: true } });
    const paths = { trainFiles: 't', valFiles: 'v', rewardFunction: 'r', agentLoopConfig: 'a' };
    const rows = docs.split('\n').filter((l) => l.startsWith('|'));
    const missing = verlEntries(config, paths, { maxPromptLength: 512, experimentName: 'x' })
      .filter((e) => e.from !== 'export')
      .flatMap((e) => e.from.split(', ').map((lab) => ({ lab, key: e.key })))
      .filter(({ lab, key }) => !rows.some((r) => r.includes(`\`${lab}\``) && r.includes(`\`${key}\``)));
    expect(missing).toEqual([]);
  });
});

describe('export-verl, a problems file', () => {
  const problems = join(dir, 'gsm8k-like.jsonl');
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ question: `Ann has ${i + 3} apples and buys ${2 * i} more. How many apples does she have?`, answer: `She has ${i + 3} + ${2 * i} apples.\n#### ${3 * i + 3}` }));
  writeFileSync(problems, `${lines.join('\n')}\n`);

  it('splits the file by question hash, and keeps the reference answers', async () => {
    const out = join(dir, 'file');
    const r = cli(['--out', out, '--file', problems, '--instruction', 'Solve it.', '--set', 'reward.scheme=torl', '--remote-dir', '/data/thor']);
    expect(r.code, r.stderr).toBe(0);
    const train = (await readParquet(join(out, 'train.parquet'))).rows;
    const test = (await readParquet(join(out, 'test.parquet'))).rows;
    expect(train.length + test.length).toBe(40);
    expect(test.length).toBeGreaterThan(0);
    const questions = (rows: Record<string, unknown>[]) => rows.map((x) => (x.extra_info as { question: string }).question);
    expect(questions(train).filter((q) => questions(test).includes(q))).toEqual([]);
    for (const row of [...train, ...test]) {
      const info = row.extra_info as { question: string; answer: string; reward: { scheme: string } };
      const i = Number(/has (\d+) apples/.exec(info.question)![1]) - 3;
      expect(row.reward_model).toEqual({ style: 'rule', ground_truth: String(3 * i + 3) });
      expect(row.prompt).toEqual([{ role: 'user', content: `Solve it.\n${info.question}` }]);
      expect(row.data_source).toBe('thor_lab/gsm8k-like');
      expect(info.reward.scheme).toBe('torl');
    }
    const yaml = pyYaml(join(out, 'verl_grpo.yaml'));
    expect(at(yaml, 'data.val_files')).toBe('/data/thor/test.parquet');
  });

  it('takes a held-out file in another form', async () => {
    const out = join(dir, 'file-and-test');
    const r = cli(['--out', out, '--file', problems, '--test-file', join(ROOT, 'tests/fixtures/datasets/collegemath.csv')]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readParquet(join(out, 'train.parquet'))).rows).toHaveLength(40);
    const test = (await readParquet(join(out, 'test.parquet'))).rows;
    expect(test.map((x) => (x.reward_model as { ground_truth: string }).ground_truth)).toEqual(['1', '3', '15']);
  });
});

describe('export-verl refuses bad input, naming the problem', () => {
  it('an unreadable problems file', () => {
    const r = cli(['--out', join(dir, 'x1'), '--file', join(dir, 'missing.jsonl')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${join(dir, 'missing.jsonl')}: cannot read the problems file`);
    expect(existsSync(join(dir, 'x1'))).toBe(false);
  });

  it('an empty problems file', () => {
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    const r = cli(['--out', join(dir, 'x2'), '--file', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`error: ${empty.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*`));
    expect(existsSync(join(dir, 'x2'))).toBe(false);
  });

  it('a file with one question leaves no held-out split', () => {
    const one = join(dir, 'one.jsonl');
    writeFileSync(one, '{"question": "What is 2+2?", "answer": "4"}\n');
    const r = cli(['--out', join(dir, 'x3'), '--file', one]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no (training|held-out) question to export/);
  });

  it('an unknown --set key', () => {
    const r = cli(['--out', join(dir, 'x4'), '--set', 'grpo.clipEpsHi=0.3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('field "grpo.clipEpsHi": no such setting');
    expect(r.stderr).toContain('clipEpsHigh');
  });

  it('an unknown task kind, and a bad count', () => {
    const kind = cli(['--out', join(dir, 'x5'), '--task', 'multiply,divide']);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain('field "task.kinds.1"');
    expect(kind.stderr).toContain('found "divide"');
    const count = cli(['--out', join(dir, 'x6'), '--count', 'many']);
    expect(count.code).toBe(2);
    expect(count.stderr).toContain('--count (task.trainSize)');
  });

  it('a missing or non-empty --out', () => {
    expect(cli([]).stderr).toContain('--out is missing');
    writeFileSync(join(dir, 'taken'), 'x');
    const r = cli(['--out', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('the output folder exists and is not empty');
  });
});
