/**
 * `npm run bench -- python [--rounds N]`: the Python sandbox pool against a fresh CPython process per
 * call (SandboxFusion's way: write the code to a file, run python3 on it), same snippets, same
 * concurrency (the pool's size), measured side by side in one run.
 * Writes bench/results/python.json; summary figures: pool_calls_per_s, subprocess_calls_per_s,
 * pool_vs_subprocess, warm_p50_ms, warm_p95_ms, cold_start_ms, sympy_import_ms.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { RunResult } from '../src/core/sandbox/types';
import { createNodePythonPool, defaultPoolSize } from '../src/node/python';
import { machineInfo, percentile, writeResult } from './lib';

/** Snippets typical of TIR code: arithmetic, loops, number theory, sympy, and errors. */
export const SNIPPETS: string[] = [
  // arithmetic and loops
  'print(2**100)',
  'print(sum(i * i for i in range(1, 101)))',
  'print(sum(range(1, 1001)) % 7)',
  'import math\nprint(math.factorial(30))',
  'import math\nprint(math.comb(52, 5))',
  'import math\nprint(math.gcd(1071, 462), math.lcm(12, 18))',
  'from fractions import Fraction\nprint(sum(Fraction(1, k) for k in range(1, 21)))',
  'print(round(sum(1 / k**2 for k in range(1, 100001)), 6))',
  'total = 0\nfor a in range(1, 50):\n    for b in range(a, 50):\n        if (a * a + b * b) ** 0.5 % 1 == 0:\n            total += 1\nprint(total)',
  'print(len([n for n in range(1, 10001) if str(n) == str(n)[::-1]]))',
  'fib = [0, 1]\nfor _ in range(98):\n    fib.append(fib[-1] + fib[-2])\nprint(fib[-1])',
  'def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))\nprint(sum(1 for n in range(10000) if is_prime(n)))',
  'import itertools\nprint(sum(1 for p in itertools.permutations(range(7)) if all(p[i] != i for i in range(7))))',
  'from collections import Counter\nprint(Counter("mississippi").most_common(2))',
  'import statistics\nprint(statistics.mean([3, 1, 4, 1, 5, 9, 2, 6]), statistics.median([3, 1, 4, 1, 5]))',
  'from decimal import Decimal, getcontext\ngetcontext().prec = 40\nprint(Decimal(2).sqrt())',
  'x = 0.1 + 0.2\nprint(x, round(x, 10))',
  'print(pow(3, 10**6, 10**9 + 7))',
  'print(int("1" * 50) % 97)',
  'seen = set()\nn = 27\nsteps = 0\nwhile n != 1:\n    n = n // 2 if n % 2 == 0 else 3 * n + 1\n    steps += 1\nprint(steps)',
  'import itertools\nprint(len(list(itertools.combinations(range(20), 4))))',
  'print(sorted([5, 3, 9, 1, 7], reverse=True)[:3])',
  'import math\nprint(f"{math.pi:.15f}", f"{math.e:.15f}")',
  'from functools import lru_cache\n@lru_cache(None)\ndef ways(n):\n    return 1 if n <= 1 else ways(n - 1) + ways(n - 2)\nprint(ways(80))',
  'print(bin(2024), hex(2024), oct(2024))',
  // sympy
  'from sympy import symbols, solve\nx = symbols("x")\nprint(solve(x**2 - 5*x + 6, x))',
  'from sympy import symbols, factor\nx = symbols("x")\nprint(factor(x**4 - 1))',
  'from sympy import symbols, integrate, sin\nx = symbols("x")\nprint(integrate(x * sin(x), x))',
  'from sympy import symbols, integrate, exp, oo\nx = symbols("x")\nprint(integrate(exp(-x**2), (x, -oo, oo)))',
  'from sympy import symbols, diff, sin, cos\nx = symbols("x")\nprint(diff(sin(x) * cos(x), x))',
  'from sympy import symbols, simplify, sin, cos\nx = symbols("x")\nprint(simplify(sin(x)**2 + cos(x)**2))',
  'from sympy import factorint\nprint(factorint(2**32 + 1))',
  'from sympy import isprime, nextprime\nprint(isprime(2**31 - 1), nextprime(10**9))',
  'from sympy import symbols, limit, sin, oo\nx = symbols("x")\nprint(limit(sin(x) / x, x, 0), limit((1 + 1/x)**x, x, oo))',
  'from sympy import symbols, series, exp\nx = symbols("x")\nprint(series(exp(x), x, 0, 5))',
  'from sympy import Matrix\nM = Matrix([[2, 1], [1, 3]])\nprint(M.det(), M.inv())',
  'from sympy import Matrix\nprint(Matrix([[1, 2], [2, 1]]).eigenvals())',
  'from sympy import symbols, Eq, solve\nx, y = symbols("x y")\nprint(solve([Eq(x + y, 10), Eq(x - y, 2)], [x, y]))',
  'from sympy import Rational, sqrt\nprint(Rational(3, 4) + Rational(5, 6), sqrt(50))',
  'from sympy import binomial, factorial\nprint(binomial(20, 10), factorial(15))',
  'from sympy import symbols, expand\nx, y = symbols("x y")\nprint(expand((x + y)**5))',
  'from sympy import symbols, summation, oo\nk = symbols("k", integer=True, positive=True)\nprint(summation(1 / k**2, (k, 1, oo)))',
  'from sympy import divisors, totient\nprint(len(divisors(720)), totient(720))',
  'from sympy import symbols, apart\nx = symbols("x")\nprint(apart(1 / (x**2 - 1), x))',
  'from sympy import nsimplify, pi\nprint(nsimplify(0.125), pi.evalf(30))',
  'from sympy import symbols, solve, sqrt\nx = symbols("x")\nprint(solve(x**3 - 6*x**2 + 11*x - 6, x))',
  'from sympy.ntheory.modular import crt\nprint(crt([3, 5, 7], [2, 3, 2]))',
  'from sympy import symbols, roots\nx = symbols("x")\nprint(roots(x**2 + 1, x))',
  'from sympy import gcd, lcm\nprint(gcd(462, 1071), lcm(21, 6))',
  'from sympy import Poly, symbols\nx = symbols("x")\nprint(Poly(x**3 - 2*x + 1, x).all_coeffs())',
  // errors
  'print(undefined_name)',
  'print(1 / 0)',
  'x = [1, 2, 3]\nprint(x[10])',
  'int("three")',
  'def f(:\n    pass',
  'import math\nprint(math.sqrt(-1))',
  '{"a": 1}["b"]',
  'from sympy import symbols\nx = symbols("x")\nprint(x + "1")',
  'raise ValueError("no solution")',
  'assert 2 + 2 == 5, "arithmetic"',
];

