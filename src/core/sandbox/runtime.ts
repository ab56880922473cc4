/**
 * One sealed Pyodide interpreter: boots Pyodide offline, installs the package bundle (or falls back to
 * Pyodide's CDN), preloads packages, then seals it with the Python guard (guard.py). Shared by the
 * browser worker and the Node worker_threads worker; environment differences arrive in RuntimeConfig.
 */
import { loadPyodide, type PyodideAPI } from 'pyodide';
import { captureBytes, OutputCapture } from './output';
import { DEFAULT_LIMITS, type PackageStatus, type RunStatus, type SandboxInfo, type SandboxLimits } from './types';

/** The offline package bundle: a zip of site-packages trees and what it contains. */
export interface BundleSource {
  /** Bytes of the zip (Node reads the file and passes them). */
  bytes?: Uint8Array;
  /** URL of the zip (the browser fetches it from the app). */
  url?: string;
  /** Package name -> version, from the bundle's manifest.json. */
  packages: Record<string, string>;
}

export interface RuntimeConfig {
  /** Where Pyodide's runtime files are (pyodide.asm.mjs, pyodide.asm.wasm, python_stdlib.zip, ...). */
  indexURL: string;
  /** The text of guard.py (the browser bundles it with Vite's ?raw, Node reads the file). */
  guardSource: string;
  bundle?: BundleSource;
  /** Optional packages the lab wants (reported in SandboxInfo.packages). */
  packages: string[];
  /** Packages imported while warming up, so that the first call does not pay for them. */
  preload: string[];
  /** Packages that may be fetched from Pyodide's CDN when the bundle lacks them (needs a network). */
  cdnPackages: string[];
  /** Where package wheels are fetched from (browsers; Node uses Pyodide's CDN by itself). */
  packageBaseUrl?: string;
  limits?: Partial<SandboxLimits>;
  /** SharedArrayBuffer-backed Int32Array(1): writing 2 (SIGINT) interrupts running Python. */
  interruptBuffer?: Int32Array;
  /** A shared buffer stdout is written through to (output.ts), read by the pool when it must terminate the worker. */
  outputMirror?: SharedArrayBuffer;
  /** Most stateful sessions kept per worker; the least recently used is dropped past it. */
  maxSessions?: number;
  /** Walk the object graph after sealing to prove nothing reaches JavaScript (slow; for tests). */
  checkIsolation?: boolean;
}

/** A call's result as a worker reports it; the pool adds the wall-clock duration. */
export interface WorkerRunResult {
  status: RunStatus;
  stdout: string;
  /** What the code wrote to stderr. */
  stderr: string;
  /** The traceback of an error, as CPython prints it ('' when none). */
  traceback: string;
  errorLine: number | null;
  truncated: boolean;
  /** Python exception name when status is not ok (KeyboardInterrupt after a timeout interrupt). */
  errorType: string | null;
  /** True when the interpreter can no longer be used: the worker must be replaced. */
  dead: boolean;
  /** WebAssembly memory in use after the call, MiB. */
  heapMb: number;
}

/** Modules whose namespaces are restored after every call (model code may monkey-patch them). */
const GUARDED_MODULES = [
  'builtins', 'sys', 'os', 'posix', 'io', '_imp', 'importlib', 'importlib._bootstrap', 'importlib._bootstrap_external',
  'signal', 'time', 'math', 'cmath', 'fractions', 'decimal', 'itertools', 'functools', 'collections', 'operator',
  'statistics', 'random', 're', 'string', 'json', 'heapq', 'bisect', 'traceback', 'linecache', 'warnings', 'shutil',
  'tempfile', 'gc', 'sympy', 'mpmath', 'numpy',
];

/** Standard modules imported before sealing, so that their state is snapshotted and restored. */
const STDLIB_PRELOAD = ['math', 'cmath', 'fractions', 'decimal', 'itertools', 'functools', 'collections', 'statistics',
  'random', 're', 'string', 'heapq', 'bisect', 'operator'];

