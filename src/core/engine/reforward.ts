/**
 * Greedy decoding without a cache: every new token re-runs the whole sequence. The baseline the KV
 * cache is measured against, and the reference it is tested against.
 */
import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer';

/** Most likely next token after each row (rows of different lengths are right-padded; attention is causal, so padding is never seen). */
export async function greedyNextTokens(model: Transformer, rows: number[][]): Promise<number[]> {
  const width = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * width);
  rows.forEach((r, b) => ids.set(r, b * width));
  const next = tf.tidy(() => {
    const logits = model.logits(tf.tensor2d(ids, [rows.length, width], 'int32'));
    const last = tf.tensor1d(rows.map((r, b) => b * width + r.length - 1), 'int32');
    return tf.argMax(tf.gather(tf.reshape(logits, [rows.length * width, -1]), last), -1);
  });
  const out = Array.from(await next.data());
  next.dispose();
  return out;
}

/** Appends `maxNewTokens` greedy tokens to every prompt, one full forward per token. Returns the new tokens. */
export async function greedyReforward(model: Transformer, prompts: number[][], maxNewTokens: number): Promise<number[][]> {
  const rows = prompts.map((p) => [...p]);
  for (let i = 0; i < maxNewTokens; i++) {
    const next = await greedyNextTokens(model, rows);
    rows.forEach((r, b) => r.push(next[b]));
  }
  return rows.map((r, b) => r.slice(prompts[b].length));
}
