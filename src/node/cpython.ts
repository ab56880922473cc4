/**
 * The Python sandbox as CPython subprocesses, for a server whose own Python (with its numpy and
 * sympy) should run the lab's generated code: the same PythonPool as the Pyodide workers, each worker
 * one long-lived `python3 -I` process (src/node/cpython_host.py) that talks to the pool over a socket
 * on fd 3, one JSON object a line. The OS limits each process (address space, CPU time, file size,
 * open files, and processes where RLIMIT_NPROC binds), it gets a private scratch directory removed
 * with it and a cleared environment, and it runs in a network namespace of its own where `unshare`
 * works. Inside, the interpreter is sealed by the same guard.py as Pyodide's. What each layer does
 * and does not stop: docs/sandbox.md.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { LabError } from '../core/errors';
import { captureBytes } from '../core/sandbox/output';
import { DEFAULT_POOL_OPTIONS, PythonPool, type PoolOptions, type SandboxWorker } from '../core/sandbox/pool';
import type { RuntimeConfig, WorkerRunResult } from '../core/sandbox/runtime';
import type { PackageStatus, RunStatus, SandboxInfo, SandboxLimits } from '../core/sandbox/types';
import type { PythonWorkerPort } from '../core/sandbox/worker-api';
import { defaultPoolSize, GUARD_PY } from './python';

/** The worker's side, started as `python3 -I -B -X utf8 -c <its text>`. */
export const CPYTHON_HOST_PY = fileURLToPath(new URL('./cpython_host.py', import.meta.url));

export interface CPythonPoolOptions extends Partial<Omit<PoolOptions, 'runtime'>> {
  /** The interpreter, a command on PATH or a path; 3.11 or newer. Default: python3. */
  python?: string;
  /** Packages imported while warming up (those installed). Default: sympy, mpmath, numpy. */
  preload?: string[];
  /** Packages reported in SandboxInfo.packages. Default: sympy, mpmath, numpy. */
  packages?: string[];
  /** Largest file the code may write, MiB (RLIMIT_FSIZE). Default: 64. */
  fileSizeMb?: number;
  /** Threads and processes a worker may add where RLIMIT_NPROC binds (not for root). Default: 16. */
  maxProcesses?: number;
  /** CPU seconds a worker process may use in its life (the hard RLIMIT_CPU); it is replaced past half. Default: 3600. */
  cpuLifetimeSeconds?: number;
  /** Run the interpreter as this user and group (the lab must run as root to switch). Default: the lab's own user. */
  runAs?: { uid: number; gid: number };
  /** Try `unshare` for a network namespace of the process's own (default true); false leaves the network to the Python guard. */
  unshare?: boolean;
  /** Where the workers' scratch directories are made. Default: os.tmpdir(). */
  tmpDir?: string;
}

const DEFAULTS = { python: 'python3', fileSizeMb: 64, maxProcesses: 16, cpuLifetimeSeconds: 3600 };
const DEFAULT_PACKAGES = ['sympy', 'mpmath', 'numpy'];

/** Imports refused to model code: native code and process creation without an audit event. */
const BLOCKED_IMPORTS = [
  'ctypes', '_ctypes', '_posixsubprocess', '_testcapi', '_testinternalcapi', '_testbuffer', '_testmultiphase', '_testsinglephase',
  '_testlimitedcapi', '_testclinic', '_xxtestfuzz', '_ctypes_test', '_remote_debugging', '_testexternalinspection',
];

/** Modules whose namespaces are restored after every call (as for Pyodide, and what a host adds). */
const GUARDED_MODULES = [
  'builtins', 'sys', 'os', 'posix', 'io', '_imp', 'importlib', 'importlib._bootstrap', 'importlib._bootstrap_external',
  'signal', 'time', 'math', 'cmath', 'fractions', 'decimal', 'itertools', 'functools', 'collections', 'operator',
  'statistics', 'random', 're', 'string', 'json', 'heapq', 'bisect', 'traceback', 'linecache', 'warnings', 'shutil',
  'tempfile', 'gc', 'sympy', 'mpmath', 'numpy', 'resource', 'subprocess', '_posixsubprocess', 'socket', 'threading', '_thread',
];

