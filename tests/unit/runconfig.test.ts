import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { defaultRunConfig, describeRunConfig, parseRunConfig } from '../../src/core/config/schema';
import { applySettings, parseAssignment } from '../../src/core/config/settings';

/** The LabError thrown for a config, or undefined when it parses. */
function errorOf(input: unknown): LabError | undefined {
  try {
    parseRunConfig(input, 'run.json');
    return undefined;
  } catch (e) {
    if (e instanceof LabError) return e;
    throw e;
  }
}

describe('RunConfig defaults', () => {
  it('carries the published numbers, scaled where said', () => {
    const c = defaultRunConfig();
    expect(c.grpo).toMatchObject({
      clipEpsLow: 0.2,
      clipEpsHigh: 0.28,
      dualClipC: 3,
      klCoef: 0,
      klEstimator: 'k3',
      nllAlpha: 0.01,
      aggregation: 'token-mean',
      normalizeStd: true,
      advantageEps: 1e-6,
      dynamicSampling: true,
      failureFilter: true,
      minGroupSurvival: 0.5,
    });
    expect(c.rollout).toMatchObject({ groupSize: 8, temperature: 1, topP: 1, maxToolCalls: 2 });
    expect(c.reward).toMatchObject({ scheme: 'thor', codeFailurePenalty: false, repetitionNgram: 20, repetitionMaxCount: 20 });
    expect(c.stepLevel).toMatchObject({ enabled: true });
    expect(c.selfCorrection).toMatchObject({ maxRetries: 4 });
    expect(c.optim).toMatchObject({ gradClip: 1, updatesPerBatch: 1 });
  });

  it('fills defaults around partial settings, nested too', () => {
    const c = parseRunConfig({ seed: 7, grpo: { aggregation: 'seq-mean-token-sum-norm' }, stepLevel: { enabled: false } });
    expect(c.seed).toBe(7);
    expect(c.grpo.aggregation).toBe('seq-mean-token-sum-norm');
    expect(c.grpo.clipEpsHigh).toBe(0.28);
    expect(c.stepLevel).toMatchObject({ enabled: false, suffixTokens: 16 });
    expect(parseRunConfig(undefined)).toEqual(defaultRunConfig());
  });

  it('round-trips through JSON (config.json of a run folder)', () => {
    const c = parseRunConfig({ rollout: { groupSize: 4 }, grpo: { dualClipC: null } });
    expect(parseRunConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });

  it('documents every knob with its default and source', () => {
    const docs = describeRunConfig();
    expect(docs.length).toBeGreaterThan(50);
    expect(docs.every((d) => d.description.length > 5)).toBe(true);
    expect(docs.find((d) => d.path === 'grpo.clipEpsHigh')).toMatchObject({ path: 'grpo.clipEpsHigh', default: 0.28, kind: 'number', min: 0, minInclusive: false, description: expect.stringContaining('DAPO') });
    expect(docs.find((d) => d.path === 'grpo.nllAlpha')?.description).toContain('THOR');
    expect(docs.find((d) => d.path === 'rollout.groupSize')?.default).toBe(8);
  });
});

describe('RunConfig errors', () => {
  it('G = 1, with or without std normalisation: every advantage would be 0', () => {
    const e = errorOf({ rollout: { groupSize: 1 } });
    expect(e?.details).toMatchObject({ file: 'run.json', field: 'rollout.groupSize', expected: 'at least 2', found: '1' });
    expect(e?.message).toMatch(/^run\.json, field "rollout\.groupSize": GRPO's baseline is the group's mean reward/);
    expect(errorOf({ rollout: { groupSize: 1 }, grpo: { normalizeStd: false } })?.details.field).toBe('rollout.groupSize');
    // An SFT run never samples groups.
    expect(errorOf({ mode: 'sft', rollout: { groupSize: 1 } })).toBeUndefined();
  });

  it('checks only what a single answer or an evaluation reads', () => {
    const parse = (input: unknown, use: 'inference' | 'evaluation') => parseRunConfig(input, { source: 'form', use });
    expect(parse({ rollout: { maxToolCalls: 0, temperature: 0 } }, 'inference').rollout.maxToolCalls).toBe(0);
    expect(() => parse({ eval: { samples: 3, temperature: 0 } }, 'evaluation')).toThrow(/eval\.samples/);
    expect(() => parse({ infer: { temperature: 2.5 } }, 'inference')).toThrow(/infer\.temperature.*<= 2/);
  });

  it('names a setting by the flag that gave it', () => {
    try {
      parseRunConfig({ eval: { samples: 2.5 } }, { source: 'command line', labels: { 'eval.samples': '--samples' } });
      expect.unreachable();
    } catch (e) {
      expect((e as LabError).details).toMatchObject({ field: '--samples (eval.samples)', expected: 'a whole number', found: '2.5' });
    }
  });

  it('lr <= 0', () => {
    for (const lr of [0, -1e-3]) {
      const e = errorOf({ optim: { lr } });
      expect(e?.details).toMatchObject({ field: 'optim.lr', expected: 'a number > 0', found: String(lr) });
      expect(e?.message).toContain('learning rate');
    }
  });

  it('clip ε out of range, dual clip c <= 1', () => {
    expect(errorOf({ grpo: { clipEpsLow: 1.2 } })?.details).toMatchObject({ field: 'grpo.clipEpsLow', expected: 'a number < 1', found: '1.2' });
    expect(errorOf({ grpo: { clipEpsLow: -0.1 } })?.details).toMatchObject({ field: 'grpo.clipEpsLow', expected: 'a number > 0' });
    expect(errorOf({ grpo: { clipEpsHigh: 0 } })?.details).toMatchObject({ field: 'grpo.clipEpsHigh' });
    expect(errorOf({ grpo: { dualClipC: 1 } })?.details).toMatchObject({ field: 'grpo.dualClipC', expected: 'a number > 1' });
  });

  it('wrong types, unknown names and unknown choices', () => {
    expect(errorOf({ rollout: { groupSize: '8' } })?.details).toMatchObject({ field: 'rollout.groupSize', expected: 'a number', found: '"8"' });
    expect(errorOf({ rollout: { groupSize: 2.5 } })?.details).toMatchObject({ field: 'rollout.groupSize' });
    const typo = errorOf({ rollout: { groupSiz: 8 } });
    expect(typo?.details).toMatchObject({ field: 'rollout.groupSiz', found: 'unknown setting "groupSiz"' });
    expect(typo?.details.hint).toContain('groupSize');
    expect(errorOf({ grpo: { aggregation: 'mean' } })?.details.expected).toBe('one of "token-mean" | "seq-mean-token-mean" | "seq-mean-token-sum-norm"');
    expect(errorOf({ task: { kinds: ['multiply', 'calculus'] } })?.details).toMatchObject({ field: 'task.kinds.1' });
    expect(errorOf({ task: { difficulties: [] } })?.details).toMatchObject({ field: 'task.difficulties', expected: 'at least 1 item(s)', found: '[]' });
  });

  it('combinations that cannot run', () => {
    expect(errorOf({ rollout: { maxToolCalls: 0 } })?.details).toMatchObject({ field: 'stepLevel.enabled' });
    expect(errorOf({ rollout: { maxToolCalls: 0 }, stepLevel: { enabled: false } })).toBeUndefined();
    expect(errorOf({ rollout: { temperature: 0 } })?.details).toMatchObject({ field: 'rollout.temperature' });
    expect(errorOf({ stepLevel: { suffixTokens: 256 } })?.details).toMatchObject({ field: 'stepLevel.suffixTokens', expected: 'less than rollout.maxResponseTokens (256)' });
    expect(errorOf({ grpo: { overlong: 'penalty', overlongCacheTokens: 300 } })?.details).toMatchObject({ field: 'grpo.overlongCacheTokens' });
    expect(errorOf({ steps: 5, optim: { warmupSteps: 10 } })?.details).toMatchObject({ field: 'optim.warmupSteps' });
    expect(errorOf({ eval: { samples: 4, temperature: 0 } })?.details).toMatchObject({ field: 'eval.samples' });
    expect(errorOf({ eval: { samples: 4, temperature: 0.6 } })).toBeUndefined();
    expect(errorOf({ task: { source: 'file' } })?.details).toMatchObject({ field: 'task.file' });
  });

  it('counts the other problems when there are several', () => {
    expect(errorOf({ optim: { lr: 0, gradClip: -1 } })?.message).toContain('(and 1 more problem)');
  });
});

describe('settings one at a time (--set, flags, forms)', () => {
  it('writes a dotted knob path, reading values as JSON and text knobs as text', () => {
    const input = applySettings({ rollout: { groupSize: 4 } }, [parseAssignment('rollout.maxToolCalls=1'), parseAssignment('grpo.dualClipC=null'), parseAssignment('rollout.instruction=42')]);
    expect(input).toEqual({ rollout: { groupSize: 4, maxToolCalls: 1, instruction: '42' }, grpo: { dualClipC: null } });
    expect(parseRunConfig(input).rollout.instruction).toBe('42');
  });

  it('refuses a path that is no knob before writing anything (a typo, or the object prototype)', () => {
    const before = ({} as Record<string, unknown>).groupSize;
    for (const path of ['__proto__.groupSize', 'constructor.prototype.x', 'rollout.groupSiz', 'nosuch']) {
      expect(() => applySettings({}, [parseAssignment(`${path}=1`)])).toThrow(LabError);
    }
    expect(({} as Record<string, unknown>).groupSize).toBe(before);
    expect(Object.prototype).not.toHaveProperty('groupSize');
    try {
      applySettings({}, [parseAssignment('rollout.groupSiz=1')]);
    } catch (e) {
      expect((e as LabError).details).toMatchObject({ file: '--set', field: 'rollout.groupSiz' });
      expect((e as LabError).details.hint).toContain('rollout.groupSize');
    }
    expect(() => parseAssignment('rollout.groupSize')).toThrow(/section\.key=value/);
  });
});