/** The only writable tree; each stateless call gets a directory in it that is wiped afterwards. */
const SCRATCH_ROOT = '/sandbox';

/** Import roots refused to model code. The bridge roots lead to JavaScript; the rest to native code. */
const BRIDGE_ROOTS = ['js', 'pyodide_js', 'pyodide', '_pyodide', '_pyodide_core', 'pyodide_http'];
const BLOCKED_IMPORTS = [
  ...BRIDGE_ROOTS, 'micropip', 'ctypes', '_ctypes', '_testcapi', '_testinternalcapi', '_testbuffer', '_testmultiphase',
  '_testsinglephase', '_testlimitedcapi', '_testclinic', '_xxtestfuzz', '_ctypes_test', '_remote_debugging',
  '_testexternalinspection',
];

/** How long package downloads from Pyodide's CDN may take before the packages count as unavailable. */
const CDN_TIMEOUT_MS = 60_000;

/** Typical work after `import sympy` that pulls in lazily imported modules, so calls don't pay for them. */
const SYMPY_WARMUP = `
from sympy import symbols, solve, factor, integrate, simplify, sin, Rational, Matrix, limit, series, oo, nsimplify, factorint
_x = symbols('x')
solve(_x**2 - 4, _x); factor(_x**2 - 1); integrate(_x * sin(_x), _x); simplify((_x**2 - 1) / (_x - 1))
Matrix([[1, 2], [3, 4]]).det(); limit(sin(_x) / _x, _x, 0); series(sin(_x), _x, 0, 4); factorint(2**32 + 1)
nsimplify(0.5); str(Rational(3, 4))
`;

type PyFunction = ((...args: unknown[]) => unknown) & { destroy(): void };
type PyObject = { toJs(options?: { depth?: number }): unknown; destroy(): void };

/** What seal() returns (see guard.py). */
interface SealedFunctions {
  prepare: PyFunction;
  execute: PyFunction;
  finish: PyFunction;
  endSession: PyFunction;
  isolation: PyFunction;
}

interface Outcome {
  status: RunStatus;
  errorType: string | null;
  traceback: string;
  errorLine: number | null;
}

export class PythonRuntime {
  private dead = false;

  private constructor(
    private readonly pyodide: PyodideAPI,
    private readonly memory: WebAssembly.Memory | undefined,
    private readonly limits: SandboxLimits,
    private readonly stdout: OutputCapture,
    private readonly stderr: OutputCapture,
    private readonly py: SealedFunctions,
    private readonly interruptBuffer: Int32Array | undefined,
    readonly info: SandboxInfo,
  ) {}

