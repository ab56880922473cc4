/**
 * The hand-off to verl in one call (docs/verl.md): the lab's train and held-out problems as verl's
 * Parquet files, the GRPO configuration under verl's names, the agent-loop registration, and the two
 * Python modules verl loads (the reward function and the TIR agent loop), all for one folder.
 */
import type { RunConfig } from '../config/schema';
import type { Problem } from '../data/types';
import { LabError } from '../errors';
import { agentLoopYaml, notCarried, verlConfigYaml, verlEntries, type NotCarried, type VerlEntry } from './config';
import { verlRows, type VerlRow } from './dataset';
import { verlParquet } from './parquet';

export const VERL_FILES = {
  train: 'train.parquet',
  test: 'test.parquet',
  config: 'verl_grpo.yaml',
  agentLoops: 'agent_loop.yaml',
  reward: 'thor_reward.py',
  agentLoop: 'thor_agent_loop.py',
  summary: 'export.json',
} as const;

/** Room for a chat template around the user's turn (Qwen2.5's default system prompt and role markers take about 30 tokens). */
export const CHAT_TEMPLATE_ROOM = 128;

export interface VerlExportInput {
  config: RunConfig;
  train: readonly Problem[];
  test: readonly Problem[];
  /** The text before each question; ToRL's and THOR's TIR instruction when undefined. */
  instruction?: string;
  /** Where the folder will be when verl reads it (the paths inside verl_grpo.yaml). */
  remoteDir: string;
  experimentName: string;
  /** A bound on prompt tokens; by default the longest prompt's UTF-8 bytes (a byte-level BPE token covers at least one byte) plus CHAT_TEMPLATE_ROOM. */
  maxPromptLength?: number;
  /** The Python modules' text (server/verl/), copied into the folder. */
  rewardModule: string;
  agentLoopModule: string;
}

export interface VerlExport {
  files: { name: string; data: Uint8Array | string }[];
  rows: { train: VerlRow[]; test: VerlRow[] };
  entries: VerlEntry[];
  notCarried: NotCarried[];
  maxPromptLength: number;
}

const roundUp = (n: number, step: number) => Math.ceil(n / step) * step;

export function exportVerl(input: VerlExportInput): VerlExport {
  const { config } = input;
  for (const [split, problems] of [['train', input.train], ['test', input.test]] as const) {
    if (problems.length === 0) throw new LabError('verl', `no ${split === 'train' ? 'training' : 'held-out'} question to export`, { field: split, hint: split === 'test' ? 'give a held-out file with --test-file, or more problems' : 'give a problems file with usable lines, or --count' });
  }
  const rows = {
    train: verlRows(input.train, { split: 'train', instruction: input.instruction, reward: config.reward }),
    test: verlRows(input.test, { split: 'test', instruction: input.instruction, reward: config.reward }),
  };
  const encoder = new TextEncoder();
  const longest = Math.max(...[...rows.train, ...rows.test].map((r) => r.prompt.reduce((n, m) => n + encoder.encode(m.content).length, 0)));
  const maxPromptLength = input.maxPromptLength ?? roundUp(longest + CHAT_TEMPLATE_ROOM, 128);
  const dir = input.remoteDir.replace(/\/+$/, '');
  const entries = verlEntries(
    config,
    { trainFiles: `${dir}/${VERL_FILES.train}`, valFiles: `${dir}/${VERL_FILES.test}`, rewardFunction: `${dir}/${VERL_FILES.reward}`, agentLoopConfig: `${dir}/${VERL_FILES.agentLoops}` },
    { maxPromptLength, experimentName: input.experimentName },
  );
  const skipped = notCarried(config);
  const header = [
    `THOR Lab's GRPO settings for verl (docs/verl.md): ${rows.train.length} training and ${rows.test.length} held-out questions.`,
    `Run from a checkout of verl with ${dir} on PYTHONPATH:`,
    `  python3 -m verl.trainer.main_ppo --config-path ${dir} --config-name verl_grpo actor_rollout_ref.model.path=MODEL trainer.n_gpus_per_node=GPUS`,
  ];
  const summary = {
    train: rows.train.length,
    test: rows.test.length,
    maxPromptLength,
    longestPromptBytes: longest,
    verl: Object.fromEntries(entries.map((e) => [e.key, { value: e.value, from: e.from }])),
    notCarried: skipped,
  };
  return {
    files: [
      { name: VERL_FILES.train, data: new Uint8Array(verlParquet(rows.train)) },
      { name: VERL_FILES.test, data: new Uint8Array(verlParquet(rows.test)) },
      { name: VERL_FILES.config, data: verlConfigYaml(entries, skipped, header) },
      { name: VERL_FILES.agentLoops, data: agentLoopYaml(config) },
      { name: VERL_FILES.reward, data: input.rewardModule },
      { name: VERL_FILES.agentLoop, data: input.agentLoopModule },
      { name: VERL_FILES.summary, data: `${JSON.stringify(summary, null, 2)}\n` },
    ],
    rows,
    entries,
    notCarried: skipped,
    maxPromptLength,
  };
}
