/**
 * Generation: the KV cache against full re-forwards, pause / force / resume of one row while the
 * others decode, stop strings across token boundaries, seeded sampling, and tensor hygiene.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { createRng } from '../../src/core/rng';
import { parseModelConfig } from '../../src/core/model/config';
import { Transformer } from '../../src/core/model/transformer';
import { Generation, generate } from '../../src/core/engine/generation';
import { capacityBucket, chooseStepLength, STEP_OVERHEAD, stepArrays } from '../../src/core/engine/kvcache';
import { greedyNextTokens, greedyReforward } from '../../src/core/engine/reforward';
import { logSumExp, sampleToken } from '../../src/core/engine/sampling';
import { findStop } from '../../src/core/engine/stop';
import { releaseNodeWebGPU, selectNodeBackend } from '../../src/node/backend';
import { describeWebGPUAdapter, isSoftwareRenderer } from '../../src/core/backend';

const cfg = parseModelConfig({
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 60,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
});
/** Every id decodes to two letters, so text positions and token boundaries differ. */
const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(65 + (i % 26), 97 + Math.floor(i / 26))).join('');

let model: Transformer;
beforeAll(async () => {
  await selectNodeBackend(['wasm']);
  // A wide init spreads the logits, so greedy choices never hinge on float rounding.
  model = Transformer.create(cfg, { seed: 3, std: 0.5 });
});
afterAll(() => {
  model.dispose();
  releaseNodeWebGPU();
});

const prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [7]];

describe('KV cache', () => {
  it('greedy generation equals a full re-forward per token (ragged prompts, chunked prefill, cache growth past 64)', async () => {
    const kv = await generate(model, prompts, { maxNewTokens: 70, temperature: 0, prefillChunk: 4 });
    const ref = await greedyReforward(model, prompts, 70);
    kv.forEach((r, b) => {
      expect(r.tokens).toEqual(ref[b]);
      expect(r.sampled.every(Boolean)).toBe(true);
      expect(r.finishReason).toBe('length');
    });
  });

  it('the log-probability of each sampled token is log_softmax(logits / temperature) of a full forward', async () => {
    const [r] = await generate(model, [[5, 6]], { maxNewTokens: 5, temperature: 0.7, seed: 2 });
    const seq = [5, 6, ...r.tokens];
    const x = tf.tensor2d([seq], undefined, 'int32');
    const lp = model.tokenLogprobs(x, { temperature: 0.7 });
    const want = Array.from(await lp.data()).slice(1);
    r.logprobs.forEach((v, i) => expect(v).toBeCloseTo(want[i], 4));
    tf.dispose([x, lp]);
  });

  it('pausing one row, forcing tokens and resuming equals feeding them in a fresh full forward; other rows go on', async () => {
    const forced = [40, 41, 42, 43, 44, 45, 46];
    const gen = new Generation(model, prompts, { maxNewTokens: 30, temperature: 0, prefillChunk: 4 });
    let steps = 0;
    let sampledBeforePause = -1;
    while (gen.active > 0) {
      await gen.step();
      steps++;
      if (steps === 6) {
        gen.pause(1);
        sampledBeforePause = gen.result(1).tokens.length;
      }
      if (steps === 9) {
        expect(gen.status(1)).toBe('paused');
        gen.force(1, forced);
        gen.resume(1);
      }
    }
    const results = gen.results();
    gen.dispose();
    // Rows 0 and 2 decoded straight through, unaffected.
    const ref = await greedyReforward(model, [prompts[0], prompts[2]], 30);
    expect(results[0].tokens).toEqual(ref[0]);
    expect(results[2].tokens).toEqual(ref[1]);
    // Row 1: the forced tokens sit where they were put, masked as forced, and every sampled token
    // is the greedy choice of a full forward over everything before it.
    const r = results[1];
    const at = r.sampled.indexOf(false);
    expect(sampledBeforePause).toBeGreaterThan(0);
    expect(at).toBe(sampledBeforePause); // the forced tokens follow what was sampled before the pause
    expect(r.tokens.slice(at, at + forced.length)).toEqual(forced);
    expect(r.sampled.slice(at, at + forced.length).every((s) => !s)).toBe(true);
    expect(r.logprobs.slice(at, at + forced.length).every((l) => l === 0)).toBe(true);
    expect(r.sampled.filter(Boolean).length).toBe(30 - forced.length);
    const seq = [...prompts[1], ...r.tokens];
    const prefixes = r.tokens.map((_, i) => seq.slice(0, prompts[1].length + i)).filter((_, i) => r.sampled[i]);
    const greedy = await greedyNextTokens(model, prefixes);
    expect(greedy).toEqual(r.tokens.filter((_, i) => r.sampled[i]));
  });

  it('steps with nothing to feed do nothing; paused rows wait while others finish', async () => {
    const gen = new Generation(model, [[1], [2]], { maxNewTokens: 3, temperature: 0 });
    await gen.step();
    gen.pause(0);
    while (gen.active > 0) await gen.step();
    expect(gen.status(0)).toBe('paused');
    expect(gen.status(1)).toBe('done');
    expect(await gen.step()).toEqual([]);
    gen.resume(0);
    while (gen.active > 0) await gen.step();
    expect(gen.result(0).tokens).toEqual((await greedyReforward(model, [[1]], 3))[0]);
    gen.dispose();
  });
});

