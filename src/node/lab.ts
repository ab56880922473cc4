/**
 * The lab service in Node (the command line, benchmarks, tests): tfjs on wasm (or
 * Dawn's WebGPU when asked), Python in worker threads, runs as folders on disk, model folders read
 * by path.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BackendName } from '../core/backend';
import { describeRead, readProblems, unusableFileError, whereSkipped, type FieldMapping, type ReadResult } from '../core/data/readers';
import { parquetToJsonLines } from '../core/data/records';
import { LabError } from '../core/errors';
import { shippedModel, type ShippedModelName } from '../core/lab/models';
import { LabService, type LabEnv } from '../core/lab/service';
import { loadModelFolder } from '../core/model/checkpoint';
import type { ModelConfig } from '../core/model/config';
import { Transformer } from '../core/model/transformer';
import type { Tokenizer } from '../core/tokenizer/types';
import type { RunStore } from '../core/run/store';
import { selectNodeBackend } from './backend';
import { folderSource } from './files';
import { DiskHubCache } from './hub-cache';
import { HubModel, parseHubRef } from '../core/hub/hub';
import { createCPythonPool, type CPythonPoolOptions } from './cpython';
import { createNodePythonPool, type NodePythonPoolOptions } from './python';
import { DiskRunStore } from './runstore';

/** A shipped model's folder on disk (run from the repository's root). */
export const shippedModelDir = (name?: ShippedModelName): string => join('public', shippedModel(name).folder);
/** The shipped tiny model, the lab's default. */
export const DEFAULT_MODEL_DIR = shippedModelDir();
/** Where the command line keeps its runs. */
export const DEFAULT_RUNS_DIR = 'runs';

export interface NodeLabOptions {
  /** Runs are kept here (default: runs/), or in this store. */
  runsDir?: string;
  store?: RunStore;
  /** The sandbox: Pyodide in worker threads (the default), or CPython subprocesses with `runtime: 'cpython'` (docs/sandbox.md). */
  python?: ({ runtime?: 'pyodide' } & NodePythonPoolOptions) | ({ runtime: 'cpython' } & CPythonPoolOptions);
  /** Fields of a training file named on the command line (--question-field, ...). */
  mapping?: FieldMapping;
  /** Where Hub downloads are kept (default: defaultHubCacheDir(), under the user's cache folder). */
  hubCacheDir?: string;
}

export function nodeLabEnv(options: NodeLabOptions = {}): LabEnv {
  return {
    selectBackend: (order) => selectNodeBackend(order ?? ['wasm', 'cpu']),
    startPython: async () => {
      const { runtime, ...python } = options.python ?? {};
      const pool = runtime === 'cpython' ? await createCPythonPool(python) : await createNodePythonPool(python);
      // Node worker threads always have SharedArrayBuffer, and CPython processes get SIGINT: timeouts interrupt Python.
      return { pool, info: pool.info()!, capabilities: { interrupts: true, crossOriginIsolated: false, online: false } };
    },
    modelFiles: (source, signal) => {
      if (source.kind === 'files') throw new LabError('model', 'picked files are a browser source', { hint: 'give a folder path instead' });
      if (source.kind === 'path') return { files: folderSource(source.path), label: source.path };
      if (source.kind === 'hub') {
        // HF_ENDPOINT names a mirror, as huggingface_hub reads it.
        const ref = parseHubRef(source.repo, { revision: source.revision, baseUrl: source.baseUrl ?? process.env.HF_ENDPOINT });
        // HF_TOKEN gives access to gated and private repositories, as huggingface_hub reads it.
        const hub = new HubModel(ref, { cache: new DiskHubCache(options.hubCacheDir), token: source.token ?? process.env.HF_TOKEN, signal });
        return { files: hub, label: `${ref.repo}@${ref.revision}` };
      }
      const { name } = shippedModel(source.name);
      const dir = shippedModelDir(name);
      return {
        files: folderSource(dir),
        label: name,
        notes: async () => JSON.parse(await readFile(join(dir, 'pretrain.json'), 'utf8')) as Record<string, unknown>,
      };
    },
    openRunStore: async () => options.store ?? new DiskRunStore(options.runsDir ?? DEFAULT_RUNS_DIR),
    readProblemsFile: async (path, maxQuestionTokens) => (await readProblemsFile(path, { maxQuestionLength: maxQuestionTokens, mapping: options.mapping })).problems,
  };
}

/** A lab service for this process, its backend picked (wasm unless `order` says otherwise). */
export async function nodeLab(options: NodeLabOptions & { backend?: BackendName[] } = {}): Promise<LabService> {
  const lab = new LabService(nodeLabEnv(options));
  await lab.init({ order: options.backend });
  return lab;
}

export function parseBackend(value: string | undefined): BackendName[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',') as BackendName[];
  for (const n of names)
    if (!['webgpu', 'wasm', 'cpu', 'webgl'].includes(n)) throw new LabError('cli-args', 'unknown backend', { field: '--backend', expected: 'webgpu, wasm or cpu (comma-separated for a fallback order)', found: n });
  return names;
}

/** The flags that name a file's fields on the command line. */
export const MAPPING_FLAGS = { question: '--question-field', answer: '--answer-field' };

export interface ReadFileOptions {
  /** Longest question in characters (a training run's task.maxQuestionTokens); longer ones are skipped and counted. */
  maxQuestionLength?: number;
  mapping?: FieldMapping;
}

/**
 * Problems of a dataset file in any form and shape of docs/datasets.md. What was read is said on
 * stderr (fields, usable and skipped lines by reason, the first bad lines); a file with no usable
 * line is an error that says why and which flag names the fields.
 */
export async function readProblemsFile(path: string, options: number | ReadFileOptions = {}): Promise<ReadResult> {
  const { maxQuestionLength, mapping } = typeof options === 'number' ? { maxQuestionLength: options, mapping: undefined } : options;
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new LabError('files', `cannot read the problems file: ${(e as Error).message}`, { file: path });
  }
  const text = /\.parquet$/i.test(path) ? await parquetToJsonLines(bytes, path) : bytes.toString('utf8');
  const r = readProblems(text, { file: basename(path), mode: 'lenient', maxQuestionLength, mapping });
  if (r.problems.length === 0) throw unusableFileError(path, r, MAPPING_FLAGS);
  console.error(`read ${path}: ${describeRead(r)}`);
  for (const s of r.skipped.slice(0, 5)) console.error(`  skipped ${whereSkipped({ ...s, file: path })}: ${s.message}`);
  if (r.skipped.length > 5) console.error(`  ... and ${r.skipped.length - 5} more skipped`);
  return r;
}

/** A model folder loaded straight onto the current backend, without a service (benchmarks and scripts measure the parts). */
export async function loadModel(dir = DEFAULT_MODEL_DIR): Promise<{ model: Transformer; tokenizer: Tokenizer; config: ModelConfig }> {
  const folder = await loadModelFolder(folderSource(dir));
  return { model: Transformer.fromWeights(folder.config, folder.weights, dir), tokenizer: folder.tokenizer, config: folder.config };
}
