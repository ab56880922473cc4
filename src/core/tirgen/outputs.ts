/**
 * What a TIRGen run writes (docs/tirgen.md#outputs), as text lines, and how a run goes on from what an
 * earlier one wrote:
 *
 * - data.jsonl: one kept sample a line, {question, response, ...metadata}: the Demonstration lines
 *   `npm run cli -- train --mode sft --sft-file` reads (readDemonstrationsJsonl).
 * - messages.jsonl: the same samples as chat, {"messages": [{"role": "user", …}, {"role": "assistant", …}]},
 *   the conversational form TRL's and verl's SFT trainers read.
 * - progress.jsonl: a header (actor, critic, seed, settings), then one line per finished question with
 *   its counts. A question's sample lines are written before its progress line, so on resume a
 *   question with a progress line is done and its samples are on disk; sample lines of questions
 *   without one (a run killed in between) are dropped, as are lines cut short, and nothing is
 *   written twice.
 */
import { LabError } from '../errors';
import { tirPrompt } from '../tir/format';
import type { QuestionResult, TirgenSample } from './pipeline';
import { emptyCounts, addCounts, type TirgenCounts } from './report';
import type { TirgenSettings } from './settings';

export const DATA_FILE = 'data.jsonl';
export const MESSAGES_FILE = 'messages.jsonl';
export const PROGRESS_FILE = 'progress.jsonl';
export const REPORT_FILE = 'report.json';

export interface ProgressHeader {
  type: 'tirgen-progress';
  version: 1;
  createdAt: string;
  actor: string;
  critic: string;
  seed: number;
  settings: TirgenSettings;
  /** Where the questions came from ("--synthetic 20", a file name). */
  source: string;
}

/** A line of data.jsonl: a Demonstration, with where it came from. */
export function sampleLine(s: TirgenSample, meta: { actor: string; critic: string }): string {
  return `${JSON.stringify({ question: s.question, response: s.response, id: s.id, answer: s.reference, calls: s.calls, attempt: s.attempt, steps: s.steps, actor: meta.actor, critic: meta.critic })}\n`;
}

/** A line of messages.jsonl: the question (with the data instruction, if any) as the user turn, the response as the assistant's. */
export function messagesLine(s: TirgenSample, instruction: string): string {
  return `${JSON.stringify({ messages: [{ role: 'user', content: tirPrompt(s.question, instruction) }, { role: 'assistant', content: s.response }], id: s.id, attempt: s.attempt })}\n`;
}

export function progressHeaderLine(h: ProgressHeader): string {
  return `${JSON.stringify(h)}\n`;
}

/** A question's line of progress.jsonl: its id, its counts, and whether it was skipped. */
export function progressLine(r: QuestionResult): string {
  return `${JSON.stringify({ type: 'question', id: r.id, counts: r.counts, kept: r.samples.map((s) => s.attempt), ...(r.skipped && { skipped: r.skipped }) })}\n`;
}

function parseLines(text: string): { value: Record<string, unknown>; raw: string }[] {
  const out: { value: Record<string, unknown>; raw: string }[] = [];
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    try {
      const value: unknown = JSON.parse(raw);
      if (value && typeof value === 'object' && !Array.isArray(value)) out.push({ value: value as Record<string, unknown>, raw });
    } catch {
      // A line cut short by a kill: dropped.
    }
  }
  return out;
}

export interface ResumeState {
  header?: ProgressHeader;
  /** Questions done, with their counts (their samples are in the data files). */
  done: QuestionResult[];
  /** The files as they should be now: header and done questions only, each line once. */
  progress: string;
  data: string;
  messages: string;
  /** Lines dropped: cut short, repeated, or of questions that never finished. */
  dropped: number;
}

/** What an earlier run left: which questions are done, and its three files cleaned up to match. */
export function resumeState(files: { progress?: string; data?: string; messages?: string }): ResumeState {
  const progress = parseLines(files.progress ?? '');
  let dropped = (files.progress ?? '').split('\n').filter((l) => l.trim() !== '').length - progress.length;
  const headerLine = progress.find((l) => l.value.type === 'tirgen-progress');
  const done = new Map<string, QuestionResult & { kept: number[] }>();
  const progressOut: string[] = headerLine ? [headerLine.raw] : [];
  for (const l of progress) {
    if (l === headerLine) continue;
    const v = l.value;
    if (v.type !== 'question' || typeof v.id !== 'string' || done.has(v.id) || typeof v.counts !== 'object' || v.counts === null) {
      dropped++;
      continue;
    }
    const counts = addCounts(emptyCounts(), v.counts as TirgenCounts);
    const kept = Array.isArray(v.kept) ? v.kept.filter((x): x is number => typeof x === 'number') : [];
    done.set(v.id, { id: v.id, counts, samples: [], kept, ...(typeof v.skipped === 'string' && { skipped: v.skipped as QuestionResult['skipped'] }) });
    progressOut.push(l.raw);
  }
  // A sample line stays when its question is done, lists it as kept, and it was not seen already.
  const keep = (text: string | undefined) => {
    const seen = new Set<string>();
    const lines: string[] = [];
    const all = (text ?? '').split('\n').filter((l) => l.trim() !== '');
    for (const { value, raw } of parseLines(text ?? '')) {
      const id = value.id;
      const attempt = typeof value.attempt === 'number' ? value.attempt : -1;
      const key = `${String(id)}\u0000${attempt}`;
      const q = typeof id === 'string' ? done.get(id) : undefined;
      if (!q || !q.kept.includes(attempt) || seen.has(key)) continue;
      seen.add(key);
      lines.push(raw);
    }
    dropped += all.length - lines.length;
    return lines.map((l) => `${l}\n`).join('');
  };
  const data = keep(files.data);
  const messages = keep(files.messages);
  return {
    ...(headerLine && { header: headerLine.value as unknown as ProgressHeader }),
    done: [...done.values()].map(({ kept: _kept, ...r }) => r),
    progress: progressOut.map((l) => `${l}\n`).join(''),
    data,
    messages,
    dropped,
  };
}

/** Settings that change which samples a question gives (the number of questions in flight does not). */
function sampleSettings(s: TirgenSettings): Record<string, unknown> {
  const { concurrency: _c, ...rest } = s;
  return rest;
}

/** A resume must go on with the same actor, critic, seed and settings, or its data would mix two runs. */
export function checkResume(previous: ProgressHeader, now: Omit<ProgressHeader, 'createdAt' | 'type' | 'version' | 'source'>, where: string): void {
  const differ: string[] = [];
  if (previous.actor !== now.actor) differ.push(`actor ${JSON.stringify(previous.actor)} ≠ ${JSON.stringify(now.actor)}`);
  if (previous.critic !== now.critic) differ.push(`critic ${JSON.stringify(previous.critic)} ≠ ${JSON.stringify(now.critic)}`);
  if (previous.seed !== now.seed) differ.push(`seed ${previous.seed} ≠ ${now.seed}`);
  const a = sampleSettings(previous.settings);
  const b = sampleSettings(now.settings);
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) differ.push(`tirgen.${k} ${JSON.stringify(a[k])} ≠ ${JSON.stringify(b[k])}`);
  if (differ.length > 0)
    throw new LabError('tirgen-resume', `the run in ${where} was made differently: ${differ.join('; ')}`, { file: where, hint: 'resume with the same actor, critic, --seed and --set values, or write to another --out' });
}
