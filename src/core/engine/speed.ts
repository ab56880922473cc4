/**
 * How fast this device runs the engine (docs/engine.md#measuring-a-device): on the backend in use,
 * the backend's own 2-D matrix product rate and the effective rate of decoding and of training a
 * ~10M-parameter model with random weights, FLOPs counted from its shapes (flops.ts), so that
 * decoding and training read as shares of what the backend can do. `npm run bench -- engine`
 * measures the same in Node; the Overview panel measures it in the browser, at the thread count the
 * page chose (?threads=N).
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { LabError } from '../errors';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { decodeFlops, trainFlops } from '../model/flops';
import { Transformer } from '../model/transformer';
import { engineProductThreads, fusedMultiplyAdd, memoryOf, setWasmPlainProducts, type WasmBackend } from '../model/wasm-matmul';
import { AdamW } from '../optim/adamw';
import { trainStep } from '../optim/step';
import { createRng } from '../rng';
import { Generation } from './generation';

/** The measured model: Llama-shaped, ~10M parameters (hidden 384, 6 layers, 6 query and 2 kv heads). */
export const SPEED_MODEL: ModelConfig = parseModelConfig({
  model_type: 'llama',
  hidden_size: 384,
  intermediate_size: 1024,
  num_hidden_layers: 6,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  vocab_size: 1024,
  max_position_embeddings: 1024,
  tie_word_embeddings: true,
});

export interface SpeedPlan {
  decode: { batch: number; promptLength: number; newTokens: number };
  train: { batch: number; seq: number; steps: number };
}

/** The plan of a measurement in a page: some 15 s on one wasm thread of a laptop-class core. */
export const QUICK_SPEED_PLAN: SpeedPlan = { decode: { batch: 16, promptLength: 16, newTokens: 64 }, train: { batch: 8, seq: 128, steps: 2 } };

/** A plan from a request, checked: every size a whole number in its range, or an error that names it. */
export function checkSpeedPlan(plan: SpeedPlan): SpeedPlan {
  const limits: [string, number, number, number][] = [
    ['plan.decode.batch', plan.decode?.batch, 1, 256],
    ['plan.decode.promptLength', plan.decode?.promptLength, 1, 512],
    ['plan.decode.newTokens', plan.decode?.newTokens, 2, 512],
    ['plan.train.batch', plan.train?.batch, 1, 64],
    ['plan.train.seq', plan.train?.seq, 2, 1023],
    ['plan.train.steps', plan.train?.steps, 1, 100],
  ] as [string, number, number, number][];
  for (const [field, value, min, max] of limits)
    if (!(Number.isInteger(value) && value >= min && value <= max)) throw new LabError('speed', 'a size of the speed measurement is out of range', { field, expected: `a whole number from ${min} to ${max}`, found: String(value) });
  return plan;
}

export interface SpeedReport {
  backend: string;
  /** Threads of tfjs's wasm build, where it runs. */
  threads?: number;
  parameters: number;
  /** The best of the backend's own 2-D products timed ([512³] and the model's own MLP shape at 16 and 1024 rows). */
  matmul_gflops: number;
  /** On wasm: the engine's own kernel at the same shapes, and whether it multiply-adds in one step (relaxed SIMD). */
  engine_matmul_gflops?: number;
  fused_multiply_add?: boolean;
  /** On wasm: the threads the engine's own products run on (its helper threads and the caller). */
  engine_threads?: number;
  decode: { batch: number; new_tokens: number; tok_s: number; gflops: number; vs_matmul: number };
  train: { batch: number; seq: number; tok_s: number; gflops: number; vs_matmul: number };
  seconds: number;
}

/** On wasm: the engine's own products beside the backend's, and how they run (relaxed SIMD, threads). */
function engineFigures(gflops: number): Pick<SpeedReport, 'engine_matmul_gflops' | 'fused_multiply_add' | 'engine_threads'> {
  const memory = memoryOf(tf.backend() as unknown as WasmBackend);
  return { engine_matmul_gflops: gflops, fused_multiply_add: fusedMultiplyAdd(memory), engine_threads: engineProductThreads(memory) };
}

