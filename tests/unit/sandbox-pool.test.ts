/**
 * The Python sandbox with real Pyodide in worker_threads: hostile code of every kind ends with a clear
 * status within the timeout plus a second, and the pool answers the next call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import { answersEquivalent, isEquivalent } from '../../src/core/reward/equivalence';
import { gradeResponse, THOR_REWARD } from '../../src/core/reward/reward';
import { sandboxChecker } from '../../src/core/reward/sandbox-checker';
import { toObservation } from '../../src/core/sandbox/observation';
import type { RunResult } from '../../src/core/sandbox/types';
import { PythonPool as Pool } from '../../src/core/sandbox/pool';
import { createNodePythonPool, PYTHON_BUNDLE_DIR, readPythonBundle, spawnNodeSandboxWorker } from '../../src/node/python';

const TIMEOUT_MS = 1500;
const MAX_OUTPUT = 10_000;
let pool: Pool;
/** Generous: on a loaded machine an interrupt can take a while to be seen. */
const GRACE_MS = 2000;

beforeAll(async () => {
  pool = await createNodePythonPool({
    size: 2,
    timeoutMs: TIMEOUT_MS,
    graceMs: GRACE_MS,
    limits: { maxOutputChars: MAX_OUTPUT, maxCodeChars: 20_000, recursionLimit: 3000, memoryLimitMb: 512 },
    checkIsolation: true,
  });
});

afterAll(async () => {
  await pool?.close();
});

/** Runs hostile code, checks it ended within the limit plus a second, then checks the pool still works. */
async function hostile(code: string, timeoutMs = TIMEOUT_MS): Promise<RunResult> {
  const started = performance.now();
  const result = await pool.run(code, { timeoutMs });
  expect(performance.now() - started).toBeLessThan(timeoutMs + GRACE_MS + 1000);
  const next = await pool.run('print(6 * 7)');
  expect(next).toMatchObject({ status: 'ok', stdout: '42\n' });
  return result;
}

describe('sandbox pool: warm workers', () => {
  it('is warm before the first call, with sympy and mpmath from the offline bundle and interrupts', async () => {
    expect(readPythonBundle(PYTHON_BUNDLE_DIR), 'build the bundle first: npm run build:python').toBeDefined();
    const info = pool.info()!;
    expect(info.pythonVersion).toMatch(/^3\.14/);
    expect(info.interrupts).toBe(true);
    expect(info.packages.find((p) => p.name === 'sympy')).toMatchObject({ available: true, source: 'bundle' });
    expect(info.packages.find((p) => p.name === 'mpmath')).toMatchObject({ available: true, source: 'bundle' });
    expect(info.packages.find((p) => p.name === 'numpy')).toMatchObject({ available: false });
    expect(pool.health()).toMatchObject({ size: 2, idle: 2, queued: 0 });
  });

  it('leaves no path from reachable Python objects to JavaScript after sealing', async () => {
    expect(await pool.checkIsolation()).toEqual([[], []]);
  });

  it('runs code and reports stdout, stderr and a duration', async () => {
    const r = await pool.run('import sys\nprint("hello")\nprint("careful", file=sys.stderr)');
    expect(r).toMatchObject({ status: 'ok', stdout: 'hello\n', stderr: 'careful\n', errorLine: null, truncated: false });
    expect(r.durationMs).toBeGreaterThan(0);
    expect(toObservation(r)).toBe('hello');
  });

  it('solves an equation with sympy, offline', async () => {
    const r = await pool.run('from sympy import symbols, solve\nx = symbols("x")\nprint(solve(x**2 - 5*x + 6, x))');
    expect(r).toMatchObject({ status: 'ok', stdout: '[2, 3]\n' });
  });
});

