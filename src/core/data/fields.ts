/**
 * Which fields of a dataset's records hold the question, the reference answer and the id: found by
 * the names public suites use, or named by the user (a FieldMapping). The names recognised, their
 * order, and how each kind of value becomes one reference answer are listed in docs/datasets.md.
 */
import { extractBoxed, extractGsm8kAnswer } from '../reward/extract';

/** Fields named by the user when detection cannot decide; dot paths reach nested fields ("reward_model.ground_truth", "messages.0.content"). */
export interface FieldMapping {
  question?: string;
  answer?: string;
  id?: string;
}

/** A role's field as detected (or mapped), for messages and the Data panel. */
export interface FieldChoice {
  /** Its path, or "A+B" for fields joined into one question (SVAMP's Body + Question). */
  field: string;
  /** How the value is read, when not as plain text (e.g. "user turn", "text after ####", "last \\boxed{}"). */
  how?: string;
  /** Named by the user rather than detected. */
  mapped: boolean;
  /** A worked solution (or a chat): only the answer it marks is read. */
  marked?: boolean;
  /** Records in which this field gives a value. */
  found: number;
}

export interface Detection {
  question?: FieldChoice;
  answer?: FieldChoice;
  /** Per-record fallback when the answer field is missing: the last \boxed{} (or "#### N") of a worked solution. */
  answerFallback?: FieldChoice;
  id?: FieldChoice;
  /** Field paths seen in the records (nested objects one level down), in the order first seen. */
  fields: string[];
}

/** Question fields, most specific first. "A+B" joins A and B (a story and the question asked about it). */
export const QUESTION_FIELDS = ['Body+Question', 'body+question', 'problem', 'question', 'Problem', 'Question', 'prompt', 'query', 'input', 'instruction', 'messages', 'conversations'] as const;
/** Fields that hold a final answer (a number, a string, or a one-item list). */
export const ANSWER_FIELDS = ['answer', 'Answer', 'final_answer', 'expected_answer', 'ground_truth', 'gt', 'target', 'label', 'reward_model.ground_truth', 'extra_info.answer', 'correct_answer'] as const;
/** Fields that hold a worked solution: only the answer it marks (\boxed{}, "#### N") is read. */
export const WORKED_FIELDS = ['solution', 'Solution', 'messages', 'conversations'] as const;
export const ID_FIELDS = ['unique_id', 'id', 'ID', 'idx', 'problem_id', 'question_id', 'uid', 'index', '@ID', 'extra_info.index'] as const;

export type Row = Record<string, unknown>;

export const isRow = (v: unknown): v is Row => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The value at a dot path. A key that itself holds dots is found whole first; a number reaches into
 * an array ("messages.0.content"). Only a record's own fields are read.
 */
export function valueAt(row: unknown, path: string): unknown {
  if (!isRow(row)) return undefined;
  if (Object.hasOwn(row, path)) return row[path];
  let v: unknown = row;
  for (const part of path.split('.')) {
    if (Array.isArray(v) && /^\d+$/.test(part)) v = v[Number(part)];
    else if (isRow(v) && Object.hasOwn(v, part)) v = v[part];
    else return undefined;
  }
  return v;
}

// ---- chat turns ---------------------------------------------------------------------------------

interface Turn {
  role: string;
  content: string;
}

/** Chat turns of a messages list: {role, content} (content as text or as [{type: "text", text}]) or ShareGPT's {from, value}. */
function turnsOf(v: unknown): Turn[] | undefined {
  if (!Array.isArray(v) || v.length === 0 || !v.every(isRow)) return undefined;
  const turns: Turn[] = [];
  for (const m of v) {
    const role = typeof m.role === 'string' ? m.role : typeof m.from === 'string' ? m.from : undefined;
    const raw = m.content ?? m.value;
    const content = typeof raw === 'string' ? raw : Array.isArray(raw) ? raw.map((p) => (isRow(p) && typeof p.text === 'string' ? p.text : '')).join('') : undefined;
    if (role === undefined || content === undefined) return undefined;
    turns.push({ role: role.toLowerCase(), content });
  }
  return turns;
}

