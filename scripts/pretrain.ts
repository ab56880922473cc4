/**
 * `npm run pretrain`: trains the lab's default tiny model, reproducibly from a seed, on
 * demonstrations built from the task generators (src/core/tir/demonstrations.ts) whose tool outputs come
 * from really running each program in the Python sandbox. The result knows the TIR format and
 * sometimes writes code; its own arithmetic is unreliable. Writes public/models/thor-tiny/.
 *
 *   npm run pretrain -- [--seed 1] [--steps 600] [--tasks 8000] [--tool-share 0.3] [--difficulties 1,2,3] [--kinds K,K,...] [--out DIR] [--init DIR] [--style tir|cot]  [--read-share 0.3] [--read-all-share 0] [--layers 4] [--context 256]
 *
 * --difficulties picks the generators' grades to train on (1..5).
 * --kinds picks the task kinds (default: all); a kind named twice gets twice the share of the tasks.
 * --read-share (cot only) is the share of solutions shown with one computation as TIRGen writes it.
 * --read-all-share (cot only) is the share of those that show every computation so (a whole answer as TIRGen leaves it).
 * --context sets the positions the model is trained for (max_position_embeddings, default 256).
 * --style cot trains the same architecture on chain-of-thought demonstrations instead (plain-text steps,
 * no code; scripts/pretrain-cot.ts) and writes public/models/thor-tiny-cot/ unless --out is given.
 *
 * --init continues from an earlier checkpoint instead of a seeded initialisation.
 * --layers sets the number of decoder layers (default 4); with --init of a shallower checkpoint, the model
 * grows: its layers are kept and new ones added on top that compute nothing until trained.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfig, countParameters } from '../src/core/model/config';
import { saveModelFolder } from '../src/core/model/checkpoint';
import { initialModel } from './pretrain-init';
import { generateTasks, type Task, type TaskKind } from '../src/core/data/tasks';
import { buildDemonstrations } from '../src/core/tir/demonstrations';
import { createRng } from '../src/core/rng';
import { sftSequence, trainSft } from '../src/core/rl/sft';
import { evaluate } from '../src/core/eval/evaluate';
import { THOR_REWARD } from '../src/core/reward/reward';
import { CharTokenizer } from '../src/core/tokenizer/char';
import { selectNodeBackend } from '../src/node/backend';
import { folderSink } from '../src/node/files';
import { pretrainCot } from './pretrain-cot';
import { createNodePythonPool } from '../src/node/python';

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    steps: { type: 'string', default: '600' },
    tasks: { type: 'string', default: '8000' },
    'tool-share': { type: 'string', default: '0.3' },
    'batch-size': { type: 'string', default: '32' },
    lr: { type: 'string', default: '3e-3' },
    out: { type: 'string' },
    'eval-every': { type: 'string', default: '200' },
    'max-tokens': { type: 'string', default: '1024' },
    init: { type: 'string' },
    style: { type: 'string', default: 'tir' },
    'read-share': { type: 'string', default: '0.3' },
    difficulties: { type: 'string', default: '1,2,3' },
    kinds: { type: 'string' },
    layers: { type: 'string', default: '4' },
    context: { type: 'string', default: '256' },
    'read-all-share': { type: 'string', default: '0' },
  },
});
const seed = Number(args.seed);
const steps = Number(args.steps);
const style = args.style;
if (style !== 'tir' && style !== 'cot') throw new Error(`--style must be tir or cot, not ${style}`);
const out = args.out ?? (style === 'cot' ? 'public/models/thor-tiny-cot' : 'public/models/thor-tiny');

/** The shipped tiny model: Llama-style, character-level, a context long enough for 2 tool calls. */
export const TINY_CONFIG = {
  model_type: 'llama',
  hidden_size: 128,
  intermediate_size: 352,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  rope_theta: 10000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
};

const backend = await selectNodeBackend(['wasm', 'cpu']);
console.log(`backend ${backend.name}`);
const tokenizer = CharTokenizer.fromCharset();
const cfg = parseModelConfig({ ...TINY_CONFIG, num_hidden_layers: Number(args.layers), max_position_embeddings: Number(args.context), vocab_size: tokenizer.vocabSize, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId });
console.log(`model: ${countParameters(cfg).toLocaleString()} parameters, vocab ${cfg.vocab_size}`);

const difficulties = args.difficulties.split(',').map(Number);
// The generators take turns over kinds × difficulties: a kind listed twice gets two turns.
const kinds = args.kinds?.split(',') as TaskKind[] | undefined;
const train = generateTasks({ seed, count: Number(args.tasks), split: 'train', difficulties, ...(kinds && { kinds }) });
const test = generateTasks({ seed, count: 64, split: 'test', difficulties });

