import { describe, expect, it } from 'vitest';
import { defaultRunConfig } from '../../src/core/run/config';
import { LOSS_AGGREGATIONS } from '../../src/core/rl/losses';
import { configInput, defaultValues, settingFields, validateSettings } from '../../src/app/lib/runsettings';
import { tabFromHash, neighbourTab, TABS } from '../../src/app/lib/tabs';

describe('training settings form', () => {
  const fields = settingFields();

  it('has one field per knob, typed from the schema', () => {
    const byPath = new Map(fields.map((f) => [f.path, f]));
    expect(byPath.get('grpo.aggregation')).toMatchObject({ kind: 'choice', options: [...LOSS_AGGREGATIONS] });
    expect(byPath.get('stepLevel.enabled')).toMatchObject({ kind: 'boolean', default: true, group: 'stepLevel' });
    expect(byPath.get('grpo.dualClipC')).toMatchObject({ kind: 'number', nullable: true });
    expect(byPath.get('task.difficulties')).toMatchObject({ kind: 'list' });
    expect(byPath.get('seed')).toMatchObject({ kind: 'number', group: '' });
    expect(fields.every((f) => f.description.length > 0)).toBe(true);
  });

  it('gives back the default config from the default inputs', () => {
    const result = validateSettings(fields, defaultValues(fields));
    expect(result).toEqual({ config: defaultRunConfig() });
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
    expect(neighbourTab('data', 1)).toBe('train');
  });
});
