/**
 * Readers for evaluation and training files in the shapes public suites use (docs/datasets.md):
 * JSON lines, a JSON array, a JSON object holding an array, CSV or TSV; the question, the reference
 * answer and the id found by the field names those suites use, or named by a FieldMapping. A bad
 * record (not JSON, no question, no answer, a list of several answers) is an error naming file,
 * line and field: thrown in strict mode, collected and counted in lenient mode. A question longer
 * than the budget given is always skipped and counted.
 */
import { LabError } from '../errors';
import { answerAt, detectFields, idFrom, isRow, questionAt, valueAt, ANSWER_FIELDS, QUESTION_FIELDS, WORKED_FIELDS, type AnswerValue, type Detection, type FieldChoice, type FieldMapping, type HashRule } from './fields';
import { parseRecords, type FileForm, type RecordUnit } from './records';
import type { Problem } from './types';

export type { Detection, FieldChoice, FieldMapping } from './fields';
export type { FileForm, RecordUnit } from './records';

/** auto: as detected; gsm8k: every answer must have "#### N"; math: as auto, without the rule for files whose answers mostly have "#### N". */
export type DatasetFormat = 'auto' | 'gsm8k' | 'math';

export interface ReadOptions {
  /** File name, used in ids and messages; its extension tells CSV / TSV from JSON. */
  file: string;
  format?: DatasetFormat;
  /** Fields named by the user; detected where not given. */
  mapping?: FieldMapping;
  /** strict: the first bad record throws; lenient: bad records are skipped and listed. */
  mode?: 'strict' | 'lenient';
  /** Longest question allowed (in the units of `measure`); longer ones are skipped. */
  maxQuestionLength?: number;
  /** Length of a question, e.g. its token count; characters by default. */
  measure?: (question: string) => number;
}

export const SKIP_REASONS = ['not_json', 'bad_row', 'not_object', 'missing_question', 'empty_question', 'missing_answer', 'list_answer', 'too_long'] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export interface SkippedLine {
  file: string;
  /** Line number (JSON lines, CSV, TSV) or item number (JSON arrays), from 1. */
  line: number;
  /** What `line` counts; "line" when absent. */
  unit?: RecordUnit;
  /** The field at fault, when one is. */
  field?: string;
  reason: SkipReason;
  message: string;
}

export interface ReadResult {
  problems: Problem[];
  skipped: SkippedLine[];
  /** How many records were skipped, by reason. */
  counts: Record<SkipReason, number>;
  /** Records in the file: non-blank lines, array items or table rows. */
  total: number;
  form: FileForm;
  unit: RecordUnit;
  /** The key of the array the records came from, when the file is a JSON object. */
  arrayKey?: string;
  /** The fields question, answer and id were read from, and the fields the file has. */
  detection: Detection;
}

const emptyCounts = (): Record<SkipReason, number> => Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;

const list = (names: readonly string[], max = 12) => (names.length === 0 ? 'none' : names.length > max ? `${names.slice(0, max).join(', ')}, … (${names.length} in all)` : names.join(', '));

