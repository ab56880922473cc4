import { createNodePythonPool } from '../src/node/python';
const t = performance.now();
const pool = await createNodePythonPool({ size: 1, preload: ['numpy'], cdnPackages: ['numpy'] });
console.log((performance.now() - t) | 0, JSON.stringify(pool.info()!.packages));
console.log(JSON.stringify(await pool.run('import numpy')));
await pool.close();
