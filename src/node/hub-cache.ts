/**
 * The Hub cache as a folder on disk (docs/models.md#loading-from-the-hub): complete files at
 * `<dir>/<host>/<owner>/<name>/<revision>/<file>`; a download in progress at `<same>.partial` with its
 * total and ETag in `<same>.partial.json`. A partial becomes the file by one rename, after its size
 * is checked, so a file under its own name is always whole.
 */
import { appendFile, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { LabError } from '../core/errors';
import { incompleteError, type HubCache, type PartialInfo } from '../core/hub/cache';

/** `$THOR_LAB_CACHE`, else the user's cache folder (XDG_CACHE_HOME, ~/Library/Caches, %LOCALAPPDATA%), then thor-lab/hub. */
export function defaultHubCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.THOR_LAB_CACHE) return join(env.THOR_LAB_CACHE, 'hub');
  const base =
    platform === 'win32'
      ? (env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'))
      : platform === 'darwin'
        ? join(homedir(), 'Library', 'Caches')
        : (env.XDG_CACHE_HOME ?? join(homedir(), '.cache'));
  return join(base, 'thor-lab', 'hub');
}

export class DiskHubCache implements HubCache {
  readonly label: string;
  constructor(readonly dir: string = defaultHubCacheDir()) {
    this.label = dir;
  }

  private path(key: string): string {
    const parts = key.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new LabError('hub-cache', 'a cache key must be a plain relative path', { file: this.dir, found: key });
    return join(this.dir, ...parts);
  }

  async completeSize(key: string): Promise<number | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  }

  async read(key: string): Promise<Uint8Array> {
    try {
      const buf = await readFile(this.path(key));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch {
      throw incompleteError(this.label, key, await this.partial(key));
    }
  }

  async readRange(key: string, begin: number, end: number): Promise<Uint8Array> {
    const handle = await open(this.path(key), 'r');
    try {
      const out = new Uint8Array(end - begin);
      let at = 0;
      while (at < out.length) {
        const { bytesRead } = await handle.read(out, at, out.length - at, begin + at);
        if (bytesRead === 0) throw new LabError('hub-cache', 'the file is shorter than the range read', { file: this.path(key), expected: `bytes ${begin}-${end}`, found: `end at ${begin + at}` });
        at += bytesRead;
      }
      return out;
    } finally {
      await handle.close();
    }
  }

  async partial(key: string): Promise<PartialInfo | undefined> {
    const file = `${this.path(key)}.partial`;
    try {
      const [s, meta] = await Promise.all([stat(file), readFile(`${file}.json`, 'utf8')]);
      return { ...(JSON.parse(meta) as Omit<PartialInfo, 'bytes'>), bytes: s.size };
    } catch {
      return undefined;
    }
  }

  async startPartial(key: string, info: { total?: number; etag?: string }): Promise<void> {
    const file = `${this.path(key)}.partial`;
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, new Uint8Array(0));
    await writeFile(`${file}.json`, JSON.stringify({ total: info.total, etag: info.etag }));
  }

  async appendPartial(key: string, bytes: Uint8Array): Promise<void> {
    await appendFile(`${this.path(key)}.partial`, bytes);
  }

  async completePartial(key: string): Promise<void> {
    const info = await this.partial(key);
    if (!info || (info.total !== undefined && info.bytes !== info.total)) throw incompleteError(this.label, key, info);
    const file = this.path(key);
    await rename(`${file}.partial`, file);
    await rm(`${file}.partial.json`, { force: true });
  }
}