const USER_ROLES = new Set(['user', 'human']);
const ASSISTANT_ROLES = new Set(['assistant', 'gpt', 'model']);

// ---- questions ----------------------------------------------------------------------------------

/** A question's text from one value: a string, or the last user turn of a chat. */
function questionFrom(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() || undefined;
  // The parts of one message's content: [{type: "text", text}, ...].
  if (Array.isArray(v) && v.length > 0 && v.every((p) => isRow(p) && typeof p.text === 'string')) return v.map((p) => (p as { text: string }).text).join('').trim() || undefined;
  const turns = turnsOf(v);
  if (!turns) return undefined;
  const user = turns.filter((t) => USER_ROLES.has(t.role)).at(-1);
  return user?.content.trim() || undefined;
}

/** The question a field spec gives for a record: one path, or several joined ("Body+Question"). */
export function questionAt(row: unknown, spec: string): string | undefined {
  const parts = spec.split('+').map((p) => p.trim());
  if (parts.length === 1) return questionFrom(valueAt(row, parts[0]));
  const texts = parts.map((p) => questionFrom(valueAt(row, p))).filter((t): t is string => t !== undefined);
  if (texts.length === 0) return undefined;
  // A story without a closing stop reads on into its question.
  return texts.map((t, i) => (i < texts.length - 1 && !/[.!?:;。？！]$/.test(t) ? `${t}.` : t)).join(' ');
}

function questionHow(row: unknown, spec: string): string | undefined {
  if (spec.includes('+')) return 'joined with a space';
  return turnsOf(valueAt(row, spec)) ? 'last user turn' : undefined;
}

// ---- answers ------------------------------------------------------------------------------------

export type AnswerProblem =
  /** No such field, or null. */
  | 'absent'
  | 'empty'
  /** A list of several different answers: not one reference answer. */
  | 'list'
  /** An object, or a list holding lists or objects. */
  | 'object'
  /** A worked solution without a marked final answer (\boxed{}, "#### N"). */
  | 'unmarked'
  /** A GSM8K-style file whose answer here has no "#### N". */
  | 'no_hashes';

/**
 * Where "#### N" is required: always (a file read as GSM8K style), or only of an answer that runs
 * over several lines (a worked solution that lost its final line, in a file whose answers mostly
 * end in "#### N"); a one-line answer is an answer either way.
 */
export type HashRule = 'always' | 'multiline';

export type AnswerValue = { answer: string; how?: string } | { problem: AnswerProblem; found: string };

const shown = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/**
 * Tidies an answer given as text: one pair of enclosing $...$ goes, and so does a unit in brackets
 * after a number ("12 (marbles)", ASDiv's form). Nothing else is changed: the grader compares.
 */
