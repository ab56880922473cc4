/**
 * The CPython sandbox (src/node/cpython.ts): CPython subprocesses behind the same pool as the Pyodide
 * workers, given the same kinds of hostile code. Each call ends with a clear status within its limit
 * plus a second, and the pool answers the next call. What the OS enforces is checked from inside the
 * process; what only the Python guard refuses is named as such (docs/sandbox.md).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/errors';
import type { PythonSandbox } from '../../src/core/lab/service';
import { LabService } from '../../src/core/lab/service';
import { isEquivalent } from '../../src/core/reward/equivalence';
import { sandboxChecker } from '../../src/core/reward/sandbox-checker';
import { toObservation } from '../../src/core/sandbox/observation';
import type { PythonPool } from '../../src/core/sandbox/pool';
import type { RunResult } from '../../src/core/sandbox/types';
import { createCPythonPool } from '../../src/node/cpython';
import { nodeLabEnv } from '../../src/node/lab';

const TIMEOUT_MS = 1500;
/** Generous: on a loaded machine a signal can take a while to be seen. */
const GRACE_MS = 2000;
const MAX_OUTPUT = 10_000;
const MEMORY_MB = 512;
const FILE_SIZE_MB = 8;
let pool: PythonPool;

beforeAll(async () => {
  process.env.THOR_TEST_SECRET = 'not for the sandbox';
  pool = await createCPythonPool({
    size: 2,
    timeoutMs: TIMEOUT_MS,
    graceMs: GRACE_MS,
    limits: { maxOutputChars: MAX_OUTPUT, maxCodeChars: 20_000, recursionLimit: 3000, memoryLimitMb: MEMORY_MB },
    fileSizeMb: FILE_SIZE_MB,
  });
});

