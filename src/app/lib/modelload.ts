/**
 * What the Model panel shows while a Hugging Face model loads (docs/models.md#in-the-browser): the
 * Hub settings it remembers, a download's figures in words, the memory budget the service sends
 * before any weights travel, and the files of a dropped folder. Pure functions where possible, so
 * the panel only formats.
 */
import { DEFAULT_HUB_URL, type LabEvent } from '../../core/lab/index';
import { formatDuration } from './eta';

export { DEFAULT_HUB_URL };

export type DownloadFigures = Extract<LabEvent, { type: 'download' }>['progress'];
export type MemoryBudget = Extract<LabEvent, { type: 'memory-budget' }>;

/** The Hub form as it is remembered between visits. */
export interface HubSettings {
  repo: string;
  revision: string;
  baseUrl: string;
}

const STORAGE_KEY = 'thor-lab:hub';

/** The remembered settings, or the defaults (an empty revision means the repository's main branch). */
export function readHubSettings(storage: Pick<Storage, 'getItem'> | undefined): HubSettings {
  const fallback: HubSettings = { repo: '', revision: '', baseUrl: DEFAULT_HUB_URL };
  try {
    const saved = JSON.parse(storage?.getItem(STORAGE_KEY) ?? 'null') as Partial<HubSettings> | null;
    if (!saved || typeof saved !== 'object') return fallback;
    return {
      repo: typeof saved.repo === 'string' ? saved.repo : fallback.repo,
      revision: typeof saved.revision === 'string' ? saved.revision : fallback.revision,
      baseUrl: typeof saved.baseUrl === 'string' && saved.baseUrl.trim() !== '' ? saved.baseUrl : fallback.baseUrl,
    };
  } catch {
    return fallback;
  }
}

export function writeHubSettings(storage: Pick<Storage, 'setItem'> | undefined, settings: HubSettings): void {
  try {
    storage?.setItem(STORAGE_KEY, JSON.stringify(settings));
  } catch {
    // Storage refused (private mode, quota): the form still works, it is only not remembered.
  }
}

/** Bytes in decimal units, as the Hub and the memory check count them: "812 B", "3.4 kB", "12.5 MB", "1.24 GB". */
export function formatDecimalBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

/** A download in words: bytes of all files, files whole, the current file, rate and time left. */
export function describeDownload(p: DownloadFigures): { bytes: string; files: string; rate: string; eta: string } {
  const fileBytes = p.fileTotal !== undefined ? `${formatDecimalBytes(p.fileDone)} of ${formatDecimalBytes(p.fileTotal)}` : formatDecimalBytes(p.fileDone);
  return {
    bytes: `${formatDecimalBytes(p.done)} of ${formatDecimalBytes(p.total)}`,
    files: `${p.filesDone} of ${p.files} files (now ${p.file}: ${fileBytes})`,
    rate: p.bytesPerSecond > 0 ? `${formatDecimalBytes(p.bytesPerSecond)}/s` : '—',
    eta: p.done >= p.total && p.total > 0 ? 'done' : p.etaSeconds === undefined ? 'time left —' : `${formatDuration(p.etaSeconds * 1000)} left`,
  };
}

/** The parts of a budget the panel lists: what answering holds, what a LoRA run adds, and the limit. */
export function budgetRows(b: MemoryBudget): { label: string; bytes: number }[] {
  const i = b.infer;
  const t = b.train;
  const rows = [
    { label: i.weightFormat === 'f16' ? 'weights (matrices as float16)' : 'weights (float32)', bytes: i.weights },
    { label: "packed copies (wasm's XNNPACK)", bytes: i.packedWeights },
    { label: 'KV cache (answering)', bytes: i.kvCache },
    { label: 'activations and logits (answering)', bytes: i.activations + i.logits },
    { label: 'total to answer', bytes: i.total },
    { label: 'training state (LoRA gradients, AdamW moments, the update’s activations)', bytes: t.gradients + t.optimizer + t.activations + t.logits },
    { label: 'total to train', bytes: t.total },
  ];
  return rows.filter((r) => r.bytes > 0);
}

/** The device's limit in words. */
export function describeLimit(b: MemoryBudget): string {
  const l = b.limits;
  const parts = [
    l.totalBytes !== undefined && `${formatDecimalBytes(l.totalBytes)} in all`,
    l.bufferBytes !== undefined && `${formatDecimalBytes(l.bufferBytes)} in one buffer`,
  ].filter((p): p is string => typeof p === 'string');
  return parts.length > 0 ? `${parts.join(', ')} (${l.source})` : `not known (${l.source})`;
}

/** Whether a training run at the defaults would fit the limit too (answering is what loading checks). */
export function trainFits(b: MemoryBudget): boolean {
  const l = b.limits;
  return (l.totalBytes === undefined || b.train.total <= l.totalBytes) && (l.bufferBytes === undefined || b.train.largestTensor.bytes <= l.bufferBytes);
}

/** The folder name of picked or dropped files (their common first path part), else a fallback. */
export function folderLabel(paths: readonly string[], fallback = 'picked files'): string {
  const tops = new Set(paths.map((p) => (p.includes('/') ? p.split('/')[0] : '')));
  const [only] = tops;
  return tops.size === 1 && only ? only : fallback;
}

/** The entries of a drop (the DOM's FileSystemEntry, only what is read of it). */
interface DropEntry {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  fullPath: string;
  file?(ok: (f: File) => void, fail: (e: unknown) => void): void;
  createReader?(): { readEntries(ok: (entries: DropEntry[]) => void, fail: (e: unknown) => void): void };
}

/**
 * The files of a drop, folders walked (the model folder itself, or its files), with their paths
 * inside the drop. A browser without entries (webkitGetAsEntry) gives the dropped files as they are.
 */
export async function droppedFiles(data: DataTransfer): Promise<{ files: File[]; paths: string[] }> {
  const entries = Array.from(data.items ?? [])
    .map((item) => (item.kind === 'file' ? (item.webkitGetAsEntry?.() as DropEntry | null) : null))
    .filter((e): e is DropEntry => e !== null && e !== undefined);
  if (entries.length === 0) {
    const files = Array.from(data.files ?? []);
    return { files, paths: files.map((f) => f.name) };
  }
  const files: File[] = [];
  const paths: string[] = [];
  const walk = async (entry: DropEntry): Promise<void> => {
    if (entry.isFile && entry.file) {
      files.push(await new Promise<File>((ok, fail) => entry.file!(ok, fail)));
      paths.push(entry.fullPath.replace(/^\//, ''));
    } else if (entry.isDirectory && entry.createReader) {
      const reader = entry.createReader();
      // readEntries answers in batches (100 in Chromium) until it answers with none.
      for (;;) {
        const batch = await new Promise<DropEntry[]>((ok, fail) => reader.readEntries(ok, fail));
        if (batch.length === 0) break;
        for (const child of batch) await walk(child);
      }
    }
  };
  for (const entry of entries) await walk(entry);
  return { files, paths };
}