  /** Loads Pyodide, installs and preloads packages, and seals the interpreter. */
  static async boot(config: RuntimeConfig): Promise<PythonRuntime> {
    const started = performance.now();
    const limits = { ...DEFAULT_LIMITS, ...config.limits };
    const { pyodide, memory } = await loadCapturingMemory(config.indexURL, config.packageBaseUrl);
    const captureLimit = captureBytes(limits.maxOutputChars);
    const stdout = new OutputCapture(captureLimit, config.outputMirror);
    const stderr = new OutputCapture(captureLimit);
    // Explicit handlers: inside worker_threads Pyodide's defaults would write to the parent's console.
    pyodide.setStdout({ write: stdout.write, isatty: false });
    pyodide.setStderr({ write: stderr.write, isatty: false });
    pyodide.setStdin({ stdin: () => null, isatty: false });

    const packages = await installPackages(pyodide, config);
    const preloadStarted = performance.now();
    const preloaded = new Set<string>();
    const importMs: Record<string, number> = {};
    for (const name of config.preload) {
      const status = packages.find((p) => p.name === name);
      if (!status?.available) continue;
      const importStarted = performance.now();
      pyodide.runPython(`import ${name}`);
      importMs[name] = performance.now() - importStarted;
      preloaded.add(name);
    }
    if (preloaded.has('sympy')) {
      const warmupScope = pyodide.toPy({});
      pyodide.runPython(SYMPY_WARMUP, { globals: warmupScope });
      warmupScope.destroy();
    }
    const preloadMs = performance.now() - preloadStarted;

    if (memory) limitMemory(memory, limits.memoryLimitMb);
    if (config.interruptBuffer) pyodide.setInterruptBuffer(config.interruptBuffer);

    makeReadOnly(pyodide.FS as unknown as EmscriptenFS, '/', [SCRATCH_ROOT, '/dev', '/proc']);
    const scope = pyodide.toPy({});
    pyodide.runPython(config.guardSource, { globals: scope, filename: '<sandbox>' });
    const seal = scope.get('seal') as PyFunction;
    const sealConfig = {
      scratchRoot: SCRATCH_ROOT,
      recursionLimit: limits.recursionLimit,
      blockedImports: BLOCKED_IMPORTS,
      bridgeRoots: BRIDGE_ROOTS,
      trustedPrefixes: ['/lib/python'],
      guardedModules: GUARDED_MODULES,
      stdlibPreload: STDLIB_PRELOAD,
      maxSessions: config.maxSessions ?? 64,
      checkIsolation: config.checkIsolation ?? false,
      available: packages.filter((p) => p.available).map((p) => p.name),
    };
    const pythonVersion = pyodide.runPython('import sys; sys.version.split()[0]') as string;
    const sealed = seal(JSON.stringify(sealConfig)) as PyObject;
    const [prepare, execute, finish, endSession, isolation] = sealed.toJs({ depth: 1 }) as PyFunction[];
    sealed.destroy();
    seal.destroy();
    scope.destroy(); // the dict lives on as the guard's globals, reachable only from JavaScript

    const info: SandboxInfo = {
      runtime: 'pyodide',
      pythonVersion,
      pyodideVersion: pyodide.version,
      isolation: [
        `memory: the WebAssembly heap is capped at ${limits.memoryLimitMb} MiB${memory ? '' : ' (not enforced: the heap was not found)'}`,
        `files: an in-memory file system, read-only outside ${SCRATCH_ROOT}; the host's files are not in it`,
        'network and processes: none in WebAssembly; the Python guard also refuses sockets, processes and native code',
        'JavaScript: the bridge modules are removed by the Python guard',
      ],
      packages,
      interrupts: config.interruptBuffer !== undefined,
      warmMs: performance.now() - started,
      preloadMs,
      importMs,
    };
    return new PythonRuntime(
      pyodide, memory, limits, stdout, stderr, { prepare, execute, finish, endSession, isolation }, config.interruptBuffer, info,
    );
  }

  /** Runs one snippet. Never throws: a broken interpreter is reported as `killed` with dead = true. */
  run(code: string, session: string | null): WorkerRunResult {
    if (this.dead) return this.deadResult('the Python runtime had already died');
    this.stdout.reset();
    this.stderr.reset();
    if (this.interruptBuffer) Atomics.store(this.interruptBuffer, 0, 0);
    let outcome: Outcome;
    try {
      outcome = this.execute(code, session ?? undefined);
    } catch (e) {
      this.dead = true;
      const out = this.stdout.text(this.limits.maxOutputChars);
      const reason = e instanceof Error ? e.message.split('\n').filter((line) => line.trim()).pop() ?? e.message : String(e);
      return { ...this.deadResult(`the Python runtime crashed: ${reason}`), stdout: out.text, truncated: out.truncated };
    }
    const out = this.stdout.text(this.limits.maxOutputChars);
    const err = this.stderr.text(this.limits.maxOutputChars);
    return {
      status: outcome.status,
      stdout: out.text,
      stderr: err.text,
      traceback: outcome.traceback.slice(-this.limits.maxOutputChars),
      errorLine: outcome.errorLine ?? null,
      truncated: out.truncated || err.truncated,
      errorType: outcome.errorType,
      dead: false,
      heapMb: this.heapMb(),
    };
  }