interface Interpreter {
  path: string;
  version: string;
  sympy: string | null;
  note: string;
}

/** The python3 the comparison runs on: the one on PATH, or Debian's with python3-sympy installed. */
function pickInterpreter(): Interpreter {
  const probe = (path: string): Interpreter | undefined => {
    try {
      const out = execFileSync(path, ['-c', 'import sys\ntry:\n    import sympy; s = sympy.__version__\nexcept ImportError:\n    s = ""\nprint(sys.executable); print(sys.version.split()[0]); print(s)'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const [exe, version, sympy] = out.toString().split('\n');
      return { path: exe || path, version, sympy: sympy || null, note: '' };
    } catch {
      return undefined;
    }
  };
  const onPath = probe('python3');
  if (onPath?.sympy) return { ...onPath, note: 'python3 on PATH' };
  const debian = probe('/usr/bin/python3');
  if (debian?.sympy) return { ...debian, note: 'Debian /usr/bin/python3 (python3 on PATH has no sympy)' };
  try {
    console.log('installing python3-sympy for the CPython baseline (apt-get install -y python3-sympy)');
    execFileSync('apt-get', ['install', '-y', '-q', 'python3-sympy'], { stdio: 'inherit' });
    const installed = probe('/usr/bin/python3');
    if (installed?.sympy) return { ...installed, note: 'Debian /usr/bin/python3 with python3-sympy installed by the benchmark' };
  } catch {
    // fall through: measure without sympy, and say so
  }
  if (!onPath) throw new Error('no python3 found for the subprocess baseline');
  return { ...onPath, note: 'python3 on PATH without sympy: sympy snippets fail in the baseline' };
}

/** Runs jobs with at most `concurrency` at once; returns each job's result in order. */
async function mapConcurrent<T, R>(items: T[], concurrency: number, job: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await job(items[i], i);
      }
    }),
  );
  return results;
}

interface SubprocessResult {
  ok: boolean;
  stdout: string;
  ms: number;
}

function runSubprocess(python: string, dir: string, code: string, index: number): Promise<SubprocessResult> {
  const file = join(dir, `snippet_${index}.py`);
  writeFileSync(file, code);
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(python, [file], { timeout: 10_000, cwd: dir }, (error, stdout) => {
      resolve({ ok: !error, stdout: stdout.toString(), ms: performance.now() - started });
    });
  });
}