describe('stop strings', () => {
  it('findStop matches a string split over several tokens, once', () => {
    const pieces = ['ab', 'c`', '``out', 'pu', 't\n', 'x'];
    const dec = (ids: number[]) => ids.map((i) => pieces[i]).join('');
    const stops = ['```output'];
    expect(findStop([0, 1, 2, 3], 0, stops, dec)).toBeUndefined();
    expect(findStop([0, 1, 2, 3, 4], 0, stops, dec)).toBe('```output');
    expect(findStop([0, 1, 2, 3, 4, 5], 0, stops, dec)).toBeUndefined(); // already reported
    expect(findStop([0, 1, 2, 3, 4], 2, stops, dec)).toBeUndefined(); // the start lies before `from`
  });

  it('the engine stops a row at the token that completes a stop string spanning token boundaries', async () => {
    const [free] = await generate(model, [prompts[1]], { maxNewTokens: 12, temperature: 0 });
    const text = decode(free.tokens);
    // From the second letter of token 4 to the first letter of token 7: crosses three boundaries.
    const stop = text.slice(9, 15);
    let want = 1;
    while (!decode(free.tokens.slice(0, want)).includes(stop)) want++;
    const [stopped] = await generate(model, [prompts[1]], { maxNewTokens: 12, temperature: 0, stop: [stop, 'never'], decode });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.stop).toBe(stop);
    expect(stopped.tokens).toEqual(free.tokens.slice(0, want));

    // onStop 'pause': the row waits for forced tokens; text forced in never triggers the stop.
    const gen = new Generation(model, [prompts[1], prompts[0]], { maxNewTokens: 12, temperature: 0, stop: [stop], decode, onStop: 'pause' });
    const events = [];
    while (gen.active > 0) events.push(...(await gen.step()));
    expect(events).toContainEqual({ row: 0, kind: 'pause', stop });
    expect(gen.status(0)).toBe('paused');
    gen.force(0, free.tokens.slice(want - 3, want)); // ends with the stop string's tail
    gen.resume(0);
    while (gen.active > 0) await gen.step();
    expect(gen.result(0).finishReason).toBe('length');
    expect(gen.result(0).tokens.length).toBe(12);
    gen.dispose();
  });

  it('ends rows at EOS', async () => {
    const [free] = await generate(model, [prompts[0]], { maxNewTokens: 8, temperature: 0 });
    const [r] = await generate(model, [prompts[0]], { maxNewTokens: 8, temperature: 0, eosTokenIds: [free.tokens[3]] });
    expect(r.finishReason).toBe('eos');
    expect(r.tokens).toEqual(free.tokens.slice(0, free.tokens.indexOf(free.tokens[3]) + 1));
  });
});

