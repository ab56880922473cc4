/**
 * File access as small interfaces, so checkpoint and tokenizer code is the same everywhere:
 * Node passes folders on disk (src/node/files.ts), the browser passes the files a user picked and
 * downloads (src/browser/files.ts), tests and workers pass memory.
 */

import { LabError } from './errors';

/** A flat folder to read from: file names without directories. */
export interface FileSource {
  /** Shown in error messages (a path, "picked files", ...). */
  readonly label: string;
  list(): Promise<string[]>;
  read(name: string): Promise<Uint8Array>;
  /** A file's size, and bytes [begin, end) of it: where a source has them, weights are read tensor by tensor. */
  size?(name: string): Promise<number>;
  readRange?(name: string, begin: number, end: number): Promise<Uint8Array>;
}

/** A flat folder to write into. */
export interface FileSink {
  write(name: string, bytes: Uint8Array): Promise<void>;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

/** The chunks joined into one array of `bytes` bytes. */
export function concatBytes(chunks: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export function bytesToText(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

export function textToBytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** A folder held in memory: both source and sink (tests, worker transfers, bundling). */
export class MemoryFiles implements FileSource, FileSink {
  readonly files = new Map<string, Uint8Array>();
  constructor(readonly label = 'memory', initial?: Record<string, Uint8Array | string>) {
    for (const [name, content] of Object.entries(initial ?? {})) this.files.set(name, typeof content === 'string' ? textToBytes(content) : content);
  }
  async list(): Promise<string[]> {
    return [...this.files.keys()];
  }
  async read(name: string): Promise<Uint8Array> {
    const bytes = this.files.get(name);
    if (!bytes) throw new LabError('files', `no file named ${name}`, { file: this.label });
    return bytes;
  }
  async write(name: string, bytes: Uint8Array): Promise<void> {
    this.files.set(name, bytes);
  }
}
