/**
 * What the command line, benchmarks and server share in Node: a model folder loaded onto the chosen
 * tfjs backend, the sandbox pool, and the problems a run config asks for.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { LabError } from '../core/errors';
import { loadModelFolder } from '../core/model/checkpoint';
import { Transformer } from '../core/model/transformer';
import type { Tokenizer } from '../core/tokenizer/types';
import type { ModelConfig } from '../core/model/config';
import type { BackendInfo, BackendName } from '../core/backend';
import type { Problem } from '../core/data/types';
import { generateTasks } from '../core/data/tasks';
import { readProblemsJsonl } from '../core/data/readers';
import type { RunConfig } from '../core/run/config';
import { selectNodeBackend } from './backend';
import { folderSource } from './files';

/** The shipped tiny model, the lab's default. */
export const DEFAULT_MODEL_DIR = 'public/models/thor-tiny';

export interface LoadedModel {
  model: Transformer;
  tokenizer: Tokenizer;
  config: ModelConfig;
  dir: string;
}

export async function loadModel(dir = DEFAULT_MODEL_DIR): Promise<LoadedModel> {
  const folder = await loadModelFolder(folderSource(dir));
  const model = Transformer.create(folder.config, { seed: 0 });
  model.loadWeights(folder.weights, dir);
  return { model, tokenizer: folder.tokenizer, config: folder.config, dir };
}

export function parseBackend(value: string | undefined): BackendName[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',') as BackendName[];
  for (const n of names)
    if (!['webgpu', 'wasm', 'cpu', 'webgl'].includes(n)) throw new LabError('cli-args', 'unknown backend', { field: '--backend', expected: 'webgpu, wasm or cpu (comma-separated for a fallback order)', found: n });
  return names;
}

/** wasm by default in Node: on a machine without a GPU, WebGPU runs on SwiftShader, far slower. */
export async function nodeBackend(order: BackendName[] = ['wasm', 'cpu']): Promise<BackendInfo> {
  return selectNodeBackend(order);
}

/** Train and test problems of a run: synthetic splits, or a JSON-lines file (its own test set is the synthetic one). */
export async function loadProblems(c: RunConfig): Promise<{ train: Problem[]; test: Problem[]; skipped: number }> {
  const test = generateTasks({ seed: c.seed, count: c.task.testSize, split: 'test', kinds: c.task.kinds, difficulties: c.task.difficulties, testFraction: c.task.testFraction });
  if (c.task.source === 'synthetic') {
    const train = generateTasks({ seed: c.seed, count: c.task.trainSize, split: 'train', kinds: c.task.kinds, difficulties: c.task.difficulties, testFraction: c.task.testFraction });
    return { train, test, skipped: 0 };
  }
  if (!c.task.file) throw new LabError('BAD_RUN_CONFIG', 'task.source is "file" but no file is given', { field: 'task.file', expected: 'a JSON-lines path', found: 'nothing' });
  const read = await readProblemsFile(c.task.file, c.task.maxQuestionTokens);
  return { train: read.problems.slice(0, c.task.trainSize), test, skipped: read.skipped };
}

export async function readProblemsFile(path: string, maxQuestionLength?: number): Promise<{ problems: Problem[]; skipped: number }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new LabError('files', `cannot read the problems file: ${(e as Error).message}`, { file: path });
  }
  const r = readProblemsJsonl(text, { file: basename(path), mode: 'lenient', maxQuestionLength });
  for (const s of r.skipped.slice(0, 5)) console.error(`skipped ${path} line ${s.line}: ${s.reason}${s.message ? ` (${s.message})` : ''}`);
  if (r.skipped.length > 5) console.error(`... and ${r.skipped.length - 5} more skipped lines`);
  return { problems: r.problems, skipped: r.skipped.length };
}