  /** prepare (compile, set up the namespace), execute (the user's code), finish (restore state). */
  private execute(code: string, session: string | undefined): Outcome {
    // Pyodide prints its own report when the runtime dies; the result carries the reason instead.
    const consoleError = console.error;
    console.error = () => {};
    try {
      return this.executeQuietly(code, session);
    } finally {
      console.error = consoleError;
    }
  }

  private executeQuietly(code: string, session: string | undefined): Outcome {
    const prepared = this.py.prepare(code, session) as PyObject;
    const [compiled, namespace, failure] = prepared.toJs({ depth: 1 }) as [PyObject | undefined, PyObject | undefined, string | undefined];
    prepared.destroy();
    let outcome: Outcome;
    try {
      outcome = JSON.parse(failure ?? (this.py.execute(code, compiled, namespace, session === undefined) as string)) as Outcome;
    } finally {
      compiled?.destroy();
      namespace?.destroy();
    }
    const broken = this.py.finish(session) as string | undefined;
    if (broken) throw new Error(broken);
    return outcome;
  }

  endSession(session: string): boolean {
    if (this.dead) return false;
    return this.py.endSession(session) as boolean;
  }

  /**
   * Paths from reachable Python objects to the JavaScript bridge, found by a walk of the object graph
   * when sealing; empty when the seal holds, null when the walk was not asked for (checkIsolation).
   */
  checkIsolation(): string[] | null {
    const found = this.py.isolation() as PyObject | undefined;
    if (found === undefined) return null;
    const paths = found.toJs() as string[];
    found.destroy();
    return paths;
  }

  heapMb(): number {
    return this.memory ? this.memory.buffer.byteLength / 2 ** 20 : 0;
  }

  private deadResult(message: string): WorkerRunResult {
    return {
      status: 'killed', stdout: '', stderr: '', traceback: message, errorLine: null, truncated: false,
      errorType: null, dead: true, heapMb: this.heapMb(),
    };
  }
}

/**
 * Loads Pyodide with an empty, frozen object as its `js` module (Python sees no JavaScript globals)
 * and catches the WebAssembly memory on its way through instantiate, so that its growth can be capped.
 */
async function loadCapturingMemory(indexURL: string, packageBaseUrl?: string): Promise<{ pyodide: PyodideAPI; memory?: WebAssembly.Memory }> {
  let memory: WebAssembly.Memory | undefined;
  const catchMemory = (result: unknown) => {
    const source = result as WebAssembly.WebAssemblyInstantiatedSource | WebAssembly.Instance;
    const instance = 'instance' in source ? source.instance : source;
    const exported = instance.exports.memory;
    if (!memory && exported instanceof WebAssembly.Memory) memory = exported;
    return result;
  };
  const wasm = WebAssembly as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const originals = { instantiate: wasm.instantiate, instantiateStreaming: wasm.instantiateStreaming };
  wasm.instantiate = (...args) => originals.instantiate.apply(WebAssembly, args).then(catchMemory);
  if (originals.instantiateStreaming) {
    wasm.instantiateStreaming = (...args) => originals.instantiateStreaming.apply(WebAssembly, args).then(catchMemory);
  }
  try {
    const pyodide = await loadPyodide({
      indexURL,
      ...(packageBaseUrl ? { packageBaseUrl } : {}),
      jsglobals: Object.freeze(Object.create(null)),
      stdout: () => {},
      stderr: () => {},
      env: { HOME: '/home/pyodide', PYTHONHASHSEED: '0' },
    });
    return { pyodide, memory };
  } finally {
    wasm.instantiate = originals.instantiate;
    if (originals.instantiateStreaming) wasm.instantiateStreaming = originals.instantiateStreaming;
  }
}

