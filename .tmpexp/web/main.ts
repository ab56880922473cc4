import { startPythonSandbox } from '../../src/app/services/python';
const out = document.getElementById('out')!;
(async () => {
  try {
    const t = performance.now();
    const { pool, info, capabilities } = await startPythonSandbox({ size: 1, timeoutMs: 2000, allowCdn: false });
    const warm = performance.now() - t;
    const results = [];
    for (const code of ['from sympy import *\nx=symbols("x")\nprint(solve(x**2-5*x+6, x))', 'while True: pass', 'import js', 'print(1+1)']) {
      results.push(await pool.run(code));
    }
    (window as any).sandboxReport = { warm, info, capabilities, results, health: pool.health() };
    out.textContent = 'done';
  } catch (e) {
    (window as any).sandboxReport = { error: String(e), stack: (e as Error).stack };
    out.textContent = 'error';
  }
})();
