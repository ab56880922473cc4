/** The sandbox's Python side is a real .py file: CPython and the sandbox's own Pyodide both compile it. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadPyodide } from 'pyodide';
import { describe, expect, it } from 'vitest';
import { GUARD_PY, pyodideIndexPath } from '../../src/node/python';

describe('guard.py', () => {
  it('compiles with CPython', () => {
    const run = spawnSync('python3', ['-c', 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec"); print("ok")', GUARD_PY], { encoding: 'utf8' });
    expect(run.error, 'python3 is needed to check guard.py').toBeUndefined();
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('ok');
  });

  it("compiles with the sandbox's Pyodide and defines seal()", async () => {
    const pyodide = await loadPyodide({ indexURL: pyodideIndexPath(), stdout: () => undefined, stderr: () => undefined });
    pyodide.globals.set('source', readFileSync(GUARD_PY, 'utf8'));
    const names = pyodide.runPython('code = compile(source, "guard.py", "exec"); sorted(n for n in code.co_names if n in ("seal", "check_isolation"))').toJs();
    expect(names).toEqual(['check_isolation', 'seal']);
  });
});
