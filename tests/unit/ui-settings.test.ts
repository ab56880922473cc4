import { describe, expect, it } from 'vitest';
import { defaultRunConfig, LOSS_AGGREGATIONS } from '../../src/core/config/schema';
import { configInput, defaultValues, fieldsAt, inputBounds, settingFields, validateSettings } from '../../src/app/lib/runsettings';
import { tabFromHash, neighbourTab, TABS } from '../../src/app/lib/tabs';

describe('training settings form', () => {
  const fields = settingFields();

  it('has one field per knob, typed from the schema', () => {
    const byPath = new Map(fields.map((f) => [f.path, f]));
    expect(byPath.get('grpo.aggregation')).toMatchObject({ kind: 'choice', options: [...LOSS_AGGREGATIONS] });
    expect(byPath.get('stepLevel.enabled')).toMatchObject({ kind: 'boolean', default: true, group: 'stepLevel' });
    expect(byPath.get('grpo.dualClipC')).toMatchObject({ kind: 'number', nullable: true });
    expect(byPath.get('task.difficulties')).toMatchObject({ kind: 'list' });
    expect(byPath.get('seed')).toMatchObject({ kind: 'number', group: '', integer: true, min: 0, minInclusive: true });
    expect(byPath.get('rollout.instruction')).toMatchObject({ kind: 'text' });
    expect(fields.every((f) => f.description.length > 0)).toBe(true);
  });

  it("gives the panels their defaults and limits from the config's own description", () => {
    const [calls, samples, temperature] = fieldsAt(['rollout.maxToolCalls', 'eval.samples', 'infer.temperature']);
    expect(calls).toMatchObject({ default: defaultRunConfig().rollout.maxToolCalls, integer: true, min: 0, max: 32 });
    expect(inputBounds(calls)).toEqual({ min: 0, max: 32, step: 1 });
    expect(samples).toMatchObject({ default: 4, min: 1, minInclusive: true, max: 64 });
    expect(temperature).toMatchObject({ default: 0, min: 0, max: 2 });
    expect(inputBounds(temperature).step).toBe('any');
    expect(() => fieldsAt(['rollout.nope'])).toThrow(/no setting rollout.nope/);
  });

  it('checks a short form as the service will: a single answer need not be a valid training run', () => {
    const fields = fieldsAt(['infer.temperature', 'rollout.maxToolCalls']);
    const ok = validateSettings(fields, { 'infer.temperature': 0, 'rollout.maxToolCalls': 0 }, 'inference');
    expect('config' in ok && ok.config.rollout.maxToolCalls).toBe(0);
    const bad = validateSettings(fields, { 'infer.temperature': 3, 'rollout.maxToolCalls': 2 }, 'inference');
    expect('error' in bad && bad.error).toMatch(/infer\.temperature.*expected a number <= 2, found 3/);
    const evalFields = fieldsAt(['eval.samples', 'eval.temperature']);
    const greedyTwice = validateSettings(evalFields, { 'eval.samples': 3, 'eval.temperature': 0 }, 'evaluation');
    expect('error' in greedyTwice && greedyTwice.error).toMatch(/eval\.samples.*same answer k times/);
  });

  it('gives back the default config from the default inputs', () => {
    const result = validateSettings(fields, defaultValues(fields));
    expect('config' in result && result.config).toEqual(defaultRunConfig());
  });

  it('reads typed text as numbers, lists and null', () => {
    const values = { ...defaultValues(fields), 'optim.lr': '3e-4', 'task.difficulties': '1, 2,5', 'grpo.dualClipC': ' ' };
    const result = validateSettings(fields, values);
    expect('config' in result && result.config.optim.lr).toBe(3e-4);
    expect('config' in result && result.config.task.difficulties).toEqual([1, 2, 5]);
    expect('config' in result && result.config.grpo.dualClipC).toBeNull();
    expect(configInput(fields, values).optim).toMatchObject({ lr: 3e-4 });
  });

  it('names the field of a bad value', () => {
    const result = validateSettings(fields, { ...defaultValues(fields), 'rollout.groupSize': 'many' });
    expect('error' in result && result.error).toMatch(/rollout\.groupSize/);
    const inconsistent = validateSettings(fields, { ...defaultValues(fields), 'rollout.temperature': '0' });
    expect('error' in inconsistent && inconsistent.error).toMatch(/rollout\.temperature/);
  });
});

describe('tabs in the URL hash', () => {
  it('maps hashes to tabs, unknown ones to the first', () => {
    expect(tabFromHash('#train')).toBe('train');
    expect(tabFromHash('#/Runs')).toBe('runs');
    expect(tabFromHash('')).toBe('overview');
    expect(tabFromHash('#nope')).toBe('overview');
  });

  it('moves between tabs with wrap-around', () => {
    expect(neighbourTab('overview', -1)).toBe(TABS[TABS.length - 1].id);
    expect(neighbourTab('runs', 1)).toBe('overview');
    expect(neighbourTab('data', 1)).toBe('tirgen');
    expect(neighbourTab('tirgen', 1)).toBe('train');
  });
});
