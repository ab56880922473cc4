#!/usr/bin/env node
/**
 * Builds the offline Python package bundle for the sandbox: sympy and mpmath (pure Python) from
 * Debian's python3-sympy / python3-mpmath packages, precompiled by Pyodide's own Python so that
 * warm-up imports are fast, zipped into public/python/sympy-mpmath.zip with a manifest.json.
 *
 *   node scripts/build-python-bundle.mjs [--if-possible] [--force] [--out DIR]
 *
 * Where the packages come from, in order:
 *   1. `apt-get download` (Debian and derivatives);
 *   2. the same .deb files over HTTPS from deb.debian.org, checked against pinned SHA-256 sums;
 *   3. the sympy and mpmath of the local python3 (any platform; versions vary).
 * With --if-possible (npm postinstall) a failure prints why and exits 0, so installs never break.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ARCHIVE = 'sympy-mpmath.zip';
const PACKAGES = ['sympy', 'mpmath'];
/** Debian bookworm's packages; the sums pin exactly what was tested in Pyodide. */
const DEBS = [
  {
    name: 'python3-sympy',
    url: 'https://deb.debian.org/debian/pool/main/s/sympy/python3-sympy_1.11.1-1_all.deb',
    sha256: 'b437232be31819aafd267ddf2132c16293ef75e02fd58b4ad31eee3ef1d5b49e',
  },
  {
    name: 'python3-mpmath',
    url: 'https://deb.debian.org/debian/pool/main/m/mpmath/python3-mpmath_1.2.1-2_all.deb',
    sha256: '2c219b63cbab11b27208ef4141c116cbb022dc1236e84981fadb46042f3ce235',
  },
];

const args = process.argv.slice(2);
const ifPossible = args.includes('--if-possible');
const force = args.includes('--force');
const outIndex = args.indexOf('--out');
const outDir = outIndex >= 0 ? args[outIndex + 1] : join(ROOT, 'public', 'python');

const log = (message) => console.log(`[python bundle] ${message}`);

try {
  await main();
} catch (e) {
  const reason = e instanceof Error ? e.message : String(e);
  if (ifPossible) {
    log(`not built: ${reason}`);
    log('the sandbox still works with the standard library; run `npm run build:python` to add sympy and mpmath');
    process.exit(0);
  }
  console.error(`[python bundle] failed: ${reason}`);
  process.exit(1);
}