describe('sandbox pool: timeouts and limits', () => {
  it('interrupts an infinite loop, keeping what it printed', async () => {
    const r = await hostile('print("started", flush=True)\nwhile True:\n    pass');
    // Interrupted, or (when a loaded machine delays the interrupt past the grace) replaced: either
    // way the call ends as a timeout within its limit plus grace with what it printed, and the next
    // call works (hostile()).
    expect(r.status).toBe('timeout');
    expect(r.stderr).toMatch(/did not finish within 1.5 s/);
    expect(r.stdout).toBe('started\n');
  });

  it('replaces a worker whose code swallows the interrupt, keeping what it printed', async () => {
    const before = pool.health().replacements;
    // Flushed output survives the worker; Python's own buffer does not (as with a killed CPython process).
    const r = await hostile('print("ünïcode ✓ " * 3, flush=True)\nprint("still buffered")\nwhile True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass');
    expect(r.status).toBe('timeout');
    expect(r.stderr).toMatch(/worker was replaced/);
    expect(r.stdout).toBe(`${'ünïcode ✓ '.repeat(3)}\n`);
    expect(pool.health().replacements).toBe(before + 1);
  });

  it('interrupts time.sleep', async () => {
    expect((await hostile('import time\ntime.sleep(60)')).status).toBe('timeout');
  });

  it('stops deep Python recursion, even after the code raises the limit', async () => {
    const r = await hostile('import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1)\nf(0)');
    expect(r.status).toBe('error');
    expect(toObservation(r)).toMatch(/^RecursionError: maximum recursion depth exceeded/);
  });

  it('reports a native stack overflow as killed and replaces the runtime', async () => {
    const r = await hostile('a = []\nfor _ in range(10**6):\n    a = [a]\nprint(len(repr(a)))');
    expect(r.status).toBe('killed');
    expect(toObservation(r)).toMatch(/killed/);
  });

  it('refuses a 10^10-element list', async () => {
    const r = await hostile('x = [0] * 10**10');
    expect(['memory', 'error']).toContain(r.status);
    expect(toObservation(r)).toMatch(/MemoryError|OverflowError/);
  });

  it('ends a call that allocates past the memory limit as memory and replaces its worker', async () => {
    const before = pool.health().replacements;
    const r = await hostile('chunks = []\nwhile True:\n    chunks.append(bytearray(32 * 2**20))', 5000);
    expect(r.status).toBe('memory');
    expect(toObservation(r)).toBe('MemoryError');
    expect(pool.health().replacements).toBe(before + 1);
  });

  it('caps the output of a print loop of 10^7', async () => {
    const r = await hostile('for i in range(10**7):\n    print(i)', 6000); // time to pass the cap even on a busy machine
    expect(['timeout', 'ok']).toContain(r.status);
    expect(r.truncated).toBe(true);
    expect(r.stdout.length).toBeLessThanOrEqual(MAX_OUTPUT);
    expect(r.stdout.startsWith('0\n1\n2\n')).toBe(true);
  });
});

