/**
 * Supervised fine-tuning data from TIR text (cold start, and the tiny model's pretraining): each
 * response is tokenised piece by piece so that tool output — the "\n```output\n...\n```\n" blocks a
 * rollout would have forced — is masked out of the loss, token for token as in a rollout.
 */
import type { Tokenizer } from '../tokenizer/types';
import { OUTPUT_OPEN, CODE_CLOSE } from '../tir/format';
import { encodePrompt } from '../tir/prompt';
import type { Transformer } from '../model/transformer';
import type { AdamW } from '../optim/adamw';
import { learningRate } from '../optim/schedule';
import { createRng } from '../rng';
import type { TrainingSequence } from './batch';
import { sftUpdate } from './update';

export interface ResponsePiece {
  text: string;
  /** Tool output: inserted by the environment, not written by the policy. */
  forced: boolean;
}

/** Splits a TIR response into policy text and forced observation blocks (with the newline a rollout adds before them). */
export function splitForced(response: string): ResponsePiece[] {
  const pieces: ResponsePiece[] = [];
  let at = 0;
  for (;;) {
    const open = response.indexOf(OUTPUT_OPEN, at);
    if (open < 0) break;
    const close = response.indexOf(CODE_CLOSE, open + OUTPUT_OPEN.length);
    if (close < 0) break;
    let start = open;
    if (start > at && response[start - 1] === '\n' && response.slice(at, start - 1).endsWith(CODE_CLOSE)) start -= 1;
    let end = close + CODE_CLOSE.length;
    if (response[end] === '\n') end += 1;
    if (start > at) pieces.push({ text: response.slice(at, start), forced: false });
    pieces.push({ text: response.slice(start, end), forced: true });
    at = end;
  }
  if (at < response.length) pieces.push({ text: response.slice(at), forced: false });
  return pieces;
}

/** A question and its TIR response as a training sequence; the response ends with EOS when the tokenizer has one. */
export function sftSequence(tokenizer: Tokenizer, question: string, response: string, instruction: string): TrainingSequence {
  const promptTokens = encodePrompt(tokenizer, question, instruction);
  const tokens: number[] = [];
  const lossMask: number[] = [];
  for (const piece of splitForced(response)) {
    const ids = tokenizer.encode(piece.text);
    tokens.push(...ids);
    lossMask.push(...ids.map(() => (piece.forced ? 0 : 1)));
  }
  if (tokenizer.eosId !== undefined) {
    tokens.push(tokenizer.eosId);
    lossMask.push(1);
  }
  return { promptTokens, tokens, lossMask };
}

export interface SftSettings {
  steps: number;
  batchSize: number;
  lr: number;
  warmupSteps: number;
  schedule: 'constant' | 'linear' | 'cosine';
  minLrRatio: number;
  maxGradNorm: number;
  seed: number;
  /** Padded tokens per micro-batch (bounds memory). */
  maxTokens?: number;
}

export interface SftStep {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
  seconds: number;
}

/** Runs `steps` SFT updates over seeded shuffled batches of the sequences (epochs reshuffle). */
export async function trainSft(
  model: Transformer,
  optimizer: AdamW,
  seqs: readonly TrainingSequence[],
  s: SftSettings,
  onStep?: (st: SftStep) => void | Promise<void>,
): Promise<SftStep[]> {
  if (seqs.length === 0) throw new RangeError('SFT needs at least one sequence');
  const history: SftStep[] = [];
  let order: TrainingSequence[] = [];
  let epoch = 0;
  let cursor = 0;
  for (let step = 0; step < s.steps; step++) {
    const batch: TrainingSequence[] = [];
    while (batch.length < s.batchSize) {
      if (cursor >= order.length) {
        order = createRng(s.seed).fork(`sft epoch ${epoch++}`).shuffle(seqs);
        cursor = 0;
      }
      batch.push(order[cursor++]);
    }
    const lr = learningRate(step, { peak: s.lr, warmupSteps: s.warmupSteps, totalSteps: s.steps, kind: s.schedule, minRatio: s.minLrRatio });
    const t0 = Date.now();
    const r = await sftUpdate(model, optimizer, batch, { lr, maxGradNorm: s.maxGradNorm, maxTokens: s.maxTokens });
    const st = { step, loss: r.loss, gradNorm: r.gradNorm, lr, tokens: r.tokens, seconds: (Date.now() - t0) / 1000 };
    history.push(st);
    await onStep?.(st);
  }
  return history;
}
