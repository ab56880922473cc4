import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { textToBytes } from '../../src/core/files';
import { readTar, writeTar } from '../../src/core/tar';
import { checkTrajectory, decodeRunFile, encodeRunFile, runFolderName, runToFiles, type RunRecord } from '../../src/core/run/runfile';
import { handMadeRun, handMadeTrajectory } from './ui-fixtures';

/** The error a call throws (fails the test when it does not throw). */
function thrown(f: () => unknown): LabError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    return e as LabError;
  }
  throw new Error('expected an error');
}

/** A run archive with one file replaced (or added). */
function withFile(run: RunRecord, name: string, content: string): Uint8Array {
  const files = runToFiles(run);
  files.set(name, textToBytes(content));
  return writeTar(runFolderName(run), files);
}

describe('run file encoding', () => {
  it('round-trips a run exactly, binary checkpoint included', () => {
    const run = handMadeRun();
    const { name, bytes } = encodeRunFile(run);
    expect(name).toBe('thor-run-20250101-120000-abc123.tar');
    expect(bytes.length % 512).toBe(0);
    const back = decodeRunFile(bytes, name);
    expect(back).toEqual(run);
    expect(back.checkpoint?.['model.safetensors']).toEqual(new Uint8Array([1, 2, 3, 4, 250, 251, 252, 0]));
  });

  it('lays the archive out as the run folder', () => {
    const paths = readTar(encodeRunFile(handMadeRun()).bytes, 'run.tar').map((e) => e.path);
    expect(paths).toEqual([
      'thor-run-20250101-120000-abc123/run.json',
      'thor-run-20250101-120000-abc123/config.json',
      'thor-run-20250101-120000-abc123/metrics.jsonl',
      'thor-run-20250101-120000-abc123/evals.jsonl',
      'thor-run-20250101-120000-abc123/rollouts/step-000001.jsonl',
      'thor-run-20250101-120000-abc123/rollouts/step-000002.jsonl',
      'thor-run-20250101-120000-abc123/checkpoint/config.json',
      'thor-run-20250101-120000-abc123/checkpoint/model.safetensors',
      'thor-run-20250101-120000-abc123/checkpoint/char_tokenizer.json',
      'thor-run-20250101-120000-abc123/report.md',
      'thor-run-20250101-120000-abc123/reward.svg',
    ]);
  });

  it('keeps optional parts optional', () => {
    const { checkpoint: _c, report: _r, model: _m, state: _s, ...bare } = handMadeRun();
    const run: RunRecord = { ...bare, metrics: [], evals: [], rollouts: [] };
    const back = decodeRunFile(encodeRunFile(run).bytes, 'bare.tar');
    expect(back).toEqual(run);
    expect('checkpoint' in back).toBe(false);
  });

  it('copies file bytes out of the archive (a stored file must not hold the whole archive)', () => {
    const bytes = encodeRunFile(handMadeRun()).bytes;
    const weights = decodeRunFile(bytes, 'run.tar').checkpoint!['model.safetensors'];
    expect(weights.buffer.byteLength).toBe(8);
  });

  it('reads an archive re-packed from inside the folder (./ paths, no top folder)', () => {
    const run = handMadeRun();
    const files = runToFiles(run);
    const flat = writeTar('.', files);
    expect(decodeRunFile(flat, 'repacked.tar')).toEqual(run);
  });

  it('reads a version 1 run file (no state, no model, no evaluations, the report as text)', () => {
    const files = runToFiles({ ...handMadeRun(), state: undefined, model: undefined, evals: [], report: { 'report.md': '# old\n' } });
    const manifest = JSON.parse(new TextDecoder().decode(files.get('run.json')));
    files.set('run.json', textToBytes(JSON.stringify({ format: manifest.format, version: 1, id: manifest.id, name: manifest.name, createdAt: manifest.createdAt })));
    const back = decodeRunFile(writeTar('old', files), 'old.tar');
    expect(back.state).toBeUndefined();
    expect(back.evals).toEqual([]);
    expect(back.report).toEqual({ 'report.md': '# old\n' });
    expect(back.metrics).toEqual(handMadeRun().metrics);
  });

  it('makes file-safe folder names from any id', () => {
    expect(runFolderName({ id: 'My Run: #1/ä' })).toBe('thor-run-my-run-1');
    expect(runFolderName({ id: '***' })).toBe('thor-run-unnamed');
    expect(runFolderName({ id: 'x'.repeat(80) }).length).toBeLessThanOrEqual(36);
  });
});

