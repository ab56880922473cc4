/**
 * Measuring a device (src/core/engine/speed.ts) on the real wasm backend, directly and through the
 * lab service the Overview panel calls: figures that are rates of real work, each share its rate
 * over the products' rate, progress by part, a stop between parts, sizes out of range refused by
 * name, and no tensor left behind.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSpeedPlan, measureSpeed, QUICK_SPEED_PLAN, SPEED_MODEL, type SpeedPlan } from '../../src/core/engine/speed';
import type { LabEvent } from '../../src/core/lab/api';
import { CONTROL } from '../../src/core/lab/control';
import { LabService } from '../../src/core/lab/service';
import { countParameters } from '../../src/core/model/config';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';

/** Small enough for a test: a few decoding steps and one training step of 2 × 16 tokens. */
const SMALL: SpeedPlan = { decode: { batch: 2, promptLength: 4, newTokens: 5 }, train: { batch: 2, seq: 16, steps: 1 } };

const dir = mkdtempSync(join(os.tmpdir(), 'speed-'));
const service = new LabService(nodeLabEnv({ store: new DiskRunStore(join(dir, 'runs')), python: { size: 1, preload: [] } }));

beforeAll(async () => {
  expect((await service.init({ order: ['wasm', 'cpu'] })).name).toBe('wasm');
});

afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('measuring the engine on a device', () => {
  it('times the products, decoding and training of its ~10M model, and leaves no tensor behind', async () => {
    const before = tf.memory().numTensors;
    const parts: string[] = [];
    const report = await measureSpeed({ plan: SMALL, progress: (done, total, part) => parts.push(`${done}/${total} ${part}`) });
    expect(parts).toEqual(['0/3 matrix products', '1/3 decoding', '2/3 training', '3/3 done']);
    expect(report.backend).toBe('wasm');
    expect(report.threads).toBe(1);
    expect(report.parameters).toBe(countParameters(SPEED_MODEL));
    for (const x of [report.matmul_gflops, report.decode.tok_s, report.decode.gflops, report.train.tok_s, report.train.gflops]) expect(x).toBeGreaterThan(0);
    expect(report.decode.vs_matmul).toBeCloseTo(report.decode.gflops / report.matmul_gflops, 10);
    expect(report.train.vs_matmul).toBeCloseTo(report.train.gflops / report.matmul_gflops, 10);
    expect(report.decode).toMatchObject({ batch: 2, new_tokens: 5 });
    expect(report.train).toMatchObject({ batch: 2, seq: 16 });
    // The engine's own products timed beside the backend's, with fused multiply-adds (Node's backend turns relaxed SIMD on).
    expect(report.engine_matmul_gflops).toBeGreaterThan(0);
    expect(report.fused_multiply_add).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses sizes out of range by name, and the quick plan is one it accepts', () => {
    expect(checkSpeedPlan(QUICK_SPEED_PLAN)).toBe(QUICK_SPEED_PLAN);
    expect(() => checkSpeedPlan({ ...SMALL, train: { ...SMALL.train, seq: 0 } })).toThrow(/plan\.train\.seq.*from 2 to 1023.*found 0|plan\.train\.seq/);
    expect(() => checkSpeedPlan({ ...SMALL, decode: { ...SMALL.decode, batch: 1.5 } })).toThrow(/plan\.decode\.batch/);
    expect(() => checkSpeedPlan({ ...SMALL, decode: { batch: 1, promptLength: 600, newTokens: 4 } })).toThrow(/plan\.decode\.promptLength/);
  });

  it('is a job of the lab service: progress events, the loaded model untouched, a stop between parts', async () => {
    const events: LabEvent[] = [];
    const report = await service.measureSpeed({ plan: SMALL }, (e) => events.push(e));
    expect(report.backend).toBe('wasm');
    expect(events.filter((e) => e.type === 'progress').map((e) => (e as Extract<LabEvent, { type: 'progress' }>).phase)).toEqual(['matrix products', 'decoding', 'training', 'done']);
    expect(await service.model()).toBeUndefined();
    // Stopped as soon as it starts: the next part boundary ends it.
    const stopped = service.measureSpeed({ plan: SMALL }, (e) => {
      if (e.type === 'progress' && e.done === 0) void service.setControl(CONTROL.stop);
    });
    await expect(stopped).rejects.toThrow(/measuring speed was stopped/);
    await expect(service.measureSpeed({ plan: { ...SMALL, train: { ...SMALL.train, steps: 0 } } })).rejects.toThrow(/plan\.train\.steps/);
  });
});
