/**
 * File access as small interfaces, so checkpoint and tokenizer code is the same everywhere:
 * Node passes folders on disk (src/node/files.ts), the browser passes the files a user picked and
 * downloads (src/app/lib/files.ts), tests and workers pass memory.
 */

import { LabError } from './errors';

/** A flat folder to read from: file names without directories. */
export interface FileSource {
  /** Shown in error messages (a path, "picked files", ...). */
  readonly label: string;
  list(): Promise<string[]>;
  read(name: string): Promise<Uint8Array>;
}

/** A flat folder to write into. */
export interface FileSink {
  write(name: string, bytes: Uint8Array): Promise<void>;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

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

/**
 * An uncompressed POSIX tar (ustar) of a folder: one download that `tar -xf` (Linux, macOS, Windows 10+)
 * unpacks into `folder/`. Model weights barely compress, so no zip library is needed.
 */
export function tarFolder(folder: string, files: Map<string, Uint8Array>): Uint8Array {
  const blocks: Uint8Array[] = [];
  let total = 0;
  for (const [name, bytes] of files) {
    const header = tarHeader(`${folder}/${name}`, bytes.length);
    const padded = new Uint8Array(Math.ceil(bytes.length / 512) * 512);
    padded.set(bytes);
    blocks.push(header, padded);
    total += header.length + padded.length;
  }
  const out = new Uint8Array(total + 1024); // two zero blocks end the archive
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

function tarHeader(path: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (text: string, offset: number, length: number) => {
    const bytes = textToBytes(text);
    if (bytes.length > length) throw new Error(`tar: "${text}" is longer than ${length} bytes`);
    h.set(bytes, offset);
  };
  const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, '0');
  put(path, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(Math.floor(Date.now() / 1000), 12), 136, 12);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  put('0', 156, 1);
  put('ustar\u0000', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${octal(sum, 7)}\u0000`, 148, 7);
  return h;
}
