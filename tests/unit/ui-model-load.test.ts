/**
 * The Model and Train panels' pieces for Hugging Face models: remembered Hub settings, a download in
 * words, the memory budget's rows (against the engine's own estimate), folder names of picked files,
 * and the LoRA card's defaults, module list and adapter size.
 */
import { describe, expect, it } from 'vitest';
import { render } from 'svelte/server';
import LoadStatus from '../../src/app/components/LoadStatus.svelte';
import { budgetRows, describeDownload, describeLimit, folderLabel, formatDecimalBytes, readHubSettings, trainFits, writeHubSettings, type MemoryBudget } from '../../src/app/lib/modelload';
import { adapterParameters, loraOnByDefault, modulesOf, toggleModule, withLoraDefault } from '../../src/app/lib/lora';
import { estimateMemory, loraParameters } from '../../src/core/model/memory';
import { QWEN25_05B } from '../fixtures/hf-models';

const qwen05 = QWEN25_05B;

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

describe('Hub settings', () => {
  it('default to the Hugging Face Hub and come back as they were written', () => {
    const storage = new MemoryStorage();
    expect(readHubSettings(storage)).toEqual({ repo: '', revision: '', baseUrl: 'https://huggingface.co' });
    writeHubSettings(storage, { repo: 'Qwen/Qwen3-0.6B', revision: 'v1', baseUrl: 'https://hf-mirror.com' });
    expect(readHubSettings(storage)).toEqual({ repo: 'Qwen/Qwen3-0.6B', revision: 'v1', baseUrl: 'https://hf-mirror.com' });
  });

  it('fall back to the defaults on a damaged entry, field by field', () => {
    const storage = new MemoryStorage();
    storage.setItem('thor-lab:hub', '{not json');
    expect(readHubSettings(storage).baseUrl).toBe('https://huggingface.co');
    storage.setItem('thor-lab:hub', JSON.stringify({ repo: 'a/b', baseUrl: '  ', revision: 3 }));
    expect(readHubSettings(storage)).toEqual({ repo: 'a/b', revision: '', baseUrl: 'https://huggingface.co' });
    expect(readHubSettings(undefined).repo).toBe('');
  });
});

describe('a download in words', () => {
  it('gives bytes of all files, files whole, the current file, rate and time left', () => {
    const words = describeDownload({ file: 'model.safetensors', fileDone: 400e6, fileTotal: 988e6, done: 411e6, total: 999e6, bytesPerSecond: 25e6, etaSeconds: 23.52, files: 5, filesDone: 4 });
    expect(words).toEqual({
      bytes: '411.0 MB of 999.0 MB',
      files: '4 of 5 files (now model.safetensors: 400.0 MB of 988.0 MB)',
      rate: '25.0 MB/s',
      eta: '24 s left',
    });
  });

  it('says done at the end, and — before a rate is known', () => {
    expect(describeDownload({ file: 'a', fileDone: 10, fileTotal: 10, done: 10, total: 10, bytesPerSecond: 5, etaSeconds: 0, files: 1, filesDone: 1 }).eta).toBe('done');
    const start = describeDownload({ file: 'a', fileDone: 0, fileTotal: undefined, done: 0, total: 2000, bytesPerSecond: 0, etaSeconds: undefined, files: 2, filesDone: 0 });
    expect(start.rate).toBe('—');
    expect(start.eta).toBe('time left —');
    expect(start.files).toBe('0 of 2 files (now a: 0 B)');
    expect(formatDecimalBytes(1_234_567_890)).toBe('1.23 GB');
  });
});

describe('the memory budget as the panel lists it', () => {
  const use = { mode: 'infer' as const, batch: 8, context: 384 };
  const trainUse = { mode: 'train' as const, batch: 64, updateBatch: 2, context: 384, lora: { rank: 8, targetModules: ['q_proj', 'v_proj'] as const } };
  const budget = (totalBytes: number): MemoryBudget => ({
    type: 'memory-budget',
    infer: estimateMemory(qwen05, use, 'wasm'),
    train: estimateMemory(qwen05, trainUse, 'wasm'),
    trainUse: 'LoRA rank 8',
    limits: { backend: 'wasm', totalBytes, source: 'the wasm heap' },
    fits: estimateMemory(qwen05, use, 'wasm').total <= totalBytes,
  });

  it('lists the estimate’s parts with the engine’s numbers, and the training state beside them', () => {
    const b = budget(4_294_901_760);
    const rows = Object.fromEntries(budgetRows(b).map((r) => [r.label, r.bytes]));
    // 494,032,768 parameters × 4 bytes (Qwen2.5-0.5B, tied head).
    expect(b.infer.parameters).toBe(494_032_768);
    expect(rows['weights (float32)']).toBe(494_032_768 * 4);
    // K and V: 24 layers × 2 × 2 kv heads × 64 × 384 positions × 8 rows × 4 bytes.
    expect(rows['KV cache (answering)']).toBe(24 * 2 * 2 * 64 * 384 * 8 * 4);
    expect(rows['total to answer']).toBe(b.infer.total);
    expect(rows['total to train']).toBe(b.train.total);
    expect(rows['training state (LoRA gradients, AdamW moments, the update’s activations)']).toBe(b.train.gradients + b.train.optimizer + b.train.activations + b.train.logits);
    // The adapter's gradients and moments: 3 × 4 bytes per adapter parameter.
    expect(b.train.gradients + b.train.optimizer).toBe(12 * loraParameters(qwen05, 8, ['q_proj', 'v_proj']));
    expect(describeLimit(b)).toBe('4.29 GB in all (the wasm heap)');
  });

  it('says when training at the defaults would not fit though answering does', () => {
    const b = budget(4_294_901_760);
    expect(b.fits).toBe(true);
    expect(trainFits(b)).toBe(b.train.total <= 4_294_901_760);
    const tight = budget(b.infer.total + 1);
    expect(tight.fits).toBe(true);
    expect(trainFits(tight)).toBe(false);
  });
});