/** Standard modules imported before sealing (as for Pyodide, and asyncio, which Pyodide has loaded and which builds code objects when imported). */
const STDLIB_PRELOAD = ['math', 'cmath', 'fractions', 'decimal', 'itertools', 'functools', 'collections', 'statistics',
  'random', 're', 'string', 'heapq', 'bisect', 'operator', 'asyncio'];

/** Audit events refused on a host besides those guard.py always refuses. */
const REFUSED_EXTRA = {
  'resource.prlimit': 'changing resource limits',
  'sqlite3.connect': 'opening sqlite3 databases',
  'sqlite3.enable_load_extension': 'loading native code',
  'sqlite3.load_extension': 'loading native code',
  'syslog.openlog': 'writing to the system log',
  'signal.pthread_kill': 'sending signals',
};

/** The environment a worker gets: nothing of the lab's, and one thread for the math libraries. */
const CLEAN_ENV = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  OMP_NUM_THREADS: '1',
  OPENBLAS_NUM_THREADS: '1',
  MKL_NUM_THREADS: '1',
  NUMEXPR_NUM_THREADS: '1',
};

/** Lists the network interfaces the process sees: a namespace of its own has only `lo`. */
const NETWORK_PROBE = 'import json, socket; print(json.dumps([n for _, n in socket.if_nameindex()]))';

/** Everything a worker needs to start, settled once for the pool. */
interface CPythonSetup {
  /** The command and its arguments before the interpreter's (`unshare ... --`, or none). */
  prefix: string[];
  executable: string;
  hostSource: string;
  tmpDir: string;
  runAs?: { uid: number; gid: number };
  timeoutMs: number;
  graceMs: number;
  fileSizeMb: number;
  maxProcesses: number;
  cpuLifetimeSeconds: number;
  /** Lines for SandboxInfo.isolation known before a worker starts. */
  isolation: string[];
}

/** Starts a pool of CPython sandbox processes and resolves when they are warm. Call close() when done. */
export async function createCPythonPool(options: CPythonPoolOptions = {}): Promise<PythonPool> {
  const { python, preload, packages, fileSizeMb, maxProcesses, cpuLifetimeSeconds, runAs, unshare, tmpDir, ...poolOptions } = options;
  for (const [field, value] of Object.entries({ fileSizeMb, maxProcesses, cpuLifetimeSeconds })) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new LabError('sandbox-options', 'CPython sandbox limits must be positive numbers', { file: 'CPython sandbox options', field, expected: 'a number > 0', found: String(value) });
    }
  }
  const executable = await resolveInterpreter(python ?? DEFAULTS.python);
  const network = unshare === false
    ? { prefix: [], line: 'network: not isolated by the OS (unshare was turned off); the Python guard refuses sockets' }
    : await isolateNetwork(executable, runAs);
  const setup: CPythonSetup = {
    prefix: network.prefix,
    executable,
    hostSource: readFileSync(CPYTHON_HOST_PY, 'utf8'),
    tmpDir: tmpDir ?? os.tmpdir(),
    runAs,
    timeoutMs: poolOptions.timeoutMs ?? DEFAULT_POOL_OPTIONS.timeoutMs,
    graceMs: poolOptions.graceMs ?? DEFAULT_POOL_OPTIONS.graceMs,
    fileSizeMb: fileSizeMb ?? DEFAULTS.fileSizeMb,
    maxProcesses: Math.round(maxProcesses ?? DEFAULTS.maxProcesses),
    cpuLifetimeSeconds: Math.round(cpuLifetimeSeconds ?? DEFAULTS.cpuLifetimeSeconds),
    isolation: [
      network.line,
      `files: a private scratch directory per worker (thor-cpython-* in ${tmpDir ?? os.tmpdir()}), removed with the worker; writes outside it, and reads outside it and the Python installation, are refused by the Python guard only: the OS lets the process reach what uid ${runAs?.uid ?? process.getuid?.() ?? '?'} can`,
      `environment: cleared (PATH, HOME, TMPDIR, LANG, one thread for the math libraries); interpreter ${executable} in isolated mode (-I)`,
    ],
  };
  return PythonPool.start(() => spawnCPythonWorker(setup), {
    size: defaultPoolSize(),
    ...poolOptions,
    runtime: {
      indexURL: '',
      guardSource: readFileSync(GUARD_PY, 'utf8'),
      packages: packages ?? DEFAULT_PACKAGES,
      preload: preload ?? DEFAULT_PACKAGES,
      cdnPackages: [],
    },
  });
}

