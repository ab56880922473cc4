/**
 * The per-problem log of an evaluation (docs/evaluation.md): JSON lines, a header naming what was
 * evaluated and how, then one line per problem as soon as its samples are graded. An interrupted
 * evaluation resumes from it; two logs are compared problem by problem.
 *
 *   {"type":"eval-log","version":1,"label":"gsm8k.jsonl","model":"thor-tiny (shipped)","settings":{...},"problems":1319,"samples":1}
 *   {"type":"problem","problemId":"gsm8k.jsonl:1","index":0,"question":"...","reference":"18","records":[...]}
 */
import { LabError } from '../errors';
import type { ProblemLog } from './evaluate';
import { majorityIndex, type ProblemOutcome } from './metrics';

export interface EvalLogHeader {
  type: 'eval-log';
  version: 1;
  /** The problem set (a file name, "test split"). */
  label: string;
  /** The model evaluated. */
  model: string;
  /** The evaluation's settings as given (a resume must give the same). */
  settings: Record<string, unknown>;
  problems: number;
  samples: number;
  createdAt: string;
}

export interface EvalLog {
  header: EvalLogHeader;
  problems: ProblemLog[];
}

export const logHeaderLine = (h: EvalLogHeader): string => JSON.stringify(h) + '\n';
export const logProblemLine = (p: ProblemLog): string => JSON.stringify({ type: 'problem', ...p }) + '\n';

/**
 * Reads a log. A last line cut short (the process was killed while writing it) is dropped; any other
 * bad line is an error naming it. A problem logged twice keeps its last line.
 */
export function parseEvalLog(text: string, file: string): EvalLog {
  const lines = text.split('\n');
  let header: EvalLogHeader | undefined;
  const byId = new Map<string, ProblemLog>();
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      if (last && header) break;
      throw new LabError('eval-log', 'line is not valid JSON', { file, line: i + 1, expected: 'one JSON object per line', found: raw.slice(0, 40) });
    }
    if (i === 0 || !header) {
      if (row.type !== 'eval-log' || row.version !== 1) throw new LabError('eval-log', 'not an evaluation log', { file, line: i + 1, field: 'type', expected: '"eval-log", version 1', found: JSON.stringify(row.type ?? null) });
      header = row as unknown as EvalLogHeader;
      continue;
    }
    if (row.type !== 'problem' || typeof row.problemId !== 'string' || !Array.isArray(row.records) || typeof row.index !== 'number') {
      throw new LabError('eval-log', 'not a problem line', { file, line: i + 1, expected: 'type "problem" with problemId, index and records', found: raw.slice(0, 60) });
    }
    const { type: _type, ...log } = row;
    byId.set(row.problemId, log as unknown as ProblemLog);
  }
  if (!header) throw new LabError('eval-log', 'the log is empty', { file, expected: 'a header line and problem lines' });
  return { header, problems: [...byId.values()].sort((a, b) => a.index - b.index) };
}

/** A resume must evaluate the same model, problems and settings: names what differs. */
export function checkResume(log: EvalLog, now: Omit<EvalLogHeader, 'type' | 'version' | 'createdAt'>, file: string): void {
  const differs: string[] = [];
  if (log.header.label !== now.label) differs.push(`problems ${JSON.stringify(log.header.label)} → ${JSON.stringify(now.label)}`);
  if (log.header.model !== now.model) differs.push(`model ${JSON.stringify(log.header.model)} → ${JSON.stringify(now.model)}`);
  if (log.header.problems !== now.problems) differs.push(`problem count ${log.header.problems} → ${now.problems}`);
  if (log.header.samples !== now.samples) differs.push(`samples ${log.header.samples} → ${now.samples}`);
  if (JSON.stringify(log.header.settings) !== JSON.stringify(now.settings)) differs.push(`settings ${JSON.stringify(log.header.settings)} → ${JSON.stringify(now.settings)}`);
  if (differs.length > 0) throw new LabError('eval-log', `cannot resume: this evaluation differs from the logged one (${differs.join('; ')})`, { file, hint: 'resume with the same model, file and settings, or start a new log' });
}

/** A problem's line in a comparison: its accuracy and majority answer. */
export function problemOutcome(log: ProblemLog): ProblemOutcome & { majority: string | null } {
  const i = majorityIndex(log.records.map((r) => r.finalAnswer));
  return { problemId: log.problemId, accuracy: log.records.filter((r) => r.correct).length / Math.max(1, log.records.length), majority: i >= 0 ? log.records[i].finalAnswer : null };
}
