/** The memory budget from config.json alone (docs/models.md#memory-budget), against hand-computed numbers. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countParameters } from '../../src/core/model/config';
import { assertBudget, checkBudget, estimateMemory, loraParameters, WASM_HEAP_MAX_BYTES, type DeviceLimits, type MemoryUse } from '../../src/core/model/memory';
import { QWEN25_05B, SMOLLM2_135M } from '../fixtures/hf-models';
import { catchLab } from '../fixtures/errors';

const qwen25_05b = QWEN25_05B;
const smollm2_135m = SMOLLM2_135M;


describe('memory estimate', () => {
  it('counts weights, KV cache, LoRA and AdamW by their formulas', () => {
    expect(countParameters(qwen25_05b)).toBe(494_032_768);
    const use: MemoryUse = { mode: 'infer', batch: 8, context: 1024 };
    const e = estimateMemory(smollm2_135m, use, 'webgpu');
    expect(e.weights).toBe(countParameters(smollm2_135m) * 4);
    // layers × 2 × kv_heads × head_dim × context × batch × 4
    expect(e.kvCache).toBe(30 * 2 * 3 * 64 * 1024 * 8 * 4);
    expect(e.packedWeights).toBe(0);
    expect(e.gradients + e.optimizer).toBe(0);
    // r × (in + out) per target module per layer: q_proj 896→896, v_proj 896→128.
    expect(loraParameters(qwen25_05b, 8, ['q_proj', 'v_proj'])).toBe(24 * 8 * (896 + 896 + 896 + 128));
    const lora = estimateMemory(qwen25_05b, { mode: 'train', batch: 8, context: 512, updateBatch: 2, lora: { rank: 8, targetModules: ['q_proj', 'v_proj'] } }, 'webgpu');
    expect(lora.trainable).toBe(540_672);
    expect(lora.optimizer).toBe(2 * 540_672 * 4);
    const full = estimateMemory(qwen25_05b, { mode: 'train', batch: 8, context: 512, updateBatch: 2 }, 'webgpu');
    expect(full.optimizer).toBe(2 * 494_032_768 * 4);
    expect(full.gradients).toBe(494_032_768 * 4);
    // The logits of a micro-batch [rows × length × vocab], three times (logits, log-softmax, gradient).
    expect(full.logits).toBe(3 * 2 * 512 * 151936 * 4);
    expect(full.largestTensor).toEqual({ name: 'the logits [rows × length × vocab] = [2 × 512 × 151936]', bytes: 2 * 512 * 151936 * 4 });
  });

  it("adds the packed copy of every Linear weight on wasm, none of a large tied head, a 64 MB block of an untied one, a small head whole", () => {
    const e = estimateMemory(qwen25_05b, { mode: 'infer', batch: 1, context: 256 }, 'wasm');
    const linear = 24 * (896 * 896 + 2 * 896 * 128 + 896 * 896 + 3 * 896 * 4864) * 4;
    expect(e.packedWeights).toBe(linear);
    const untied = estimateMemory({ ...qwen25_05b, tie_word_embeddings: false }, { mode: 'infer', batch: 1, context: 256 }, 'wasm');
    expect(untied.packedWeights).toBe(linear + 2 ** 24 * 4);
    // A small tied head (the tiny model's) is kept in panels as well, multiplied transposed.
    const tiny = { ...qwen25_05b, vocab_size: 104, hidden_size: 128, num_hidden_layers: 1 };
    const small = estimateMemory(tiny, { mode: 'infer', batch: 1, context: 64 }, 'wasm');
    expect(small.packedWeights - estimateMemory({ ...tiny, tie_word_embeddings: false }, { mode: 'infer', batch: 1, context: 64 }, 'wasm').packedWeights).toBe(0);
  });

  it('counts 2 bytes for each matrix value with float16 weights, and 4 for norms and biases', () => {
    // Qwen2.5-0.5B: the tied embedding, 24 layers of Linear weights; the rest are norms and q/k/v biases.
    const matrices = 151936 * 896 + 24 * (896 * 896 + 2 * 896 * 128 + 896 * 896 + 3 * 896 * 4864);
    const rest = 494_032_768 - matrices;
    expect(rest).toBe(24 * (2 * 896 + 896 + 2 * 128) + 896);
    const use: MemoryUse = { mode: 'train', batch: 8, context: 512, updateBatch: 2, lora: { rank: 8, targetModules: ['q_proj', 'v_proj'] }, weights: 'f16' };
    const e = estimateMemory(qwen25_05b, use, 'webgpu');
    expect(e.weights).toBe(matrices * 2 + rest * 4);
    expect(e.weightFormat).toBe('f16');
    expect(e.largestTensor.bytes).toBe(2 * 512 * 151936 * 4);
    const f32 = estimateMemory(qwen25_05b, { ...use, weights: 'f32' }, 'webgpu');
    expect(f32.total - e.total).toBe(matrices * 2);
    // Admitted at float16 under a limit float32 is refused at.
    const limits: DeviceLimits = { backend: 'webgpu', totalBytes: (e.total + f32.total) / 2, source: 'a test limit' };
    expect(checkBudget(qwen25_05b, use, limits).fits).toBe(true);
    expect(checkBudget(qwen25_05b, { ...use, weights: 'f32' }, limits).fits).toBe(false);
  });

  it("takes the wasm heap's limit from tfjs-backend-wasm's own build", () => {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    const built = readFileSync(join(dir, 'wasm-out', 'tfjs-backend-wasm.js'), 'utf8');
    const max = /getHeapMax\(\)\s*\{\s*return (\d+)/.exec(built);
    expect(Number(max?.[1])).toBe(WASM_HEAP_MAX_BYTES);
  });
});

describe('memory budget', () => {
  const gpu: DeviceLimits = { backend: 'webgpu', totalBytes: 4e9, bufferBytes: 2 ** 30, source: 'a 4 GB GPU' };

  it('refuses a Qwen2.5-0.5B-shaped model over the limit with both numbers and settings that fit', () => {
    const use: MemoryUse = { mode: 'infer', batch: 16, context: 8192 };
    const e = catchLab(() => assertBudget(qwen25_05b, use, gpu));
    expect(e.code).toBe('memory');
    // 1.98 GB of weights, a 3.22 GB KV cache (24 × 2 × 2 × 64 × 8192 × 16 × 4) and a prefill chunk's
    // attention over 8192 positions (16 × 64 tokens × 14 heads × 2 × 8192 × 4 ≈ 0.94 GB of it) against 4 GB.
    expect(e.message).toMatch(/needs about 6\.27 GB \(weights \(f32\) 1\.98 GB, KV cache 3\.22 GB, activations 1\.06 GB, logits 9\.7 MB; total 6\.27 GB\) against the 4\.00 GB limit of a 4 GB GPU \(expected at most 4\.00 GB, found 6\.27 GB\)/);
    expect(e.message).toContain('These would fit: a context of 2048 tokens (instead of 8192); or 4 rows generated at once (group size × prompts; instead of 16)');
    expect(checkBudget(qwen25_05b, { ...use, context: 2048 }, gpu).fits).toBe(true);
    expect(checkBudget(qwen25_05b, { ...use, context: 4096 }, gpu).fits).toBe(false);
    expect(checkBudget(qwen25_05b, { ...use, batch: 4 }, gpu).fits).toBe(true);
    expect(checkBudget(qwen25_05b, { ...use, batch: 8 }, gpu).fits).toBe(false);
  });

  it('suggests LoRA when full fine-tuning does not fit, and says no when the weights alone do not', () => {
    const train: MemoryUse = { mode: 'train', batch: 4, context: 256, updateBatch: 1 };
    const r = checkBudget(qwen25_05b, train, { ...gpu, totalBytes: 6e9 });
    expect(r.fits).toBe(false);
    expect(r.suggestions).toContain('LoRA of rank 64 on q_proj, v_proj');
    const e = catchLab(() => assertBudget(qwen25_05b, { mode: 'infer', batch: 1, context: 256 }, { backend: 'wasm', totalBytes: 3e9, source: 'a 3 GB heap' }));
    expect(e.message).toContain("No setting fits: the weights alone need 3.41 GB (1.98 GB in float32 and 1.43 GB of their packed copies) against the 3.00 GB limit");
    const heap = checkBudget(qwen25_05b, { mode: 'infer', batch: 1, context: 1024 }, { backend: 'wasm', totalBytes: WASM_HEAP_MAX_BYTES, source: 'the wasm heap' });
    expect(heap.fits).toBe(true);
    const buffer = catchLab(() => assertBudget(qwen25_05b, { mode: 'infer', batch: 1, context: 256 }, { ...gpu, bufferBytes: 256 * 2 ** 20 }));
    expect(buffer.message).toContain('its largest tensor, the embedding [vocab × hidden], needs 0.54 GB in one buffer against the 0.27 GB buffer limit');
    expect(buffer.message).toContain('No setting fits: the embedding alone needs 0.54 GB');
  });

  it("accepts SmolLM2-135M's shape where Qwen2.5-0.5B is refused", () => {
    const use: MemoryUse = { mode: 'infer', batch: 16, context: 8192 };
    expect(() => assertBudget(smollm2_135m, { ...use, context: 2048 }, gpu)).not.toThrow();
    const fits = checkBudget(smollm2_135m, { mode: 'infer', batch: 8, context: 1024 }, { backend: 'wasm', totalBytes: WASM_HEAP_MAX_BYTES, source: 'the wasm heap' });
    expect(fits.fits).toBe(true);
    expect(fits.estimate.total).toBeLessThan(WASM_HEAP_MAX_BYTES);
  });
});