describe('run file import errors', () => {
  it('refuses a file that is not a tar archive', () => {
    const e = thrown(() => decodeRunFile(textToBytes('{"not": "a tar"}'.padEnd(600, ' ')), 'notes.json'));
    expect(e.details.file).toBe('notes.json');
    expect(e.message).toMatch(/not a tar archive/);
    expect(thrown(() => decodeRunFile(new Uint8Array(0), 'empty.tar')).message).toMatch(/an empty file/);
  });

  it('refuses an archive cut short', () => {
    const bytes = encodeRunFile(handMadeRun()).bytes;
    const cut = bytes.slice(0, 512 * 6 + 100);
    expect(() => decodeRunFile(cut, 'cut.tar')).toThrow(/cut short|damaged/);
  });

  it('refuses a damaged header', () => {
    const bytes = encodeRunFile(handMadeRun()).bytes.slice();
    bytes[5] ^= 0xff;
    expect(thrown(() => decodeRunFile(bytes, 'bad.tar')).message).toMatch(/not a tar archive/);
  });

  it('names the file and field of a bad manifest', () => {
    const run = handMadeRun();
    const e = thrown(() => decodeRunFile(withFile(run, 'run.json', JSON.stringify({ format: 'thor-lab-run', version: 1, id: 'a', name: 'n', createdAt: 'yesterday' })), 'r.tar'));
    expect(e.details).toMatchObject({ file: 'r.tar/run.json', field: 'createdAt', expected: 'an ISO 8601 date', found: '"yesterday"' });
    const other = thrown(() => decodeRunFile(withFile(run, 'run.json', JSON.stringify({ format: 'something-else' })), 'r.tar'));
    expect(other.details.field).toBe('format');
    const newer = thrown(() => decodeRunFile(withFile(run, 'run.json', JSON.stringify({ format: 'thor-lab-run', version: 99 })), 'r.tar'));
    expect(newer.message).toMatch(/newer THOR Lab/);
  });

  it("names the field of a bad run state (what a resume reads)", () => {
    const manifest = { format: 'thor-lab-run', version: 2, id: 'a', name: 'n', createdAt: '2025-01-01T00:00:00Z' };
    const bad = (state: unknown) => thrown(() => decodeRunFile(withFile(handMadeRun(), 'run.json', JSON.stringify({ ...manifest, state })), 'r.tar')).details;
    expect(bad({ status: 'sleeping', mode: 'rl', totalSteps: 4, checkpointStep: 2 })).toMatchObject({ file: 'r.tar/run.json', field: 'state.status', found: '"sleeping"' });
    expect(bad({ status: 'paused', mode: 'rl', totalSteps: 4, checkpointStep: -1 })).toMatchObject({ field: 'state.checkpointStep' });
    expect(bad({ status: 'paused', mode: 'grpo', totalSteps: 4, checkpointStep: 1 })).toMatchObject({ field: 'state.mode' });
  });

  it('names the line of a bad evaluation row', () => {
    const e = thrown(() => decodeRunFile(withFile(handMadeRun(), 'evals.jsonl', '{"step": 0, "accuracy": 0.5}\n{"accuracy": 0.6}\n'), 'r.tar'));
    expect(e.details).toMatchObject({ file: 'r.tar/evals.jsonl', line: 2, field: 'step' });
  });

  it('names the line of a bad metrics row', () => {
    const e = thrown(() => decodeRunFile(withFile(handMadeRun(), 'metrics.jsonl', '{"step": 1}\n{"reward_mean": 0.5}\n'), 'r.tar'));
    expect(e.details).toMatchObject({ file: 'r.tar/metrics.jsonl', line: 2, field: 'step' });
    const notJson = thrown(() => decodeRunFile(withFile(handMadeRun(), 'metrics.jsonl', '{"step": 1}\n\n{oops\n'), 'r.tar'));
    expect(notJson.details).toMatchObject({ file: 'r.tar/metrics.jsonl', line: 3 });
  });

  it('names file, line and field of a bad trajectory', () => {
    const good = JSON.stringify(handMadeTrajectory());
    const shortMask = { ...handMadeTrajectory(), lossMask: [1, 0] };
    const e = thrown(() => decodeRunFile(withFile(handMadeRun(), 'rollouts/step-000001.jsonl', `${good}\n${JSON.stringify(shortMask)}\n`), 'r.tar'));
    expect(e.details).toMatchObject({ file: 'r.tar/rollouts/step-000001.jsonl', line: 2, field: 'lossMask' });
    expect(e.details.expected).toMatch(/one per response token/);
  });

  it('checks nested execution records by path', () => {
    const t = handMadeTrajectory();
    const bad = { ...t, executions: [{ ...t.executions[0], status: 'crashed' }] };
    expect(thrown(() => checkTrajectory(bad, { file: 'f', line: 4 })).details).toMatchObject({ field: 'executions[0].status', found: '"crashed"', line: 4 });
    const badMask = { ...t, sampledMask: t.sampledMask.map((v, i) => (i === 3 ? 2 : v)) };
    expect(thrown(() => checkTrajectory(badMask, { file: 'f' })).details).toMatchObject({ field: 'sampledMask[3]', expected: '0 or 1' });
    const { tokens: _t, ...noTokens } = t;
    expect(thrown(() => checkTrajectory(noTokens, { file: 'f' })).details).toMatchObject({ field: 'tokens', found: 'nothing' });
  });

  it('requires config.json and weights in a checkpoint', () => {
    const run = handMadeRun();
    const { 'model.safetensors': _w, ...noWeights } = run.checkpoint!;
    expect(thrown(() => decodeRunFile(encodeRunFile({ ...run, checkpoint: noWeights }).bytes, 'r.tar')).message).toMatch(/no weights/);
    const files = runToFiles(run);
    files.delete('config.json');
    expect(thrown(() => decodeRunFile(writeTar('x', files), 'r.tar')).message).toMatch(/no config.json/);
  });

  it('refuses checkpoint names that cannot be exported', () => {
    const run = handMadeRun();
    expect(thrown(() => encodeRunFile({ ...run, checkpoint: { 'sub/dir.bin': new Uint8Array(1) } })).details.field).toBe('checkpoint.sub/dir.bin');
  });
});