/** f's result and the seconds it took. */
export async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await f();
  return [out, (performance.now() - t0) / 1000];
}

export function randomRows(batch: number, length: number, vocab: number, seed: number): number[][] {
  const rng = createRng(seed);
  return Array.from({ length: batch }, () => Array.from({ length }, () => rng.int(0, vocab - 1)));
}

/**
 * The backend's 2-D matmul rate at one shape (tfjs's own product: on wasm XNNPACK, not the engine's
 * kernel, which passes it: docs/engine.md#fused-multiply-adds; `by: 'engine'` times that one): the
 * best of three timed batches of products after a batch of warm-up. A browser first runs wasm as its baseline compiler made it and moves the hot
 * functions to its optimising compiler a while later: a single warm-up product measured a browser's
 * matmul at half its rate, below what its decoding got out of it.
 */
export async function matmulRate(m: number, k: number, n: number, by: 'backend' | 'engine' = 'backend'): Promise<{ shape: string; reps: number; seconds: number; gflops: number }> {
  // The backend's own product (XNNPACK on wasm), unless the engine's kernel is asked for.
  const was = setWasmPlainProducts(by === 'engine');
  try {
    return await timedProducts(m, k, n);
  } finally {
    setWasmPlainProducts(was);
  }
}

/** The 2-D shapes a device's matmul rate is the best of: [512³] and the model's MLP shape at 16 and 1024 rows. */
export function productShapes(cfg: ModelConfig): [number, number, number][] {
  return [
    [512, 512, 512],
    [16, cfg.hidden_size, cfg.intermediate_size],
    [1024, cfg.hidden_size, cfg.intermediate_size],
  ];
}

/** matmulRate at each of productShapes, and the best of them. */
export async function productRates(cfg: ModelConfig, by: 'backend' | 'engine' = 'backend'): Promise<{ best: number; rates: Awaited<ReturnType<typeof matmulRate>>[] }> {
  const rates = [];
  for (const [m, k, n] of productShapes(cfg)) rates.push(await matmulRate(m, k, n, by));
  return { best: Math.max(...rates.map((r) => r.gflops)), rates };
}

async function timedProducts(m: number, k: number, n: number): Promise<{ shape: string; reps: number; seconds: number; gflops: number }> {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  const reps = Math.max(3, Math.ceil(2e9 / (2 * m * k * n)));
  const batch = async () =>
    (
      await timed(async () => {
        for (let i = 0; i < reps; i++) {
          const c = tf.matMul(a, b);
          try {
            await c.data();
          } finally {
            c.dispose();
          }
        }
      })
    )[1];
  let s: number;
  try {
    await batch();
    s = Math.min(await batch(), await batch(), await batch());
  } finally {
    tf.dispose([a, b]);
  }
  return { shape: `[${m}×${k}]·[${k}×${n}]`, reps, seconds: s, gflops: (2 * m * k * n * reps) / s / 1e9 };
}

/**
 * Greedy decoding with the KV cache after a warm-up: prefill is the steps until every row has its
 * first new token (a long prompt is fed in chunks over several steps), the rest decode.
 */
export async function decodeRate(model: Transformer, plan: SpeedPlan['decode']): Promise<{ prefill_s: number; decode_s: number; tok_s: number; gflops: number }> {
  const run = async (newTokens: number) => {
    const gen = new Generation(model, randomRows(plan.batch, plan.promptLength, model.cfg.vocab_size, plan.batch), { maxNewTokens: newTokens, temperature: 0 });
    try {
      const started = new Set<number>();
      const [, prefillS] = await timed(async () => {
        while (started.size < plan.batch && gen.active > 0) for (const e of await gen.step()) if (e.kind === 'token') started.add(e.row);
      });
      const [, decodeS] = await timed(async () => {
        while (gen.active > 0) await gen.step();
      });
      return { prefillS, decodeS };
    } finally {
      gen.dispose();
    }
  };
  await run(Math.min(4, plan.newTokens)); // warm-up: kernels, shaders, buffer pools
  const { prefillS, decodeS } = await run(plan.newTokens);
  return {
    prefill_s: prefillS,
    decode_s: decodeS,
    tok_s: (plan.batch * (plan.newTokens - 1)) / decodeS,
    // The first decoding step feeds the first new token at position promptLength.
    gflops: decodeFlops(model.cfg, plan.batch, plan.promptLength, plan.newTokens - 1) / decodeS / 1e9,
  };
}

