/**
 * The problems the lab trains and evaluates on: a synthetic task set (train and test splits that
 * never overlap) and any uploaded benchmark files, each assigned to one split. Training reads
 * `train`, evaluation reads `test`. Arrays are stored raw (not deeply reactive): they can be large.
 */
import type { Problem } from '../../core/data/types';
import type { SkippedLine } from '../../core/data/readers';
import type { Split, Task, TaskKind } from '../../core/data/tasks';

export interface SyntheticSettings {
  kinds: TaskKind[];
  difficulties: number[];
  trainSize: number;
  testSize: number;
  seed: number;
  testFraction: number;
}

export interface SyntheticSet {
  settings: SyntheticSettings;
  train: Task[];
  test: Task[];
}

export interface UploadedFile {
  file: string;
  problems: Problem[];
  skipped: SkippedLine[];
  /** Which split the file's problems join. */
  split: Split;
}

class Datasets {
  synthetic = $state.raw<SyntheticSet | null>(null);
  uploads = $state.raw<UploadedFile[]>([]);

  train = $derived<Problem[]>([...(this.synthetic?.train ?? []), ...this.uploads.filter((u) => u.split === 'train').flatMap((u) => u.problems)]);
  test = $derived<Problem[]>([...(this.synthetic?.test ?? []), ...this.uploads.filter((u) => u.split === 'test').flatMap((u) => u.problems)]);

  /** Adds a file, replacing an earlier upload of the same name. */
  addUpload(upload: UploadedFile): void {
    this.uploads = [...this.uploads.filter((u) => u.file !== upload.file), upload];
  }

  setSplit(file: string, split: Split): void {
    this.uploads = this.uploads.map((u) => (u.file === file ? { ...u, split } : u));
  }

  removeUpload(file: string): void {
    this.uploads = this.uploads.filter((u) => u.file !== file);
  }
}

export const datasets = new Datasets();
