/**
 * A TIRGen run's folder on disk (docs/tirgen.md#outputs): data.jsonl, messages.jsonl, progress.jsonl
 * and report.json. Opening it for a resumed run reads what an earlier run left, checks it was made the
 * same way, and rewrites the files to their finished questions before anything is appended.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../core/errors';
import {
  checkResume,
  DATA_FILE,
  MESSAGES_FILE,
  messagesLine,
  PROGRESS_FILE,
  progressHeaderLine,
  progressLine,
  REPORT_FILE,
  resumeState,
  sampleLine,
  type ProgressHeader,
  type QuestionResult,
  type TirgenReport,
} from '../core/tirgen';

const readOr = (path: string) => readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));

export interface TirgenFolder {
  dir: string;
  /** Questions an earlier run finished (empty for a new run). */
  done: QuestionResult[];
  /** Lines of the earlier run dropped on resume (cut short, repeated, or of unfinished questions). */
  dropped: number;
  /** Appends a finished question: its sample lines first, then its progress line. */
  write(r: QuestionResult): Promise<void>;
  writeReport(report: TirgenReport): Promise<void>;
}

/**
 * Opens (creating) a run folder. Without `resume`, a folder that already holds a run is refused; with
 * it, the run goes on from the earlier one's progress log (a folder with none starts afresh).
 */
export async function openTirgenFolder(dir: string, header: Omit<ProgressHeader, 'type' | 'version' | 'createdAt'>, options: { resume: boolean; dataInstruction: string }): Promise<TirgenFolder> {
  await mkdir(dir, { recursive: true });
  const paths = { progress: join(dir, PROGRESS_FILE), data: join(dir, DATA_FILE), messages: join(dir, MESSAGES_FILE), report: join(dir, REPORT_FILE) };
  const [progress, data, messages] = await Promise.all([readOr(paths.progress), readOr(paths.data), readOr(paths.messages)]);
  const fresh = progressHeaderLine({ type: 'tirgen-progress', version: 1, createdAt: new Date().toISOString(), ...header });
  let done: QuestionResult[] = [];
  let dropped = 0;
  if (!options.resume) {
    if ((progress ?? '').trim() !== '' || (data ?? '').trim() !== '')
      throw new LabError('tirgen-out', 'the folder already holds a TIRGen run', { file: dir, hint: 'give --resume to go on with it, or another --out' });
    await Promise.all([writeFile(paths.progress, fresh), writeFile(paths.data, ''), writeFile(paths.messages, '')]);
  } else {
    const state = resumeState({ progress, data, messages });
    if (state.header) checkResume(state.header, header, dir);
    done = state.done;
    dropped = state.dropped;
    // Rewritten before anything is appended: a line cut short must not run into the next one.
    await Promise.all([writeFile(paths.progress, state.header ? state.progress : fresh), writeFile(paths.data, state.header ? state.data : ''), writeFile(paths.messages, state.header ? state.messages : '')]);
  }
  const meta = { actor: header.actor, critic: header.critic };
  return {
    dir,
    done,
    dropped,
    async write(r) {
      if (r.samples.length > 0) {
        await appendFile(paths.data, r.samples.map((s) => sampleLine(s, meta)).join(''));
        await appendFile(paths.messages, r.samples.map((s) => messagesLine(s, options.dataInstruction)).join(''));
      }
      await appendFile(paths.progress, progressLine(r));
    },
    async writeReport(report) {
      await writeFile(paths.report, `${JSON.stringify(report, null, 2)}\n`);
    },
  };
}
