/**
 * Model folders in the Hugging Face layout: config.json, model.safetensors (or shards
 * model-0000i-of-0000N.safetensors listed in model.safetensors.index.json) and the tokenizer's files.
 * A folder written here loads in transformers; an HF folder of a Llama / Qwen2 model loads here.
 */
import { LabError } from '../errors';
import { bytesToText, textToBytes, type FileSink, type FileSource } from '../files';
import { loadTokenizer } from '../tokenizer/index';
import type { Tokenizer } from '../tokenizer/types';
import { configToJSON, parameterShapes, parseModelConfig, type ModelConfig } from './config';
import { elementCount, parseSafetensorsHeader, readSafetensorsHeader, safetensorsHeaderLength, toFloat32, writeSafetensors, type SafetensorsHeader } from './safetensors';
import type { NamedTensor, WeightMap } from './weights';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

export interface ModelFolder {
  config: ModelConfig;
  /** Exactly the parameters of parameterShapes(config): no lm_head.weight when embeddings are tied. */
  weights: WeightMap;
  tokenizer: Tokenizer;
}

/** Non-parameter buffers some HF checkpoints carry; skipped on load. */
const IGNORED_SUFFIXES = ['.rotary_emb.inv_freq'];

const where = (src: FileSource, name: string) => `${src.label}/${name}`;

export async function loadModelFolder(src: FileSource): Promise<ModelFolder> {
  const config = await loadConfig(src);
  const weights = await loadWeights(src, config);
  const tokenizer = await loadTokenizer(src);
  checkTokenizer(config, tokenizer, src.label);
  return { config, weights, tokenizer };
}

export async function loadConfig(src: FileSource): Promise<ModelConfig> {
  const names = new Set(await src.list());
  const file = where(src, CONFIG_FILE);
  if (!names.has(CONFIG_FILE)) throw new LabError('checkpoint', 'the model folder has no config.json', { file: src.label, hint: 'Pick the whole model folder (config.json, the .safetensors files and the tokenizer files)' });
  let raw: unknown;
  try {
    raw = JSON.parse(bytesToText(await src.read(CONFIG_FILE)));
  } catch (e) {
    throw new LabError('checkpoint', `not valid JSON: ${(e as Error).message}`, { file, hint: 'The file is damaged: fetch it again' });
  }
  return parseModelConfig(raw, file);
}

/**
 * Reads the weights (one file or shards), keeps the parameters the config implies and checks
 * each one's shape. With tied embeddings an lm_head.weight in the file is ignored, as transformers does.
 */
export async function loadWeights(src: FileSource, config: ModelConfig): Promise<WeightMap> {
  const weights: WeightMap = new Map();
  await streamWeights(src, config, (name, t) => void weights.set(name, t));
  return weights;
}

/**
 * The checks of loadWeights, handing each parameter to `visit` as soon as it is converted to float32,
 * so a caller that puts it on the device and drops it holds one tensor at a time. A source with
 * readRange is read tensor by tensor (the header, then each tensor's bytes); another, shard by shard.
 * Every shard's header is checked before any tensor is converted.
 */
