/**
 * The lab service in Node (the command line, benchmarks, tests): tfjs on wasm (or
 * Dawn's WebGPU when asked), Python in worker threads, runs as folders on disk, model folders read
 * by path.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BackendName } from '../core/backend';
import { readProblemsJsonl, type SkippedLine } from '../core/data/readers';
import type { Problem } from '../core/data/types';
import { LabError } from '../core/errors';
import { LabService, type LabEnv } from '../core/lab/service';
import { loadModelFolder } from '../core/model/checkpoint';
import type { ModelConfig } from '../core/model/config';
import { Transformer } from '../core/model/transformer';
import type { Tokenizer } from '../core/tokenizer/types';
import type { RunStore } from '../core/run/store';
import { selectNodeBackend } from './backend';
import { folderSource } from './files';
import { createNodePythonPool, type NodePythonPoolOptions } from './python';
import { DiskRunStore } from './runstore';

/** The shipped tiny model, the lab's default. */
export const DEFAULT_MODEL_DIR = 'public/models/thor-tiny';
/** Where the command line keeps its runs. */
export const DEFAULT_RUNS_DIR = 'runs';

export interface NodeLabOptions {
  /** Runs are kept here (default: runs/), or in this store. */
  runsDir?: string;
  store?: RunStore;
  python?: NodePythonPoolOptions;
}

export function nodeLabEnv(options: NodeLabOptions = {}): LabEnv {
  return {
    selectBackend: (order) => selectNodeBackend(order ?? ['wasm', 'cpu']),
    startPython: async () => {
      const pool = await createNodePythonPool(options.python);
      // Node worker threads always have SharedArrayBuffer: timeouts interrupt Python.
      return { pool, info: pool.info()!, capabilities: { interrupts: true, crossOriginIsolated: false, online: false } };
    },
    modelFiles: (source) => {
      if (source.kind === 'files') throw new LabError('model', 'picked files are a browser source', { hint: 'give a folder path instead' });
      const dir = source.kind === 'shipped' ? DEFAULT_MODEL_DIR : source.path;
      return {
        files: folderSource(dir),
        label: source.kind === 'shipped' ? 'thor-tiny' : dir,
        notes: source.kind === 'shipped' ? async () => JSON.parse(await readFile(join(DEFAULT_MODEL_DIR, 'pretrain.json'), 'utf8')) as Record<string, unknown> : undefined,
      };
    },
    openRunStore: async () => options.store ?? new DiskRunStore(options.runsDir ?? DEFAULT_RUNS_DIR),
    readProblemsFile: async (path, maxQuestionTokens) => (await readProblemsFile(path, maxQuestionTokens)).problems,
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

/** Problems of a JSON-lines file (GSM8K / MATH style); bad lines are skipped, named on stderr and counted. */
export async function readProblemsFile(path: string, maxQuestionLength?: number): Promise<{ problems: Problem[]; skipped: SkippedLine[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new LabError('files', `cannot read the problems file: ${(e as Error).message}`, { file: path });
  }
  const r = readProblemsJsonl(text, { file: basename(path), mode: 'lenient', maxQuestionLength });
  for (const s of r.skipped.slice(0, 5)) console.error(`skipped ${path} line ${s.line}: ${s.reason}${s.message ? ` (${s.message})` : ''}`);
  if (r.skipped.length > 5) console.error(`... and ${r.skipped.length - 5} more skipped lines`);
  if (r.problems.length === 0) throw new LabError('files', 'the file has no usable question', { file: path, expected: 'JSON lines with a question and an answer', found: r.skipped.length ? `${r.skipped.length} skipped line(s), the first: ${r.skipped[0].reason}` : 'no lines' });
  return { problems: r.problems, skipped: r.skipped };
}

/** A model folder loaded straight onto the current backend, without a service (benchmarks and scripts measure the parts). */
export async function loadModel(dir = DEFAULT_MODEL_DIR): Promise<{ model: Transformer; tokenizer: Tokenizer; config: ModelConfig }> {
  const folder = await loadModelFolder(folderSource(dir));
  return { model: Transformer.fromWeights(folder.config, folder.weights, dir), tokenizer: folder.tokenizer, config: folder.config };
}
