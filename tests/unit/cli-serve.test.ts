/**
 * The command line's evaluation logs and its OpenAI server, as a user runs them: `serve` in a child
 * process, `eval --endpoint` against it with a per-problem log, a log cut short by a kill and
 * resumed, and `compare` of two logs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForOutput } from '../fixtures/processes';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(os.tmpdir(), 'cli-serve-'));
const ARGS = ['--import', 'tsx', 'src/cli/main.ts'];
let server: ChildProcess;
let baseURL = '';

function cli(args: string[]) {
  const run = spawnSync(process.execPath, [...ARGS, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

beforeAll(async () => {
  server = spawn(process.execPath, [...ARGS, 'serve', '--port', '0', '--quiet'], { cwd: ROOT });
  baseURL = (await waitForOutput(server, /at (http:\/\/127\.0\.0\.1:\d+\/v1)/, 'serve', 120_000))[1];
});

afterAll(() => {
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('serve, eval --endpoint --log, resume and compare', () => {
  it('evaluates through the server, logs each problem, resumes a cut log, and compares logs', async () => {
    expect(baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const common = ['eval', '--endpoint', baseURL, '--endpoint-model', 'thor-tiny', '--limit', '5', '--samples', '2', '--max-tokens', '60'];
    const full = join(dir, 'full.jsonl');
    const a = cli([...common, '--log', full]);
    expect(a.code, a.stderr).toBe(0);
    const summary = JSON.parse(a.stdout.slice(a.stdout.indexOf('{')));
    expect(summary).toMatchObject({ questions: 5, samples: 2 });
    expect(summary.best_of_n).toBeTypeOf('number');
    const lines = readFileSync(full, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(6);
    expect(JSON.parse(lines[0])).toMatchObject({ type: 'eval-log', version: 1, problems: 5, samples: 2 });

    // An existing log is not overwritten by a new evaluation.
    const again = cli([...common, '--log', full]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/the log already exists.*--resume/s);

    // A log killed mid-write: two problems and half a line. The resume samples only the rest.
    const cut = join(dir, 'cut.jsonl');
    writeFileSync(cut, lines.slice(0, 3).join('\n') + '\n' + lines[3].slice(0, 50));
    const b = cli([...common, '--log', cut, '--resume']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/resuming: 2 of 5 problems already in/);
    const resumed = JSON.parse(b.stdout.slice(b.stdout.indexOf('{')));
    expect(resumed.questions).toBe(5);

    // A resume with other settings is refused, naming what differs.
    const c = cli([...common.map((x) => (x === '60' ? '50' : x)), '--log', cut, '--resume']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/cannot resume.*rollout.*maxResponseTokens.*60.*50/s);

    const same = cli(['compare', full, full]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/5 problems in both/);
    expect(same.stdout).toMatch(/A better on 0, B better on 0, equal on 5; sign test p = 1/);
    const json = cli(['compare', full, cut, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ shared: 5 });
    const bad = cli(['compare', full]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/two per-problem logs/);
  });

  it('names a missing --endpoint-model and an unreachable server', () => {
    const r = cli(['eval', '--endpoint', baseURL, '--limit', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--endpoint needs --endpoint-model/);
    const down = cli(['eval', '--endpoint', 'http://127.0.0.1:9/v1', '--endpoint-model', 'x', '--limit', '1', '--set', 'eval.samples=1']);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9\/v1/);
  });
});