export async function streamWeights(src: FileSource, config: ModelConfig, visit: (name: string, tensor: NamedTensor) => void | Promise<void>): Promise<void> {
  const names = new Set(await src.list());
  const shards = await shardFiles(src, names);
  const expected = parameterShapes(config);
  const foundIn = new Map<string, string>();
  const ranged = typeof src.readRange === 'function' && typeof src.size === 'function';
  const headers: { shard: string; header: SafetensorsHeader; bytes?: Uint8Array }[] = [];
  for (const shard of shards) {
    const file = where(src, shard);
    let header: SafetensorsHeader;
    let bytes: Uint8Array | undefined;
    if (ranged) {
      const size = await src.size!(shard);
      const headerLength = safetensorsHeaderLength(await src.readRange!(shard, 0, Math.min(8, size)), size, file);
      header = parseSafetensorsHeader(await src.readRange!(shard, 0, 8 + headerLength), size, file);
    } else {
      bytes = await src.read(shard);
      header = readSafetensorsHeader(bytes, file);
    }
    const unexpected: string[] = [];
    for (const e of header.entries) {
      const previous = foundIn.get(e.name);
      if (previous) throw new LabError('checkpoint', `tensor "${e.name}" appears in two files`, { file, field: e.name, found: `also in ${previous}`, hint: 'Remove the stale file from the folder' });
      foundIn.set(e.name, file);
      const shape = expected.get(e.name);
      if (shape === undefined) {
        if (!isIgnored(e.name, config)) unexpected.push(e.name);
        continue;
      }
      if (shape.length !== e.shape.length || shape.some((d, i) => d !== e.shape[i])) {
        throw new LabError('checkpoint', `tensor "${e.name}" has the wrong shape for this config`, {
          file,
          field: e.name,
          expected: `[${shape.join(', ')}] from ${CONFIG_FILE}`,
          found: `[${e.shape.join(', ')}]`,
          hint: `The weights and ${CONFIG_FILE} do not belong together: use the config.json saved with these weights`,
        });
      }
    }
    if (unexpected.length > 0) {
      throw new LabError('checkpoint', `${unexpected.length} tensor(s) that a ${config.model_type} model with this config does not have: ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', ...' : ''}`, {
        file,
        field: unexpected[0],
        hint: 'The checkpoint is another architecture (the lab runs Llama / Qwen2 decoders), or config.json disagrees with it (num_hidden_layers, attention_bias, tie_word_embeddings)',
      });
    }
    // A whole shard read without ranges is kept only when there is one (no shard is held twice).
    headers.push({ shard, header, bytes: shards.length === 1 ? bytes : undefined });
  }
  const missing = [...expected.keys()].filter((n) => !foundIn.has(n));
  if (missing.length > 0) {
    const lmHeadOnly = missing.length === 1 && missing[0] === 'lm_head.weight';
    throw new LabError('checkpoint', `${missing.length} parameter(s) missing from the checkpoint: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`, {
      file: src.label,
      field: missing[0],
      hint: lmHeadOnly
        ? `The model shares its embedding with the LM head: set "tie_word_embeddings": true in ${CONFIG_FILE}`
        : `The checkpoint is incomplete (a missing shard?) or ${CONFIG_FILE} describes a larger model`,
    });
  }
  for (const { shard, header, bytes: held } of headers) {
    const file = where(src, shard);
    const bytes = ranged ? undefined : (held ?? (await src.read(shard)));
    for (const e of header.entries) {
      if (!expected.has(e.name)) continue;
      const raw = bytes ? bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end) : await src.readRange!(shard, header.dataStart + e.begin, header.dataStart + e.end);
      await visit(e.name, { shape: e.shape, data: toFloat32(raw, e, file) });
    }
  }
}

/** The weight files to read: model.safetensors, or the shards the index names (transformers' order of preference). */
async function shardFiles(src: FileSource, names: Set<string>): Promise<string[]> {
  if (names.has(WEIGHTS_FILE)) return [WEIGHTS_FILE];
  if (names.has(WEIGHTS_INDEX_FILE)) {
    const file = where(src, WEIGHTS_INDEX_FILE);
    let index: { weight_map?: unknown };
    try {
      index = JSON.parse(bytesToText(await src.read(WEIGHTS_INDEX_FILE)));
    } catch (e) {
      throw new LabError('checkpoint', `not valid JSON: ${(e as Error).message}`, { file, hint: 'The file is damaged: fetch it again' });
    }
    const map = index?.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new LabError('checkpoint', 'the index has no weight_map', { file, field: 'weight_map', expected: '{tensor name: shard file}', found: JSON.stringify(map) });
    const shards = [...new Set(Object.values(map as Record<string, unknown>).map(String))].sort();
    const absent = shards.filter((s) => !names.has(s));
    if (absent.length > 0) throw new LabError('checkpoint', `shard file(s) named in the index are missing: ${absent.join(', ')}`, { file, field: 'weight_map', hint: 'Copy every .safetensors shard into the folder' });
    return shards;
  }
  const pickle = [...names].find((n) => n.endsWith('.bin') || n.endsWith('.pt') || n.endsWith('.pth'));
  throw new LabError('checkpoint', 'the model folder has no safetensors weights', {
    file: src.label,
    expected: `${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE} with its shards`,
    found: pickle ? `${pickle} (a PyTorch pickle)` : [...names].join(', ') || 'an empty folder',
    hint: pickle ? 'Convert it: load it in transformers and save_pretrained(dir, safe_serialization=True)' : 'Pick the whole model folder',
  });
}

