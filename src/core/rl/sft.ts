/**
 * Supervised fine-tuning data from TIR text (cold start, and the tiny model's pretraining): each
 * response is tokenised piece by piece so that tool output — the "\n```output\n...\n```\n" blocks a
 * rollout would have forced — is masked out of the loss, token for token as in a rollout
 * (docs/tir-format.md#loss-masking-of-tool-output).
 */
import type { Tokenizer } from '../tokenizer/types';
import { forcedSpans } from '../tir/format';
import { encodePrompt, type PromptOptions } from '../tir/prompt';
import type { Transformer } from '../model/transformer';
import { AdamW, type AdamWConfig } from '../optim/adamw';
import { learningRate } from '../optim/schedule';
import { createRng } from '../rng';
import type { TrainingSequence } from './batch';
import { sftUpdate } from './update';

export interface ResponsePiece {
  text: string;
  /** Tool output: inserted by the environment, not written by the policy. */
  forced: boolean;
}

/** Splits a TIR response into policy text and the forced observation blocks a rollout would have inserted. */
export function splitForced(response: string): ResponsePiece[] {
  const pieces: ResponsePiece[] = [];
  let at = 0;
  for (const span of forcedSpans(response)) {
    if (span.start > at) pieces.push({ text: response.slice(at, span.start), forced: false });
    pieces.push({ text: response.slice(span.start, span.end), forced: true });
    at = span.end;
  }
  if (at < response.length) pieces.push({ text: response.slice(at), forced: false });
  return pieces;
}

/** A question and its TIR response as a training sequence; the response ends with EOS when the tokenizer has one. */
export function sftSequence(tokenizer: Tokenizer, question: string, response: string, instruction: string | PromptOptions): TrainingSequence {
  return sftSequenceOfPieces(tokenizer, question, splitForced(response), instruction);
}

/** The same from a response already split into pieces: the forced ones are in the sequence and out of the loss. */
export function sftSequenceOfPieces(tokenizer: Tokenizer, question: string, pieces: readonly ResponsePiece[], instruction: string | PromptOptions): TrainingSequence {
  const promptTokens = encodePrompt(tokenizer, question, instruction);
  const tokens: number[] = [];
  const lossMask: number[] = [];
  for (const piece of pieces) {
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
  /** AdamW's settings (defaults: torch's, weight decay 0.01). */
  optimizer?: AdamWConfig;
}

export interface SftStep {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
  seconds: number;
}

/**
 * SFT one step at a time over seeded shuffled batches (each epoch reshuffles): step k always trains
 * the same batch, so a run resumed at step k goes on exactly where it stopped.
 */
export class SftTrainer {
  readonly optimizer: AdamW;
  /** Steps taken. */
  step = 0;
  private readonly orders = new Map<number, TrainingSequence[]>();

  constructor(
    private readonly model: Transformer,
    private readonly seqs: readonly TrainingSequence[],
    private readonly s: SftSettings,
  ) {
    if (seqs.length === 0) throw new RangeError('SFT needs at least one sequence');
    this.optimizer = new AdamW(model.trainableVariables(), s.optimizer ?? {});
  }

  /** The sequences of step `step`: positions step·B .. step·B + B - 1 of the epochs laid end to end. */
  batch(step: number): TrainingSequence[] {
    const n = this.seqs.length;
    return Array.from({ length: this.s.batchSize }, (_, k) => {
      const i = step * this.s.batchSize + k;
      const epoch = Math.floor(i / n);
      let order = this.orders.get(epoch);
      if (!order) {
        order = createRng(this.s.seed).fork(`sft epoch ${epoch}`).shuffle(this.seqs);
        this.orders.clear();
        this.orders.set(epoch, order);
      }
      return order[i % n];
    });
  }

  async trainStep(): Promise<SftStep> {
    const s = this.s;
    const lr = learningRate(this.step, { peak: s.lr, warmupSteps: s.warmupSteps, totalSteps: s.steps, kind: s.schedule, minRatio: s.minLrRatio });
    const t0 = Date.now();
    const r = await sftUpdate(this.model, this.optimizer, this.batch(this.step), { lr, maxGradNorm: s.maxGradNorm, maxTokens: s.maxTokens });
    const st = { step: this.step, loss: r.loss, gradNorm: r.gradNorm, lr, tokens: r.tokens, seconds: (Date.now() - t0) / 1000 };
    this.step++;
    return st;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/** Runs `steps` SFT updates (SftTrainer) and returns their figures. */
export async function trainSft(model: Transformer, seqs: readonly TrainingSequence[], s: SftSettings, onStep?: (st: SftStep) => void | Promise<void>): Promise<SftStep[]> {
  const trainer = new SftTrainer(model, seqs, s);
  const history: SftStep[] = [];
  try {
    while (trainer.step < s.steps) {
      const st = await trainer.trainStep();
      history.push(st);
      await onStep?.(st);
    }
  } finally {
    trainer.dispose();
  }
  return history;
}