afterAll(async () => {
  await pool?.close();
  delete process.env.THOR_TEST_SECRET;
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

const isolation = () => pool.info()!.isolation.join('\n');

describe('CPython sandbox: warm workers', () => {
  it('says it is CPython, with the packages of the interpreter and the limits in force', () => {
    const info = pool.info()!;
    expect(info).toMatchObject({ runtime: 'cpython', pyodideVersion: '', interrupts: true });
    expect(info.pythonVersion).toMatch(/^3\.\d+\.\d+/);
    expect(info.packages.find((p) => p.name === 'sympy'), 'the tests need sympy for python3 (python3-sympy)').toMatchObject({ available: true, source: 'system' });
    expect(isolation()).toMatch(/memory: RLIMIT_AS 512 MiB/);
    expect(isolation()).toMatch(/file size: RLIMIT_FSIZE 8 MiB/);
    expect(isolation()).toMatch(/CPU time: RLIMIT_CPU/);
    expect(isolation()).toMatch(/processes: (RLIMIT_NPROC|not limited by the OS)/);
    expect(isolation()).toMatch(/network: (a network namespace of its own|not isolated by the OS \(.+\); the Python guard refuses sockets)/);
    expect(isolation()).toMatch(/refused by the Python guard only/);
    expect(pool.health()).toMatchObject({ size: 2, idle: 2, queued: 0 });
  });

  it('runs code and reports stdout, stderr and a duration', async () => {
    const r = await pool.run('import sys\nprint(2**10)\nprint("careful", file=sys.stderr)');
    expect(r).toMatchObject({ status: 'ok', stdout: '1024\n', stderr: 'careful\n', errorLine: null, truncated: false });
    expect(r.durationMs).toBeGreaterThan(0);
  });

  it('solves an equation with the interpreter\'s sympy', async () => {
    const r = await pool.run('from sympy import symbols, solve\nx = symbols("x")\nprint(solve(x**2 - 5*x + 6, x))');
    expect(r).toMatchObject({ status: 'ok', stdout: '[2, 3]\n' });
  });

  it('runs under the limits the OS enforces, which the code cannot raise', async () => {
    const r = await pool.run('import resource as r\nprint(r.getrlimit(r.RLIMIT_AS), r.getrlimit(r.RLIMIT_FSIZE), r.getrlimit(r.RLIMIT_CPU)[0] < 10**6)');
    const mb = 2 ** 20;
    expect(r.stdout).toBe(`(${MEMORY_MB * mb}, ${MEMORY_MB * mb}) (${FILE_SIZE_MB * mb}, ${FILE_SIZE_MB * mb}) True\n`);
    for (const code of ['import resource as r\nr.setrlimit(r.RLIMIT_AS, (-1, -1))', 'import resource as r\nr.setrlimit(r.RLIMIT_CPU, (10**6, 10**6))', 'import resource as r\nr.prlimit(0, r.RLIMIT_AS, (-1, -1))']) {
      expect(toObservation(await hostile(code)), code).toMatch(/^PermissionError: changing resource limits is not allowed/);
    }
  });
});

describe('CPython sandbox: timeouts, memory and output', () => {
  it('interrupts an infinite loop, keeping what it printed', async () => {
    const r = await hostile('print("started", flush=True)\nwhile True:\n    pass');
    expect(r.status).toBe('timeout');
    expect(r.stderr).toMatch(/did not finish within 1.5 s/);
    expect(r.stdout).toBe('started\n');
  });

  it('replaces a process whose code swallows the interrupt, keeping what it flushed', async () => {
    const before = pool.health().replacements;
    const r = await hostile('print("ünïcode ✓", flush=True)\nprint("still buffered")\nwhile True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass');
    expect(r.status).toBe('timeout');
    expect(r.stderr).toMatch(/worker was replaced/);
    expect(r.stdout).toBe('ünïcode ✓\n');
    expect(pool.health().replacements).toBe(before + 1);
  });

  it('interrupts time.sleep', async () => {
    expect((await hostile('import time\ntime.sleep(60)')).status).toBe('timeout');
  });

  it('ends a call that allocates past the memory limit as memory and replaces its process', async () => {
    const before = pool.health().replacements;
    const r = await hostile("x = []\nwhile True:\n    x.append(' ' * 10**6)", 8000);
    expect(r.status).toBe('memory');
    expect(toObservation(r)).toBe('MemoryError');
    expect(pool.health().replacements).toBe(before + 1);
  });

  it('stops deep recursion, even after the code raises the limit', async () => {
    const r = await hostile('import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1)\nf(0)');
    expect(toObservation(r)).toMatch(/^RecursionError: maximum recursion depth exceeded/);
  });

  it('reports a crash of the interpreter as killed and replaces the process', async () => {
    const r = await hostile('import faulthandler\nfaulthandler._sigsegv()');
    expect(r.status).toBe('killed');
    expect(toObservation(r)).toBe('Error: the Python process was killed (Killed: the Python process died of SIGSEGV).');
  });

  it('cuts big output at the cap and says so', async () => {
    const big = await hostile('print("x" * 100_000)');
    expect(big).toMatchObject({ status: 'ok', truncated: true });
    expect(big.stdout).toBe('x'.repeat(MAX_OUTPUT));
    const loop = await hostile('for i in range(10**6):\n    print(i)', 8000);
    expect(loop).toMatchObject({ status: 'ok', truncated: true });
    expect(loop.stdout.length).toBeLessThanOrEqual(MAX_OUTPUT);
    expect(loop.stdout.startsWith('0\n1\n2\n')).toBe(true);
  });

  it('cuts a huge exception message to the cap', async () => {
    const r = await hostile('raise ValueError("x" * 10**7)');
    expect(r.status).toBe('error');
    expect(r.stderr.length).toBeLessThanOrEqual(4 * MAX_OUTPUT);
    expect(toObservation(r)).toMatch(/^x{128}\.\.\.x{128}$/); // the traceback's tail, as Pyodide's runtime cuts it
  });

  it('refuses a file past the size limit', async () => {
    const r = await hostile(`open("big.bin", "wb").write(b"0" * (${FILE_SIZE_MB + 1} * 2**20))`);
    expect(r.status).toBe('error');
    expect(toObservation(r)).toBe('OSError: [Errno 27] File too large');
  });
});

describe('CPython sandbox: processes', () => {
  it('refuses fork, subprocess, shell commands and multiprocessing', async () => {
    for (const [code, message] of [
      ['import os\nos.fork()', /starting processes is not allowed/],
      ['import os\nwhile True:\n    os.fork()', /starting processes is not allowed/],
      ['import subprocess\nsubprocess.run(["id"])', /starting processes is not allowed/],
      ['import _posixsubprocess\n_posixsubprocess.fork_exec()', /starting processes is not allowed/],
      ['import os\nos.system("echo pwned")', /running shell commands is not allowed/],
      ['import os\nos.posix_spawn("/bin/true", ["true"], {})', /starting processes is not allowed/],
      ['import multiprocessing\nmultiprocessing.Process(target=print).start()', /starting processes is not allowed/],
      ['import os, signal\nos.kill(os.getppid(), signal.SIGKILL)', /sending signals is not allowed/],
      ['import ctypes\nctypes.CDLL(None).system(b"echo pwned")', /native code \(ctypes\.dlopen\)/],
    ] as const) {
      const r = await hostile(code);
      expect(r.status, code).toBe('error');
      expect(r.stdout, code).not.toMatch(/pwned/);
      expect(toObservation(r), code).toMatch(message);
    }
  });

  it('replaces a process whose code leaves a thread running', async () => {
    const before = pool.health().replacements;
    const r = await hostile('import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\nprint("started")');
    expect(r).toMatchObject({ status: 'ok', stdout: 'started\n' });
    expect(r.stderr).toMatch(/left 1 thread\(s\) running, so its worker was replaced/);
    expect(pool.health().replacements).toBe(before + 1);
  });

  // RLIMIT_NPROC binds a user other than root: the pool's own processes when the tests run as a user,
  // a pool run as nobody when they run as root (with an interpreter nobody can read).
  const asNobody = process.getuid?.() === 0 && spawnSync('/usr/bin/python3', ['-I', '-c', 'import sys; assert sys.version_info >= (3, 11)'], { uid: 65534, gid: 65534 }).status === 0;
  it.runIf(process.getuid?.() !== 0 || asNobody)('bounds threads and processes with RLIMIT_NPROC where it binds', async () => {
    const own = process.getuid?.() !== 0;
    const bounded = own ? pool : await createCPythonPool({ size: 1, python: '/usr/bin/python3', runAs: { uid: 65534, gid: 65534 }, maxProcesses: 4, preload: [] });
    try {
      const line = bounded.info()!.isolation.find((l) => l.startsWith('processes:'))!;
      const limit = Number(/RLIMIT_NPROC (\d+)/.exec(line)?.[1]);
      expect(limit, line).toBeGreaterThan(0);
      const r = await bounded.run(`import threading, time\nthreads = []\nfor _ in range(${limit + 50}):\n    t = threading.Thread(target=time.sleep, args=(0.3,))\n    try:\n        t.start()\n    except RuntimeError as e:\n        print(e)\n        break\n    threads.append(t)\nfor t in threads:\n    t.join()\nprint(len(threads) < ${limit + 50})`, { timeoutMs: 10_000 });
      expect(r).toMatchObject({ status: 'ok', stdout: "can't start new thread\nTrue\n" });
    } finally {
      if (!own) await bounded.close();
    }
  });
});

describe('CPython sandbox: network', () => {
  it('cannot connect to a port listening on 127.0.0.1', async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.end('hello');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      for (const code of [
        `import socket\ns = socket.create_connection(("127.0.0.1", ${port}))\nprint(s.recv(5))`,
        `import _socket\ns = _socket.socket()\ns.connect(("127.0.0.1", ${port}))\nprint(s.recv(5))`,
        `import urllib.request\nprint(urllib.request.urlopen("http://127.0.0.1:${port}/").read())`,
      ]) {
        const r = await hostile(code, 5000);
        expect(r.status, code).toBe('error');
        expect(toObservation(r), code).toMatch(/PermissionError: network access/);
      }
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });

  it('sees no network interface but loopback when the OS gave it a namespace of its own', async () => {
    const r = await pool.run('import socket\nprint([name for _, name in socket.if_nameindex()])');
    if (/network: a network namespace of its own/.test(isolation())) expect(r.stdout).toBe("['lo']\n");
    else expect(r.status).toBe('ok'); // the host's interfaces: only the Python guard stands between code and the network
  });
});

describe('CPython sandbox: files and environment', () => {
  it('writes only inside its scratch directory, which is wiped between calls', async () => {
    for (const code of [
      'open("/tmp/thor-escape.txt", "w")',
      'open("../../escape.txt", "w")',
      'import os\nos.mkdir("/tmp/thor-escape")',
      'import os\nfd = os.open(".", os.O_RDONLY)\nos.open("../../escape.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd)',
      'import os, sys\nfd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\nos.open("escape.py", os.O_WRONLY | os.O_CREAT, dir_fd=fd)',
      'import os\nos.symlink("/tmp", "tmp")\nopen("tmp/thor-escape.txt", "w")',
      'import sqlite3\nsqlite3.connect("/tmp/thor-escape.db")',
    ]) {
      const r = await hostile(code);
      expect(r.status, code).toBe('error');
      expect(toObservation(r), code).toMatch(/^PermissionError/);
    }
    expect(existsSync('/tmp/thor-escape.txt') || existsSync('/tmp/thor-escape') || existsSync('/tmp/thor-escape.db')).toBe(false);
    const write = await pool.run('from pathlib import Path\nPath("notes.txt").write_text("kept?")\nprint(sorted(p.name for p in Path(".").iterdir()))');
    expect(write).toMatchObject({ status: 'ok', stdout: "['notes.txt']\n" });
    expect((await pool.run('import os\nprint(os.listdir("."))')).stdout).toBe('[]\n');
  });

  it("refuses to read the repository's files (the Python guard's check, not the OS's)", async () => {
    const path = join(process.cwd(), 'package.json');
    expect(readFileSync(path, 'utf8')).toMatch(/thor-lab/);
    for (const code of [`print(open(${JSON.stringify(path)}).read())`, 'print(open("/etc/hostname").read())', 'import os\nos.open("/", os.O_RDONLY)']) {
      const r = await hostile(code);
      expect(r.status, code).toBe('error');
      expect(r.stdout, code).not.toMatch(/thor-lab/);
      expect(toObservation(r), code).toMatch(/^PermissionError: (reading|opening the directory) '.*' is not allowed/);
    }
    // The Python installation stays readable: imports that were not preloaded still work.
    expect(await pool.run('import csv, wave, json\nprint(json.dumps([1]))')).toMatchObject({ status: 'ok', stdout: '[1]\n' });
  });

  it('gets a cleared environment, none of the lab\'s', async () => {
    const r = await pool.run('import os\nprint(sorted(os.environ))');
    expect(r.stdout).not.toMatch(/THOR_TEST_SECRET/);
    expect(JSON.parse(r.stdout.replace(/'/g, '"'))).toEqual(['HOME', 'LANG', 'LC_ALL', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'TMPDIR']);
  });

  it('removes a worker\'s scratch directory when the pool closes', async () => {
    const own = await createCPythonPool({ size: 1, preload: [] });
    const r = await own.run('import os\nopen("left.txt", "w").write("x")\nprint(os.path.dirname(os.getcwd()))', { session: 's' });
    const scratch = r.stdout.trim();
    expect(scratch).toMatch(/thor-cpython-[^/]+\/scratch$/);
    expect(existsSync(join(scratch, 'session-s', 'left.txt'))).toBe(true);
    await own.close();
    expect(existsSync(join(scratch, '..'))).toBe(false);
  });
});

describe('CPython sandbox: sessions, errors and concurrency', () => {
  it('keeps one namespace per session, and none between stateless calls', async () => {
    expect((await pool.run('total = 40', { session: 'traj-a' })).status).toBe('ok');
    expect((await pool.run('total = 1', { session: 'traj-b' })).status).toBe('ok');
    expect((await pool.run('total += 2\nprint(total)', { session: 'traj-a' })).stdout).toBe('42\n');
    expect((await pool.run('print(total)', { session: 'traj-b' })).stdout).toBe('1\n');
    expect(toObservation(await pool.run('print(total)'))).toBe("NameError: name 'total' is not defined");
    await pool.endSession('traj-a');
    expect(toObservation(await pool.run('print(total)', { session: 'traj-a' }))).toBe("NameError: name 'total' is not defined");
    await pool.endSession('traj-b');
  });

  it('reports a syntax error with its line, and the line of user code that raised through library frames', async () => {
    const syntax = await hostile('x = 1\ny = = 2');
    expect(syntax).toMatchObject({ status: 'error', errorLine: 2 });
    expect(toObservation(syntax)).toBe('SyntaxError: invalid syntax');
    const raised = await hostile('from fractions import Fraction\n\nprint(Fraction(1, 0))');
    expect(raised).toMatchObject({ status: 'error', errorLine: 3 });
    expect(toObservation(raised)).toBe('ZeroDivisionError: Fraction(1, 0)');
  });

  it('treats exits and input() as the Pyodide sandbox does', async () => {
    expect(await hostile('print("bye")\nimport sys\nsys.exit()')).toMatchObject({ status: 'ok', stdout: 'bye\n' });
    expect(toObservation(await hostile('import sys\nsys.exit(3)'))).toBe('SystemExit: 3');
    expect(await hostile('import os\nos._exit(0)')).toMatchObject({ status: 'ok' });
    expect(toObservation(await hostile('input()'))).toBe('EOFError: EOF when reading a line');
  });

  it('answers oversized code with an error, without a process', async () => {
    const r = await pool.run('x = 1\n'.repeat(5000));
    expect(r.status).toBe('error');
    expect(toObservation(r)).toMatch(/30000 characters long, the sandbox accepts at most 20000/);
  });

  it('answers many calls at once on two processes', async () => {
    await pool.ready(); // processes replaced by earlier tests are warm again
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => pool.run(`import math\nprint(math.factorial(${i}))`, { timeoutMs: 20_000 })));
    expect(results.map((r) => r.status)).toEqual(Array(24).fill('ok'));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 24 }, (_, i) => `${factorial(i)}\n`));
  });
});

