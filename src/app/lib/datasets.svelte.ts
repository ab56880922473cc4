/**
 * The problems the lab trains and evaluates on: a synthetic task set (train and test splits that
 * never overlap) and any uploaded benchmark files, each assigned to one split. Training reads
 * `train`, evaluation reads `test`. Arrays are stored raw (not deeply reactive): they can be large.
 */
import {
  defaultRunConfig,
  generateTasks,
  readDemonstrationsJsonl,
  readProblems,
  unusableFileError,
  type Demonstration,
  type FieldMapping,
  type MappingControls,
  type Problem,
  type ReadResult,
  type SkippedLine,
  type Split,
  type Task,
  type TaskKind,
} from '../../core/lab/index';

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
  /** The file's text, kept so that it can be read again with other fields. */
  content: string;
  /** Fields the user named (empty: all detected). */
  mapping: FieldMapping;
  /** What reading found: the file's form, its records, the fields used and the fields it has, skips by reason. */
  read: Omit<ReadResult, 'problems' | 'skipped'>;
  /** Why no problem could be read, when none could. */
  error?: string;
}

/**
 * Tool-integrated demonstrations for SFT: TIRGen's kept samples (docs/tirgen.md#the-tirgen-panel),
 * read from their data.jsonl by the reader `train --mode sft --sft-file` uses.
 */
export interface TirDataSet {
  name: string;
  /** data.jsonl as TIRGen wrote it, and messages.jsonl (the same samples as chat). */
  data: string;
  messages: string;
  demonstrations: Demonstration[];
  /** Lines the SFT reader could not use. */
  badLines: number;
  /** Where the samples came from: questions, actor, critic. */
  origin: string;
  createdAt: string;
}

/** How the Data panel names its field pickers in messages. */
export const FIELD_CONTROLS: MappingControls = { question: 'the Question field picker', answer: 'the Answer field picker' };

/** Reads an uploaded file (any form and shape of docs/datasets.md); a file of the training split says "train" in its name. */
export function readUpload(file: string, content: string, mapping: FieldMapping = {}, split?: Split): UploadedFile {
  const { problems, skipped, ...read } = readProblems(content, { file, mode: 'lenient', mapping });
  return {
    file,
    problems,
    skipped,
    split: split ?? (/train/i.test(file) ? 'train' : 'test'),
    content,
    mapping,
    read,
    ...(problems.length === 0 && { error: unusableFileError(file, { problems, skipped, ...read }, FIELD_CONTROLS).message }),
  };
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

  /** TIR demonstration sets (TIRGen's output), for SFT in the Train panel. */
  tirData = $state.raw<TirDataSet[]>([]);
  /** A TIR data set the Train panel should open in SFT mode (set by TIRGen's "Start SFT"; the Train panel takes it). */
  sftPick = $state<string | null>(null);

  /** Adds (or replaces, by name) a TIR data set read from its data.jsonl text. */
  addTirData(name: string, data: string, messages: string, origin: string): TirDataSet {
    const { demonstrations, skipped } = readDemonstrationsJsonl(data, name);
    const set: TirDataSet = { name, data, messages, demonstrations, badLines: skipped.length, origin, createdAt: new Date().toISOString() };
    this.tirData = [...this.tirData.filter((d) => d.name !== name), set];
    return set;
  }

  removeTirData(name: string): void {
    this.tirData = this.tirData.filter((d) => d.name !== name);
  }

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

  /** Reads an upload again with fields the user named, keeping its split. */
  remap(file: string, mapping: FieldMapping): void {
    const upload = this.uploads.find((u) => u.file === file);
    if (upload) this.addUpload(readUpload(file, upload.content, mapping, upload.split));
  }

  setSplit(file: string, split: Split): void {
    this.uploads = this.uploads.map((u) => (u.file === file ? { ...u, split } : u));
  }

  removeUpload(file: string): void {
    this.uploads = this.uploads.filter((u) => u.file !== file);
  }
}

export const datasets = new Datasets();
