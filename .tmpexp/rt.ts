import { readFileSync } from 'node:fs';
import { PythonRuntime } from '../src/core/sandbox/runtime';
const t = performance.now();
const rt = await PythonRuntime.boot({
  indexURL: '/work/main/node_modules/pyodide/',
  bundle: { bytes: new Uint8Array(readFileSync('/tmp/debdl/b2.zip')), packages: { sympy: '1.11.1', mpmath: '1.2.1' } },
  packages: ['sympy', 'mpmath', 'numpy'], preload: process.env.PRELOAD ? ['sympy'] : [], cdnPackages: [],
});
console.log('boot', (performance.now() - t) | 0, JSON.stringify(rt.info));
console.log('isolation', rt.checkIsolation());
const cases: [string, string][] = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const [label, code] of cases) {
  const t0 = performance.now();
  const r = rt.run(code, null);
  console.log(`--- ${label} (${(performance.now() - t0).toFixed(1)} ms)`, JSON.stringify({ ...r, stderr: r.stderr.slice(-300), stdout: r.stdout.slice(0, 6000) }));
}
