/**
 * The records of a dataset file, before any field is read: JSON lines, a JSON array, a JSON object
 * holding an array (e.g. {"data": [...]}), CSV / TSV with a header row, or Parquet (its rows turned
 * into JSON lines first, by parquetToJsonLines) (docs/datasets.md#file-forms).
 * Each record keeps where it was (its line, or its item number in an array) so that a bad one can be
 * named.
 */
import { LabError } from '../errors';

export type FileForm = 'jsonl' | 'json-array' | 'json-object' | 'csv' | 'tsv' | 'parquet';

/** How a file's records are named in messages: by line (JSON lines, CSV, TSV), item of a JSON array, or row (Parquet). */
export type RecordUnit = 'line' | 'item' | 'row';

export interface RawRecord {
  /** Line number (JSON lines; CSV: the line the row starts on) or item number (JSON arrays), from 1. */
  at: number;
  value?: unknown;
  /** The key of the record when the file is an object of records ({"q1": {...}, ...}). */
  key?: string;
  /** A record that could not be read at all. */
  error?: { reason: 'not_json' | 'bad_row'; message: string; found: string };
}

export interface RecordSet {
  form: FileForm;
  unit: RecordUnit;
  records: RawRecord[];
  /** Where the records were found in a JSON object (e.g. "data"). */
  arrayKey?: string;
}

/** Keys of a JSON object that usually hold the records, in the order they are tried. */
const ARRAY_KEYS = ['data', 'rows', 'examples', 'problems', 'questions', 'items', 'records', 'instances', 'test', 'validation', 'train'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The records of a file's text; `file` (its name) tells CSV and TSV apart from JSON. */
export function parseRecords(content: string, file: string): RecordSet {
  const text = content.charCodeAt(0) === 0xfeff ? content.slice(1) : content;
  const ext = /\.([a-z]+)$/i.exec(file)?.[1]?.toLowerCase();
  if (ext === 'csv') return parseTable(text, ',');
  if (ext === 'tsv' || ext === 'tab') return parseTable(text, '\t');
  // Parquet arrives here as the JSON lines parquetToJsonLines made of it: line N is row N.
  if (ext === 'parquet') return { ...parseJsonLines(text), form: 'parquet', unit: 'row' };
  const start = text.trimStart();
  if (start.startsWith('[') || start.startsWith('{')) {
    const whole = parseWhole(text);
    if (whole) return whole;
  } else if (ext !== 'jsonl' && ext !== 'json' && ext !== 'ndjson') {
    // An unknown extension whose first line is no JSON but has separators is read as a table.
    const first = start.split(/\r?\n/, 1)[0] ?? '';
    if (first.includes('\t')) return parseTable(text, '\t');
    if (first.includes(',')) return parseTable(text, ',');
  }
  return parseJsonLines(text);
}

/** The whole text as one JSON value: an array of records, or an object holding one; undefined when it is JSON lines instead. */
function parseWhole(text: string): RecordSet | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (Array.isArray(value)) return { form: 'json-array', unit: 'item', records: arrayRecords(value) };
  if (!isObject(value)) return undefined;
  const arrays = Object.entries(value).filter(([, v]) => Array.isArray(v) && v.some(isObject)) as [string, unknown[]][];
  const known = ARRAY_KEYS.map((k) => arrays.find(([key]) => key === k)).find(Boolean);
  const chosen = known ?? arrays.sort((a, b) => b[1].length - a[1].length)[0];
  if (chosen) return { form: 'json-object', unit: 'item', records: arrayRecords(chosen[1]), arrayKey: chosen[0] };
  // An object of records keyed by id ({"1": {...}, "2": {...}}), when every value is an object with fields.
  const entries = Object.entries(value);
  if (entries.length > 1 && entries.every(([, v]) => isObject(v) && Object.values(v).some((f) => typeof f === 'string'))) {
    return { form: 'json-object', unit: 'item', records: entries.map(([key, v], i) => ({ at: i + 1, value: v, key })) };
  }
  // One object alone is a file of one JSON line.
  return undefined;
}

/** Items of an array; the Hugging Face viewer's {"row_idx": i, "row": {...}} wrappers are taken off. */
function arrayRecords(items: unknown[]): RawRecord[] {
  const wrapped = items.length > 0 && items.every((it) => isObject(it) && isObject(it.row) && 'row_idx' in it);
  return items.map((it, i) => ({ at: i + 1, value: wrapped ? (it as { row: unknown }).row : it }));
}

function parseJsonLines(text: string): RecordSet {
  const records: RawRecord[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    try {
      records.push({ at: i + 1, value: JSON.parse(raw) });
    } catch {
      records.push({ at: i + 1, error: { reason: 'not_json', message: 'line is not valid JSON', found: raw.slice(0, 40) } });
    }
  }
  return { form: 'jsonl', unit: 'line', records };
}

/**
 * CSV (RFC 4180: fields in double quotes may hold the separator, newlines and "" for a quote) or TSV,
 * with a header row naming the fields. Cells stay text.
 */
function parseTable(text: string, sep: ',' | '\t'): RecordSet {
  const rows: { at: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowStart = 1;
  let fieldStarted = false;
  const endRow = () => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0].trim() === '' && !fieldStarted)) rows.push({ at: rowStart, cells });
    cells = [];
    cell = '';
    fieldStarted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        cell += ch;
      }
    } else if (ch === '"' && cell === '') {
      quoted = true;
      fieldStarted = true;
    } else if (ch === sep) {
      cells.push(cell);
      cell = '';
      fieldStarted = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowStart = line;
    } else {
      cell += ch;
    }
  }
  if (cell !== '' || cells.length > 0 || fieldStarted) endRow();
  const form = sep === ',' ? 'csv' : 'tsv';
  if (rows.length === 0) return { form, unit: 'line', records: [] };
  const header = rows[0].cells.map((h) => h.trim());
  const records = rows.slice(1).map(({ at, cells: row }): RawRecord => {
    if (row.length !== header.length) {
      return { at, error: { reason: 'bad_row', message: `row has ${row.length} field${row.length === 1 ? '' : 's'}, the header has ${header.length}`, found: row.join(sep).slice(0, 40) } };
    }
    return { at, value: Object.fromEntries(header.map((h, k) => [h, row[k]])) };
  });
  return { form, unit: 'line', records };
}

/** JSON values of a Parquet cell: 64-bit integers become numbers (or text past 2^53), dates ISO text, bytes are dropped. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return undefined;
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/**
 * The rows of a Parquet file as JSON lines, one row a line (read with hyparquet, loaded only when a
 * Parquet file is read). A file it cannot read is an error naming the file.
 */
export async function parquetToJsonLines(bytes: ArrayBuffer | Uint8Array, file: string): Promise<string> {
  const { parquetReadObjects } = await import('hyparquet');
  const buffer = bytes instanceof Uint8Array ? (bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer) : bytes;
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: buffer });
  } catch (e) {
    throw new LabError('files', `not a Parquet file this reader can read: ${(e as Error).message}`, { file, hint: 'convert it to JSON lines (docs/datasets.md#file-forms)' });
  }
  return rows.map((row) => JSON.stringify(plain(row))).join('\n');
}
