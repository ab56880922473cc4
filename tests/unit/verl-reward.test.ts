/**
 * verl's reward function (server/verl/thor_reward.py) against the lab's TypeScript reward on the shared
 * table (tests/fixtures/verl/reward-cases.json; docs/verl.md#the-reward): the table holds what the
 * TypeScript reward gives, and the Python module must give the same on every case in CPython (Debian's
 * /usr/bin/python3 with python3-sympy) and in Pyodide (the lab's interpreter, with the offline sympy
 * bundle). The agent loop verl runs the model's code with (server/verl/thor_agent_loop.py) is driven here
 * without verl: its observations must be the lab's, and the text it leaves must grade as the lab grades it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadPyodide } from 'pyodide';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SymbolicChecker } from '../../src/core/reward/equivalence';
import { sandboxChecker } from '../../src/core/reward/sandbox-checker';
import type { PythonPool } from '../../src/core/sandbox/pool';
import { toObservation } from '../../src/core/sandbox/observation';
import type { RunResult } from '../../src/core/sandbox/types';
import { verlPolicyText, verlScore, type VerlScore } from '../../src/core/verl/reward';
import { createNodePythonPool, PYTHON_BUNDLE_DIR, pyodideIndexPath, readPythonBundle } from '../../src/node/python';

const ROOT = join(import.meta.dirname, '..', '..');
const PYTHON = '/usr/bin/python3';
const TABLE_FILE = join(ROOT, 'tests/fixtures/verl/reward-cases.json');
const PARITY = join(ROOT, 'tests/reference/verl_reward_parity.py');
const MODULE_DIR = join(ROOT, 'server/verl');

interface Case {
  id: string;
  group: string;
  solution: string;
  ground_truth: string;
  extra_info?: Parameters<typeof verlScore>[2];
  expected: VerlScore;
}
const TABLE = JSON.parse(readFileSync(TABLE_FILE, 'utf8')) as { count: number; cases: Case[] };

interface Parity {
  cases: number;
  agree: number;
  mismatches: { id: string; expected: VerlScore; got: unknown }[];
  python: string;
  platform: string;
}

const run = promisify(execFile);
const tmp = mkdtempSync(join(os.tmpdir(), 'verl-reward-'));
let pool: PythonPool;
let checker: SymbolicChecker;

beforeAll(async () => {
  pool = await createNodePythonPool({ size: 1 });
  checker = sandboxChecker(pool);
});
afterAll(async () => {
  await pool?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function cpythonParity(table = TABLE_FILE): Promise<Parity> {
  const { stdout } = await run(PYTHON, [PARITY, table, MODULE_DIR], { cwd: ROOT, maxBuffer: 64 << 20, timeout: 600_000 });
  return JSON.parse(stdout) as Parity;
}

describe('the shared table', () => {
  it('covers every kind of answer and both schemes', () => {
    expect(TABLE.cases.length).toBe(TABLE.count);
    expect(TABLE.count).toBeGreaterThanOrEqual(600);
    const groups = new Set(TABLE.cases.map((c) => c.group.split(':')[0]));
    for (const g of ['integer', 'fraction', 'decimal', 'sqrt', 'percent', 'units', 'negative', 'set', 'tuple', 'interval', 'symbolic', 'no answer', 'several boxed', 'malformed', 'hostile', 'tool output', 'torl', 'hostile-table', 'math-verify'])
      expect(groups, g).toContain(g);
    const scores = new Set(TABLE.cases.map((c) => c.expected.score));
    for (const s of [1, 0, -1, -1.5, 0.5]) expect(scores, String(s)).toContain(s);
    expect(TABLE.cases.filter((c) => c.expected.acc).length).toBeGreaterThan(200);
    expect(TABLE.cases.filter((c) => !c.expected.acc).length).toBeGreaterThan(200);
  });

  it('is what the TypeScript reward gives, sympy included', async () => {
    const wrong: string[] = [];
    for (const c of TABLE.cases) {
      const got = await verlScore(c.solution, c.ground_truth, c.extra_info, checker);
      if (JSON.stringify(got) !== JSON.stringify(c.expected)) wrong.push(`${c.id}: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(got)}`);
    }
    expect(wrong).toEqual([]);
  }, 300_000);
});

describe('thor_reward.py in CPython', () => {
  it('runs with Debian sympy (python3-sympy) in /usr/bin/python3', () => {
    expect(execFileSync(PYTHON, ['-c', 'import sympy; print(sympy.__version__)'], { encoding: 'utf8' }).trim()).toBe('1.11.1');
  });

  it('gives the TypeScript reward on every case', async () => {
    const r = await cpythonParity();
    expect(r.platform).toBe('linux');
    expect(r.mismatches).toEqual([]);
    expect(r.agree).toBe(TABLE.count);
  }, 600_000);

  it('reports a case whose expected reward is not what it gives', async () => {
    // The same run on a table with two expectations changed finds exactly those two.
    const changed = structuredClone(TABLE);
    const flip = (id: string, change: (e: VerlScore) => VerlScore) => {
      const c = changed.cases.find((x) => x.id === id)!;
      c.expected = change(c.expected);
    };
    flip('lab-001', (e) => ({ ...e, score: 0 }));
    flip('lab-063', (e) => ({ ...e, pred: 'Constructor' }));
    changed.cases = changed.cases.filter((c) => c.id.startsWith('lab-'));
    const file = join(tmp, 'changed.json');
    writeFileSync(file, JSON.stringify(changed));
    const r = await cpythonParity(file);
    expect(r.mismatches.map((m) => m.id)).toEqual(['lab-001', 'lab-063']);
    expect(r.agree).toBe(changed.cases.length - 2);
  }, 300_000);
});

describe('thor_reward.py in Pyodide', () => {
  it('gives the TypeScript reward on every case, with the offline sympy bundle', async () => {
    const py = await loadPyodide({ indexURL: pyodideIndexPath() });
    const bundle = readPythonBundle(PYTHON_BUNDLE_DIR);
    expect(bundle, 'build the bundle first: npm run build:python').toBeDefined();
    const site = py.runPython('import site; site.getsitepackages()[0]') as string;
    py.unpackArchive(bundle!.bytes!, 'zip', { extractDir: site });
    py.FS.mkdirTree('/verl');
    py.FS.writeFile('/verl/thor_reward.py', readFileSync(join(MODULE_DIR, 'thor_reward.py')));
    py.FS.writeFile('/verl/table.json', readFileSync(TABLE_FILE));
    let stdout = '';
    py.setStdout({ batched: (s) => (stdout += `${s}\n`) });
    py.runPython("import sys; sys.argv = ['parity', '/verl/table.json', '/verl']");
    py.runPython(readFileSync(PARITY, 'utf8'), { globals: py.toPy({ __name__: '__main__' }) });
    const r = JSON.parse(stdout) as Parity;
    expect(r.platform).toBe('emscripten');
    expect(py.runPython('import sympy; sympy.__version__')).toBe('1.11.1');
    expect(r.mismatches).toEqual([]);
    expect(r.agree).toBe(TABLE.count);
  }, 600_000);
});

describe("thor_agent_loop.py (verl's TIR rollout) without verl", () => {
  const results: RunResult[] = [
    { status: 'ok', stdout: '287663\n', stderr: '' },
    { status: 'ok', stdout: '  \n', stderr: '' },
    { status: 'ok', stdout: `${'1234567890'.repeat(40)}\n`, stderr: '' },
    { status: 'error', stdout: '', stderr: 'Traceback (most recent call last):\n  File "<exec>", line 1\nZeroDivisionError: division by zero\n' },
    { status: 'error', stdout: '', stderr: '' },
    { status: 'timeout', stdout: 'partial', stderr: '' },
    { status: 'memory', stdout: '', stderr: 'MemoryError\n' },
    { status: 'memory', stdout: '', stderr: '' },
    { status: 'killed', stdout: '', stderr: 'SIGKILL' },
  ] as RunResult[];
  let report: {
    observations: string[];
    runs: Record<string, { status: string; observation: string }>;
    trajectories: Record<string, { text: string; sampled: string; forced: string; length: number; mask_length: number; logprob_length: number; statuses: string[]; tool_calls: number; code_failed: boolean; generate_calls: { max_tokens: number; fences: boolean }[] }>;
    verl_class: boolean;
  };

  beforeAll(async () => {
    const child = execFile(PYTHON, [join(ROOT, 'tests/reference/verl_agent_loop_check.py'), MODULE_DIR], { cwd: ROOT, timeout: 120_000, maxBuffer: 16 << 20 });
    child.stdin!.end(JSON.stringify(results));
    const stdout = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
    });
    report = JSON.parse(stdout) as typeof report;
  }, 150_000);

  it('imports without verl (the verl class is defined only where verl is installed)', () => {
    expect(report.verl_class).toBe(false);
  });

  it("writes the lab's observation for each kind of result", () => {
    expect(report.observations).toEqual(results.map((r) => toObservation(r)));
  });

  it('runs code in a process and reports what happened', () => {
    expect(report.runs).toEqual({
      ok: { status: 'ok', observation: '42' },
      silent: { status: 'ok', observation: 'The code ran without errors but printed nothing. Use print() to show results.' },
      error: { status: 'error', observation: "NameError: name 'undefined_name' is not defined" },
      timeout: { status: 'timeout', observation: 'TimeoutError: the code did not finish within the time limit.' },
      memory: { status: 'memory', observation: 'MemoryError' },
    });
  });

  it('appends the output after a closed python block, masked, within the budgets', async () => {
    const t = report.trajectories;
    expect(t['one call']).toMatchObject({ statuses: ['ok'], tool_calls: 1, code_failed: false, forced: '\n```output\n287663\n```\n' });
    expect(t['one call'].text).toBe('Compute it.\n```python\nprint(347*829)\n```\n```output\n287663\n```\nSo \\boxed{287663}.');
    expect(t['failed then fixed']).toMatchObject({ statuses: ['error', 'ok'], tool_calls: 2, code_failed: true });
    expect(t['failed then fixed'].forced).toBe("\n```output\nNameError: name 'y' is not defined\n```\n\n```output\n3\n```\n");
    // With the budget spent, the second block stays unexecuted and decoding no longer stops at fences.
    expect(t['budget spent']).toMatchObject({ statuses: ['ok'], tool_calls: 1 });
    expect(t['budget spent'].text).toBe('```python\nprint(1)\n```\n```output\n1\n```\n```python\nprint(2)\n```\nDone \\boxed{1}');
    expect(t['budget spent'].generate_calls.at(-1)!.fences).toBe(false);
    expect(t['no code']).toMatchObject({ text: 'Just \\boxed{4}.', statuses: [], forced: '' });
    // A fence that closes prose (not a python block) runs nothing.
    expect(t['prose fence']).toMatchObject({ statuses: [], forced: '', text: 'A table:\n```\na | b\n```\n\\boxed{5}' });
    expect(t['cut by the budget'].length).toBe(60);
    for (const [name, x] of Object.entries(t)) {
      expect([x.mask_length, x.logprob_length], name).toEqual([x.length, x.length]);
      // The reward's text view of the response (tool output cut out) is exactly what the mask calls sampled.
      if (name !== 'cut by the budget') expect(verlPolicyText(x.text), name).toBe(x.sampled);
    }
    expect(await verlScore(t['one call'].text, '287663', undefined, checker)).toEqual({ score: 1, acc: true, pred: '287663' });
    expect(await verlScore(t['failed then fixed'].text, '3', { reward: { scheme: 'torl', code_failure_penalty: true }, code_failed: t['failed then fixed'].code_failed }, checker)).toEqual({ score: 0.5, acc: true, pred: '3' });
  });
});
