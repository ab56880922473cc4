/**
 * `npm run bench -- rollout [--repeats 3]`: TIR rollouts of the learning benchmark's shape (6 questions
 * × 8 samples, C = 2, 200 tokens, T = 1) from the shipped model on wasm, with the decode step sized by
 * cost (the engine's policy) against the former policy of feeding every row up to the longest waiting
 * feed (one row's tool output made all rows compute 64 positions), side by side in one process,
 * alternating. Both sample the same tokens (same seeds): only the time differs.
 * Writes bench/results/rollout.json.
 */
import { parseArgs } from 'node:util';
import { machineInfo, writeResult } from './lib';
import { LEARNING_CONFIG } from './learning';
import { parseRunConfig } from '../src/core/config/schema';
import { configProblems } from '../src/core/lab/service';
import { rolloutSettings } from '../src/core/tir/settings';
import { encodePrompt } from '../src/core/tir/prompt';
import { runRollouts, type RolloutRequest } from '../src/core/tir/rollout';
import { createNodePythonPool } from '../src/node/python';
import { selectNodeBackend } from '../src/node/backend';
import { loadModel } from '../src/node/lab';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { repeats: { type: 'string', default: '3' } } });
  const repeats = Number(values.repeats);
  const backend = await selectNodeBackend(['wasm', 'cpu']);
  const cfg = parseRunConfig(LEARNING_CONFIG);
  const pool = await createNodePythonPool();
  try {
    const train = await configProblems(cfg, 'train');
    const { model, tokenizer } = await loadModel();
    const { groupSize: G, promptsPerStep: Q } = cfg.rollout;
    const requests: RolloutRequest[] = train.slice(0, Q).flatMap((p, q) =>
      Array.from({ length: G }, (_, k) => ({ id: `q${q}k${k}`, groupId: `q${q}`, level: 'trajectory' as const, problemId: p.id, question: p.question, reference: p.answer, promptTokens: encodePrompt(tokenizer, p.question, cfg.rollout.instruction) })),
    );
    const policies = { by_cost: undefined, longest_feed: Infinity } as const;
    const rollout = async (stepOverhead: number | undefined) => {
      const started = performance.now();
      const out = await runRollouts({ model, tokenizer, executor: pool }, requests, { ...rolloutSettings(cfg, cfg.seed), stepOverhead });
      return { seconds: (performance.now() - started) / 1000, tokens: out.records.map((r) => r.tokens) };
    };
    await rollout(undefined); // warm-up: kernels, Python workers
    const seconds: Record<keyof typeof policies, number[]> = { by_cost: [], longest_feed: [] };
    const tokens: Partial<Record<keyof typeof policies, number[][]>> = {};
    for (let i = 0; i < repeats; i++) {
      for (const [name, overhead] of Object.entries(policies) as [keyof typeof policies, number | undefined][]) {
        const r = await rollout(overhead);
        seconds[name].push(r.seconds);
        tokens[name] = r.tokens;
        console.log(`${name}: ${r.seconds.toFixed(2)} s`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const generated = tokens.by_cost!.reduce((n, t) => n + t.length, 0);
    const same = JSON.stringify(tokens.by_cost) === JSON.stringify(tokens.longest_feed);
    writeResult(
      'rollout',
      {
        rollouts: requests.length,
        response_tokens: generated,
        seconds_by_cost: median(seconds.by_cost),
        seconds_longest_feed: median(seconds.longest_feed),
        speedup: median(seconds.longest_feed) / median(seconds.by_cost),
        tok_s_by_cost: generated / median(seconds.by_cost),
        same_tokens: same ? 1 : 0,
      },
      [{ seconds }],
      machineInfo({ backend: backend.name, repeats }),
    );
    model.dispose();
  } finally {
    await pool.close();
  }
}
