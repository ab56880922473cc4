/** Folders on disk as FileSource / FileSink (CLI, server, tests, benchmarks). */
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../core/errors';
import type { FileSink, FileSource } from '../core/files';

export function folderSource(dir: string): FileSource {
  return {
    label: dir,
    async list() {
      try {
        const entries = await readdir(dir, { withFileTypes: true });
        return entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name);
      } catch (e) {
        throw new LabError('files', `cannot read the folder: ${(e as Error).message}`, { file: dir, hint: 'Check the path' });
      }
    },
    async read(name) {
      const buf = await readFile(join(dir, name));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    },
    async size(name) {
      return (await stat(join(dir, name))).size;
    },
    async readRange(name, begin, end) {
      const handle = await open(join(dir, name), 'r');
      try {
        const out = new Uint8Array(end - begin);
        for (let at = 0; at < out.length; ) {
          const { bytesRead } = await handle.read(out, at, out.length - at, begin + at);
          if (bytesRead === 0) throw new LabError('files', 'the file ends before the range read', { file: join(dir, name), expected: `bytes ${begin}-${end}`, found: `end at ${begin + at}` });
          at += bytesRead;
        }
        return out;
      } finally {
        await handle.close();
      }
    },
  };
}

/** Writes into dir, creating it (and its parents) on first write. */
export function folderSink(dir: string): FileSink {
  let made: Promise<unknown> | undefined;
  return {
    async write(name, bytes) {
      made ??= mkdir(dir, { recursive: true });
      await made;
      await writeFile(join(dir, name), bytes);
    },
  };
}