describe('sandbox pool: isolation', () => {
  const refusedImports = [
    ['import js', /import of 'js' is not allowed: sandboxed code cannot reach JavaScript/],
    ['from pyodide.ffi import to_js', /cannot reach JavaScript/],
    ['import pyodide_js', /cannot reach JavaScript/],
    ['from pyodide.http import pyfetch', /cannot reach JavaScript/],
    ['from pyodide.code import run_js', /cannot reach JavaScript/],
    ['import micropip', /installing packages is not allowed.*available: sympy, mpmath/],
    ['import ctypes', /import of 'ctypes' is not allowed/],
    ['__import__("importlib").import_module("pyodide_js")', /cannot reach JavaScript/],
  ] as const;
  for (const [code, message] of refusedImports) {
    it(`refuses ${code}`, async () => {
      const r = await hostile(code);
      expect(r.status).toBe('error');
      expect(toObservation(r)).toMatch(message);
    });
  }

  it('leaves no bridge module in sys.modules and no JavaScript object in any module namespace', async () => {
    const r = await hostile(`
import sys
bridge = sorted(m for m in sys.modules if m.split(".")[0] in {"js", "pyodide", "pyodide_js", "_pyodide", "_pyodide_core"})
found = []
for name, module in list(sys.modules.items()):
    for key, value in list(getattr(module, "__dict__", {}).items()):
        kind = type(value)
        if kind.__name__.startswith("Js") or getattr(kind, "__module__", "") in ("_pyodide_core", "pyodide.ffi"):
            found.append(f"{name}.{key}")
print(bridge, found)`);
    expect(r).toMatchObject({ status: 'ok', stdout: '[] []\n' });
  });

  it('refuses to create _pyodide_core again through _imp', async () => {
    const r = await hostile('import _imp\nfrom importlib.machinery import BuiltinImporter, ModuleSpec\n_imp.create_builtin(ModuleSpec("_pyodide_core", BuiltinImporter))');
    expect(toObservation(r)).toMatch(/creating module '_pyodide_core' is not allowed/);
  });

  it('finds nothing that leads to JavaScript by walking classes and their functions\' globals', async () => {
    const r = await hostile(`
found = []
seen, stack = set(), [object]
while stack:
    for sub in type.__subclasses__(stack.pop()):
        if sub not in seen:
            seen.add(sub)
            stack.append(sub)
for cls in seen:
    for value in list(vars(cls).values()):
        namespace = getattr(getattr(value, "__func__", value), "__globals__", None)
        for item in list(namespace.values()) if isinstance(namespace, dict) else []:
            for x in [item] + list(getattr(item, "jsproxies", {}).values()):
                kind = type(x).__name__
                if (kind.startswith(("Js", "Py2Js")) and kind != "JsFinder") or type(x).__module__ == "_pyodide_core":
                    found.append(type(x).__name__)
print(sorted(set(found)))`, 15_000);
    expect(r).toMatchObject({ status: 'ok', stdout: '[]\n' });
  });

  it('keeps the internals of its own functions out of reach', async () => {
    for (const code of [
      'import _imp\n_imp.create_builtin.__closure__[0].cell_contents.__self__.gi_frame',
      'import sys\nsys.setrecursionlimit.__defaults__',
    ]) {
      const r = await hostile(code);
      expect(toObservation(r), code).toBe("PermissionError: the internals of the sandbox's own functions are not accessible");
    }
  });

  it('refuses heap introspection and hand-made bytecode', async () => {
    for (const code of ['import gc; gc.get_objects()', 'import gc; gc.get_referrers(1)', 'import marshal; marshal.loads(marshal.dumps(compile("1", "f", "eval")))', '(lambda: 0).__code__.replace(co_code=b"")']) {
      const r = await hostile(code);
      expect(r.status, code).toBe('error');
      expect(toObservation(r), code).toMatch(/PermissionError: .* not allowed in the sandbox/);
    }
  });

  it('does not let code add audit hooks of its own', async () => {
    const r = await hostile('import sys\nsys.addaudithook(lambda *args: 1 / 0)\nopen("x.txt", "w").write("audited?")\nprint("no hook added")');
    expect(r).toMatchObject({ status: 'ok', stdout: 'no hook added\n' });
  });

  it('refuses shell commands and processes', async () => {
    const shell = await hostile('import os\nos.system("echo pwned")');
    expect(toObservation(shell)).toBe('PermissionError: running shell commands is not allowed in the sandbox');
    expect(shell.stdout).not.toMatch(/pwned/);
    expect((await hostile('import subprocess\nsubprocess.run(["ls"])')).status).toBe('error');
  });

  it('has no network', async () => {
    for (const code of ['import socket\nsocket.create_connection(("example.com", 80))', 'import urllib.request\nurllib.request.urlopen("http://example.com")']) {
      // Importing urllib.request loads http and email: seconds on a busy machine, and the point here is the refusal, not the time.
      const r = await hostile(code, 15_000);
      expect(r.status, code).toBe('error');
      expect(toObservation(r), code).toMatch(/PermissionError: network access/);
    }
  });

  it('writes only inside the scratch directory, which is wiped between calls', async () => {
    for (const code of [
      'open("/lib/python3.14/site-packages/sympy/__init__.py", "w")',
      'open("../../tmp/escape.txt", "w")',
      'import os\nos.mkdir("/home/pyodide/x")',
      'import os\nfd = os.open("/lib/python3.14/site-packages", os.O_RDONLY)\nos.open("sympy/__init__.py", os.O_WRONLY | os.O_TRUNC, dir_fd=fd)',
      'import os\nos.remove("/lib/python314.zip")',
      'import os\nfd = os.open("/lib/python3.14/site-packages/sympy", os.O_RDONLY)\nos.chmod("__init__.py", 0o777, dir_fd=fd)',
      'import os\nos.symlink("/lib/python3.14/site-packages/sympy/__init__.py", "link.py")',
    ]) {
      const r = await hostile(code);
      expect(r.status, code).toBe('error');
      expect(toObservation(r), code).toMatch(/^PermissionError/);
    }
    const write = await pool.run('from pathlib import Path\nPath("notes.txt").write_text("kept?")\nprint(sorted(p.name for p in Path(".").iterdir()))');
    expect(write).toMatchObject({ status: 'ok', stdout: "['notes.txt']\n" });
    expect((await pool.run('import os\nprint(os.listdir("."))')).stdout).toBe('[]\n');
    expect((await pool.run('import sympy\nprint(sympy.__version__)')).stdout).toBe('1.11.1\n');
  });

  it('shows code no frame of the sandbox but the one that runs it', async () => {
    const r = await hostile('import sys\nf, chain = sys._getframe(), []\nwhile f:\n    chain.append(f.f_code.co_name)\n    f = f.f_back\nprint(chain, [k for k in sys._getframe(1).f_globals if k != "__builtins__"])');
    expect(r).toMatchObject({ status: 'ok', stdout: "['<module>', 'execute'] []\n" });
  });

  it('survives what code does to the interpreter itself', async () => {
    await pool.run('import sys\nsys.modules.clear()');
    await pool.run('import sys\nsys.stdout.close()');
    await pool.run('import sys\nopen("csv.py", "w").write("poisoned = True")\nsys.path.insert(0, ".")\nimport csv');
    const r = await pool.run('import csv, json\nprint(hasattr(csv, "poisoned"), json.dumps([1]))');
    expect(r).toMatchObject({ status: 'ok', stdout: 'False [1]\n' });
    const redirected = await pool.run('import os\nos.dup2(os.open("x", os.O_WRONLY | os.O_CREAT), 1)');
    expect(redirected.status).toBe('killed');
    expect(toObservation(redirected)).toMatch(/file descriptor 1 was closed or redirected/);
  });

  it('keeps what one call does to builtins and modules away from the next', async () => {
    await pool.run('import builtins, math, sys\nbuiltins.print = None\nmath.pi = 3\nsys.stdout = None\nsys.setrecursionlimit(50)');
    await pool.run('import builtins, math, sys\nbuiltins.print = None\nmath.pi = 3\nsys.stdout = None');
    const r = await pool.run('import math, sys\nprint(math.pi, sys.getrecursionlimit())');
    expect(r).toMatchObject({ status: 'ok', stdout: '3.141592653589793 3000\n' });
  });
});

