/**
 * The Hub cache in a browser, in IndexedDB through idb (docs/models.md#loading-from-the-hub). A file
 * is a list of chunks (each write of the downloader is one, a few MiB), so a 1 GB shard is never one
 * allocation and a range read touches only its chunks. A download in progress is a record in
 * `partials`; completing it writes the `files` record and deletes the partial in one transaction, so
 * a file listed in `files` is always whole.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { incompleteError, type HubCache, type PartialInfo } from '../core/hub/cache';

interface FileRecord {
  size: number;
  /** Byte length of each chunk, in order. */
  chunks: number[];
}

interface HubDB extends DBSchema {
  files: { key: string; value: FileRecord };
  partials: { key: string; value: PartialInfo & { chunks: number[] } };
  /** `${key}#${index}` → bytes. */
  chunks: { key: string; value: Uint8Array };
}

const DB_NAME = 'thor-lab-hub';

export class IdbHubCache implements HubCache {
  readonly label = 'browser storage (IndexedDB)';
  private db: Promise<IDBPDatabase<HubDB>> | undefined;

  private open(): Promise<IDBPDatabase<HubDB>> {
    this.db ??= openDB<HubDB>(DB_NAME, 1, {
      upgrade(db) {
        db.createObjectStore('files');
        db.createObjectStore('partials');
        db.createObjectStore('chunks');
      },
    });
    return this.db;
  }

  async completeSize(key: string): Promise<number | undefined> {
    return (await (await this.open()).get('files', key))?.size;
  }

  async read(key: string): Promise<Uint8Array> {
    const record = await (await this.open()).get('files', key);
    if (!record) throw incompleteError(this.label, key, await this.partial(key));
    return this.readRange(key, 0, record.size);
  }

  async readRange(key: string, begin: number, end: number): Promise<Uint8Array> {
    const db = await this.open();
    const record = await db.get('files', key);
    if (!record) throw incompleteError(this.label, key, await this.partial(key));
    const out = new Uint8Array(end - begin);
    let start = 0;
    for (let i = 0; i < record.chunks.length && start < end; i++) {
      const stop = start + record.chunks[i];
      if (stop > begin) {
        const bytes = await db.get('chunks', `${key}#${i}`);
        if (!bytes) throw incompleteError(this.label, key, undefined);
        const from = Math.max(begin, start);
        const to = Math.min(end, stop);
        out.set(bytes.subarray(from - start, to - start), from - begin);
      }
      start = stop;
    }
    return out;
  }

  async partial(key: string): Promise<PartialInfo | undefined> {
    const p = await (await this.open()).get('partials', key);
    return p && { bytes: p.bytes, total: p.total, etag: p.etag };
  }

  async startPartial(key: string, info: { total?: number; etag?: string }): Promise<void> {
    const db = await this.open();
    const tx = db.transaction(['partials', 'chunks', 'files'], 'readwrite');
    const old = (await tx.objectStore('partials').get(key)) ?? (await tx.objectStore('files').get(key));
    for (let i = 0; i < (old?.chunks.length ?? 0); i++) await tx.objectStore('chunks').delete(`${key}#${i}`);
    await tx.objectStore('files').delete(key);
    await tx.objectStore('partials').put({ bytes: 0, total: info.total, etag: info.etag, chunks: [] }, key);
    await tx.done;
  }

  async appendPartial(key: string, bytes: Uint8Array): Promise<void> {
    const db = await this.open();
    // One downloader writes a key at a time (HubModel keeps one download per file), so the check can precede the transaction.
    if (!(await db.get('partials', key))) throw incompleteError(this.label, key, undefined);
    const tx = db.transaction(['partials', 'chunks'], 'readwrite');
    const p = (await tx.objectStore('partials').get(key))!;
    // The chunk and the partial's new length are written together: a cut never counts bytes it lost.
    await tx.objectStore('chunks').put(bytes.slice(), `${key}#${p.chunks.length}`);
    p.chunks.push(bytes.byteLength);
    p.bytes += bytes.byteLength;
    await tx.objectStore('partials').put(p, key);
    await tx.done;
  }

  async completePartial(key: string): Promise<void> {
    const db = await this.open();
    const seen = await db.get('partials', key);
    if (!seen || (seen.total !== undefined && seen.bytes !== seen.total)) throw incompleteError(this.label, key, seen);
    const tx = db.transaction(['partials', 'files'], 'readwrite');
    const p = (await tx.objectStore('partials').get(key))!;
    await tx.objectStore('files').put({ size: p.bytes, chunks: p.chunks }, key);
    await tx.objectStore('partials').delete(key);
    await tx.done;
  }
}