async function main() {
  const require = createRequire(import.meta.url);
  const pyodideDir = dirname(require.resolve('pyodide/package.json'));
  const pyodideVersion = JSON.parse(readFileSync(join(pyodideDir, 'package.json'), 'utf8')).version;
  const manifestPath = join(outDir, 'manifest.json');
  if (!force && existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    if (manifest.pyodide === pyodideVersion && existsSync(join(outDir, manifest.archive))) {
      log(`up to date (${Object.entries(manifest.packages).map(([n, v]) => `${n} ${v}`).join(', ')}; --force rebuilds)`);
      return;
    }
  }

  const work = mkdtempSync(join(os.tmpdir(), 'python-bundle-'));
  try {
    const { tree, source } = fetchPackages(work) ?? (await downloadPackages(work)) ?? localPython(work) ?? fail();
    const packages = Object.fromEntries(PACKAGES.map((name) => [name, readVersion(tree, name)]));
    log(`packing ${Object.entries(packages).map(([n, v]) => `${n} ${v}`).join(', ')} from ${source}`);
    const zip = await packInPyodide(pyodideDir, tree);
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, ARCHIVE), zip);
    const sha256 = createHash('sha256').update(zip).digest('hex');
    const manifest = { archive: ARCHIVE, packages, source, sha256, pyodide: pyodideVersion, built: new Date().toISOString() };
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
    log(`wrote ${join(outDir, ARCHIVE)} (${(zip.length / 2 ** 20).toFixed(1)} MiB)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function fail() {
  throw new Error('sympy and mpmath could not be obtained: apt-get download, deb.debian.org and the local python3 all failed');
}

/** Route 1: apt-get download + dpkg-deb. Returns the dist-packages tree, or undefined. */
function fetchPackages(work) {
  if (!hasCommand('apt-get') || !hasCommand('dpkg-deb')) return undefined;
  const debDir = join(work, 'apt');
  mkdirSync(debDir);
  try {
    execFileSync('apt-get', ['download', ...DEBS.map((d) => d.name)], { cwd: debDir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    log(`apt-get download failed (${firstLine(e)}); trying deb.debian.org`);
    return undefined;
  }
  const files = execFileSync('ls', [debDir]).toString().split('\n').filter((f) => f.endsWith('.deb'));
  const extracted = join(work, 'root');
  for (const file of files) execFileSync('dpkg-deb', ['-x', join(debDir, file), extracted]);
  const tree = join(extracted, 'usr/lib/python3/dist-packages');
  return hasPackages(tree) ? { tree, source: `apt-get download ${files.join(' ')}` } : undefined;
}

/** Route 2: the pinned .deb files over HTTPS, unpacked with dpkg-deb or with ar + tar. */
async function downloadPackages(work) {
  const extracted = join(work, 'https');
  mkdirSync(extracted, { recursive: true });
  try {
    for (const deb of DEBS) {
      const response = await fetch(deb.url, { signal: AbortSignal.timeout(60_000) });
      if (!response.ok) throw new Error(`GET ${deb.url}: HTTP ${response.status}`);
      const bytes = Buffer.from(await response.arrayBuffer());
      const sum = createHash('sha256').update(bytes).digest('hex');
      if (sum !== deb.sha256) throw new Error(`${deb.url}: SHA-256 ${sum}, expected ${deb.sha256}`);
      const file = join(work, `${deb.name}.deb`);
      writeFileSync(file, bytes);
      unpackDeb(file, extracted, work);
    }
  } catch (e) {
    log(`download from deb.debian.org failed (${firstLine(e)}); trying the local python3`);
    return undefined;
  }
  const tree = join(extracted, 'usr/lib/python3/dist-packages');
  return hasPackages(tree) ? { tree, source: DEBS.map((d) => d.url).join(' ') } : undefined;
}

function unpackDeb(file, into, work) {
  if (hasCommand('dpkg-deb')) {
    execFileSync('dpkg-deb', ['-x', file, into]);
    return;
  }
  // A .deb is an ar archive holding data.tar.* ; ar's format is simple enough to read here.
  const bytes = readFileSync(file);
  let at = 8; // "!<arch>\n"
  while (at < bytes.length) {
    const name = bytes.subarray(at, at + 16).toString().trim().replace(/\/$/, '');
    const size = Number(bytes.subarray(at + 48, at + 58).toString().trim());
    const body = bytes.subarray(at + 60, at + 60 + size);
    if (name.startsWith('data.tar')) {
      const tarFile = join(work, name);
      writeFileSync(tarFile, body);
      execFileSync('tar', ['-xf', tarFile, '-C', into]);
      return;
    }
    at += 60 + size + (size % 2);
  }
  throw new Error(`${file}: no data.tar member`);
}

/** Route 3: copy sympy and mpmath from the local python3 (pip or distribution packages). */
function localPython(work) {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      const out = execFileSync(python, ['-c', 'import sympy, mpmath, os; print(os.path.dirname(sympy.__path__[0])); print(os.path.dirname(mpmath.__path__[0]))'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const [sympyParent, mpmathParent] = out.toString().trim().split('\n');
      const tree = join(work, 'local');
      cpSync(join(sympyParent, 'sympy'), join(tree, 'sympy'), { recursive: true });
      cpSync(join(mpmathParent, 'mpmath'), join(tree, 'mpmath'), { recursive: true });
      return { tree, source: `${python} site-packages` };
    } catch {
      // try the next interpreter
    }
  }
  return undefined;
}

/**
 * Copies the packages into Pyodide's file system (tests and benchmarks left out), compiles them
 * with Pyodide's Python 3.14 (unchecked-hash .pyc: valid whatever the unpacked files' times), zips.
 */
async function packInPyodide(pyodideDir, tree) {
  const { loadPyodide } = await import(join(pyodideDir, 'pyodide.mjs'));
  const pyodide = await loadPyodide({ indexURL: pyodideDir + '/', stdout: () => {}, stderr: () => {} });
  pyodide.mountNodeFS('/source', tree);
  pyodide.runPython(`
import compileall, os, py_compile, shutil, warnings, zipfile
skip = shutil.ignore_patterns("tests", "benchmarks", "__pycache__", "*.pyc")
for name in ${JSON.stringify(PACKAGES)}:
    shutil.copytree(os.path.join("/source", name), os.path.join("/bundle", name), ignore=skip)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    compileall.compile_dir("/bundle", quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
with zipfile.ZipFile("/bundle.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("/bundle"):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(root, f)
            info = zipfile.ZipInfo(os.path.relpath(path, "/bundle"), date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as fh:
                z.writestr(info, fh.read())
`);
  return Buffer.from(pyodide.FS.readFile('/bundle.zip'));
}

function readVersion(tree, name) {
  const file = name === 'sympy' ? join(tree, 'sympy', 'release.py') : join(tree, name, '__init__.py');
  const match = /__version__\s*=\s*['"]([^'"]+)['"]/.exec(readFileSync(file, 'utf8'));
  return match ? match[1] : 'unknown';
}

function hasPackages(tree) {
  return PACKAGES.every((name) => existsSync(join(tree, name, '__init__.py')));
}

function hasCommand(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function firstLine(e) {
  const text = e instanceof Error ? (e.stderr?.toString() || e.message) : String(e);
  return text.trim().split('\n')[0];
}