describe('the load status', () => {
  const text = (html: string) => html.replace(/<!--.*?-->/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
  const infer = estimateMemory(qwen05, { mode: 'infer', batch: 8, context: 384 }, 'wasm');
  const train = estimateMemory(qwen05, { mode: 'train', batch: 64, updateBatch: 2, context: 384, lora: { rank: 8, targetModules: ['q_proj', 'v_proj'] } }, 'wasm');

  it('shows the budget against the limit and the download, then the refusal', () => {
    const budget: MemoryBudget = { type: 'memory-budget', infer, train, trainUse: 'LoRA rank 8 on q_proj, v_proj', limits: { backend: 'wasm', totalBytes: 1e9, source: 'a test limit' }, fits: false };
    const download = { file: 'model.safetensors', fileDone: 5e5, fileTotal: 1e6, done: 6e5, total: 1.1e6, bytesPerSecond: 1e5, etaSeconds: 5, files: 3, filesDone: 2 };
    const shown = text(render(LoadStatus, { props: { budget, download, active: true, error: 'config.json: the model does not fit', testPrefix: 'hub' } }).body);
    expect(shown).toContain('does not fit limit: 1.00 GB in all (a test limit)');
    expect(shown).toContain(`weights (float32) ${formatDecimalBytes(494_032_768 * 4)}`);
    expect(shown).toContain('54.5%: 600.0 kB of 1.1 MB 2 of 3 files (now model.safetensors: 500.0 kB of 1.0 MB) 100.0 kB/s 5 s left');
    expect(shown).toContain('which would not fit: lower them in the Train panel');
    expect(shown).toContain('config.json: the model does not fit');
  });

  it('says when nothing had to be downloaded', () => {
    const budget: MemoryBudget = { type: 'memory-budget', infer, train, trainUse: 'LoRA', limits: { backend: 'wasm', totalBytes: 4_294_901_760, source: 'the wasm heap' }, fits: true };
    const shown = text(render(LoadStatus, { props: { budget, download: null, active: false, fromCache: true, error: null, testPrefix: 'hub' } }).body);
    expect(shown).toContain("Nothing downloaded: every file was already in this browser's storage.");
    expect(shown).not.toContain('Reading the weights');
  });
});

describe('folder names', () => {
  it('is the common top folder of the paths, else the fallback', () => {
    expect(folderLabel(['qwen/config.json', 'qwen/model.safetensors', 'qwen/sub/x.json'])).toBe('qwen');
    expect(folderLabel(['config.json', 'model.safetensors'])).toBe('picked files');
    expect(folderLabel(['a/config.json', 'b/model.safetensors'], 'dropped')).toBe('dropped');
  });
});

describe('the LoRA card', () => {
  it('is on by default for a Hugging Face model and off for a character model', () => {
    expect(loraOnByDefault({ tokenizer: 'hf' })).toBe(true);
    expect(loraOnByDefault({ tokenizer: 'char' })).toBe(false);
    expect(loraOnByDefault(null)).toBe(false);
    expect(withLoraDefault({ 'lora.enabled': false, 'lora.rank': '8' }, { tokenizer: 'hf' })).toEqual({ 'lora.enabled': true, 'lora.rank': '8' });
  });

  it('keeps the modules in the run config’s order as they are switched', () => {
    expect(modulesOf('v_proj, q_proj, nonsense')).toEqual(['q_proj', 'v_proj']);
    expect(toggleModule('q_proj, v_proj', 'down_proj', true)).toBe('q_proj, v_proj, down_proj');
    expect(toggleModule('q_proj, v_proj, down_proj', 'q_proj', false)).toBe('v_proj, down_proj');
    expect(toggleModule('', 'k_proj', true)).toBe('k_proj');
  });

  it('counts the adapter’s parameters as the engine does', () => {
    const all = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
    // q_proj and v_proj at rank 8: 24 layers × 8 × ((896 + 896) + (896 + 128)) = 540,672.
    expect(adapterParameters(qwen05, 8, ['q_proj', 'v_proj'])).toBe(540_672);
    expect(adapterParameters(qwen05, 16, all)).toBe(loraParameters(qwen05, 16, all));
  });
});
