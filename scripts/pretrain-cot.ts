/**
 * The `--style cot` path of `npm run pretrain` (scripts/pretrain.ts): the same architecture trained on
 * chain-of-thought demonstrations (src/core/tir/cot.ts), plain-text steps with no code, for the
 * offline actor of TIRGen (docs/tirgen.md, "The chain-of-thought actor"). Writes the model folder and
 * pretrain.json with the settings, minutes, loss and a greedy held-out evaluation.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { countParameters, type ModelConfig } from '../src/core/model/config';
import { saveModelFolder } from '../src/core/model/checkpoint';
import { initialModel } from './pretrain-init';
import type { Task } from '../src/core/data/tasks';
import { buildCotDemonstrations } from '../src/core/tir/cot';
import { evaluateCot } from '../src/core/eval/cot';
import { sftSequence, sftSequenceOfPieces, trainSft, type ResponsePiece } from '../src/core/rl/sft';
import type { TrainingSequence } from '../src/core/rl/batch';
import { CODE_OPEN, FENCE_CLOSE, observationBlock, splitFences } from '../src/core/tir/format';
import { executionRecord } from '../src/core/tir/rollout';
import { ruleRewrite } from '../src/core/tirgen/rule-critic';
import { createRng, type Rng } from '../src/core/rng';
import type { PythonPool } from '../src/core/sandbox/pool';
import { createNodePythonPool } from '../src/node/python';
import type { CharTokenizer } from '../src/core/tokenizer/char';
import { folderSink } from '../src/node/files';

export interface CotPretrainOptions {
  cfg: ModelConfig;
  tokenizer: CharTokenizer;
  train: Task[];
  /** How the tasks were drawn (difficulties, kinds), recorded in pretrain.json. */
  recipe?: Record<string, unknown>;
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
  /** Share of demonstrations that show one of their computations as TIRGen's rule critic writes it, with its real output, all of it out of the loss. */
  readShare: number;
  /** Share of those reading demonstrations that show every computation so, not just one. */
  readAllShare?: number;
}

/**
 * A reading demonstration (docs/tirgen.md#the-chain-of-thought-actor): the same solution, with one
 * computational line (or, with `every`, each of them) replaced by what TIRGen makes of it (the rule
 * critic's words and code, and the sandbox's real output), the rest of the solution around it. The
 * replaced parts are forced text, out of the loss: the model never learns to write code, only to read
 * a result it is given and go on, as a pretrained language model can when TIRGen's critic has
 * rewritten its step. Showing every computation so teaches it to go on through a whole answer as
 * TIRGen leaves it, code and outputs included, which is several times the length of the plain one.
 * A computation whose real output is the answer (the opening line that states the question's whole
 * computation, or the last step) is followed by the boxed answer alone: a model that reads its answer
 * in an output says it. Since every solution now opens with such a line, showing every computation
 * shows that line and the answer, as showing the opening line alone does.
 */
export async function readingPieces(response: string, pool: PythonPool, rng: Rng, every = false): Promise<ResponsePiece[] | undefined> {
  const lines = response.split('\n');
  // The last line (the boxed answer) stays the model's own.
  const rewrites = lines.map((line, i) => (i < lines.length - 1 ? ruleRewrite(line) : undefined));
  const candidates = rewrites.flatMap((r, i) => (r === undefined ? [] : [i]));
  if (candidates.length === 0) return undefined;
  const chosen = new Set(every ? candidates : [rng.pick(candidates)]);
  const answer = /\\boxed\{(.*)\}/.exec(lines[lines.length - 1])?.[1];
  const out: ResponsePiece[] = [];
  let plain = '';
  for (let i = 0; i < lines.length; i++) {
    const inserted = chosen.has(i) ? await readingLine(rewrites[i]!, pool) : undefined;
    if (chosen.has(i) && inserted === undefined) return undefined;
    if (inserted === undefined) {
      plain += i < lines.length - 1 ? `${lines[i]}\n` : lines[i];
      continue;
    }
    if (plain !== '') out.push({ text: plain, forced: false });
    plain = '';
    out.push({ text: inserted.text, forced: true });
    if (inserted.printed.trim().split('\n').at(-1) === answer) {
      plain = lines[lines.length - 1];
      break;
    }
  }
  out.push({ text: plain, forced: false });
  return out;
}