/** The parts of Emscripten's FS used here. */
interface EmscriptenFS {
  readdir(path: string): string[];
  lstat(path: string): { mode: number };
  chmod(path: string, mode: number): void;
  mkdirTree(path: string): void;
  isDir(mode: number): boolean;
  isLink(mode: number): boolean;
}

/**
 * Clears the write bits of every file and directory except the kept trees. Emscripten's FS enforces
 * modes, so writes outside the scratch directory fail even through file or directory descriptors,
 * which the audit hook cannot resolve to paths.
 */
function makeReadOnly(fs: EmscriptenFS, top: string, keep: string[]): void {
  fs.mkdirTree(keep[0]);
  const walk = (path: string) => {
    const { mode } = fs.lstat(path);
    if (fs.isLink(mode)) return;
    if (fs.isDir(mode)) {
      for (const name of fs.readdir(path)) {
        if (name === '.' || name === '..') continue;
        const child = path === '/' ? `/${name}` : `${path}/${name}`;
        if (!keep.includes(child)) walk(child);
      }
    }
    fs.chmod(path, mode & ~0o222);
  };
  walk(top);
}

/** Past the limit, growing the heap fails; Emscripten then returns NULL and Python raises MemoryError. */
function limitMemory(memory: WebAssembly.Memory, limitMb: number): void {
  const limit = limitMb * 2 ** 20;
  const grow = WebAssembly.Memory.prototype.grow;
  Object.defineProperty(memory, 'grow', {
    value(this: WebAssembly.Memory, pages: number) {
      if (this.buffer.byteLength + pages * 65_536 > limit) throw new RangeError('sandbox memory limit reached');
      return grow.call(this, pages);
    },
  });
}

/** Installs the bundle, then tries the CDN for what is still missing; reports every wanted package. */
async function installPackages(pyodide: PyodideAPI, config: RuntimeConfig): Promise<PackageStatus[]> {
  const statuses = new Map<string, PackageStatus>();
  let bundleProblem: string | undefined = 'no offline bundle (run `npm run build:python`)';
  if (config.bundle) {
    try {
      const bytes = config.bundle.bytes ?? (await fetchBytes(config.bundle.url));
      const site = pyodide.runPython('import site; site.getsitepackages()[0]') as string;
      pyodide.unpackArchive(bytes, 'zip', { extractDir: site });
      pyodide.runPython('import importlib; importlib.invalidate_caches()');
      for (const [name, version] of Object.entries(config.bundle.packages)) {
        statuses.set(name, { name, available: true, version, source: 'bundle' });
      }
      bundleProblem = undefined;
    } catch (e) {
      bundleProblem = `the offline bundle could not be installed: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  const fromCdn = config.cdnPackages.filter((name) => !statuses.has(name));
  if (fromCdn.length > 0) {
    const failures: string[] = [];
    let loaded: { name: string; version: string }[] = [];
    try {
      const loading = pyodide.loadPackage(fromCdn, { errorCallback: (m) => failures.push(m), messageCallback: () => {} });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from the package CDN within ${CDN_TIMEOUT_MS / 1000} s`)), CDN_TIMEOUT_MS);
      });
      loaded = await Promise.race([loading, timeout]).finally(() => clearTimeout(timer));
    } catch (e) {
      failures.push(e instanceof Error ? e.message : String(e));
    }
    for (const name of fromCdn) {
      const hit = loaded.find((p) => p.name === name);
      // loadPackage reports failures through errorCallback and resolves anyway: check what arrived.
      if (hit) statuses.set(name, { name, available: true, version: hit.version, source: 'cdn' });
      else statuses.set(name, { name, available: false, reason: failures.join('; ') || 'not loaded from the CDN' });
    }
  }
  for (const name of config.packages) {
    if (!statuses.has(name)) statuses.set(name, { name, available: false, reason: bundleProblem ?? 'not in the offline bundle' });
  }
  return [...statuses.values()];
}

async function fetchBytes(url: string | undefined): Promise<Uint8Array> {
  if (!url) throw new Error('the bundle has neither bytes nor a URL');
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}
