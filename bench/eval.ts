/**
 * `npm run bench -- eval [--problems 32]`: evaluation throughput on GSM8K with the shipped model, side
 * by side in one run: (a) the lab's model in this process (batched rollouts), (b) the same model behind
 * the lab's OpenAI server (a child process, `npm run serve`) with 16 requests in flight, and (c) that
 * server with one request at a time; the server's batching gain is (b) / (c). Greedy, one sample a
 * question, tools on. Only GSM8K questions whose prompt fits the tiny model's context with room to
 * answer are used (their count is reported). Also the answer checker's agreement on the Math-Verify
 * table (data/equivalence/math-verify.jsonl), with sympy in the sandbox.
 * Writes bench/results/eval.json.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { machineInfo, writeResult } from './lib';
import { encodePrompt } from '../src/core/tir/prompt';
import { measureAgreement, parseEquivalenceCases } from '../src/core/reward/agreement';
import { sandboxChecker } from '../src/core/reward/sandbox-checker';
import { createNodePythonPool } from '../src/node/python';
import { nodeLab, readProblemsFile } from '../src/node/lab';

const GSM8K = 'data/benchmarks/gsm8k-test.jsonl';
const CASES = 'data/equivalence/math-verify.jsonl';
/** Tokens a question must leave free for its answer. */
const ROOM = 96;

function startServer(): Promise<{ baseURL: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/\S+\/v1)/.exec(out);
      if (m) resolve({ baseURL: m[1], stop: () => child.kill('SIGTERM') });
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}): ${out}`)));
  });
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { problems: { type: 'string', default: '32' } } });
  const count = Number(values.problems);
  const lab = await nodeLab();
  const server = await startServer();
  try {
    const model = await lab.loadModel({ kind: 'shipped' });
    const context = model.config.max_position_embeddings;
    const { problems: all } = await readProblemsFile(GSM8K);
    const { tokenizer } = lab.textModel();
    const fits = all.filter((p) => encodePrompt(tokenizer, p.question, '').length <= context - ROOM);
    const problems = fits.slice(0, count);
    console.log(`${fits.length} of ${all.length} GSM8K questions leave ${ROOM} tokens to answer in the ${context}-token context; using ${problems.length}`);
    const settings = { eval: { samples: 1, temperature: 0 }, rollout: { maxResponseTokens: ROOM } };
    const run = async (name: string, endpoint?: { baseURL: string; model: string; concurrency: number }) => {
      const health = async () => (await (await fetch(server.baseURL.replace(/\/v1$/, '/health'))).json()) as { batches: number; batched_requests: number; batched_rows: number };
      const before = endpoint && (await health());
      const started = performance.now();
      const r = await lab.evaluate({ problems, label: 'gsm8k', settings, endpoint });
      const minutes = (performance.now() - started) / 60_000;
      const after = endpoint && (await health());
      const batches = before && after ? { requests: after.batched_requests - before.batched_requests, batches: after.batches - before.batches } : undefined;
      const perBatch = batches ? batches.requests / batches.batches : undefined;
      console.log(`${name}: ${problems.length} problems in ${(minutes * 60).toFixed(1)} s, accuracy ${r.summary.accuracy}${perBatch ? `, ${batches!.requests} requests in ${batches!.batches} batches (${perBatch.toFixed(1)} a batch)` : ''}`);
      return { name, problems_per_min: problems.length / minutes, accuracy: r.summary.accuracy, code_ratio: r.summary.code_ratio, ...(batches && { ...batches, requests_per_batch: perBatch }) };
    };
    // Warm-up: kernels, Python workers, the server's first batch.
    await lab.evaluate({ problems: problems.slice(0, 4), label: 'warm-up', settings });
    await lab.evaluate({ problems: problems.slice(0, 4), label: 'warm-up', settings, endpoint: { baseURL: server.baseURL, model: 'thor-tiny', concurrency: 4 } });
    const local = await run('local');
    const served16 = await run('server, 16 in flight', { baseURL: server.baseURL, model: 'thor-tiny', concurrency: 16 });
    const served1 = await run('server, 1 in flight', { baseURL: server.baseURL, model: 'thor-tiny', concurrency: 1 });

    const pool = await createNodePythonPool({ size: 1 });
    let agreement;
    try {
      const cases = parseEquivalenceCases(readFileSync(CASES, 'utf8'), CASES);
      agreement = await measureAgreement(cases, sandboxChecker(pool));
    } finally {
      await pool.close();
    }
    writeResult(
      'eval',
      {
        problems: problems.length,
        gsm8k_questions_that_fit: fits.length,
        eval_problems_per_min: local.problems_per_min,
        eval_problems_per_min_server: served16.problems_per_min,
        eval_problems_per_min_server_serial: served1.problems_per_min,
        server_batching_gain: served16.problems_per_min / served1.problems_per_min,
        equivalence_agreement: agreement.agreement,
        equivalence_cases: agreement.total,
        equivalence_false_positives: agreement.falsePositives.length,
      },
      [local, served16, served1, { agreement: { total: agreement.total, agree: agreement.agree, false_positives: agreement.falsePositives, misses: agreement.misses } }],
      machineInfo({ backend: 'wasm', model: 'thor-tiny (shipped)' }),
    );
  } finally {
    server.stop();
    await lab.close();
  }
}