function isIgnored(name: string, config: ModelConfig): boolean {
  return IGNORED_SUFFIXES.some((s) => name.endsWith(s)) || (config.tie_word_embeddings && name === 'lm_head.weight');
}

/** The model's vocab_size must cover every id the tokenizer can produce (it may be larger: padded vocabularies). */
export function checkTokenizer(config: ModelConfig, tokenizer: Tokenizer, label = 'model folder'): void {
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new LabError('checkpoint', `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocab_size}`, {
      file: `${label}/${CONFIG_FILE}`,
      field: 'vocab_size',
      expected: `at least ${tokenizer.vocabSize}`,
      found: String(config.vocab_size),
      hint: 'The tokenizer belongs to another model: use the tokenizer files saved with these weights',
    });
  }
}

/** Checks a weight map against a config: every parameter present with its shape, nothing else (a tied lm_head is dropped). */
export function checkWeights(config: ModelConfig, weights: WeightMap, label = 'weights'): WeightMap {
  const expected = parameterShapes(config);
  const out: WeightMap = new Map();
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (!t) throw new LabError('checkpoint', `parameter "${name}" is missing`, { file: label, field: name, expected: `[${shape.join(', ')}]`, found: 'nothing' });
    if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]) || t.data.length !== elementCount(shape)) {
      throw new LabError('checkpoint', `parameter "${name}" has the wrong shape for this config`, { file: label, field: name, expected: `[${shape.join(', ')}]`, found: `[${t.shape.join(', ')}] holding ${t.data.length} values` });
    }
    out.set(name, t);
  }
  const extra = [...weights.keys()].filter((n) => !expected.has(n) && !isIgnored(n, config));
  if (extra.length > 0) throw new LabError('checkpoint', `parameter(s) this config does not have: ${extra.slice(0, 5).join(', ')}`, { file: label, field: extra[0], hint: 'The weights belong to another config' });
  return out;
}

export interface SaveOptions {
  /** Split the weights into shards of at most about this many bytes (one tensor is never split). Default: one file. */
  shardBytes?: number;
  /** Extra safetensors __metadata__ (format: "pt" is always written: transformers requires it). */
  metadata?: Record<string, string>;
}

/** Writes config.json, the weights (one file or shards + index) and the tokenizer files. Returns the file names written. */
export async function saveModelFolder(sink: FileSink, folder: ModelFolder, options: SaveOptions = {}): Promise<string[]> {
  checkTokenizer(folder.config, folder.tokenizer);
  const weights = checkWeights(folder.config, folder.weights);
  const written: string[] = [];
  const put = async (name: string, bytes: Uint8Array) => {
    await sink.write(name, bytes);
    written.push(name);
  };
  await put(CONFIG_FILE, textToBytes(JSON.stringify(configToJSON(folder.config), null, 2) + '\n'));

  const metadata = { format: 'pt', ...options.metadata };
  const shards = splitIntoShards(weights, options.shardBytes ?? Infinity);
  if (shards.length === 1) {
    await put(WEIGHTS_FILE, writeSafetensors(shards[0], metadata));
  } else {
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (let i = 0; i < shards.length; i++) {
      const name = shardName(i, shards.length);
      for (const [tensor, t] of shards[i]) {
        weightMap[tensor] = name;
        totalSize += t.data.byteLength;
      }
      await put(name, writeSafetensors(shards[i], metadata));
    }
    await put(WEIGHTS_INDEX_FILE, textToBytes(JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n'));
  }
  for (const [name, text] of Object.entries(folder.tokenizer.toFiles())) await put(name, textToBytes(text));
  return written;
}

/** transformers' shard naming: model-00001-of-00003.safetensors. */
export function shardName(i: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(count)}.safetensors`;
}

function splitIntoShards(weights: WeightMap, maxBytes: number): WeightMap[] {
  const shards: WeightMap[] = [new Map()];
  let size = 0;
  for (const [name, t] of weights) {
    if (size > 0 && size + t.data.byteLength > maxBytes) {
      shards.push(new Map());
      size = 0;
    }
    shards[shards.length - 1].set(name, t);
    size += t.data.byteLength;
  }
  return shards;
}
