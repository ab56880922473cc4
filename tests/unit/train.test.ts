/**
 * Training primitives: gradients on every backend (the wasm embedding gradient included), AdamW,
 * clipping and schedules against hand-computed numbers, loss going down, tensor hygiene.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model/config';
import { initWeights } from '../../src/core/model/init';
import { embeddingGradOneHot } from '../../src/core/model/ops';
import { Transformer } from '../../src/core/model/transformer';
import { AdamW } from '../../src/core/optim/adamw';
import { clipByGlobalNorm } from '../../src/core/optim/clip';
import { learningRate } from '../../src/core/optim/schedule';
import { trainStep } from '../../src/core/optim/step';
import { releaseNodeWebGPU, selectNodeBackend } from '../../src/node/backend';

afterAll(() => releaseNodeWebGPU());

const cfg = parseModelConfig({
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 40,
  max_position_embeddings: 128,
  tie_word_embeddings: false,
});
const weights = initWeights(cfg, { seed: 1 });
const B = 4;
const T = 16;
/** A small fixed batch with a learnable pattern; the first 3 positions act as prompt (masked out). */
const batchIds = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 5 + t * 7) % cfg.vocab_size));
const batchMask = Array.from({ length: B }, () => Array.from({ length: T - 1 }, (_, t) => (t < 3 ? 0 : 1)));

