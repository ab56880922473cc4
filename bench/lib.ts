/** Shared helpers for benchmarks: machine description, result file, summary table. */
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchResult {
  name: string;
  date: string;
  commit: string;
  machine: Record<string, string | number | undefined>;
  summary: Record<string, number>;
  details: unknown[];
}

export function machineInfo(extra: Record<string, string | number | undefined> = {}): BenchResult['machine'] {
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    ...extra,
  };
}

function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes bench/results/NAME.json and prints the summary as a table. Returns the path. */
export function writeResult(
  name: string,
  summary: Record<string, number>,
  details: unknown[],
  machine: BenchResult['machine'] = machineInfo(),
): string {
  const result: BenchResult = { name, date: new Date().toISOString(), commit: gitCommit(), machine, summary, details };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, JSON.stringify(result, null, 2) + '\n');
  printTable(name, summary);
  console.log(`wrote ${path}`);
  return path;
}

export function printTable(title: string, summary: Record<string, number>): void {
  const width = Math.max(...Object.keys(summary).map((k) => k.length), 6);
  console.log(`\n${title}`);
  for (const [k, v] of Object.entries(summary)) {
    const shown = Number.isInteger(v) ? String(v) : v.toPrecision(4);
    console.log(`  ${k.padEnd(width)}  ${shown}`);
  }
}

/** Median and percentile of a list of numbers. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx];
}