describe('sandbox pool: exits, errors and odd output', () => {
  it('treats sys.exit() and SystemExit(0) as a normal end', async () => {
    expect(await hostile('print("bye")\nimport sys\nsys.exit()')).toMatchObject({ status: 'ok', stdout: 'bye\n' });
    expect(await hostile('raise SystemExit(0)')).toMatchObject({ status: 'ok' });
    expect(await hostile('import os\nos._exit(0)')).toMatchObject({ status: 'ok' });
  });

  it('reports a non-zero exit and a raised KeyboardInterrupt as errors, not timeouts', async () => {
    const exit = await hostile('import sys\nsys.exit(3)');
    expect(exit.status).toBe('error');
    expect(toObservation(exit)).toBe('SystemExit: 3');
    const interrupt = await hostile('raise KeyboardInterrupt');
    expect(interrupt.status).toBe('error');
    expect(toObservation(interrupt)).toBe('KeyboardInterrupt');
  });

  it('reports a syntax error with its line', async () => {
    const r = await hostile('x = 1\ny = = 2');
    expect(r).toMatchObject({ status: 'error', errorLine: 2 });
    expect(toObservation(r)).toBe('SyntaxError: invalid syntax');
  });

  it('reports the line of the user code that raised, through library frames', async () => {
    const r = await hostile('from fractions import Fraction\n\nprint(Fraction(1, 0))');
    expect(r).toMatchObject({ status: 'error', errorLine: 3 });
    expect(r.stderr).toMatch(/^Traceback \(most recent call last\):\n {2}File "<code>", line 3, in <module>/);
    expect(toObservation(r)).toBe('ZeroDivisionError: Fraction(1, 0)');
  });

  it('passes non-UTF-8 bytes and lone surrogates through as replacement characters and escapes', async () => {
    const r = await hostile('import sys\nsys.stdout.buffer.write(b"\\xff\\xfe ok\\n")\nprint("\\udcff")');
    expect(r).toMatchObject({ status: 'ok', stdout: '\ufffd\ufffd ok\n\\udcff\n' });
  });

  it('gives input() an end of file instead of hanging', async () => {
    expect(toObservation(await hostile('input()'))).toBe('EOFError: EOF when reading a line');
  });
});