// --- Setting up -----------------------------------------------------------------------------------

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<{ ok: boolean; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ ok: !error, stdout, stderr, error: error ? (stderr.trim().split('\n').pop() || error.message) : undefined });
    });
  });
}

/** The interpreter's absolute path, checked to be CPython 3.11 or newer. */
async function resolveInterpreter(python: string): Promise<string> {
  const probe = await run(python, ['-I', '-c', 'import sys; print(sys.executable); print(sys.implementation.name, *sys.version_info[:2])']);
  const [executable, implementation] = probe.stdout.trim().split('\n');
  if (!probe.ok || !executable) {
    throw new LabError('sandbox-start', `the Python interpreter "${python}" could not be run`, {
      found: probe.error, hint: 'Install python3 (3.11 or newer), or name the interpreter with the python option',
    });
  }
  const [name, major, minor] = (implementation ?? '').split(' ');
  if (name !== 'cpython' || Number(major) < 3 || (Number(major) === 3 && Number(minor) < 11)) {
    throw new LabError('sandbox-start', 'the CPython sandbox needs CPython 3.11 or newer', { file: executable, found: implementation });
  }
  return executable;
}

function findOnPath(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const path = join(dir, command);
    try {
      if (dir && statSync(path).isFile()) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/**
 * Tries once per pool to give the processes a network namespace of their own: first in a user
 * namespace (no privilege needed where the kernel allows it), then `unshare --net` alone (root).
 * A way counts when the interpreter started through it sees no interface but `lo`.
 */
async function isolateNetwork(executable: string, runAs?: { uid: number; gid: number }): Promise<{ prefix: string[]; line: string }> {
  const unshare = findOnPath('unshare');
  const fallback = (why: string) => ({ prefix: [], line: `network: not isolated by the OS (${why}); the Python guard refuses sockets` });
  if (!unshare) return fallback('unshare was not found');
  const failures: string[] = [];
  for (const flags of [['--user', '--map-root-user', '--net'], ['--net']]) {
    const prefix = [unshare, ...flags, '--'];
    const probe = await run(prefix[0], [...prefix.slice(1), executable, '-I', '-c', NETWORK_PROBE], { env: CLEAN_ENV, ...runAs });
    let interfaces: unknown;
    try {
      interfaces = probe.ok ? JSON.parse(probe.stdout) : undefined;
    } catch {
      interfaces = undefined;
    }
    if (Array.isArray(interfaces) && interfaces.every((name) => name === 'lo')) {
      return { prefix, line: `network: a network namespace of its own (unshare ${flags.join(' ')}) with only a loopback interface, down` };
    }
    failures.push(`unshare ${flags.join(' ')}: ${probe.error ?? `the process still saw ${JSON.stringify(interfaces)}`}`);
  }
  return fallback(failures.join('; '));
}

// --- One worker -----------------------------------------------------------------------------------

interface Reply {
  op: string;
  [key: string]: unknown;
}

const STATUSES: RunStatus[] = ['ok', 'error', 'timeout', 'memory', 'killed'];
/** Replies carry a traceback cut to the output cap, never this much. */
const MAX_REPLY_CHARS = 64 * 2 ** 20;

/** Processes still running, killed when Node exits (they run in sessions of their own, detached). */
const live = new Map<number, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [pid, dir] of live) {
      killGroup(pid);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Why a worker's process ended, in words. */
function exitReason(code: number | null, signal: NodeJS.Signals | null, stderrTail: string): string {
  const tail = stderrTail ? `: ${stderrTail}` : '';
  if (signal === 'SIGXCPU') return 'the Python process used up its CPU time (RLIMIT_CPU, SIGXCPU)';
  if (signal === 'SIGKILL') return 'the Python process was killed (SIGKILL: out of memory, or past its CPU time)';
  if (signal === 'SIGXFSZ') return 'the Python process wrote past its file size limit (SIGXFSZ)';
  if (signal) return `the Python process died of ${signal}`;
  return `the Python process exited with code ${code}${tail}`;
}

/** Output kept from one of a worker's output files: what it wrote this call, cut to the cap. */
function readOutput(fd: number, maxChars: number, dropped: boolean): { text: string; truncated: boolean } {
  let size = 0;
  try {
    size = fstatSync(fd).size;
  } catch {
    return { text: '', truncated: false };
  }
  const limit = captureBytes(maxChars);
  const bytes = Buffer.alloc(Math.min(size, limit));
  const read = bytes.length > 0 ? readSync(fd, bytes, 0, bytes.length, 0) : 0;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, read));
  if (text.length > maxChars) return { text: text.slice(0, maxChars), truncated: true };
  return { text, truncated: dropped || size > limit };
}

