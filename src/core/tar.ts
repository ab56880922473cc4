/**
 * Uncompressed POSIX tar (ustar), written and read: a model folder or a run folder as one download
 * that `tar -xf` (Linux, macOS, Windows 10+) unpacks. Weights barely compress, so no zip is needed.
 */
import { LabError } from './errors';
import { bytesToText, textToBytes } from './files';

const BLOCK = 512;

/** The files (paths inside the folder) as one archive that unpacks into `folder/`. */
export function writeTar(folder: string, files: Map<string, Uint8Array>): Uint8Array {
  const blocks: Uint8Array[] = [];
  let total = 0;
  for (const [name, bytes] of files) {
    const header = tarHeader(`${folder}/${name}`, bytes.length);
    const padded = new Uint8Array(Math.ceil(bytes.length / BLOCK) * BLOCK);
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
  const h = new Uint8Array(BLOCK);
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

export interface TarEntry {
  path: string;
  bytes: Uint8Array;
}

function cString(bytes: Uint8Array, offset: number, length: number): string {
  const field = bytes.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return bytesToText(end < 0 ? field : field.subarray(0, end));
}

function octal(bytes: Uint8Array, offset: number, length: number): number {
  const text = cString(bytes, offset, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** Path from a pax extended header ("LEN path=VALUE\n" records), if it sets one. */
function paxPath(data: Uint8Array): string | undefined {
  const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(bytesToText(data));
  return m?.[1];
}

/**
 * Regular files of a ustar / pax / GNU tar archive (directories and links skipped), which must end
 * with its end-of-archive block. Each file's bytes are a copy, so storing one does not keep the
 * whole archive alive.
 */
export function readTar(bytes: Uint8Array, file: string): TarEntry[] {
  const notTar = (found: string) =>
    new LabError('BAD_TAR', 'not a tar archive', {
      file,
      expected: 'a .tar file as THOR Lab exports it',
      found,
      hint: 'pick the .tar file as it was downloaded, without unpacking or recompressing it',
    });
  const entries: TarEntry[] = [];
  let longPath: string | undefined;
  let at = 0;
  while (at + BLOCK <= bytes.length) {
    const header = bytes.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) return entries;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
    if (sum !== octal(header, 148, 8))
      throw notTar(at === 0 ? `a file that starts with ${JSON.stringify(bytesToText(bytes.subarray(0, 16)))}` : `a damaged header at byte ${at}`);
    const size = octal(header, 124, 12);
    const start = at + BLOCK;
    if (start + size > bytes.length) throw notTar(`an archive cut short (${bytes.length} bytes, an entry needs ${start + size})`);
    const data = bytes.subarray(start, start + size);
    at = start + Math.ceil(size / BLOCK) * BLOCK;
    const type = String.fromCharCode(header[156]);
    if (type === 'L') longPath = cString(data, 0, data.length);
    else if (type === 'x') longPath = paxPath(data) ?? longPath;
    else if (type === '0' || type === '\0' || type === '7') {
      const prefix = cString(header, 257, 5) === 'ustar' ? cString(header, 345, 155) : '';
      const name = cString(header, 0, 100);
      entries.push({ path: longPath ?? (prefix ? `${prefix}/${name}` : name), bytes: data.slice() });
      longPath = undefined;
    } else longPath = undefined;
  }
  // No end-of-archive block: the download or copy stopped early, and files may be missing.
  throw notTar(bytes.length === 0 ? 'an empty file' : `an archive cut short after ${entries.length} file(s) (${bytes.length} bytes, no end-of-archive block)`);
}