/** A line as TIRGen's rule critic rewrote it, with its first block's real output (and what it printed); undefined when the code fails. */
async function readingLine(rewrite: string, pool: PythonPool): Promise<{ text: string; printed: string } | undefined> {
  const pieces = splitFences(rewrite);
  const code = pieces.find((p) => p.kind === 'code' && p.closed);
  if (!code) return undefined;
  const lead = pieces.filter((p) => p.kind === 'text' && p.start < code.start).map((p) => p.body).join('');
  const result = await pool.run(code.body, { timeoutMs: 10_000 });
  const record = executionRecord(0, code.body, result, undefined, 0, 0);
  if (!record.succeeded) return undefined;
  const lead2 = lead === '' || lead.endsWith('\n') ? lead : `${lead}\n`;
  return { text: `${lead2}${CODE_OPEN}${code.body}\n${FENCE_CLOSE}${observationBlock(record.observation, false)}`, printed: record.observation };
}

export async function pretrainCot(o: CotPretrainOptions): Promise<void> {
  const context = o.cfg.max_position_embeddings;
  const fits = (question: string, response: string): boolean => {
    const s = sftSequence(o.tokenizer, question, response, '');
    return s.promptTokens.length + s.tokens.length <= context;
  };
  const { demonstrations, dropped } = buildCotDemonstrations(o.train, fits);
  let seqs: TrainingSequence[] = demonstrations.map((d) => sftSequence(o.tokenizer, d.question, d.response, ''));
  let reading = 0;
  let readingAll = 0;
  if (o.readShare > 0) {
    const pool = await createNodePythonPool();
    const rng = createRng(o.seed).fork('reading');
    try {
      seqs = [];
      for (let k = 0; k < demonstrations.length; k += 500) {
        const chunk = demonstrations.slice(k, k + 500);
        const chosen = chunk.map(() => rng.next() < o.readShare);
        // Drawn only when asked for, so that earlier recipes draw the same reading demonstrations.
        const every = chunk.map(() => (o.readAllShare ?? 0) > 0 && rng.next() < o.readAllShare!);
        const forks = chunk.map((_, j) => rng.fork(`line-${k + j}`));
        const built = await Promise.all(
          chunk.map(async (d, j) => {
            const pieces = chosen[j] ? await readingPieces(d.response, pool, forks[j], every[j]) : undefined;
            const seq = pieces ? sftSequenceOfPieces(o.tokenizer, d.question, pieces, '') : undefined;
            if (seq && seq.promptTokens.length + seq.tokens.length <= context) {
              reading++;
              if (every[j]) readingAll++;
              return seq;
            }
            return sftSequence(o.tokenizer, d.question, d.response, '');
          }),
        );
        seqs.push(...built);
      }
    } finally {
      await pool.close();
    }
    console.log(`${reading} of them show ${o.readAllShare ? 'one or every' : 'one'} computation as TIRGen's code and real output (out of the loss; ${readingAll} every one)`);
  }
  const longest = Math.max(...seqs.map((s) => s.promptTokens.length + s.tokens.length));
  console.log(`${demonstrations.length} chain-of-thought demonstrations (dropped as too long: ${JSON.stringify(dropped)}), longest ${longest} tokens`);
  const heldOut = o.test.filter((t) => fits(t.question, '')).slice(0, 64);

  const model = await initialModel(o.cfg, o.seed, o.init);
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
        ...(o.recipe ?? {}),
        demonstrations: demonstrations.length,
        readShare: o.readShare,
        readAllShare: o.readAllShare ?? 0,
        readingAllDemonstrations: readingAll,
        context: o.cfg.max_position_embeddings,
        readingDemonstrations: reading,
        dropped,
        longestTokens: longest,
        batchSize: o.batchSize,
        lr: o.lr,
        layers: o.cfg.num_hidden_layers,
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