describe('sampling', () => {
  it('is reproducible from a seed, and another seed gives another sample', async () => {
    const opts = { maxNewTokens: 20, temperature: 1, topK: 20, topP: 0.95 };
    const a = await generate(model, prompts, { ...opts, seed: 7 });
    const b = await generate(model, prompts, { ...opts, seed: 7 });
    const c = await generate(model, prompts, { ...opts, seed: 8 });
    expect(b).toEqual(a);
    expect(c.map((r) => r.tokens)).not.toEqual(a.map((r) => r.tokens));
  });

  it('draws tokens with the right frequencies under temperature, top-k and top-p', () => {
    const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
    const lse = logSumExp(logits);
    const freq = (params: { temperature: number; topK: number; topP: number }, ids?: number[]) => {
      const rng = createRng(11);
      const counts = [0, 0, 0, 0];
      const values = ids ? ids.map((i) => logits[i]) : logits;
      for (let i = 0; i < 4000; i++) counts[sampleToken({ values, ids, logSumExp: lse }, params, rng).token]++;
      return counts.map((c) => c / 4000);
    };
    const plain = freq({ temperature: 1, topK: 0, topP: 1 });
    [0.5, 0.3, 0.15, 0.05].forEach((p, i) => expect(Math.abs(plain[i] - p)).toBeLessThan(0.03));
    const top2 = freq({ temperature: 1, topK: 2, topP: 1 });
    expect(top2[2] + top2[3]).toBe(0);
    expect(Math.abs(top2[0] - 0.625)).toBeLessThan(0.03);
    const nucleus = freq({ temperature: 1, topK: 0, topP: 0.75 }); // 0.5 + 0.3 reaches 0.75
    expect(nucleus[2] + nucleus[3]).toBe(0);
    const sortedCandidates = freq({ temperature: 1, topK: 3, topP: 1 }, [0, 1, 2, 3]);
    expect(sortedCandidates[3]).toBe(0);
    expect(sampleToken({ values: logits, logSumExp: lse }, { temperature: 0, topK: 0, topP: 1 }, createRng(1))).toEqual({ token: 0, logprob: Math.log(0.5) - lse });
  });
});

