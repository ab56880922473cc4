import { createNodePythonPool } from '../src/node/python';
const pool = await createNodePythonPool({ size: 1, checkIsolation: true });
const [paths] = await pool.checkIsolation();
for (const p of paths ?? []) console.log(p.split(' > ').slice(-6).join(' > '));
await pool.close();