/** Reads the problems of a dataset file's text, in any of the forms and shapes of docs/datasets.md. */
export function readProblems(content: string, options: ReadOptions): ReadResult {
  const { file, format = 'auto', mapping = {}, mode = 'strict', maxQuestionLength = Infinity, measure = (q: string) => q.length } = options;
  const set = parseRecords(content, file);
  const detection = detectFields(set.records.map((r) => r.value), mapping);
  const problems: Problem[] = [];
  const skipped: SkippedLine[] = [];
  const counts = emptyCounts();

  const skip = (at: number, reason: SkipReason, message: string, details: { field?: string; expected?: string; found?: string; hint?: string }) => {
    if (mode === 'strict' && reason !== 'too_long') {
      const byLine = set.unit === 'line';
      throw new LabError('BAD_DATASET_LINE', byLine ? message : `${set.unit} ${at}: ${message}`, { file, ...(byLine && { line: at }), ...details, hint: details.hint ?? 'fix or remove it, or read the file in lenient mode' });
    }
    counts[reason]++;
    const said = `${message}${details.expected !== undefined || details.found !== undefined ? ` (expected ${details.expected ?? '?'}, found ${details.found ?? '?'})` : ''}`;
    skipped.push({ file, line: at, ...(set.unit !== 'line' && { unit: set.unit }), ...(details.field !== undefined && { field: details.field }), reason, message: said });
  };

  // In a file whose answers mostly end in "#### N" (GSM8K style), a worked solution without it gives no answer.
  const answerField = detection.answer;
  const hashValues = answerField && !answerField.marked ? set.records.map((r) => valueAt(r.value, answerField.field)).filter((v): v is string => typeof v === 'string') : [];
  const requireHashes: HashRule | undefined =
    format === 'gsm8k' ? 'always' : format === 'auto' && hashValues.length > 0 && hashValues.filter((v) => v.includes('####')).length * 2 >= hashValues.length ? 'multiline' : undefined;

  const usedIds = new Set<string>();
  for (const record of set.records) {
    const at = record.at;
    if (record.error) {
      skip(at, record.error.reason, record.error.message, { expected: record.error.reason === 'not_json' ? 'one JSON object per line' : 'as many fields as the header', found: record.error.found });
      continue;
    }
    const row = record.value;
    if (!isRow(row)) {
      skip(at, 'not_object', `${set.unit} is not a JSON object`, { expected: 'a JSON object', found: (JSON.stringify(row) ?? String(row)).slice(0, 40) });
      continue;
    }

    const q = detection.question;
    if (!q) {
      skip(at, 'missing_question', 'no question field', { expected: `one of ${QUESTION_FIELDS.join(', ')}`, found: `fields ${list(Object.keys(row))}`, hint: 'name the question field (a field mapping)' });
      continue;
    }
    const there = (spec: string) => spec.split('+').every((p) => valueAt(row, p.trim()) !== undefined);
    // A record without the detected field is read from the first other question field it has.
    const spec = q.mapped || there(q.field) ? q.field : (QUESTION_FIELDS.find((f) => there(f)) ?? q.field);
    const question = questionAt(row, spec);
    if (question === undefined) {
      const there = spec.split('+').some((p) => valueAt(row, p.trim()) !== undefined);
      if (there) skip(at, 'empty_question', 'question is missing or empty', { field: spec, expected: 'non-empty text', found: (JSON.stringify(valueAt(row, spec)) ?? 'nothing').slice(0, 40) });
      else skip(at, 'missing_question', 'question is missing', { field: q.field, expected: `a "${q.field}" field`, found: `fields ${list(Object.keys(row))}` });
      continue;
    }

    if (!answerField) {
      skip(at, 'missing_answer', 'no reference answer: no answer field', { expected: `one of ${ANSWER_FIELDS.join(', ')}, or a solution with \\boxed{}`, found: `fields ${list(Object.keys(row))}`, hint: 'name the answer field (a field mapping)' });
      continue;
    }
    const { got, from } = answerOf(row, answerField, requireHashes);
    if ('problem' in got) {
      const field = from.field;
      if (got.problem === 'list') {
        skip(at, 'list_answer', 'no reference answer: a list of several different answers', { field, expected: 'one answer (a one-item list is read as its item; several are not joined: docs/datasets.md)', found: got.found });
      } else {
        const expected =
          got.problem === 'no_hashes' ? `an "${field}" ending in "#### N"` : from.marked ? `a solution whose final answer is marked by \\boxed{} or "#### N"` : 'an answer: text, a number, or a one-item list';
        const what = { absent: 'the field is missing', empty: 'the answer is empty', object: 'the answer is not text or a number', unmarked: 'the solution marks no final answer', no_hashes: 'the answer has no "#### N"' }[got.problem];
        skip(at, 'missing_answer', `no reference answer: ${what}`, { field, expected, found: got.found });
      }
      continue;
    }

    const length = measure(question);
    if (length > maxQuestionLength) {
      skip(at, 'too_long', `question longer than the context budget (${length} > ${maxQuestionLength})`, {});
      continue;
    }

    let id = (detection.id && idFrom(valueAt(row, detection.id.field))) ?? record.key ?? String(at);
    if (usedIds.has(id)) id = `${id}@${set.unit}${at}`;
    usedIds.add(id);
    const solution = solutionOf(row, from.marked ? from.field : undefined);
    const kind = [row.subject, row.type, row.Type].find((v) => typeof v === 'string' && v.trim() !== '') as string | undefined;
    const grade = row.level ?? row.difficulty;
    const level = typeof grade === 'number' || (typeof grade === 'string' && grade.trim() !== '') ? Number(String(grade).replace(/^Level\s*/i, '')) : NaN;
    problems.push({
      id: `${file}:${id}`,
      question,
      answer: got.answer,
      source: file,
      ...(solution !== undefined && { solution }),
      ...(kind !== undefined && { kind }),
      ...(Number.isFinite(level) && { difficulty: level }),
    });
  }
  return { problems, skipped, counts, total: set.records.length, form: set.form, unit: set.unit, ...(set.arrayKey !== undefined && { arrayKey: set.arrayKey }), detection };
}

const absent = (v: AnswerValue) => 'problem' in v && v.problem === 'absent';

/**
 * A record's answer from the detected field; a record without that field is read from the first
 * other answer field it has, else from the answer its worked solution marks. A field the user named
 * is read alone.
 */
function answerOf(row: Record<string, unknown>, choice: FieldChoice, requireHashes: HashRule | undefined): { got: AnswerValue; from: FieldChoice } {
  const got = answerAt(row, choice, { requireHashes });
  if (!absent(got) || choice.mapped) return { got, from: choice };
  const others: FieldChoice[] = [
    ...ANSWER_FIELDS.filter((f) => f !== choice.field).map((field) => ({ field, mapped: false, found: 0 })),
    ...WORKED_FIELDS.filter((f) => f !== choice.field).map((field) => ({ field, mapped: false, marked: true, found: 0 })),
  ];
  for (const other of others) {
    const v = answerAt(row, other, { requireHashes });
    if (!absent(v)) return { got: v, from: other };
  }
  return { got, from: choice };
}

