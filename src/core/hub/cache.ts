/**
 * Where downloaded Hub files are kept (docs/models.md#loading-from-the-hub): a folder on disk in Node
 * (src/node/hub-cache.ts), IndexedDB in a browser (src/browser/hub-cache.ts), memory in tests.
 * A download in progress is a partial, kept apart from the complete files: a file is complete only
 * once completePartial has checked its size and moved it over in one step, so a cut never leaves a
 * half file that reads as whole.
 */
import { LabError } from '../errors';
import { concatBytes } from '../files';

/** What a partial download holds, and what the server said of the whole file. */
export interface PartialInfo {
  /** Bytes received so far. */
  bytes: number;
  /** The whole file's size (Content-Length of a 200, or the total of a Content-Range). */
  total?: number;
  /** The server's ETag, sent back as If-Range so a changed file restarts instead of mixing. */
  etag?: string;
}

export interface HubCache {
  readonly label: string;
  /** Size of the complete file under `key`; undefined when there is none (a partial does not count). */
  completeSize(key: string): Promise<number | undefined>;
  /** A complete file. */
  read(key: string): Promise<Uint8Array>;
  /** Bytes [begin, end) of a complete file. */
  readRange(key: string, begin: number, end: number): Promise<Uint8Array>;
  partial(key: string): Promise<PartialInfo | undefined>;
  /** Starts a partial afresh, dropping any bytes held for `key`. */
  startPartial(key: string, info: { total?: number; etag?: string }): Promise<void>;
  appendPartial(key: string, bytes: Uint8Array): Promise<void>;
  /** Makes the partial the complete file in one step; refuses when its size is not its total. */
  completePartial(key: string): Promise<void>;
}

/** The error completePartial gives for a partial whose size is not the file's. */
export function incompleteError(label: string, key: string, info: PartialInfo | undefined): LabError {
  return new LabError('hub-cache', 'the download is not complete', {
    file: `${label}/${key}`,
    expected: info?.total !== undefined ? `${info.total} bytes` : 'a started download',
    found: info ? `${info.bytes} bytes` : 'no partial file',
    hint: 'Load the model again: the download resumes where it stopped',
  });
}

/** A cache in memory (tests, and a page that must not store anything). */
export class MemoryHubCache implements HubCache {
  readonly complete = new Map<string, Uint8Array>();
  readonly partials = new Map<string, { info: PartialInfo; chunks: Uint8Array[] }>();
  constructor(readonly label = 'memory cache') {}

  async completeSize(key: string): Promise<number | undefined> {
    return this.complete.get(key)?.byteLength;
  }
  async read(key: string): Promise<Uint8Array> {
    const bytes = this.complete.get(key);
    if (!bytes) throw incompleteError(this.label, key, await this.partial(key));
    return bytes;
  }
  async readRange(key: string, begin: number, end: number): Promise<Uint8Array> {
    return (await this.read(key)).subarray(begin, end);
  }
  async partial(key: string): Promise<PartialInfo | undefined> {
    const p = this.partials.get(key);
    return p && { ...p.info };
  }
  async startPartial(key: string, info: { total?: number; etag?: string }): Promise<void> {
    this.partials.set(key, { info: { bytes: 0, ...info }, chunks: [] });
  }
  async appendPartial(key: string, bytes: Uint8Array): Promise<void> {
    const p = this.partials.get(key);
    if (!p) throw incompleteError(this.label, key, undefined);
    p.chunks.push(bytes.slice());
    p.info.bytes += bytes.byteLength;
  }
  async completePartial(key: string): Promise<void> {
    const p = this.partials.get(key);
    if (!p || (p.info.total !== undefined && p.info.bytes !== p.info.total)) throw incompleteError(this.label, key, p?.info);
    this.complete.set(key, concatBytes(p.chunks, p.info.bytes));
    this.partials.delete(key);
  }
}
