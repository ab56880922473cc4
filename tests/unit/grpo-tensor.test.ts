/**
 * The GRPO objective's named tensor functions (src/core/rl/objective.ts) against the tests' plain-array
 * oracle (grpo-oracle.ts): each function on its own, then the whole loss for every aggregation with
 * clipping, dual clipping, KL, entropy and THOR's α·NLL active over several micro-batches; an update
 * raises the probability of a positive-advantage sample; no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model/config';
import { Transformer } from '../../src/core/model/transformer';
import { AdamW } from '../../src/core/optim/adamw';
import { LOSS_AGGREGATIONS, KL_ESTIMATORS, type LossAggregation } from '../../src/core/config/schema';
import { microBatches, packIds } from '../../src/core/rl/batch';
import { AGGREGATIONS, clippedPolicyLoss, dualClip, importanceRatio, KL_ESTIMATES, positiveAdvantageNll as nllTensor, type BatchNorms } from '../../src/core/rl/objective';
import { aggregateLoss, clippedTokenLoss, grpoLoss, klEstimate, positiveAdvantageNll } from './grpo-oracle';
import { buildPolicyLoss, policyUpdate, scoreSequences, sftUpdate, type PolicyLossSettings, type PolicySample } from '../../src/core/rl/update';
import { createRng } from '../../src/core/rng';
import type { LabError } from '../../src/core/errors';
import { selectNodeBackend } from '../../src/node/backend';

const cfg = parseModelConfig({
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 40,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
});

beforeAll(async () => {
  await selectNodeBackend(['cpu']);
});

/** The value of a built loss: the sum over its micro-batches (statistics freed). */
async function lossValue(built: ReturnType<typeof buildPolicyLoss>): Promise<number> {
  let total = 0;
  for (const f of built.lossFns) {
    const v = tf.tidy(f);
    total += (await v.data())[0];
    v.dispose();
  }
  tf.dispose(built.stats);
  return total;
}

function randomSamples(seed: number, n: number): PolicySample[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const P = rng.int(2, 6);
    const R = rng.int(3, 20);
    const tokens = Array.from({ length: R }, () => rng.int(0, cfg.vocab_size - 1));
    // Forced tokens (tool output) in the middle of some responses.
    const lossMask = tokens.map((_, j) => (i % 2 === 1 && j >= 1 && j < 3 ? 0 : 1));
    return {
      promptTokens: Array.from({ length: P }, () => rng.int(0, cfg.vocab_size - 1)),
      tokens,
      lossMask,
      advantage: [1.2, -0.8, 0.5, -1.5, 0.9, -0.3][i % 6],
      oldLogprobs: [],
    };
  });
}

/** Plain rows as a [B, T] tensor, rows padded with `pad` (masked out). */
const rows = (values: number[][], width: number, pad = 0) => tf.tensor2d(values.map((r) => [...r, ...Array(width - r.length).fill(pad)]), [values.length, width]);
const value = async (t: tf.Tensor) => {
  const v = Array.from(await t.data());
  t.dispose();
  return v;
};

