/** `npm run cli -- exec`: one snippet through the sandbox pool, one JSON line out. */
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(os.tmpdir(), 'sandbox-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], input?: string) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 90_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('cli exec', () => {
  it('runs code from standard input and prints one JSON line', () => {
    const out = cli(['exec', '--session', 'traj-1'], 'import math\nprint(math.factorial(20))\n');
    expect(out.code).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]);
    expect(result).toMatchObject({ status: 'ok', stdout: '2432902008176640000\n', stderr: '', errorLine: null, observation: '2432902008176640000' });
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it('runs a file with a timeout and reports it', () => {
    const file = join(dir, 'loop.py');
    writeFileSync(file, 'print("start", flush=True)\nwhile True:\n    pass\n');
    const started = performance.now();
    const out = cli(['exec', file, '--timeout', '1000']);
    expect(out.code).toBe(1);
    const result = JSON.parse(out.stdout.trim());
    expect(result).toMatchObject({ status: 'timeout', stdout: 'start\n', observation: 'TimeoutError: the code did not finish within the time limit.' });
    expect(result.durationMs).toBeLessThan(2000);
    expect(performance.now() - started).toBeLessThan(60_000);
  });

  it('exits once it has printed, also when the call ended with its worker replaced', () => {
    // A replaced worker's replacement starts in the background; closing the pool must end that start,
    // or its start timeout (120 s) would hold the process past spawnSync's 90 s limit (code null).
    const swallow = cli(['exec', '--timeout', '1000'], 'while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass\n');
    expect(swallow.code).toBe(1);
    expect(JSON.parse(swallow.stdout.trim())).toMatchObject({ status: 'timeout' });
    const grow = cli(['exec'], 'a = []\nwhile True:\n    a.append(bytearray(10**7))\n');
    expect(grow.code).toBe(1);
    expect(JSON.parse(grow.stdout.trim()).status).toMatch(/^(memory|killed)$/);
  });

  it('refuses bad arguments with exit code 2 and says why', () => {
    const zero = cli(['exec', '--timeout', '0'], 'print(1)');
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--timeout.*positive number of milliseconds/);
    const missing = cli(['exec', join(dir, 'missing.py')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does not exist/);
    const unknown = cli(['nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toMatch(/exec/);
  });
});