/** Starts one CPython process in a fresh directory; the pool's port talks to it over fd 3. */
function spawnCPythonWorker(setup: CPythonSetup): SandboxWorker {
  installExitHook();
  const dir = mkdtempSync(join(setup.tmpDir, 'thor-cpython-'));
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch, { mode: 0o700 });
  if (setup.runAs) {
    chownSync(dir, setup.runAs.uid, setup.runAs.gid);
    chownSync(scratch, setup.runAs.uid, setup.runAs.gid);
  }
  const outFd = openSync(join(dir, 'stdout'), 'a+', 0o600);
  const errFd = openSync(join(dir, 'stderr'), 'a+', 0o600);
  let limits: SandboxLimits | undefined;
  let exitListener: ((reason: string) => void) | undefined;
  let exited: string | undefined;
  let terminated = false;
  let cleaned = false;
  const waiting: { resolve(reply: Reply): void; reject(error: Error): void }[] = [];

  const cleanUp = (pid?: number) => {
    if (cleaned) return;
    cleaned = true;
    if (pid !== undefined) live.delete(pid);
    for (const fd of [outFd, errFd]) {
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  };

  const [command, ...args] = [...setup.prefix, setup.executable, '-I', '-B', '-X', 'utf8', '-c', setup.hostSource];
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: scratch,
      env: { ...CLEAN_ENV, HOME: scratch, TMPDIR: scratch },
      stdio: ['ignore', outFd, errFd, 'pipe'],
      detached: true, // a process group of its own, killed as a whole
      ...setup.runAs,
    });
  } catch (e) {
    cleanUp();
    throw e;
  }
  if (child.pid !== undefined) live.set(child.pid, dir);
  const channel = child.stdio[3] as (Readable & Writable) | null;

  const die = (reason: string) => {
    if (exited !== undefined) return;
    exited = reason;
    for (const w of waiting.splice(0)) w.reject(new Error(reason));
    if (!terminated) exitListener?.(reason);
  };
  child.on('error', (e) => die(`the Python process could not start: ${e.message}`));
  child.on('exit', (code, signal) => {
    const tail = cleaned ? '' : readOutput(errFd, 2000, false).text.trim().split('\n').pop() ?? '';
    die(exitReason(code, signal, tail));
    cleanUp(child.pid);
  });

  let buffered = '';
  channel?.setEncoding('utf8');
  channel?.on('data', (chunk: string) => {
    buffered += chunk;
    if (buffered.length > MAX_REPLY_CHARS && !buffered.includes('\n')) {
      buffered = '';
      killProcess(); // no reply is that long: the conversation is broken
      return;
    }
    for (let at = buffered.indexOf('\n'); at >= 0; at = buffered.indexOf('\n')) {
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      const w = waiting.shift();
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
        if (typeof reply !== 'object' || reply === null || typeof reply.op !== 'string') throw new Error('no op');
      } catch {
        w?.reject(new Error('the Python process sent something that is not a reply'));
        killProcess();
        continue;
      }
      if (w) w.resolve(reply);
      else killProcess(); // a reply nobody asked for: the conversation is broken
    }
  });
  channel?.on('error', () => undefined); // the exit handler reports the process's end

  const killProcess = () => {
    if (child.pid !== undefined) killGroup(child.pid);
  };

  const request = (message: object): Promise<Reply> => {
    if (exited !== undefined) return Promise.reject(new Error(exited));
    if (!channel) return Promise.reject(new Error('the Python process has no channel to the pool'));
    return new Promise<Reply>((resolve, reject) => {
      waiting.push({ resolve, reject });
      channel.write(`${JSON.stringify(message)}\n`);
    });
  };

  const port: PythonWorkerPort = {
    async init(config: RuntimeConfig): Promise<SandboxInfo> {
      const started = performance.now();
      limits = config.limits as SandboxLimits;
      const reply = await request({
        op: 'init',
        guard: config.guardSource,
        config: {
          scratchRoot: scratch,
          memoryMb: limits.memoryLimitMb,
          fileSizeMb: setup.fileSizeMb,
          cpuLifetimeSeconds: setup.cpuLifetimeSeconds,
          maxProcesses: setup.maxProcesses,
          outputBytes: captureBytes(limits.maxOutputChars),
          recursionLimit: limits.recursionLimit,
          maxSessions: config.maxSessions ?? 64,
          blockedImports: BLOCKED_IMPORTS,
          guardedModules: GUARDED_MODULES,
          stdlibPreload: STDLIB_PRELOAD,
          refusedExtra: REFUSED_EXTRA,
          packages: config.packages,
          preload: config.preload,
        },
      });
      if (reply.op !== 'ready') throw new Error(typeof reply.error === 'string' ? reply.error : 'the Python process did not become ready');
      return {
        runtime: 'cpython',
        pythonVersion: String(reply.pythonVersion),
        pyodideVersion: '',
        isolation: [...(reply.isolation as string[]), ...setup.isolation],
        packages: reply.packages as PackageStatus[],
        interrupts: true,
        warmMs: performance.now() - started,
        preloadMs: Number(reply.preloadMs),
        importMs: reply.importMs as Record<string, number>,
      };
    },

    async run(code: string, session: string | null, timeoutMs?: number): Promise<WorkerRunResult> {
      const max = limits!.maxOutputChars;
      const cpuSeconds = Math.ceil(((timeoutMs ?? setup.timeoutMs) + setup.graceMs) / 1000) + 1;
      const reply = await request({ op: 'run', code, session, cpuSeconds });
      const outcome = reply.outcome as { status?: unknown; errorType?: unknown; traceback?: unknown; errorLine?: unknown } | undefined;
      if (reply.op !== 'result' || !outcome || !STATUSES.includes(outcome.status as RunStatus)) {
        throw new Error(typeof reply.dead === 'string' ? reply.dead : 'the Python process sent a malformed result');
      }
      const dropped = Array.isArray(reply.dropped) ? reply.dropped : [];
      const out = readOutput(outFd, max, dropped[0] === true);
      const err = readOutput(errFd, max, dropped[1] === true);
      const note = typeof reply.note === 'string' ? `[sandbox] ${reply.note}\n` : '';
      return {
        status: outcome.status as RunStatus,
        stdout: out.text,
        stderr: err.text + (note && err.text && !err.text.endsWith('\n') ? '\n' : '') + note,
        traceback: String(outcome.traceback ?? '').slice(-max),
        errorLine: typeof outcome.errorLine === 'number' ? outcome.errorLine : null,
        truncated: out.truncated || err.truncated,
        errorType: typeof outcome.errorType === 'string' ? outcome.errorType : null,
        dead: typeof reply.dead === 'string',
        heapMb: Number(reply.heapMb) || 0,
      };
    },

    async endSession(session: string): Promise<boolean> {
      const reply = await request({ op: 'end', session });
      return reply.op === 'ended' && reply.found === true;
    },

    async checkIsolation(): Promise<string[] | null> {
      return null; // there is no JavaScript bridge to look for
    },
  };

  return {
    port,
    interrupt: () => {
      if (exited === undefined) child.kill('SIGINT');
    },
    printed: (maxChars) => readOutput(outFd, maxChars, false),
    onExit: (listener) => {
      exitListener = listener;
    },
    terminate: () => {
      terminated = true;
      if (child.pid !== undefined) killGroup(child.pid);
      die('the worker was terminated');
      cleanUp(child.pid);
    },
  };
}
