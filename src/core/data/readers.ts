/**
 * Readers for benchmark files as JSON lines: GSM8K style (`question`, `answer` ending in `#### N`)
 * and MATH style (`problem`, `solution`, `answer`; AIME and AMC files use the same names, with
 * numbers for answers). A bad line (not JSON, no answer, empty question) is an error naming file and
 * line: thrown in strict mode, collected and counted in lenient mode. A question longer than the
 * context budget is always skipped and counted.
 */
import { LabError } from '../errors';
import { extractBoxed, extractGsm8kAnswer } from '../reward/extract';
import type { Problem } from './types';

export type DatasetFormat = 'auto' | 'gsm8k' | 'math';

export interface ReadOptions {
  /** File name, used in ids and messages. */
  file: string;
  format?: DatasetFormat;
  /** strict: the first bad line throws; lenient: bad lines are skipped and listed. */
  mode?: 'strict' | 'lenient';
  /** Longest question allowed (in the units of `measure`); longer ones are skipped. */
  maxQuestionLength?: number;
  /** Length of a question, e.g. its token count; characters by default. */
  measure?: (question: string) => number;
}

export type SkipReason = 'not_json' | 'not_object' | 'empty_question' | 'missing_answer' | 'too_long';

export interface SkippedLine {
  file: string;
  line: number;
  reason: SkipReason;
  message: string;
}

export interface ReadResult {
  problems: Problem[];
  skipped: SkippedLine[];
  /** How many lines were skipped, by reason. */
  counts: Record<SkipReason, number>;
}

type Row = Record<string, unknown>;

const text = (v: unknown): string | undefined =>
  typeof v === 'string' ? v.trim() : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;

/** GSM8K keeps the worked solution in `answer`; the final value follows "####". */
function gsm8kAnswer(row: Row): { answer?: string; solution?: string } {
  const raw = text(row.answer);
  const final = raw === undefined ? undefined : extractGsm8kAnswer(raw);
  return final === undefined ? {} : { answer: final, solution: raw };
}

/** MATH-style: `answer` if present, else the last \boxed{} of `solution`. */
function mathAnswer(row: Row): { answer?: string; solution?: string } {
  const solution = text(row.solution) || undefined;
  const given = text(row.answer);
  if (given) return { answer: given, solution };
  return { answer: solution === undefined ? undefined : extractBoxed(solution), solution };
}

function detectFormat(row: Row): 'gsm8k' | 'math' {
  return typeof row.answer === 'string' && row.answer.includes('####') ? 'gsm8k' : 'math';
}

export function readProblemsJsonl(content: string, options: ReadOptions): ReadResult {
  const { file, format = 'auto', mode = 'strict', maxQuestionLength = Infinity, measure = (q: string) => q.length } = options;
  const problems: Problem[] = [];
  const skipped: SkippedLine[] = [];
  const counts: Record<SkipReason, number> = { not_json: 0, not_object: 0, empty_question: 0, missing_answer: 0, too_long: 0 };

  const skip = (line: number, reason: SkipReason, message: string, details: { field?: string; expected?: string; found?: string }) => {
    if (mode === 'strict' && reason !== 'too_long')
      throw new LabError('BAD_DATASET_LINE', message, { file, line, ...details, hint: 'fix or remove the line, or read the file in lenient mode' });
    counts[reason]++;
    skipped.push({ file, line, reason, message });
  };

  const lines = content.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i].trim();
    if (raw === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch {
      skip(lineNo, 'not_json', 'line is not valid JSON', { expected: 'one JSON object per line', found: raw.slice(0, 40) });
      continue;
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      skip(lineNo, 'not_object', 'line is not a JSON object', { expected: 'a JSON object', found: raw.slice(0, 40) });
      continue;
    }
    const obj = row as Row;
    const question = text(obj.question) || text(obj.problem) || '';
    if (question === '') {
      skip(lineNo, 'empty_question', 'question is missing or empty', { field: 'question', expected: 'a non-empty "question" or "problem"', found: JSON.stringify(obj.question ?? obj.problem ?? null) });
      continue;
    }
    const kind = format === 'auto' ? detectFormat(obj) : format;
    const { answer, solution } = kind === 'gsm8k' ? gsm8kAnswer(obj) : mathAnswer(obj);
    if (!answer) {
      skip(lineNo, 'missing_answer', 'no reference answer', {
        field: 'answer',
        expected: kind === 'gsm8k' ? 'an "answer" ending in "#### N"' : 'an "answer", or a "solution" with \\boxed{}',
        found: JSON.stringify(obj.answer ?? null),
      });
      continue;
    }
    const length = measure(question);
    if (length > maxQuestionLength) {
      skip(lineNo, 'too_long', `question longer than the context budget (${length} > ${maxQuestionLength})`, {});
      continue;
    }
    const id = text(obj.unique_id) ?? text(obj.id) ?? text(obj.idx) ?? String(lineNo);
    const level = Number(String(obj.level ?? '').replace(/^Level\s*/i, ''));
    problems.push({
      id: `${file}:${id}`,
      question,
      answer,
      source: file,
      ...(solution !== undefined && { solution }),
      ...(typeof obj.subject === 'string' && { kind: obj.subject }),
      ...(obj.level !== undefined && Number.isFinite(level) && { difficulty: level }),
    });
  }
  return { problems, skipped, counts };
}
