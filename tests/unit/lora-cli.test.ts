/**
 * `npm run cli -- merge`: a PEFT-layout adapter merged into its base on disk gives a plain model
 * folder whose logits are those of base + adapter; an adapter for another base is refused with the
 * tensor and both shapes named.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFolder, saveModelFolder } from '../../src/core/model/checkpoint';
import { parseModelConfig, type ModelConfig } from '../../src/core/model/config';
import { initWeights } from '../../src/core/model/init';
import { loadAdapter, LoraAdapter, saveAdapter, type LoraSettings } from '../../src/core/model/lora';
import { Transformer } from '../../src/core/model/transformer';
import { CharTokenizer } from '../../src/core/tokenizer/char';
import { selectNodeBackend } from '../../src/node/backend';
import { folderSink, folderSource } from '../../src/node/files';

const ROOT = resolve(__dirname, '../..');
const dir = mkdtempSync(join(os.tmpdir(), 'lora-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const modelConfig = (hidden: number): ModelConfig =>
  parseModelConfig({ model_type: 'llama', hidden_size: hidden, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 112, max_position_embeddings: 64, tie_word_embeddings: true });
const settings: LoraSettings = { rank: 3, alpha: 12, dropout: 0, targetModules: ['k_proj', 'o_proj', 'gate_proj'] };

/** A base folder and a trained-looking adapter folder (B non-zero) for it. */
async function writeFolders(name: string, hidden: number): Promise<{ base: string; adapter: string; cfg: ModelConfig }> {
  const cfg = modelConfig(hidden);
  const base = join(dir, `${name}-base`);
  const adapter = join(dir, `${name}-adapter`);
  await saveModelFolder(folderSink(base), { config: cfg, weights: initWeights(cfg, { seed: 4 }), tokenizer: CharTokenizer.fromCharset() });
  const fresh = LoraAdapter.create(cfg, settings, 8);
  const weights = await fresh.exportWeights();
  fresh.dispose();
  for (const [n, t] of weights) if (n.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.03 * Math.cos(i * 1.3)));
  const trained = LoraAdapter.fromWeights(cfg, settings, weights);
  await saveAdapter(folderSink(adapter), trained, { baseModel: base });
  trained.dispose();
  return { base, adapter, cfg };
}

async function logits(model: Transformer): Promise<Float32Array> {
  const t = tf.tidy(() => model.logits(tf.tensor2d([[3, 14, 15, 92, 65, 35]], undefined, 'int32')));
  const out = (await t.data()) as Float32Array;
  t.dispose();
  return out;
}

beforeAll(async () => {
  await selectNodeBackend(['wasm']);
});

describe('cli merge', () => {
  it('writes the merged model: its logits are base + adapter', async () => {
    const { base, adapter, cfg } = await writeFolders('a', 32);
    const out = join(dir, 'merged');
    const run = cli(['merge', '--model', base, '--adapter', adapter, '--out', out]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('merged a rank-3 adapter (alpha 12; gate_proj, k_proj, o_proj');
    const merged = await loadModelFolder(folderSource(out));
    const mergedModel = Transformer.fromWeights(merged.config, merged.weights);
    const baseFolder = await loadModelFolder(folderSource(base));
    const adapted = Transformer.fromWeights(cfg, baseFolder.weights);
    const plain = Transformer.fromWeights(cfg, baseFolder.weights);
    adapted.attachAdapter((await loadAdapter(folderSource(adapter), cfg)).adapter);
    const [m, a, p] = [await logits(mergedModel), await logits(adapted), await logits(plain)];
    const diff = (x: Float32Array, y: Float32Array) => x.reduce((acc, v, i) => Math.max(acc, Math.abs(v - y[i])), 0);
    expect(diff(a, p)).toBeGreaterThan(1e-3);
    expect(diff(m, a)).toBeLessThan(1e-4);
    [mergedModel, adapted, plain].forEach((x) => x.dispose());
  }, 180_000);

  it('refuses an adapter made for another base, naming the tensor and both shapes', async () => {
    const { base } = await writeFolders('b', 32);
    const { adapter } = await writeFolders('c', 48);
    const run = cli(['merge', '--model', base, '--adapter', adapter, '--out', join(dir, 'never')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/"base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight" does not fit the base model \(expected \[3, 32\].*found \[3, 48\]\)/);
  }, 180_000);
});
