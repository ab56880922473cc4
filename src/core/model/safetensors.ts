/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
 * N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}},
 * then the tensor bytes, offsets counted from the end of the header. Read F32, F16 and BF16 into
 * float32; write F32.
 */
import { LabError } from '../errors';
import { bytesToText, textToBytes } from '../files';
import type { WeightMap } from './weights';

const BYTES_PER_ELEMENT: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
/** dtypes a safetensors file may hold that this reader does not convert (named in the error). */
const KNOWN_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL'];
/** The reference implementation refuses headers above 100 MB; so do we, before allocating. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range inside the data section (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Offset of the data section in the file: 8 + header length. */
  dataStart: number;
}

/** Parses and checks the header: every tensor's byte range lies in the file, matches its shape and dtype, and overlaps no other. */
export function readSafetensorsHeader(bytes: Uint8Array, file = 'model.safetensors'): SafetensorsHeader {
  return parseSafetensorsHeader(bytes, bytes.length, file);
}

/** The 8 bytes that give the header's length: how much of the file's start parseSafetensorsHeader needs. */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, file = 'model.safetensors'): number {
  return parseSafetensorsHeaderLength(first8, fileSize, file);
}

function parseSafetensorsHeaderLength(bytes: Uint8Array, fileSize: number, file: string): number {
  if (bytes.length < 8 || fileSize < 8) {
    throw new LabError('safetensors', 'file is truncated: too short to hold the 8-byte header length', { file, expected: 'at least 8 bytes', found: `${fileSize} bytes`, hint: 'The file was cut off while downloading or copying: fetch it again' });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > fileSize) {
    throw new LabError('safetensors', 'file is truncated or not safetensors: the header length points past the end of the file', {
      file,
      field: 'header length',
      expected: `at most ${Math.min(fileSize - 8, MAX_HEADER_BYTES)} bytes`,
      found: `${headerLength} bytes`,
      hint: 'The file was cut off or is another format (a PyTorch .bin/.pt pickle is not safetensors): fetch it again or convert it',
    });
  }
  return headerLength;
}

/**
 * Parses and checks the header from the file's first bytes (at least 8 + header length of them) and
 * the file's size: a streaming reader reads no more than that before the tensors it wants.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, file = 'model.safetensors'): SafetensorsHeader {
  const convert = 'Re-export the checkpoint with the safetensors library (save_file / save_pretrained).';
  const headerLength = parseSafetensorsHeaderLength(bytes, fileSize, file);
  const text = bytesToText(bytes.subarray(8, 8 + headerLength));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new LabError('safetensors', 'header is not valid JSON', { file, field: 'header', expected: 'a JSON object', found: `${JSON.stringify(text.slice(0, 40))}... (${(e as Error).message})`, hint: `The file is damaged or not safetensors. ${convert}` });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new LabError('safetensors', 'header is not a JSON object', { file, field: 'header', expected: 'a JSON object', found: Array.isArray(parsed) ? 'an array' : typeof parsed, hint: convert });
  }

  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries((raw ?? {}) as Record<string, unknown>)) metadata[k] = String(v);
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const field = name;
    if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
      throw new LabError('safetensors', `tensor "${name}" has a malformed header entry`, { file, field, expected: '{"dtype": str, "shape": [int], "data_offsets": [begin, end]}', found: JSON.stringify(raw)?.slice(0, 120), hint: convert });
    }
    const shape = e.shape as unknown[];
    const offsets = e.data_offsets as unknown[];
    if (!shape.every((d) => Number.isInteger(d) && (d as number) >= 0) || !offsets.every((o) => Number.isInteger(o) && (o as number) >= 0)) {
      throw new LabError('safetensors', `tensor "${name}" has a shape or offsets that are not non-negative integers`, { file, field, found: JSON.stringify(raw), hint: convert });
    }
    const [begin, end] = offsets as number[];
    if (begin > end || end > dataLength) {
      throw new LabError('safetensors', `tensor "${name}" lies outside the file (truncated file or bad offsets)`, {
        file,
        field,
        expected: `a byte range within the ${dataLength} data bytes`,
        found: `[${begin}, ${end}]`,
        hint: 'The file was probably cut off while downloading or copying: fetch it again',
      });
    }
    const entry: SafetensorsEntry = { name, dtype: e.dtype, shape: shape as number[], begin, end };
    const size = BYTES_PER_ELEMENT[entry.dtype];
    if (size !== undefined) {
      const want = elementCount(entry.shape) * size;
      if (end - begin !== want) {
        throw new LabError('safetensors', `tensor "${name}" has a byte size that does not match its shape and dtype`, { file, field, expected: `${want} bytes for ${entry.dtype} [${entry.shape.join(', ')}]`, found: `${end - begin} bytes`, hint: convert });
      }
    }
    entries.push(entry);
  }
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    const cur = byOffset[i];
    if (cur.begin < prev.end && cur.end > cur.begin) {
      throw new LabError('safetensors', `tensors "${prev.name}" and "${cur.name}" overlap`, { file, field: cur.name, expected: `data starting at or after byte ${prev.end}`, found: `[${cur.begin}, ${cur.end}]`, hint: convert });
    }
  }
  return { entries, metadata, dataStart };
}

export interface ReadOptions {
  /** Read only the tensors this accepts (others are not converted; their dtype is not checked). */
  include?: (name: string) => boolean;
}

