/**
 * `npm run bench -- node [--requests 200] [--concurrency 50] [--max-tokens 16]`: the remote node on
 * loopback (docs/node.md), serving the shipped model's completions through its OpenAI API, with the
 * token, as a client would reach it. Measured in one run: the same requests with `concurrency` in
 * flight (decoded in shared batches) and one by one.
 * Writes bench/results/node.json; summary figures: requests_per_s, p50_ms, p95_ms, errors,
 * concurrency, batching_gain (requests per second in flight together over one by one).
 * The training step on Dawn / Vulkan against wasm needs a GPU machine; without one it is not measured,
 * and the details say so.
 */
import { parseArgs } from 'node:util';
import { LabService } from '../src/core/lab/service';
import { describeWebGPUAdapter, isSoftwareRenderer } from '../src/core/backend';
import { initNodeWebGPU, releaseNodeWebGPU } from '../src/node/backend';
import { nodeLabEnv } from '../src/node/lab';
import { startLabNode } from '../src/node/lab-node';
import { machineInfo, percentile, writeResult } from './lib';

interface Pass {
  concurrency: number;
  requests: number;
  seconds: number;
  requests_per_s: number;
  p50_ms: number;
  p95_ms: number;
  errors: number;
  completion_tokens: number;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { requests: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '50' }, 'max-tokens': { type: 'string', default: '16' } } });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const maxTokens = Number(values['max-tokens']);
  const lab = new LabService(nodeLabEnv({ python: { size: 1, preload: [] } }));
  const backend = await lab.init({ order: ['wasm'] });
  await lab.loadModel({ kind: 'shipped' });
  const node = await startLabNode({ lab, port: 0, engine: { gatherMs: 10, maxBatchRows: 64 }, python: 'pyodide', version: 'bench' });
  const prompts = Array.from({ length: requests }, (_, i) => `Q: What is ${17 + i}*${3 + (i % 11)}?\nA:`);

  const one = async (prompt: string): Promise<{ ms: number; ok: boolean; tokens: number }> => {
    const t0 = performance.now();
    try {
      const res = await fetch(`${node.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'thor-lab', prompt, max_tokens: maxTokens, temperature: 1, seed: 1 }),
      });
      const body = (await res.json()) as { usage?: { completion_tokens: number } };
      return { ms: performance.now() - t0, ok: res.ok, tokens: body.usage?.completion_tokens ?? 0 };
    } catch {
      return { ms: performance.now() - t0, ok: false, tokens: 0 };
    }
  };

  const pass = async (inFlight: number): Promise<Pass> => {
    const results: { ms: number; ok: boolean; tokens: number }[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < prompts.length) results.push(await one(prompts[next++]!));
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const ms = results.map((r) => r.ms);
    return {
      concurrency: inFlight,
      requests: results.length,
      seconds,
      requests_per_s: results.length / seconds,
      p50_ms: percentile(ms, 50),
      p95_ms: percentile(ms, 95),
      errors: results.filter((r) => !r.ok).length,
      completion_tokens: results.reduce((a, r) => a + r.tokens, 0),
    };
  };

  await pass(4); // warm-up: kernels compiled, buffers sized
  const together = await pass(concurrency);
  const oneByOne = await pass(1);
  const engine = lab.engineStats();
  await node.close();
  await lab.close();

  // The GPU comparison: a training step on Dawn against wasm, only where a real GPU adapter exists.
  const adapter = await describeWebGPUAdapter(await initNodeWebGPU()).catch(() => undefined);
  releaseNodeWebGPU();
  const gpuNote =
    adapter && !isSoftwareRenderer(adapter)
      ? `a GPU adapter is present (${adapter}): the training step on it is measured by bench engine`
      : `no GPU on this machine (${adapter ? `only ${adapter}, a CPU emulation` : 'no WebGPU adapter'}): the Dawn / Vulkan training step was not measured`;

  writeResult(
    'node',
    {
      requests_per_s: together.requests_per_s,
      p50_ms: together.p50_ms,
      p95_ms: together.p95_ms,
      errors: together.errors + oneByOne.errors,
      concurrency,
      batching_gain: together.requests_per_s / oneByOne.requests_per_s,
    },
    [
      { pass: 'in flight together', ...together },
      { pass: 'one by one', ...oneByOne },
      { engine_batches: engine?.batches, engine_requests: engine?.requests, engine_rows: engine?.rows, max_tokens: maxTokens },
      { gpu: gpuNote },
    ],
    machineInfo({ backend: backend.name }),
  );
}