describe('buckets and step inputs', () => {
  it('capacities and step lengths come from a few fixed sizes', () => {
    expect([1, 64, 65, 97, 200, 257, 1000].map((n) => capacityBucket(n, 2048))).toEqual([64, 64, 96, 128, 256, 384, 1024]);
    expect(capacityBucket(2000, 1024)).toBe(1025);
  });

  it('a step is as long as feeds the most waiting tokens per unit of cost, from the buckets 1, 4, 16, 64 or the chunk', () => {
    // A lone row's prompt or tool output goes in one bucket-sized step.
    expect([1, 2, 4, 5, 16, 17, 64, 200].map((n) => chooseStepLength([n], 64))).toEqual([1, 4, 4, 4, 16, 16, 64, 64]);
    expect(chooseStepLength([5], 8)).toBe(4);
    expect(chooseStepLength([8], 8)).toBe(8);
    expect(chooseStepLength([0, 0], 64)).toBe(0);
    // One row's 20-token tool output while 47 rows decode: single-token steps, not 64 positions for all.
    expect(chooseStepLength([20, ...Array(47).fill(1)], 64)).toBe(1);
    // Every row prefilling a 50-token prompt: steps of 16.
    expect(chooseStepLength(Array(48).fill(50), 64)).toBe(16);
    // Only rows with tool output left: steps of 16.
    expect(chooseStepLength([20, 0, 0, 30], 64)).toBe(16);
    // With a GPU's larger fixed cost per step, a whole batch's prompts go in one step.
    expect(chooseStepLength(Array(48).fill(50), 64, STEP_OVERHEAD.gpu)).toBe(64);
  });

  it('writes each row at its own positions and masks slots beyond them; padding goes to the spare slot', () => {
    const a = stepArrays([{ start: 2, tokens: [9, 8] }, { start: 5, tokens: [] }], 4, 8, 1);
    expect(Array.from(a.ids)).toEqual([9, 8, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(a.positions)).toEqual([2, 3, 0, 0, 0, 0, 0, 0]);
    const slotsOf = (b: number) => Array.from({ length: 4 }, (_, t) => a.slots[(b * 4 + t) * 3 + 2]);
    expect(slotsOf(0)).toEqual([2, 3, 7, 7]);
    expect(slotsOf(1)).toEqual([7, 7, 7, 7]);
    expect(Array.from(a.maskBias.subarray(8, 16)).map((v) => v === 0)).toEqual([true, true, true, true, false, false, false, false]);
    expect(Array.from(a.pick)).toEqual([1, 4]);
  });
});

describe('bad input', () => {
  it('names what is wrong', () => {
    const make = (p: number[][], o = {}) => () => new Generation(model, p, { maxNewTokens: 4, ...o }).dispose();
    expect(make([[]])).toThrow(LabError);
    expect(make([[1, 60]])).toThrow(/outside the vocabulary.*found 60/);
    expect(make([[1]], { stop: ['x'] })).toThrow(/stop strings need a way to decode/);
    expect(make([[1]], { topP: 0 })).toThrow(/bad sampling settings/);
    const gen = new Generation(model, [[1]], { maxNewTokens: 4 });
    expect(() => gen.force(0, [1])).toThrow(/must be paused/);
    gen.dispose();
  });
});

describe('tensor hygiene', () => {
  it('the tensor count returns to its baseline after 50 generate calls', async () => {
    await generate(model, [[1, 2]], { maxNewTokens: 2 }); // model-owned RoPE tables now exist
    const baseline = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await generate(model, [[1, 2], [3]], { maxNewTokens: 3, temperature: i % 2, topK: i % 3 === 0 ? 0 : 5, seed: i, stop: ['Zz'], decode });
    expect(tf.memory().numTensors).toBe(baseline);
  });
});

describe('on webgpu', () => {
  it('KV-cache generation equals the full re-forward (Dawn + SwiftShader)', async () => {
    const info = await selectNodeBackend(['webgpu']);
    expect(info.name).toBe('webgpu');
    const gpuModel = Transformer.fromWeights(cfg, await model.exportWeights());
    const short = [prompts[0], prompts[1]];
    const kv = await generate(gpuModel, short, { maxNewTokens: 6, temperature: 0, prefillChunk: 4 });
    const ref = await greedyReforward(gpuModel, short, 6);
    expect(kv.map((r) => r.tokens)).toEqual(ref);
    gpuModel.dispose();
    await selectNodeBackend(['wasm']);
  });

  it('the default order passes over a software WebGPU device for wasm, and takes it when asked by name', async () => {
    const chosen = await selectNodeBackend();
    const adapter = await describeWebGPUAdapter((globalThis.navigator as Navigator | undefined)?.gpu);
    expect(adapter).toMatch(/swiftshader/i); // this machine has no GPU: Dawn runs on SwiftShader
    expect(chosen.name).toBe('wasm');
    expect(chosen.tried[0]).toMatchObject({ name: 'webgpu', ok: false });
    expect(chosen.tried[0].error).toMatch(/CPU emulation \(.*swiftshader.*\)/i);
    expect(chosen.reason).toContain('fell back to wasm');
    expect((await selectNodeBackend(['webgpu', 'wasm'])).name).toBe('webgpu');
    await selectNodeBackend(['wasm']);
  });
});

describe('software renderers', () => {
  it.each([
    ['google / swiftshader / Subzero', true],
    ['ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)', true],
    ['llvmpipe (LLVM 15.0.6, 256 bits)', true],
    ['Microsoft Basic Render Driver', true],
    ['nvidia / ampere / NVIDIA GeForce RTX 3080', false],
    ['ANGLE (Apple, ANGLE Metal Renderer: Apple M2, Unspecified Version)', false],
    [undefined, false],
  ])('%s -> %s', (description, software) => {
    expect(isSoftwareRenderer(description)).toBe(software);
  });
});