describe("CPython sandbox: its own machinery", () => {
  it('ends the process when code drives the sandbox\'s own generator, and keeps its frame out of reach', async () => {
    const driven = await hostile('import sys\nstep = sys._getframe(2).f_locals["step"]\nstep("{}")');
    expect(driven.status).toBe('killed');
    const frame = await hostile('import sys\nprint(sys._getframe(2).f_locals["step"].__self__.gi_frame)');
    expect(toObservation(frame)).toBe("PermissionError: the internals of the sandbox's own functions are not accessible");
  });

  it('survives a closed sys.stdout, and reports a redirected fd 1 as killed', async () => {
    await pool.run('import sys\nsys.stdout.close()');
    expect(await pool.run('print("after")')).toMatchObject({ status: 'ok', stdout: 'after\n' });
    const redirected = await hostile('import os\nos.dup2(os.open("x", os.O_WRONLY | os.O_CREAT), 1)');
    expect(redirected.status).toBe('killed');
    expect(toObservation(redirected)).toMatch(/file descriptor 1 was closed or redirected/);
  });

  it('rejects an interpreter that is not there with a LabError', async () => {
    await expect(createCPythonPool({ python: '/nowhere/python3' })).rejects.toBeInstanceOf(LabError);
    await expect(createCPythonPool({ python: '/nowhere/python3' })).rejects.toThrow(/could not be run/);
  });
});

describe('CPython sandbox in the lab service', () => {
  it('is what nodeLabEnv starts with python.runtime = cpython, and the lab checks answers with its sympy', async () => {
    const env = nodeLabEnv({ python: { runtime: 'cpython', size: 1 } });
    let sandbox: PythonSandbox | undefined;
    const service = new LabService({ ...env, startPython: async () => (sandbox = await env.startPython()) });
    try {
      const status = await service.sandboxWarm();
      expect(status).toMatchObject({ state: 'ready', info: { runtime: 'cpython' } });
      expect(status.info?.packages.find((p) => p.name === 'sympy')?.available).toBe(true);
      expect(await sandbox!.pool.run('print(2**10)')).toMatchObject({ status: 'ok', stdout: '1024\n' });
      expect(await isEquivalent('\\frac{x^2-1}{x-1}', 'x+1', sandboxChecker(sandbox!.pool))).toBe(true);
    } finally {
      await service.close();
    }
  });
});

function factorial(n: number): bigint {
  let f = 1n;
  for (let i = 2n; i <= BigInt(n); i++) f *= i;
  return f;
}
