/**
 * The shipped models by name, loaded by the lab service in Node: thor-tiny by default, thor-tiny-cot
 * (TIRGen's chain-of-thought actor, docs/tirgen.md) when named, and an unknown name refused with the
 * field and the names the lab knows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import type { ModelSource } from '../../src/core/lab/api';
import { SHIPPED_MODELS, shippedModel } from '../../src/core/lab/models';
import { LabService } from '../../src/core/lab/service';
import { DEFAULT_MODEL_DIR, nodeLabEnv, shippedModelDir } from '../../src/node/lab';

const service = new LabService(nodeLabEnv({ python: { size: 1, preload: [] } }));
const configOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;

beforeAll(async () => {
  await service.init({ order: ['cpu'] });
});

afterAll(async () => {
  await service.close();
});

describe('shipped models', () => {
  it('lists each shipped model once, with a folder on disk holding its config', () => {
    expect(SHIPPED_MODELS.map((m) => m.name)).toEqual(['thor-tiny', 'thor-tiny-cot']);
    expect(shippedModel().name).toBe('thor-tiny');
    expect(DEFAULT_MODEL_DIR).toBe('public/models/thor-tiny');
    expect(shippedModelDir('thor-tiny-cot')).toBe('public/models/thor-tiny-cot');
    for (const m of SHIPPED_MODELS) expect(configOf(shippedModelDir(m.name)).vocab_size).toBeTypeOf('number');
  });

  it('loads thor-tiny-cot by name, with its own config and pretraining notes', async () => {
    const summary = await service.loadModel({ kind: 'shipped', name: 'thor-tiny-cot' });
    expect(summary.label).toBe('thor-tiny-cot (shipped)');
    expect(summary.origin).toBe('shipped');
    expect(summary.shipped).toBe('thor-tiny-cot');
    const config = configOf('public/models/thor-tiny-cot');
    expect(summary.config.hidden_size).toBe(config.hidden_size);
    expect(summary.config.num_hidden_layers).toBe(config.num_hidden_layers);
    expect(summary.config.vocab_size).toBe(config.vocab_size);
    expect(summary.pretrain?.style).toBe('cot');
    expect((await service.model())?.shipped).toBe('thor-tiny-cot');
  });

  it('loads thor-tiny when no name is given', async () => {
    const summary = await service.loadModel({ kind: 'shipped' });
    expect(summary.label).toBe('thor-tiny (shipped)');
    expect(summary.shipped).toBe('thor-tiny');
    expect(summary.pretrain?.style).not.toBe('cot');
  });

  it('refuses an unknown name, naming the field and the known names, and keeps the loaded model', async () => {
    const source = { kind: 'shipped', name: 'thor-huge' } as unknown as ModelSource;
    const error = await service.loadModel(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LabError);
    expect((error as LabError).details).toMatchObject({ field: 'source.name', expected: 'thor-tiny or thor-tiny-cot', found: 'thor-huge' });
    expect((error as LabError).message).toBe('field "source.name": no shipped model has this name (expected thor-tiny or thor-tiny-cot, found thor-huge)');
    expect((await service.model())?.shipped).toBe('thor-tiny');
  });
});
