/**
 * The `--style cot` path of `npm run pretrain` (scripts/pretrain.ts): the same architecture trained on
 * chain-of-thought demonstrations (src/core/tir/cot.ts), plain-text steps with no code, for the
 * offline actor of TIRGen (docs/tirgen.md, "The chain-of-thought actor"). Writes the model folder and
 * pretrain.json with the settings, minutes, loss and a greedy held-out evaluation.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { countParameters, type ModelConfig } from '../src/core/model/config';
import { Transformer } from '../src/core/model/transformer';
import { loadWeights, saveModelFolder } from '../src/core/model/checkpoint';
import type { Task } from '../src/core/data/tasks';
import { buildCotDemonstrations } from '../src/core/tir/cot';
import { evaluateCot } from '../src/core/eval/cot';
import { sftSequence, trainSft } from '../src/core/rl/sft';
import type { CharTokenizer } from '../src/core/tokenizer/char';
import { folderSink, folderSource } from '../src/node/files';

export interface CotPretrainOptions {
  cfg: ModelConfig;
  tokenizer: CharTokenizer;
  train: Task[];
  test: Task[];
  seed: number;
  steps: number;
  batchSize: number;
  lr: number;
  maxTokens: number;
  evalEvery: number;
  out: string;
  init?: string;
  backend: string;
}

export async function pretrainCot(o: CotPretrainOptions): Promise<void> {
  const context = o.cfg.max_position_embeddings;
  const fits = (question: string, response: string): boolean => {
    const s = sftSequence(o.tokenizer, question, response, '');
    return s.promptTokens.length + s.tokens.length <= context;
  };
  const { demonstrations, dropped } = buildCotDemonstrations(o.train, fits);
  const seqs = demonstrations.map((d) => sftSequence(o.tokenizer, d.question, d.response, ''));
  const longest = Math.max(...seqs.map((s) => s.promptTokens.length + s.tokens.length));
  console.log(`${demonstrations.length} chain-of-thought demonstrations (dropped as too long: ${JSON.stringify(dropped)}), longest ${longest} tokens`);
  const heldOut = o.test.filter((t) => fits(t.question, '')).slice(0, 64);

  const model = Transformer.create(o.cfg, { seed: o.seed });
  if (o.init) model.loadWeights(await loadWeights(folderSource(o.init), o.cfg), o.init);
  const loss: number[] = [];
  const evals: { step: number; accuracy: number; format_ratio: number }[] = [];
  const started = Date.now();
  let last: Awaited<ReturnType<typeof evaluateCot>> | undefined;
  const quickEval = async (step: number): Promise<void> => {
    last = await evaluateCot(model, o.tokenizer, heldOut, context);
    evals.push({ step, accuracy: last.accuracy, format_ratio: last.format_ratio });
    console.log(`  eval@${step} (greedy): accuracy ${last.accuracy.toFixed(3)} step format ${last.format_ratio.toFixed(2)}`);
  };
  await trainSft(
    model,
    seqs,
    { steps: o.steps, batchSize: o.batchSize, lr: o.lr, warmupSteps: 50, schedule: 'cosine', minLrRatio: 0.05, maxGradNorm: 1, seed: o.seed, maxTokens: o.maxTokens, optimizer: { weightDecay: 0.01 } },
    async (st) => {
      loss.push(st.loss);
      if (st.step % 10 === 0 || st.step === o.steps - 1) {
        const elapsed = (Date.now() - started) / 1000;
        const eta = (elapsed / (st.step + 1)) * (o.steps - st.step - 1);
        console.log(`step ${st.step + 1}/${o.steps} loss ${st.loss.toFixed(4)} lr ${st.lr.toExponential(2)} ${st.seconds.toFixed(2)} s/step, ETA ${(eta / 60).toFixed(1)} min`);
      }
      if ((st.step + 1) % o.evalEvery === 0 && st.step + 1 < o.steps) await quickEval(st.step + 1);
    },
  );
  const trainMinutes = (Date.now() - started) / 60000;
  await quickEval(o.steps);

  const files = await saveModelFolder(folderSink(o.out), { config: o.cfg, weights: await model.exportWeights(), tokenizer: o.tokenizer }, { metadata: { seed: String(o.seed), steps: String(o.steps), style: 'cot' } });
  await mkdir(o.out, { recursive: true });
  await writeFile(
    join(o.out, 'pretrain.json'),
    JSON.stringify(
      {
        style: 'cot',
        seed: o.seed,
        steps: o.steps,
        init: o.init ?? null,
        tasks: o.train.length,
        demonstrations: demonstrations.length,
        dropped,
        longestTokens: longest,
        batchSize: o.batchSize,
        lr: o.lr,
        parameters: countParameters(o.cfg),
        backend: o.backend,
        minutes: (Date.now() - started) / 60000,
        trainMinutes,
        loss,
        evals,
        heldOut: { questions: heldOut.length, accuracy: last!.accuracy, format_ratio: last!.format_ratio, examples: last!.samples.slice(0, 4) },
      },
      null,
      1,
    ) + '\n',
  );
  console.log(`wrote ${files.join(', ')} and pretrain.json to ${o.out}`);
  model.dispose();
}
