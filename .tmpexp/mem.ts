import { createNodePythonPool } from '../src/node/python';
const pool = await createNodePythonPool({ size: 1, timeoutMs: 20000, preload: [], limits: { maxOutputChars: 10000, maxCodeChars: 20000, recursionLimit: 3000, memoryLimitMb: 512 } });
for (const code of ['import time\nt=time.time()\nchunks = []\ntry:\n    while True:\n        chunks.append(bytearray(32 * 2**20))\nexcept MemoryError:\n    print(len(chunks), time.time()-t)\n    raise', 'print(1)']) {
  const r = await pool.run(code);
  console.log(JSON.stringify(r).slice(0, 400));
}
await pool.close();