/** Reads every tensor (or those `include` accepts) into float32. An unsupported dtype is an error naming the tensor. */
export function readSafetensors(bytes: Uint8Array, file = 'model.safetensors', options: ReadOptions = {}): WeightMap {
  const header = readSafetensorsHeader(bytes, file);
  const weights: WeightMap = new Map();
  for (const e of header.entries) {
    if (options.include && !options.include(e.name)) continue;
    const raw = bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end);
    weights.set(e.name, { shape: e.shape, data: toFloat32(raw, e, file) });
  }
  return weights;
}

/** One tensor's bytes (its data_offsets range) as float32: F32 copied, BF16 and F16 converted. */
export function toFloat32(raw: Uint8Array, e: SafetensorsEntry, file: string): Float32Array {
  const n = elementCount(e.shape);
  switch (e.dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(raw); // copy: the source may not be 4-byte aligned
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the 16 bits up.
      const halves = copyUint16(raw, n);
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F16': {
      const halves = copyUint16(raw, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(halves[i]);
      return out;
    }
    default:
      throw new LabError('safetensors', `tensor "${e.name}" has dtype ${e.dtype}, which cannot be read as model weights`, {
        file,
        field: e.name,
        expected: 'F32, F16 or BF16',
        found: KNOWN_DTYPES.includes(e.dtype) ? e.dtype : `unknown dtype "${e.dtype}"`,
        hint: 'Convert the checkpoint to float32, float16 or bfloat16 (quantised checkpoints must be dequantised first)',
      });
  }
}

function copyUint16(raw: Uint8Array, n: number): Uint16Array {
  if (raw.byteOffset % 2 === 0) return new Uint16Array(raw.buffer, raw.byteOffset, n); // aligned: a view, no copy
  const out = new Uint16Array(n);
  new Uint8Array(out.buffer).set(raw);
  return out;
}

/** IEEE 754 half (1 sign, 5 exponent, 10 mantissa bits) to a number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Writes float32 tensors, in the map's order, with optional string metadata. */
export function writeSafetensors(weights: WeightMap, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of weights) {
    const n = elementCount(t.shape);
    if (t.data.length !== n) {
      throw new LabError('safetensors', `tensor "${name}" holds ${t.data.length} values but its shape [${t.shape.join(', ')}] needs ${n}`, { field: name, expected: String(n), found: String(t.data.length) });
    }
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + n * 4] };
    offset += n * 4;
  }
  let json = textToBytes(JSON.stringify(header));
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of weights.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
