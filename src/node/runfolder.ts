/**
 * A run folder on disk, written as the run goes (the layout of src/core/run/runfile.ts, so a run
 * from the command line imports into the browser lab): run.json, config.json, metrics.jsonl,
 * evals.jsonl, rollouts/step-NNNNNN.jsonl, checkpoint/, report.md with its SVG charts.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RUN_FORMAT, RUN_FORMAT_VERSION } from '../core/run/runfile';
import { renderReport, trainingCharts } from '../core/run/report';
import type { TrajectoryRecord } from '../core/rl/types';
import { saveModelFolder, type ModelFolder } from '../core/model/checkpoint';
import { folderSink } from './files';

export class RunFolder {
  readonly metrics: Record<string, unknown>[] = [];
  readonly evals: Record<string, unknown>[] = [];

  private constructor(
    readonly dir: string,
    readonly id: string,
    readonly name: string,
    readonly config: unknown,
  ) {}

  static async create(dir: string, name: string, config: unknown): Promise<RunFolder> {
    await mkdir(join(dir, 'rollouts'), { recursive: true });
    const id = name;
    const folder = new RunFolder(dir, id, name, config);
    const manifest = { format: RUN_FORMAT, version: RUN_FORMAT_VERSION, id, name, createdAt: new Date().toISOString() };
    await writeFile(join(dir, 'run.json'), JSON.stringify(manifest, null, 2) + '\n');
    await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    await writeFile(join(dir, 'metrics.jsonl'), '');
    return folder;
  }

  async appendMetrics(row: Record<string, unknown>): Promise<void> {
    this.metrics.push(row);
    await appendFile(join(this.dir, 'metrics.jsonl'), JSON.stringify(row) + '\n');
  }

  async appendEval(row: Record<string, unknown>): Promise<void> {
    this.evals.push(row);
    await appendFile(join(this.dir, 'evals.jsonl'), JSON.stringify(row) + '\n');
  }

  async writeRollouts(step: number, records: readonly TrajectoryRecord[]): Promise<void> {
    const body = records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '');
    await writeFile(join(this.dir, 'rollouts', `step-${String(step).padStart(6, '0')}.jsonl`), body);
  }

  async writeCheckpoint(folder: ModelFolder): Promise<string[]> {
    return saveModelFolder(folderSink(join(this.dir, 'checkpoint')), folder);
  }

  /** Writes report.md and its charts; returns the report's path. */
  async writeReport(title: string): Promise<string> {
    const charts = trainingCharts(this.metrics, this.evals);
    for (const [file, svg] of charts) await writeFile(join(this.dir, file), svg);
    const path = join(this.dir, 'report.md');
    await writeFile(path, renderReport(title, this.config, this.metrics, this.evals, charts.keys()));
    return path;
  }
}
