import { createNodePythonPool } from '../src/node/python';
const pool = await createNodePythonPool({ size: 1, preload: [] });
for (const c of ['import sys\nsys.modules.clear()', 'import sys\nsys.stdout.close()', 'import sys\nopen("csv.py", "w").write("poisoned = True")\nsys.path.insert(0, ".")\nimport csv', 'import csv, json\nprint(hasattr(csv, "poisoned"), json.dumps([1]))', 'import os\nos.dup2(os.open("x", os.O_WRONLY | os.O_CREAT), 1)'])
  console.log(JSON.stringify(await pool.run(c)));
await pool.close();
