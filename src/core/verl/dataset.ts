/**
 * The lab's problems as verl reads a data set (docs/verl.md#the-data): one row per question with
 * `data_source`, `prompt` (chat messages: the TIR instruction and the question as the user's turn, as
 * the lab asks a Hugging Face model), `ability`, `reward_model` {style: "rule", ground_truth} and
 * `extra_info` {split, index, id, question, answer, reward}: the row carries the lab's reward settings,
 * which verl hands to the reward function with it.
 */
import type { Problem } from '../data/types';
import type { RewardOptions } from '../reward/reward';
import { TIR_INSTRUCTION, tirPrompt } from '../tir/format';
import { verlRewardSettings, type VerlRewardSettings } from './reward';

export interface VerlMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface VerlRow {
  data_source: string;
  prompt: VerlMessage[];
  ability: string;
  reward_model: { style: 'rule'; ground_truth: string };
  extra_info: { split: 'train' | 'test'; index: number; id: string; question: string; answer: string; reward: VerlRewardSettings };
}

export interface VerlRowOptions {
  split: 'train' | 'test';
  /** The text before the question (ToRL's and THOR's TIR instruction by default; '' for none). */
  instruction?: string;
  reward: RewardOptions;
}

/** Where a problem comes from, as verl's data_source names it: "thor_lab/synthetic", or "thor_lab/" and the file name. */
export function dataSourceOf(p: Problem): string {
  return `thor_lab/${p.source.replace(/\.[A-Za-z0-9]+$/, '') || 'problems'}`;
}

export function verlRows(problems: readonly Problem[], options: VerlRowOptions): VerlRow[] {
  const instruction = options.instruction ?? TIR_INSTRUCTION;
  const reward = verlRewardSettings(options.reward);
  return problems.map((p, index) => ({
    data_source: dataSourceOf(p),
    prompt: [{ role: 'user', content: tirPrompt(p.question, instruction) }],
    ability: 'math',
    reward_model: { style: 'rule', ground_truth: p.answer },
    extra_info: { split: options.split, index, id: p.id, question: p.question, answer: p.answer, reward: { ...reward } },
  }));
}
