import { createNodePythonPool } from '../src/node/python';
import { toObservation } from '../src/core/sandbox/observation';
const t = performance.now();
const pool = await createNodePythonPool({ size: 2, timeoutMs: 1500, checkIsolation: true });
console.log('start', (performance.now() - t) | 0, JSON.stringify(pool.info()), await pool.checkIsolation());
const cases: [string, string, object?][] = [
  ['hello', 'print(1+1)'],
  ['loop', 'while True: pass'],
  ['after loop', 'print("alive")'],
  ['stubborn', 'while True:\n    try:\n        while True: pass\n    except KeyboardInterrupt:\n        pass'],
  ['after stubborn', 'print("alive2")'],
  ['sympy', 'from sympy import *\nx=symbols("x")\nprint(solve(x**2-2,x))'],
  ['print loop', 'for i in range(10**7): print(i)'],
  ['deep repr', 'a=[]\nfor _ in range(10**6): a=[a]\nprint(len(repr(a)))'],
  ['after deep', 'print("alive3")'],
  ['memory', 'x = list(range(10**9))'],
  ['after memory', 'print("alive4")'],
  ['session1', 'y = 41', { session: 'traj-1' }],
  ['session2', 'print(y + 1)', { session: 'traj-1' }],
  ['no session', 'print(y)'],
  ['sleep', 'import time; time.sleep(5)'],
  ['empty', '   '],
];
for (const [label, code, opts] of cases) {
  const r = await pool.run(code, opts as object);
  console.log(label, JSON.stringify({ ...r, stdout: r.stdout.slice(0, 100), stderr: r.stderr.slice(-200) }), '=>', JSON.stringify(toObservation(r)));
}
console.log(pool.health());
await pool.close();