export async function main(args: string[]): Promise<void> {
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Math.max(1, Number(args[roundsAt + 1]) || 3) : 3;
  const size = defaultPoolSize();
  const interpreter = pickInterpreter();
  console.log(`pool size ${size}; baseline ${interpreter.path} (Python ${interpreter.version}, sympy ${interpreter.sympy ?? 'missing'}; ${interpreter.note})`);

  // Cold start: from nothing to a warm pool (Pyodide loaded, bundle installed, sympy imported).
  const coldStarted = performance.now();
  const pool = await createNodePythonPool({ size, timeoutMs: 30_000 });
  const coldStartMs = performance.now() - coldStarted;
  const info = pool.info()!;

  let poolResults: RunResult[] = [];
  const latencies: number[] = [];
  let poolSeconds = 0;
  try {
    // Warm latency: one call at a time.
    for (let round = 0; round < rounds; round++) {
      for (const code of SNIPPETS) latencies.push((await pool.run(code)).durationMs);
    }
    // Throughput: all snippets, `rounds` times over, as many at once as the pool has workers.
    const work = Array.from({ length: rounds }, () => SNIPPETS).flat();
    const started = performance.now();
    poolResults = await mapConcurrent(work, size, (code) => pool.run(code));
    poolSeconds = (performance.now() - started) / 1000;
  } finally {
    await pool.close();
  }

  const dir = mkdtempSync(join(os.tmpdir(), 'python-bench-'));
  let subprocess: SubprocessResult[] = [];
  let subprocessSeconds = 0;
  let cpythonSympyImportMs = NaN;
  let cpythonStartMs = NaN;
  try {
    cpythonStartMs = (await runSubprocess(interpreter.path, dir, 'pass', -1)).ms;
    if (interpreter.sympy) cpythonSympyImportMs = (await runSubprocess(interpreter.path, dir, 'import sympy', -2)).ms - cpythonStartMs;
    const started = performance.now();
    subprocess = await mapConcurrent(SNIPPETS, size, (code, i) => runSubprocess(interpreter.path, dir, code, i));
    subprocessSeconds = (performance.now() - started) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const poolCallsPerS = poolResults.length / poolSeconds;
  const subprocessCallsPerS = subprocess.length / subprocessSeconds;
  const firstRound = poolResults.slice(0, SNIPPETS.length);
  const agree = firstRound.filter((r, i) => (r.status === 'ok') === subprocess[i].ok && (!subprocess[i].ok || r.stdout === subprocess[i].stdout)).length;
  const summary = {
    pool_calls_per_s: poolCallsPerS,
    subprocess_calls_per_s: subprocessCallsPerS,
    pool_vs_subprocess: poolCallsPerS / subprocessCallsPerS,
    warm_p50_ms: percentile(latencies, 50),
    warm_p95_ms: percentile(latencies, 95),
    cold_start_ms: coldStartMs,
    sympy_import_ms: info.importMs.sympy ?? NaN,
    subprocess_p50_ms: percentile(subprocess.map((s) => s.ms), 50),
    subprocess_p95_ms: percentile(subprocess.map((s) => s.ms), 95),
    cpython_start_ms: cpythonStartMs,
    cpython_sympy_import_ms: cpythonSympyImportMs,
    pool_size: size,
    snippets: SNIPPETS.length,
    same_outcome_as_cpython: agree,
  };
  const details = [
    {
      interpreter,
      pyodide: { python: info.pythonVersion, pyodide: info.pyodideVersion, packages: info.packages, warm_ms: info.warmMs, preload_ms: info.preloadMs },
      rounds,
      pool_statuses: countBy(poolResults.map((r) => r.status)),
      subprocess_failures: subprocess.filter((s) => !s.ok).length,
    },
    ...SNIPPETS.map((code, i) => ({
      code,
      pool_status: firstRound[i]?.status,
      pool_ms: firstRound[i]?.durationMs,
      pool_stdout: firstRound[i]?.stdout.slice(0, 200),
      cpython_ok: subprocess[i]?.ok,
      cpython_ms: subprocess[i]?.ms,
      cpython_stdout: subprocess[i]?.stdout.slice(0, 200),
    })),
  ];
  writeResult('python', summary, details, machineInfo({ backend: 'pyodide', python_baseline: `${interpreter.path} ${interpreter.version}` }));
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