async function gradientsOn(backend: 'cpu' | 'wasm' | 'webgpu'): Promise<Map<string, Float32Array>> {
  expect((await selectNodeBackend([backend])).name).toBe(backend);
  const model = Transformer.fromWeights(cfg, weights);
  const ids = tf.tensor2d(batchIds, undefined, 'int32');
  const mask = tf.tensor2d(batchMask);
  const { value, grads } = tf.variableGrads(() => model.loss(ids, mask), model.trainableVariables());
  const out = new Map<string, Float32Array>();
  for (const v of model.trainableVariables()) out.set(model.nameOf(v)!, (await grads[v.name].data()) as Float32Array);
  tf.dispose([ids, mask, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('gradients', () => {
  it('wasm (no UnsortedSegmentSum: one-hot embedding gradient) and webgpu give cpu\'s gradients for every parameter', async () => {
    const cpu = await gradientsOn('cpu');
    const wasm = await gradientsOn('wasm');
    const webgpu = await gradientsOn('webgpu');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined(); // the route under test
    const embed = cpu.get('model.embed_tokens.weight')!;
    expect(Math.max(...Array.from(embed).map(Math.abs))).toBeGreaterThan(1e-3);
    for (const [name, g] of cpu) {
      const scale = Math.max(1e-3, ...Array.from(g).map(Math.abs));
      expect(maxAbsDiff(wasm.get(name)!, g) / scale, `wasm ${name}`).toBeLessThan(1e-3);
      expect(maxAbsDiff(webgpu.get(name)!, g) / scale, `webgpu ${name}`).toBeLessThan(1e-3);
    }
  });

  it('the one-hot embedding gradient sums rows per id, in blocks', async () => {
    await selectNodeBackend(['wasm']);
    const dy = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
    const ids = tf.tensor1d([2, 0, 2, 1], 'int32');
    const g = embeddingGradOneHot(dy, ids, 4);
    expect(Array.from(await g.data())).toEqual([3, 4, 7, 8, 6, 8, 0, 0]);
    tf.dispose([dy, ids, g]);
  });
});

describe('optimiser', () => {
  it('AdamW follows torch.optim.AdamW: bias-corrected moments, decoupled decay on matrices only', async () => {
    await selectNodeBackend(['cpu']);
    const w = tf.variable(tf.tensor2d([[1, -2]]));
    const b = tf.variable(tf.tensor1d([0.5]));
    const opt = new AdamW([w, b], { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
    const lr = 0.01;
    const g1 = { w: [0.2, -0.4], b: [1] };
    const g2 = { w: [0.1, 0.3], b: [-1] };
    opt.apply({ [w.name]: tf.tensor2d([g1.w]), [b.name]: tf.tensor1d(g1.b) }, lr);
    opt.apply({ [w.name]: tf.tensor2d([g2.w]), [b.name]: tf.tensor1d(g2.b) }, lr);
    // Hand computation of two steps.
    const adam = (p0: number, gs: number[], decay: number) => {
      let p = p0;
      let m = 0;
      let v = 0;
      gs.forEach((g, i) => {
        const t = i + 1;
        m = 0.9 * m + 0.1 * g;
        v = 0.99 * v + 0.01 * g * g;
        p = p - lr * decay * p - (lr * (m / (1 - 0.9 ** t))) / (Math.sqrt(v / (1 - 0.99 ** t)) + 1e-8);
      });
      return p;
    };
    const wGot = await w.data();
    expect(wGot[0]).toBeCloseTo(adam(1, [g1.w[0], g2.w[0]], 0.1), 6);
    expect(wGot[1]).toBeCloseTo(adam(-2, [g1.w[1], g2.w[1]], 0.1), 6);
    expect((await b.data())[0]).toBeCloseTo(adam(0.5, [g1.b[0], g2.b[0]], 0), 6);
    opt.dispose();
    tf.dispose([w, b]);
  });

  it('clips by global norm as torch.nn.utils.clip_grad_norm_', async () => {
    await selectNodeBackend(['cpu']);
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) }; // global norm 5
    const { grads: clipped, norm } = clipByGlobalNorm(grads, 1);
    expect((await norm.data())[0]).toBeCloseTo(5, 5);
    expect(Array.from(await clipped.a.data())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(await clipped.b.data())[1]).toBeCloseTo(0.8, 5);
    // a norm under the limit leaves the gradient as it is
    const small = clipByGlobalNorm({ a: tf.tensor1d([0.3, 0.4]) }, 1);
    expect(Array.from(await small.grads.a.data())).toEqual([expect.closeTo(0.3, 6), expect.closeTo(0.4, 6)]);
    tf.dispose([...Object.values(grads), ...Object.values(clipped), norm, ...Object.values(small.grads), small.norm]);
  });

  it('learning-rate schedules: linear warmup, then cosine / linear / constant', () => {
    const s = { peak: 1, warmupSteps: 4, totalSteps: 14, minRatio: 0.1 };
    expect([0, 1, 3].map((t) => learningRate(t, { ...s, kind: 'cosine' }))).toEqual([0.25, 0.5, 1]);
    expect(learningRate(4, { ...s, kind: 'cosine' })).toBeCloseTo(1, 10);
    expect(learningRate(9, { ...s, kind: 'cosine' })).toBeCloseTo(0.55, 10); // halfway: (1 + 0.1) / 2
    expect(learningRate(14, { ...s, kind: 'cosine' })).toBeCloseTo(0.1, 10);
    expect(learningRate(99, { ...s, kind: 'cosine' })).toBeCloseTo(0.1, 10);
    expect(learningRate(9, { ...s, kind: 'linear' })).toBeCloseTo(0.55, 10);
    expect(learningRate(11, { ...s, kind: 'linear' })).toBeCloseTo(1 - 0.9 * 0.7, 10);
    expect(learningRate(11, { ...s, kind: 'constant' })).toBe(1);
  });
});

describe('optimiser state', () => {
  it('exported and imported into a fresh optimiser, the next update is the same as without the break', async () => {
    const a = tf.variable(tf.tensor2d([[0.5, -1], [2, 0.25]]), true, 'state-a');
    const b = tf.variable(a.clone(), true, 'state-b');
    const first = new AdamW([a], { weightDecay: 0.1 });
    first.apply({ 'state-a': tf.tensor2d([[0.1, -0.2], [0.3, 0.05]]) }, 0.01);
    const state = await first.exportState(() => 'w');
    expect(state.step).toBe(1);
    expect([...state.moments.keys()]).toEqual(['m.w', 'v.w']);
    b.assign(a);
    const second = new AdamW([b], { weightDecay: 0.1 });
    second.importState(state, () => 'w');
    expect(second.step).toBe(1);
    const g = tf.tensor2d([[-0.4, 0.2], [0.1, 0.3]]);
    first.apply({ 'state-a': g }, 0.01);
    second.apply({ 'state-b': g }, 0.01);
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    // a state for other shapes is refused with the moment named
    const wrong = { step: 1, moments: new Map([['m.w', { shape: [4], data: new Float32Array(4) }], ['v.w', { shape: [4], data: new Float32Array(4) }]]) };
    expect(() => second.importState(wrong, () => 'w', 'optimizer.safetensors')).toThrow(/wrong shape/);
    expect(() => second.importState({ step: 1, moments: new Map() }, () => 'w')).toThrow(/missing/);
    tf.dispose([a, b, g]);
    first.dispose();
    second.dispose();
  });
});

describe('training', () => {
  for (const backend of ['wasm', 'webgpu'] as const) {
    it(`steps lower the loss on a small fixed batch (${backend})`, async () => {
      expect((await selectNodeBackend([backend])).name).toBe(backend);
      const model = Transformer.fromWeights(cfg, weights);
      const opt = new AdamW(model.trainableVariables(), { weightDecay: 0.01 });
      const ids = tf.tensor2d(batchIds, undefined, 'int32');
      const mask = tf.tensor2d(batchMask);
      const losses: number[] = [];
      for (let step = 0; step < 12; step++) {
        const lr = learningRate(step, { peak: 1e-2, warmupSteps: 2, totalSteps: 12, kind: 'cosine' });
        const stats = await trainStep(model, opt, [() => model.loss(ids, mask)], { lr, maxGradNorm: 1 });
        expect(Number.isFinite(stats.gradNorm) && stats.gradNorm > 0).toBe(true);
        losses.push(stats.loss);
      }
      expect(losses[0]).toBeCloseTo(Math.log(cfg.vocab_size), 0); // a fresh model is near uniform
      expect(losses[11]).toBeLessThan(0.6 * losses[0]);
      tf.dispose([ids, mask]);
      opt.dispose();
      model.dispose();
    });
  }

  it('two half-weighted micro-batches make the same step as the whole batch', async () => {
    await selectNodeBackend(['wasm']);
    const run = async (split: boolean) => {
      const model = Transformer.fromWeights(cfg, weights);
      const opt = new AdamW(model.trainableVariables());
      const ids = tf.tensor2d(batchIds, undefined, 'int32');
      const mask = tf.tensor2d(batchMask);
      const halves = [0, 2].map((start) => [tf.slice(ids, [start, 0], [2, -1]) as tf.Tensor2D, tf.slice(mask, [start, 0], [2, -1]) as tf.Tensor2D]);
      const micro = split ? halves.map(([i, m]) => () => tf.mul(model.loss(i, m), 0.5) as tf.Scalar) : [() => model.loss(ids, mask)];
      const stats = await trainStep(model, opt, micro, { lr: 1e-2 });
      const w = (await model.exportWeights()).get('model.layers.0.mlp.up_proj.weight')!.data;
      tf.dispose([ids, mask, ...halves.flat()]);
      opt.dispose();
      model.dispose();
      return { stats, w };
    };
    const whole = await run(false);
    const split = await run(true);
    expect(split.stats.loss).toBeCloseTo(whole.stats.loss, 5);
    expect(split.stats.gradNorm).toBeCloseTo(whole.stats.gradNorm, 4);
    expect(maxAbsDiff(split.w, whole.w)).toBeLessThan(1e-5);
  });

  it('the tensor count returns to its baseline after 20 training steps', async () => {
    await selectNodeBackend(['wasm']);
    const model = Transformer.fromWeights(cfg, weights);
    const opt = new AdamW(model.trainableVariables());
    const ids = tf.tensor2d(batchIds, undefined, 'int32');
    const mask = tf.tensor2d(batchMask);
    await trainStep(model, opt, [() => model.loss(ids, mask)], { lr: 1e-3 }); // model-owned RoPE tables now exist
    const baseline = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) await trainStep(model, opt, [() => model.loss(ids, mask)], { lr: 1e-3 });
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([ids, mask]);
    opt.dispose();
    model.dispose();
  });
});