if (style === 'cot') {
  await pretrainCot({
    cfg,
    tokenizer,
    train,
    test,
    recipe: { difficulties, ...(kinds && { kinds }) },
    seed,
    steps,
    batchSize: Number(args['batch-size']),
    lr: Number(args.lr),
    maxTokens: Number(args['max-tokens']),
    evalEvery: Number(args['eval-every']),
    out,
    init: args.init,
    backend: backend.name,
    readShare: Number(args['read-share']),
    readAllShare: Number(args['read-all-share']),
  });
  process.exit(0);
}

// Real tool outputs: every distinct program runs once in the sandbox.
const pool = await createNodePythonPool({ preload: ['sympy'] });
const outputs = new Map<string, string>();
const t0 = Date.now();
let failed = 0;
// In chunks, so a large --tasks never overfills the sandbox's queue.
const programs = [...new Set(train.map((t: Task) => t.program))];
for (let i = 0; i < programs.length; i += 1000) {
  await Promise.all(
    programs.slice(i, i + 1000).map(async (program) => {
      const r = await pool.run(program, { timeoutMs: 10_000 });
      if (r.status === 'ok' && r.stdout.trim() !== '') outputs.set(program, r.stdout);
      else failed++;
    }),
  );
}
console.log(`ran ${outputs.size + failed} programs in ${((Date.now() - t0) / 1000).toFixed(1)} s (${failed} failed)`);

const demos = buildDemonstrations(train, outputs, Number(args['tool-share']), createRng(seed).fork('demonstrations'));
const seqs = demos.map((d) => sftSequence(tokenizer, d.question, d.response, ''));
const longest = Math.max(...seqs.map((s) => s.promptTokens.length + s.tokens.length));
console.log(`${demos.length} demonstrations, ${demos.filter((d) => d.usesTool).length} with code, longest ${longest} tokens`);

const model = await initialModel(cfg, seed, args.init);
const history: { step: number; loss: number; seconds: number }[] = [];
const evals: Record<string, number | null>[] = [];
const started = Date.now();

async function quickEval(step: number): Promise<void> {
  const r = await evaluate(
    { model, tokenizer, executor: pool },
    test,
    { samples: 1, instruction: '', maxToolCalls: 2, maxResponseTokens: 200, temperature: 1, topP: 1, topK: 0, seed, toolTimeoutMs: 5000 },
    THOR_REWARD,
  );
  const e = { step, accuracy: r.accuracy, code_ratio: r.metrics.code_ratio, pass_ratio: r.metrics.pass_ratio, answer_ratio: r.metrics.answer_ratio };
  evals.push(e);
  console.log(`  eval@${step} (T=1): accuracy ${r.accuracy.toFixed(3)} code ${e.code_ratio?.toFixed(2)} pass ${e.pass_ratio?.toFixed(2)} answered ${e.answer_ratio?.toFixed(2)}`);
}

await trainSft(
  model,
  seqs,
  { steps, batchSize: Number(args['batch-size']), lr: Number(args.lr), warmupSteps: 50, schedule: 'cosine', minLrRatio: 0.05, maxGradNorm: 1, seed, maxTokens: Number(args['max-tokens']), optimizer: { weightDecay: 0.01 } },
  async (st) => {
    history.push({ step: st.step, loss: st.loss, seconds: st.seconds });
    if (st.step % 10 === 0 || st.step === steps - 1) {
      const elapsed = (Date.now() - started) / 1000;
      const eta = (elapsed / (st.step + 1)) * (steps - st.step - 1);
      console.log(`step ${st.step + 1}/${steps} loss ${st.loss.toFixed(4)} lr ${st.lr.toExponential(2)} ${st.seconds.toFixed(2)} s/step, ETA ${(eta / 60).toFixed(1)} min`);
    }
    if ((st.step + 1) % Number(args['eval-every']) === 0 && st.step + 1 < steps) await quickEval(st.step + 1);
  },
);
await quickEval(steps);

const files = await saveModelFolder(folderSink(out), { config: cfg, weights: await model.exportWeights(), tokenizer }, { metadata: { seed: String(seed), steps: String(steps) } });
await mkdir(out, { recursive: true });
await writeFile(
  join(out, 'pretrain.json'),
  JSON.stringify(
    {
      seed,
      steps,
      init: args.init ?? null,
      tasks: train.length,
      difficulties,
      ...(kinds && { kinds }),
      toolShare: Number(args['tool-share']),
      batchSize: Number(args['batch-size']),
      lr: Number(args.lr),
      layers: cfg.num_hidden_layers,
      parameters: countParameters(cfg),
      backend: backend.name,
      minutes: (Date.now() - started) / 60000,
      loss: history.map((h) => h.loss),
      evals,
    },
    null,
    1,
  ) + '\n',
);
console.log(`wrote ${files.join(', ')} and pretrain.json to ${out}`);
await pool.close();
model.dispose();
