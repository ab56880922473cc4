/**
 * The public test sets in data/benchmarks/, served by the app itself as static files (fetched only
 * when chosen), read with the same JSON-lines reader as an upload.
 */
import { LabError, readProblemsJsonl, type Problem, type SkippedLine } from '../../core/lab/index';
import gsm8k from '../../../data/benchmarks/gsm8k-test.jsonl?url';
import math500 from '../../../data/benchmarks/math500-test.jsonl?url';
import aime24 from '../../../data/benchmarks/aime24.jsonl?url';
import aime25 from '../../../data/benchmarks/aime25.jsonl?url';
import amc23 from '../../../data/benchmarks/amc23.jsonl?url';

export interface Benchmark {
  id: string;
  label: string;
  file: string;
  url: string;
}

export const BENCHMARKS: Benchmark[] = [
  { id: 'gsm8k', label: 'GSM8K test (1,319 grade-school word problems)', file: 'gsm8k-test.jsonl', url: gsm8k },
  { id: 'math500', label: 'MATH500 (500 competition problems)', file: 'math500-test.jsonl', url: math500 },
  { id: 'aime24', label: 'AIME 2024 (30)', file: 'aime24.jsonl', url: aime24 },
  { id: 'aime25', label: 'AIME 2025 (30)', file: 'aime25.jsonl', url: aime25 },
  { id: 'amc23', label: 'AMC 2023 (40)', file: 'amc23.jsonl', url: amc23 },
];

const cache = new Map<string, Promise<{ problems: Problem[]; skipped: SkippedLine[] }>>();

export function loadBenchmark(b: Benchmark): Promise<{ problems: Problem[]; skipped: SkippedLine[] }> {
  let loaded = cache.get(b.id);
  if (!loaded) {
    loaded = fetch(b.url)
      .then((r) => {
        if (!r.ok) throw new LabError('benchmark', `could not fetch the file (HTTP ${r.status})`, { file: b.file, hint: 'Reload the page' });
        return r.text();
      })
      .then((text) => readProblemsJsonl(text, { file: b.file, mode: 'lenient' }));
    loaded.catch(() => cache.delete(b.id));
    cache.set(b.id, loaded);
  }
  return loaded;
}
