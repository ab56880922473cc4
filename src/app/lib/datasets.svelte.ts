/**
 * The problems the lab trains and evaluates on: a synthetic task set (train and test splits that
 * never overlap) and any uploaded benchmark files, each assigned to one split. Training reads
 * `train`, evaluation reads `test`. Arrays are stored raw (not deeply reactive): they can be large.
 */
import { defaultRunConfig, generateTasks, type Problem, type SkippedLine, type Split, type Task, type TaskKind } from '../../core/lab/index';

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

/** The run config's task defaults (the training core's numbers). */
export function defaultSyntheticSettings(): SyntheticSettings {
  const { seed, task } = defaultRunConfig();
  return { kinds: [...task.kinds], difficulties: [...task.difficulties], trainSize: task.trainSize, testSize: task.testSize, seed, testFraction: task.testFraction };
}

class Datasets {
  synthetic = $state.raw<SyntheticSet | null>(null);
  uploads = $state.raw<UploadedFile[]>([]);

  train = $derived<Problem[]>([...(this.synthetic?.train ?? []), ...this.uploads.filter((u) => u.split === 'train').flatMap((u) => u.problems)]);
  test = $derived<Problem[]>([...(this.synthetic?.test ?? []), ...this.uploads.filter((u) => u.split === 'test').flatMap((u) => u.problems)]);

  /** Generates both splits of a synthetic task set (throws LabError for settings that cannot be met). */
  generateSynthetic(settings: SyntheticSettings): void {
    const common = { seed: settings.seed, kinds: settings.kinds, difficulties: settings.difficulties, testFraction: settings.testFraction };
    const train = generateTasks({ ...common, count: settings.trainSize, split: 'train' });
    const test = generateTasks({ ...common, count: settings.testSize, split: 'test' });
    this.synthetic = { settings, train, test };
  }

  /** The default task set, so training and evaluation have problems before anyone opens the Data panel. */
  ensureDefault(): void {
    if (!this.synthetic) this.generateSynthetic(defaultSyntheticSettings());
  }

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