function tidy(text: string): string {
  let t = text.trim();
  const dollars = /^\$([^$]+)\$$/.exec(t);
  if (dollars) t = dollars[1].trim();
  const unit = /^(-?\d[\d,]*(?:\.\d+)?(?:\/\d+)?)\s+\([A-Za-z][A-Za-z\s.'-]*\)$/.exec(t);
  if (unit) t = unit[1];
  return t;
}

/**
 * One reference answer from a value of an answer field. Text with "#### N" gives N, text with a
 * \boxed{} gives its content; numbers are written as JavaScript writes them (27.0 is "27"), booleans
 * as "True" / "False". A list gives its item when it has one (or when all its items are the same
 * answer); a list of different answers is refused, never joined: ["6", "8"] is no answer, not "68"
 * nor "6, 8" (docs/datasets.md#lists-of-answers).
 */
export function answerFrom(v: unknown, options: { requireHashes?: HashRule } = {}): AnswerValue {
  if (v === undefined || v === null) return { problem: 'absent', found: v === null ? 'null' : 'nothing' };
  if (typeof v === 'number') return Number.isFinite(v) ? { answer: String(v) } : { problem: 'object', found: String(v) };
  if (typeof v === 'boolean') return { answer: v ? 'True' : 'False' };
  if (typeof v === 'string') {
    const text = v.trim();
    if (text === '') return { problem: 'empty', found: '""' };
    if (text.includes('####')) {
      const final = extractGsm8kAnswer(text);
      return final === undefined ? { problem: 'empty', found: shown(v) } : { answer: tidy(final), how: 'text after ####' };
    }
    if (options.requireHashes === 'always' || (options.requireHashes === 'multiline' && text.includes('\n'))) return { problem: 'no_hashes', found: shown(v) };
    if (/\\(boxed|fbox)(?![a-zA-Z])/.test(text)) {
      const boxed = extractBoxed(text);
      if (boxed !== undefined && boxed !== '') return { answer: tidy(boxed), how: 'last \\boxed{}' };
    }
    return { answer: tidy(text) };
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return { problem: 'empty', found: '[]' };
    const items = v.map((item) => (Array.isArray(item) || isRow(item) ? undefined : answerFrom(item, options)));
    if (items.some((it) => it === undefined)) return { problem: 'object', found: shown(v) };
    const answers = items.map((it) => (it && 'answer' in it ? it.answer : undefined));
    if (answers.some((a) => a === undefined)) return { problem: 'empty', found: shown(v) };
    if (new Set(answers).size === 1) return { answer: answers[0]!, how: v.length === 1 ? 'its one item' : 'its one answer, repeated' };
    return { problem: 'list', found: shown(v) };
  }
  return { problem: 'object', found: shown(v) };
}

/** The answer a worked solution marks: its last \boxed{} or its "#### N"; a chat's last assistant turn; a list of solutions read as one text. */
export function markedAnswerFrom(v: unknown, options: { requireHashes?: HashRule } = {}): AnswerValue {
  if (v === undefined || v === null) return { problem: 'absent', found: v === null ? 'null' : 'nothing' };
  const turns = turnsOf(v);
  let text: string | undefined;
  if (turns) {
    const assistant = turns.filter((t) => ASSISTANT_ROLES.has(t.role)).at(-1);
    if (!assistant) return { problem: 'absent', found: 'no assistant turn' };
    text = assistant.content;
  } else if (typeof v === 'string') text = v;
  else if (Array.isArray(v) && v.every((s) => typeof s === 'string')) text = v.join('\n');
  if (text === undefined) return { problem: 'object', found: shown(v) };
  if (text.trim() === '') return { problem: 'empty', found: '""' };
  const hashes = text.includes('####') ? extractGsm8kAnswer(text) : undefined;
  if (hashes !== undefined) return { answer: tidy(hashes), how: 'text after ####' };
  if (options.requireHashes === 'always') return { problem: 'no_hashes', found: shown(text.length > 60 ? `...${text.slice(-50)}` : text) };
  const boxed = extractBoxed(text);
  if (boxed !== undefined && boxed !== '') return { answer: tidy(boxed), how: turns ? 'last \\boxed{} of the assistant turn' : 'last \\boxed{}' };
  return { problem: 'unmarked', found: shown(text.length > 60 ? `...${text.slice(-50)}` : text) };
}

// ---- detection ----------------------------------------------------------------------------------

/** Field paths of the records: top-level keys, and the keys of nested objects as "a.b". */
export function fieldsOf(rows: readonly unknown[], limit = 500): string[] {
  const seen = new Set<string>();
  for (const row of rows.slice(0, limit)) {
    if (!isRow(row)) continue;
    for (const [k, v] of Object.entries(row)) {
      seen.add(k);
      if (isRow(v)) for (const inner of Object.keys(v)) seen.add(`${k}.${inner}`);
    }
  }
  return [...seen];
}

const present = (spec: string, row: unknown) => spec.split('+').every((p) => valueAt(row, p.trim()) !== undefined && valueAt(row, p.trim()) !== null);

/** The candidate that gives a value in the most records (ties: the earlier name); undefined when none does. */
function best(candidates: readonly string[], rows: readonly unknown[], gives: (row: unknown, spec: string) => boolean): { field: string; found: number } | undefined {
  let chosen: { field: string; found: number } | undefined;
  for (const field of candidates) {
    let found = 0;
    for (const row of rows) if (gives(row, field)) found++;
    if (found > 0 && (!chosen || found > chosen.found)) chosen = { field, found };
  }
  return chosen;
}

/** The fields that hold question, answer and id in these records: the user's mapping where given, else the names public suites use. */
export function detectFields(rows: readonly unknown[], mapping: FieldMapping = {}): Detection {
  const objects = rows.filter(isRow);
  const fields = fieldsOf(objects);
  const sample = objects.find(isRow);
  const detection: Detection = { fields };

  const count = (gives: (row: unknown) => boolean) => objects.reduce((n, r) => n + (gives(r) ? 1 : 0), 0);

  if (mapping.question) {
    const spec = mapping.question;
    detection.question = { field: spec, how: sample && questionHow(objects.find((r) => questionAt(r, spec) !== undefined) ?? sample, spec), mapped: true, found: count((r) => questionAt(r, spec) !== undefined) };
  } else {
    // A join is a candidate only where all its parts are there; elsewhere its last part alone is.
    const q = best(QUESTION_FIELDS, objects, (r, spec) => (spec.includes('+') ? present(spec, r) : questionAt(r, spec) !== undefined));
    if (q) detection.question = { field: q.field, how: questionHow(objects.find((r) => questionAt(r, q.field) !== undefined), q.field), mapped: false, found: q.found };
  }

  if (mapping.answer) {
    const path = mapping.answer;
    const choice: FieldChoice = { field: path, mapped: true, found: 0 };
    const first = objects.map((r) => answerAt(r, choice)).find((a) => 'answer' in a);
    detection.answer = { ...choice, how: first && 'answer' in first ? first.how : undefined, found: count((r) => 'answer' in answerAt(r, choice)) };
  } else {
    const a = best(ANSWER_FIELDS, objects, (r, path) => { const v = answerFrom(valueAt(r, path)); return !('problem' in v && v.problem === 'absent'); });
    const w = best(WORKED_FIELDS, objects, (r, path) => 'answer' in markedAnswerFrom(valueAt(r, path)));
    if (a) {
      const first = objects.map((r) => answerFrom(valueAt(r, a.field))).find((v) => 'answer' in v);
      detection.answer = { field: a.field, how: first && 'answer' in first ? first.how : undefined, mapped: false, found: a.found };
      if (w && a.found < objects.length) detection.answerFallback = { field: w.field, how: 'last \\boxed{} or #### N', mapped: false, marked: true, found: w.found };
    } else if (w) {
      const first = objects.map((r) => markedAnswerFrom(valueAt(r, w.field))).find((v) => 'answer' in v);
      detection.answer = { field: w.field, how: first && 'answer' in first ? first.how : 'last \\boxed{}', mapped: false, marked: true, found: w.found };
    }
  }

  if (mapping.id) {
    detection.id = { field: mapping.id, mapped: true, found: count((r) => idFrom(valueAt(r, mapping.id!)) !== undefined) };
  } else {
    for (const path of ID_FIELDS) {
      const found = count((r) => idFrom(valueAt(r, path)) !== undefined);
      if (found > 0) {
        detection.id = { field: path, mapped: false, found };
        break;
      }
    }
  }
  return detection;
}

/** The answer a record gives in a chosen field: a worked solution or a chat gives the answer it marks, any other value is read by answerFrom. */
export function answerAt(row: unknown, choice: FieldChoice, options: { requireHashes?: HashRule } = {}): AnswerValue {
  const v = valueAt(row, choice.field);
  return choice.marked || turnsOf(v) ? markedAnswerFrom(v, options) : answerFrom(v, options);
}

/** An id from a string or a number. */
export function idFrom(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() || undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}