describe('the objective, one named function at a time', () => {
  it('clipped policy loss and dual clip equal the oracle token by token (and say which tokens were clipped)', async () => {
    const ratios = [0.5, 0.79, 0.81, 1, 1.2, 1.27, 1.29, 2, 3.5, 5];
    const clip = { epsLow: 0.2, epsHigh: 0.28, dualClipC: 3 };
    for (const advantage of [1.3, -0.7, 0]) {
      const logOld = ratios.map(() => -1);
      const logNew = ratios.map((r) => Math.log(r) - 1);
      const got = tf.tidy(() => {
        const { ratio } = importanceRatio(tf.tensor1d(logNew), tf.tensor1d(logOld), tf.onesLike(tf.tensor1d(logNew)));
        const adv = tf.fill([ratios.length], advantage);
        const c = clippedPolicyLoss(ratio, adv, clip.epsLow, clip.epsHigh);
        const d = dualClip(c.loss, adv, clip.dualClipC);
        return tf.stack([d.loss, c.clipped, d.capped]);
      });
      const [loss, clipped, capped] = [0, 1, 2].map((k) => (got.arraySync() as number[][])[k]);
      got.dispose();
      ratios.forEach((_, t) => {
        const want = clippedTokenLoss(logNew[t], logOld[t], advantage, clip);
        expect(loss[t]).toBeCloseTo(want.loss, 5);
        expect(clipped[t]).toBe(want.clipped ? 1 : 0);
        expect(capped[t]).toBe(want.dualClipped ? 1 : 0);
      });
      if (advantage < 0) expect(capped.some((c) => c === 1)).toBe(true);
    }
  });

  it('the KL estimators equal the oracle (k3 clamped)', async () => {
    const logNew = [-0.1, -2, -5, -0.01, -14];
    const logRef = [-0.3, -1, -5, -13, -0.2];
    for (const k of KL_ESTIMATORS) {
      const got = await value(tf.tidy(() => KL_ESTIMATES[k](tf.tensor1d(logNew), tf.tensor1d(logRef))));
      got.forEach((v, t) => expect(v).toBeCloseTo(klEstimate(logNew[t], logRef[t], k), 4));
    }
  });

  it('each aggregation over micro-batches adds up to the oracle over the whole batch', async () => {
    const rng = createRng(3);
    const masks = [[1, 1, 0, 1], [1, 0], [0, 0, 0], [1, 1, 1, 1, 1]];
    const values = masks.map((m) => m.map(() => rng.next() * 4 - 2));
    const counts = masks.map((m) => m.reduce((a, b) => a + b, 0));
    const norms: BatchNorms = { tokens: counts.reduce((a, b) => a + b, 0), rows: masks.length, rowsWithTokens: counts.filter((c) => c > 0).length, maxLength: 7, positiveTokens: 0 };
    // Two micro-batches: rows 0-1 and rows 2-3, each padded to its own width.
    const parts = [[0, 1], [2, 3]];
    for (const mode of LOSS_AGGREGATIONS as readonly LossAggregation[]) {
      let total = 0;
      for (const part of parts) {
        const width = Math.max(...part.map((i) => masks[i].length));
        total += (await value(tf.tidy(() => AGGREGATIONS[mode](rows(part.map((i) => values[i]), width, 9), rows(part.map((i) => masks[i]), width), norms))))[0];
      }
      expect(total, mode).toBeCloseTo(aggregateLoss(values, masks, mode, 7), 5);
    }
  });

  it("THOR's NLL term is a token mean over positive-advantage rows only", async () => {
    const masks = [[1, 1, 0], [1, 1, 1], [1, 0, 0]];
    const logp = [[-1, -2, -9], [-0.5, -0.5, -0.5], [-3, -9, -9]];
    const adv = [0.7, -1, 0.2];
    const positiveTokens = masks.reduce((a, m, i) => a + (adv[i] > 0 ? m.reduce((x, y) => x + y, 0) : 0), 0);
    const norms: BatchNorms = { tokens: 0, rows: 3, rowsWithTokens: 3, maxLength: 3, positiveTokens };
    const got = await value(tf.tidy(() => nllTensor(rows(logp, 3), tf.tensor2d(adv.map((a) => [a, a, a])), rows(masks, 3), norms)));
    expect(got[0]).toBeCloseTo(positiveAdvantageNll(logp, adv, masks), 5);
    expect(got[0]).toBeCloseTo((1 + 2 + 3) / 3, 5);
  });

  it('packs response tokens so log-probability index P+j-1 predicts response token j', () => {
    const packed = packIds([{ promptTokens: [5, 6, 7], tokens: [8, 9], lossMask: [1, 0] }], 128);
    expect(packed.length).toBe(32);
    expect(Array.from(packed.ids.slice(0, 6))).toEqual([5, 6, 7, 8, 9, 0]);
    expect(packed.mask[2]).toBe(1); // predicts token 8
    expect(packed.mask[3]).toBe(0); // token 9 forced
    expect(Array.from(packed.mask).reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('micro-batches respect the token budget', () => {
    const groups = microBatches([10, 40, 33, 5, 60, 31], 128, 512);
    expect(groups.flat().sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (const g of groups) expect(g.length).toBeGreaterThan(0);
    expect(groups.length).toBeGreaterThan(1);
  });
});

describe('tensor GRPO loss', () => {
  it('matches grpoLoss on plain arrays for every aggregation, with clip, dual clip, KL, entropy, α·NLL', async () => {
    const model = Transformer.create(cfg, { seed: 7 });
    const samples = randomSamples(11, 6);
    const { logp, entropy } = await scoreSequences(model, samples);
    const rng = createRng(5);
    // Old log-probabilities away from the current ones, so ratios leave the clip range both ways.
    samples.forEach((s, i) => {
      // Negative-advantage rows also get some ratios above c = 3, where the dual clip caps the loss.
      s.oldLogprobs = logp[i].map((v, j) => v + (rng.next() - 0.5) * 1.2 - (s.advantage < 0 && j % 2 === 0 ? 1.5 : 0));
      s.refLogprobs = logp[i].map((v) => v + (rng.next() - 0.5) * 0.6);
    });
    for (const aggregation of LOSS_AGGREGATIONS as readonly LossAggregation[]) {
      const settings: PolicyLossSettings = {
        clip: { epsLow: 0.2, epsHigh: 0.28, dualClipC: 3 },
        aggregation,
        maxLength: 24,
        klCoef: 0.1,
        klEstimator: 'k3',
        entropyCoef: 0.01,
        nllAlpha: 0.01,
      };
      // A small token budget forces several micro-batches.
      const built = buildPolicyLoss(model, samples, settings, 64);
      expect(built.lossFns.length).toBeGreaterThan(1);
      const total = await lossValue(built);
      const ref = grpoLoss(
        {
          logpNew: logp,
          logpOld: samples.map((s) => s.oldLogprobs),
          logpRef: samples.map((s) => s.refLogprobs!),
          entropy,
          advantages: samples.map((s) => s.advantage),
          mask: samples.map((s) => s.lossMask),
        },
        { ...settings, klEstimator: 'k3' },
      );
      expect(ref.clipFraction).toBeGreaterThan(0);
      expect(ref.dualClipFraction).toBeGreaterThan(0);
      expect(total).toBeCloseTo(ref.loss, 4);
    }
    model.dispose();
  });

  it('scores and trains the policy that sampled: logits / the rollout temperature', async () => {
    const model = Transformer.create(cfg, { seed: 3 });
    const samples = randomSamples(4, 3);
    const T = 0.7;
    const { logp } = await scoreSequences(model, samples, 8192, T);
    for (const [i, s] of samples.entries()) {
      const seq = [...s.promptTokens, ...s.tokens];
      const ids = tf.tensor2d([seq], [1, seq.length], 'int32');
      const lp = model.tokenLogprobs(ids, { temperature: T });
      const want = Array.from(await lp.data()).slice(s.promptTokens.length - 1);
      tf.dispose([ids, lp]);
      logp[i].forEach((v, j) => expect(v).toBeCloseTo(want[j], 4));
    }
    const plain = await scoreSequences(model, samples);
    expect(plain.logp[0].some((v, j) => Math.abs(v - logp[0][j]) > 1e-3)).toBe(true);
    // The loss at temperature T is grpoLoss over the temperature-T log-probabilities.
    samples.forEach((s, i) => (s.oldLogprobs = logp[i].map((v, j) => v + (j % 3 === 0 ? 0.3 : -0.2))));
    const settings: PolicyLossSettings = { clip: { epsLow: 0.2, epsHigh: 0.28, dualClipC: 3 }, aggregation: 'token-mean', klCoef: 0, klEstimator: 'k3', entropyCoef: 0, nllAlpha: 0.01, temperature: T };
    const built = buildPolicyLoss(model, samples, settings);
    const total = await lossValue(built);
    const ref = grpoLoss({ logpNew: logp, logpOld: samples.map((s) => s.oldLogprobs), advantages: samples.map((s) => s.advantage), mask: samples.map((s) => s.lossMask) }, settings);
    expect(total).toBeCloseTo(ref.loss, 4);
    model.dispose();
  });

  it('refuses a KL term without the reference policy\'s log-probabilities, naming the sample', () => {
    const model = Transformer.create(cfg, { seed: 3 });
    const samples = randomSamples(4, 2);
    const settings: PolicyLossSettings = { clip: { epsLow: 0.2, epsHigh: 0.28, dualClipC: 3 }, aggregation: 'token-mean', klCoef: 0.1, klEstimator: 'k3', entropyCoef: 0, nllAlpha: 0 };
    expect(() => buildPolicyLoss(model, samples, settings)).toThrow(/reference policy/);
    try {
      buildPolicyLoss(model, samples, settings);
    } catch (e) {
      expect((e as LabError).details).toMatchObject({ field: 'samples[0].refLogprobs' });
    }
    model.dispose();
  });

  it('an update raises log π of a positive-advantage response and lowers a negative one; no tensor leaks', async () => {
    const model = Transformer.create(cfg, { seed: 9 });
    const optimizer = new AdamW(model.trainableVariables(), { weightDecay: 0 });
    const samples = randomSamples(21, 2);
    samples[0].advantage = 1;
    samples[1].advantage = -1;
    const before = await scoreSequences(model, samples);
    samples.forEach((s, i) => (s.oldLogprobs = before.logp[i]));
    const baseline = tf.memory().numTensors;
    const settings: PolicyLossSettings = { clip: { epsLow: 0.2, epsHigh: 0.28, dualClipC: 3 }, aggregation: 'token-mean', klCoef: 0, klEstimator: 'k3', entropyCoef: 0, nllAlpha: 0.01 };
    for (let k = 0; k < 5; k++) {
      const stats = await policyUpdate(model, optimizer, samples, settings, { lr: 1e-2, maxGradNorm: 1 });
      expect(stats.tokens).toBe(samples.reduce((a, s) => a + s.lossMask.reduce((x, y) => x + y, 0), 0));
      expect(Number.isFinite(stats.gradNorm)).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(baseline);
    const after = await scoreSequences(model, samples);
    const sum = (xs: number[], m: number[]) => xs.reduce((a, v, j) => a + v * m[j], 0);
    expect(sum(after.logp[0], samples[0].lossMask)).toBeGreaterThan(sum(before.logp[0], samples[0].lossMask));
    expect(sum(after.logp[1], samples[1].lossMask)).toBeLessThan(sum(before.logp[1], samples[1].lossMask));
    optimizer.dispose();
    model.dispose();
  });

  it('SFT lowers the masked NLL and ignores masked-out tokens', async () => {
    const model = Transformer.create(cfg, { seed: 4 });
    const optimizer = new AdamW(model.trainableVariables(), { weightDecay: 0 });
    const seqs = randomSamples(31, 4);
    const nll = async () => {
      const s = await scoreSequences(model, seqs);
      return -s.logp.reduce((acc, row, i) => acc + row.reduce((a, v, j) => a + v * seqs[i].lossMask[j], 0), 0);
    };
    const first = await nll();
    let last = 0;
    for (let k = 0; k < 15; k++) last = (await sftUpdate(model, optimizer, seqs, { lr: 1e-2, maxGradNorm: 1 })).loss;
    expect(await nll()).toBeLessThan(first * 0.7);
    expect(last).toBeGreaterThan(0);
    optimizer.dispose();
    model.dispose();
  });
});