/** A training step (AdamW, the mean loss of next tokens on random ids), to time. */
export function trainingStep(model: Transformer, plan: SpeedPlan['train']): { step: () => Promise<unknown>; dispose: () => void } {
  const ids = tf.tensor2d(randomRows(plan.batch, plan.seq + 1, model.cfg.vocab_size, 5), undefined, 'int32');
  const mask = tf.ones([plan.batch, plan.seq]) as tf.Tensor2D;
  const opt = new AdamW(model.trainableVariables(), { weightDecay: 0 });
  return {
    step: () => trainStep(model, opt, [() => model.loss(ids, mask)], { lr: 1e-4, maxGradNorm: 1 }),
    dispose: () => {
      opt.dispose();
      tf.dispose([ids, mask]);
    },
  };
}

/** Training steps on random ids after a warm-up one. */
export async function trainRate(model: Transformer, plan: SpeedPlan['train']): Promise<{ seconds: number; tok_s: number; gflops: number }> {
  const { step, dispose } = trainingStep(model, plan);
  try {
    await step();
    const [, s] = await timed(async () => {
      for (let i = 0; i < plan.steps; i++) await step();
    });
    return { seconds: s, tok_s: (plan.batch * plan.seq * plan.steps) / s, gflops: (trainFlops(model.cfg, plan.batch, plan.seq) * plan.steps) / s / 1e9 };
  } finally {
    dispose();
  }
}

/**
 * The whole measurement on the backend in use: the matmul rate, then decoding and training of
 * SPEED_MODEL. `progress` hears each part as it starts; `signal` stops between parts. Every tensor
 * it makes is gone when it returns.
 */
export async function measureSpeed(
  options: { plan?: SpeedPlan; progress?: (done: number, total: number, part: string) => void; signal?: AbortSignal } = {},
): Promise<SpeedReport> {
  const plan = checkSpeedPlan(options.plan ?? QUICK_SPEED_PLAN);
  const started = performance.now();
  const cfg = SPEED_MODEL;
  const parts = ['matrix products', 'decoding', 'training'];
  // Told first, then stopped: a listener may ask for the stop on hearing the part.
  const at = (i: number) => {
    options.progress?.(i, parts.length, parts[i] ?? 'done');
    options.signal?.throwIfAborted();
  };
  at(0);
  const backend = tf.getBackend();
  const matmul = (await productRates(cfg)).best;
  const engineMatmul = backend === 'wasm' ? (await productRates(cfg, 'engine')).best : undefined;
  const model = Transformer.create(cfg, { seed: 1 });
  try {
    at(1);
    const decode = await decodeRate(model, plan.decode);
    at(2);
    const train = await trainRate(model, plan.train);
    at(3);
    return {
      backend,
      ...(backend === 'wasm' && { threads: getThreadsCount() }),
      parameters: model.numParameters(),
      matmul_gflops: matmul,
      ...(engineMatmul !== undefined && engineFigures(engineMatmul)),
      decode: { batch: plan.decode.batch, new_tokens: plan.decode.newTokens, tok_s: decode.tok_s, gflops: decode.gflops, vs_matmul: decode.gflops / matmul },
      train: { batch: plan.train.batch, seq: plan.train.seq, tok_s: train.tok_s, gflops: train.gflops, vs_matmul: train.gflops / matmul },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    model.dispose();
  }
}