/** The file's worked solution, when it has one as text (MATH's `solution`, GSM8K's `answer`). */
function solutionOf(row: Record<string, unknown>, markedField: string | undefined): string | undefined {
  for (const path of [markedField, 'solution', 'Solution'].filter((p): p is string => p !== undefined)) {
    const v = valueAt(row, path);
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  const answer = row.answer;
  return typeof answer === 'string' && answer.includes('####') ? answer.trim() : undefined;
}

/** Reads JSON lines (and every other form: the name is kept for its callers). */
export const readProblemsJsonl = readProblems;

// ---- reports ------------------------------------------------------------------------------------

/** Where a skipped record was: 'data.jsonl, line 4, field "answer"'. */
export function whereSkipped(s: SkippedLine): string {
  return `${s.file}, ${s.unit ?? 'line'} ${s.line}${s.field !== undefined ? `, field "${s.field}"` : ''}`;
}

/** What to tell the user to use to name a field: a flag on the command line, a control in the Data panel. */
export interface MappingControls {
  question: string;
  answer: string;
}

/** Each reason a record was skipped, as a phrase after its count ("3 have no answer field"). */
function reasonPhrases(r: ReadResult, controls?: MappingControls): string[] {
  const d = r.detection;
  const fields = `fields found: ${list(d.fields)}`;
  const phrase: Record<SkipReason, (n: number) => string> = {
    not_json: (n) => `${n} ${n === 1 ? 'is' : 'are'} not JSON`,
    bad_row: (n) => `${n} ${n === 1 ? 'has' : 'have'} a different number of fields than the header`,
    not_object: (n) => `${n} ${n === 1 ? 'is' : 'are'} not a JSON object`,
    missing_question: (n) =>
      !d.question && !d.answer
        ? `${n} ${n === 1 ? 'has' : 'have'} no question field and no answer field (${fields})${controls ? `; map them with ${controls.question} and ${controls.answer}` : ''}`
        : d.question
        ? `${n} ${n === 1 ? 'has' : 'have'} no "${d.question.field}" field`
        : `${n} ${n === 1 ? 'has' : 'have'} no question field (${fields})${controls ? `; map one with ${controls.question}` : ''}`,
    empty_question: (n) => `${n} ${n === 1 ? 'has' : 'have'} an empty question`,
    missing_answer: (n) =>
      d.answer
        ? `${n} ${n === 1 ? 'has' : 'have'} no usable answer in "${d.answer.field}"${controls && r.problems.length === 0 ? ` (${fields}); map another with ${controls.answer}` : ''}`
        : `${n} ${n === 1 ? 'has' : 'have'} no answer field (${fields})${controls ? `; map one with ${controls.answer}` : ''}`,
    list_answer: (n) => `${n} ${n === 1 ? 'has' : 'have'} a list of several different answers, which is not one reference answer${controls && r.problems.length === 0 ? `; map another field with ${controls.answer}` : ''}`,
    too_long: (n) => `${n} ${n === 1 ? 'has' : 'have'} a question over the length budget`,
  };
  return SKIP_REASONS.filter((k) => r.counts[k] > 0)
    .sort((a, b) => r.counts[b] - r.counts[a])
    .map((k) => phrase[k](r.counts[k]));
}

/** One line on what a read found: "28 of 30 lines usable (question: problem, answer: answer, id: id); 2 skipped: 1 is not JSON, 1 has no usable answer in "answer"". */
export function describeRead(r: ReadResult): string {
  const unit = `${r.unit}s`;
  const d = r.detection;
  const role = (name: string, c: typeof d.question) => (c ? `${name}: ${c.field}${c.how ? ` (${c.how})` : ''}${c.mapped ? ' [mapped]' : ''}` : undefined);
  const roles = [role('question', d.question), role('answer', d.answer), d.answerFallback && `else ${d.answerFallback.field} (${d.answerFallback.how})`, role('id', d.id)].filter(Boolean).join(', ');
  const skipped = r.skipped.length;
  return `${r.problems.length} of ${r.total} ${unit} usable${roles ? ` (${roles})` : ''}${skipped > 0 ? `; ${skipped} skipped: ${reasonPhrases(r).join('; ')}` : ''}`;
}

/** The error for a file with no usable record: how many there were, why each kind failed, the fields the file has, and how to name the right ones. */
export function unusableFileError(file: string, r: ReadResult, controls: MappingControls): LabError {
  const unit = `${r.unit}s`;
  if (r.total === 0) return new LabError('files', `the file holds no questions (0 ${unit})`, { file, expected: 'JSON lines, a JSON array, or CSV / TSV with a header (docs/datasets.md)', found: 'nothing' });
  return new LabError('files', `0 of ${r.total} ${unit} usable: ${reasonPhrases(r, controls).join('; ')}`, { file });
}