describe('sandbox pool: sessions and concurrency', () => {
  it('runs calls on several workers at once', async () => {
    await pool.ready(); // workers replaced by earlier tests are warm again
    expect(pool.health().idle).toBe(2);
    // Each call prints when it started and ended (the workers share one clock): run side by side,
    // their spans overlap; run one after the other, they could not, however busy the machine.
    const results = await Promise.all([0, 1].map((i) => pool.run(`import time\nstart = time.time()\ntime.sleep(0.6)\nprint(${i}, start, time.time())`)));
    const spans = results.map((r) => r.stdout.trim().split(' ').map(Number));
    expect(spans.map((s) => s[0])).toEqual([0, 1]);
    const [[, startA, endA], [, startB, endB]] = spans;
    expect(startA).toBeLessThan(endB);
    expect(startB).toBeLessThan(endA);
  });

  it("decides with the real sympy what the cheap equivalence checks cannot", async () => {
    const checker = sandboxChecker(pool);
    // Undecided by the cheap checks, decided by sympy in the sandbox.
    for (const [a, b] of [['(x+1)^2', 'x^2+2x+1'], ['\\frac{x^2-1}{x-1}', 'x+1'], ['\\sin^2 x + \\cos^2 x', '1']] as const) {
      expect(answersEquivalent(a, b), `${a} vs ${b}`).toBeUndefined();
      expect(await checker.equivalent(a, b), `${a} vs ${b}`).toBe(true);
      expect(await isEquivalent(a, b, checker)).toBe(true);
    }
    expect(answersEquivalent('x^2+1', 'x^2-1')).toBeUndefined();
    expect(await checker.equivalent('x^2+1', 'x^2-1')).toBe(false);
    expect(await isEquivalent('x^2+1', 'x^2-1', checker)).toBe(false);
    // A graded answer goes through the same path.
    const graded = await gradeResponse({ policyText: 'So \\boxed{(x+1)^2}.', codeFailed: false }, 'x^2+2x+1', THOR_REWARD, { checker });
    expect(graded).toMatchObject({ correct: true, reward: 1 });
  });

  it('keeps one namespace per session, and none between stateless calls', async () => {
    expect((await pool.run('total = 40', { session: 'traj-a' })).status).toBe('ok');
    expect((await pool.run('total = 1', { session: 'traj-b' })).status).toBe('ok');
    expect((await pool.run('total += 2\nprint(total)', { session: 'traj-a' })).stdout).toBe('42\n');
    expect((await pool.run('print(total)', { session: 'traj-b' })).stdout).toBe('1\n');
    expect(toObservation(await pool.run('print(total)'))).toBe("NameError: name 'total' is not defined");
    await pool.endSession('traj-a');
    expect(toObservation(await pool.run('print(total)', { session: 'traj-a' }))).toBe("NameError: name 'total' is not defined");
  });
});

describe('sandbox pool: bad input', () => {
  it('answers empty, oversized and binary code with errors, without a worker', async () => {
    for (const [code, message] of [
      ['', /empty/],
      ['x = 1\n'.repeat(5000), /30000 characters long, the sandbox accepts at most 20000/],
      ['\u0000\u0001\u0002binary', /binary data/],
    ] as const) {
      const r = await pool.run(code);
      expect(r.status).toBe('error');
      expect(toObservation(r)).toMatch(message);
    }
  });

  it('rejects a zero or negative timeout with a LabError and stays usable', async () => {
    await expect(pool.run('print(1)', { timeoutMs: 0 })).rejects.toBeInstanceOf(LabError);
    await expect(pool.run('print(1)', { timeoutMs: -1 })).rejects.toThrow(/timeout must be a positive number/);
    expect(await pool.run('print(1)', { timeoutMs: 5000 })).toMatchObject({ status: 'ok', stdout: '1\n' });
    expect(pool.health()).toMatchObject({ queued: 0, failed: 0 });
  });
});

describe('sandbox pool: broken set-ups fail loudly', () => {
  it('rejects bad pool options with a LabError naming the field', async () => {
    const runtime = { indexURL: '/nowhere/', guardSource: '', packages: [], preload: [], cdnPackages: [] };
    await expect(Pool.start(spawnNodeSandboxWorker, { size: 0, runtime })).rejects.toThrow(/field "size"/);
    await expect(Pool.start(spawnNodeSandboxWorker, { timeoutMs: -1, runtime })).rejects.toThrow(/field "timeoutMs"/);
  });

  it('gives up on workers that cannot start instead of hanging', async () => {
    const started = performance.now();
    const start = Pool.start(spawnNodeSandboxWorker, { size: 1, runtime: { indexURL: '/nowhere/', guardSource: '', packages: [], preload: [], cdnPackages: [] } });
    await expect(start).rejects.toThrow(/no Python sandbox worker could start/);
    expect(performance.now() - started).toBeLessThan(30_000);
  });
});
