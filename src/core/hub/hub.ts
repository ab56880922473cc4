/**
 * Model folders from the Hugging Face Hub or a mirror of it (docs/models.md#loading-from-the-hub):
 * files at `${base}/${repo}/resolve/${revision}/${file}`, downloaded with progress, resumed with an
 * HTTP Range request after a cut, and kept in a HubCache so a reload downloads nothing. A HubModel
 * is a FileSource: listing it fetches only the small files (config.json first), and the weights are
 * downloaded when first read, or all at once by download(), so a memory check on config.json can
 * refuse a model before any weights travel.
 */
import { LabError } from '../errors';
import { bytesToText, concatBytes, textToBytes, type FileSource } from '../files';
import type { HubCache } from './cache';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** A model repository on a Hub. */
export interface HubRef {
  /** owner/name, e.g. Qwen/Qwen2.5-0.5B-Instruct */
  repo: string;
  /** A branch, tag or commit hash. */
  revision: string;
  /** The Hub's address without a trailing slash (https://huggingface.co, https://hf-mirror.com). */
  baseUrl: string;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/**
 * A repo id (`Qwen/Qwen2.5-0.5B-Instruct`) or a page / file address on a Hub
 * (`https://hf-mirror.com/Qwen/Qwen2.5-0.5B-Instruct/tree/v1`), with a revision and a base address
 * for repo ids (an address names its own base, and its revision when it has /tree/ or /resolve/).
 */
export function parseHubRef(input: string, options: { revision?: string; baseUrl?: string } = {}): HubRef {
  const text = input.trim();
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new LabError('hub', 'not a valid address', { field: 'repo', expected: 'https://host/owner/name', found: text });
    }
    const parts = url.pathname.split('/').filter(Boolean);
    const [owner, name, kind, rev] = parts;
    if (!owner || !name) throw new LabError('hub', 'the address names no repository', { field: 'repo', expected: 'https://host/owner/name', found: text });
    const revision = (kind === 'tree' || kind === 'resolve') && rev ? decodeURIComponent(rev) : (options.revision ?? DEFAULT_REVISION);
    return { repo: `${owner}/${name}`, revision, baseUrl: url.origin };
  }
  if (!REPO_ID.test(text)) throw new LabError('hub', 'not a Hub repository id', { field: 'repo', expected: 'owner/name (e.g. Qwen/Qwen2.5-0.5B-Instruct) or a full address', found: JSON.stringify(text) });
  const baseUrl = (options.baseUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/i.test(baseUrl)) throw new LabError('hub', 'the Hub address is not an http(s) address', { field: 'baseUrl', expected: 'e.g. https://huggingface.co or https://hf-mirror.com', found: baseUrl });
  return { repo: text, revision: options.revision?.trim() || DEFAULT_REVISION, baseUrl };
}

/** The Hub's address of a file: `${base}/${repo}/resolve/${revision}/${file}`. */
export function hubFileUrl(ref: HubRef, file: string): string {
  return `${ref.baseUrl}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** The cache key of a file: host, repo, revision, file (the revision as named: pass a commit hash to pin one). */
export function hubCacheKey(ref: HubRef, file: string): string {
  return `${new URL(ref.baseUrl).host}/${ref.repo}/${ref.revision}/${file}`;
}

export const CONFIG_FILE = 'config.json';
const WEIGHTS_FILE = 'model.safetensors';
const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
/** Small files fetched with the config; `required` ones must exist. */
export const SMALL_FILES: readonly { name: string; required: boolean }[] = [
  { name: CONFIG_FILE, required: true },
  { name: 'generation_config.json', required: false },
  { name: 'tokenizer.json', required: true },
  { name: 'tokenizer_config.json', required: false },
  { name: 'chat_template.jinja', required: false },
];
/** What the cache keeps of a resolved repo: which files it has and their sizes (a reload needs no request). */
const MANIFEST = '.thor-manifest.json';

/** Progress of a download: one file's bytes and all of them, with the rate of this session's transfer. */
export interface DownloadProgress {
  file: string;
  fileDone: number;
  /** Undefined when the server sent no size. */
  fileTotal: number | undefined;
  done: number;
  total: number;
  /** Bytes a second received since the download started (resumed or cached bytes excluded). */
  bytesPerSecond: number;
  /** Seconds left at that rate; undefined before any byte arrived. */
  etaSeconds: number | undefined;
  /** Files of the repository, and how many of them are whole (cached before, or downloaded now). */
  files: number;
  filesDone: number;
}

export type FetchLike = (input: string, init?: { method?: string; headers?: Record<string, string>; signal?: AbortSignal }) => Promise<Response>;

export interface HubOptions {
  cache: HubCache;
  fetch?: FetchLike;
  /** An access token for gated or private repositories (sent as a Bearer token; never cached). */
  token?: string;
  /** Attempts after a cut or a network error within one download (each resumes); default 3. */
  retries?: number;
  /** Bytes gathered before each write to the cache; default 4 MiB. */
  writeBytes?: number;
  signal?: AbortSignal;
}

class NotFound extends Error {}

/** A file the server does not have. */
function statusError(url: string, status: number, statusText: string, file: string): LabError {
  const hint =
    status === 401 || status === 403
      ? 'The repository is gated or private: accept its licence on the Hub and give an access token (HF_TOKEN in Node, the token field in the Model panel), or use a mirror that has it'
      : status === 404
        ? 'Check the repository id and revision, and that the file exists there'
        : 'The Hub or mirror failed: try again, or another mirror';
  return new LabError('hub', `the Hub answered HTTP ${status}${statusText ? ` ${statusText}` : ''} for ${url}`, { file, expected: 'HTTP 200 or 206', found: `HTTP ${status}`, hint });
}

// "bytes a-b/total" gives [a, total]; "bytes star/total" (a 416) gives [undefined, total].
function parseContentRange(value: string | null): { start?: number; total?: number } {
  const m = value?.match(/^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i);
  if (!m) return {};
  return { start: m[1] !== undefined ? Number(m[1]) : undefined, total: m[2] !== '*' ? Number(m[2]) : undefined };
}

/** A repository on a Hub as a model folder (FileSource), downloading into a cache. */
export class HubModel implements FileSource {
  readonly label: string;
  private readonly fetch: FetchLike;
  private files: Map<string, number | undefined> | undefined;
  private listing: Promise<Map<string, number | undefined>> | undefined;
  private readonly pending = new Map<string, Promise<void>>();
  private progress: { done: Map<string, number>; started: number; received: number; listener?: (p: DownloadProgress) => void } = { done: new Map(), started: Date.now(), received: 0 };

  constructor(
    readonly ref: HubRef,
    private readonly options: HubOptions,
  ) {
    this.label = `${ref.baseUrl}/${ref.repo}@${ref.revision}`;
    const fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    // The token goes to the Hub only: fetch drops Authorization when a download redirects to another host.
    this.fetch = options.token ? (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${options.token}` } }) : fetch;
  }

  urlOf(file: string): string {
    return hubFileUrl(this.ref, file);
  }

  /** The files the repository has (config, tokenizer, weights): small files are fetched, weights only sized. */
  async list(): Promise<string[]> {
    return [...(await this.resolve()).keys()];
  }

  async read(name: string): Promise<Uint8Array> {
    await this.ensure(name);
    return this.options.cache.read(hubCacheKey(this.ref, name));
  }

  async readRange(name: string, begin: number, end: number): Promise<Uint8Array> {
    await this.ensure(name);
    return this.options.cache.readRange(hubCacheKey(this.ref, name), begin, end);
  }

  async size(name: string): Promise<number> {
    await this.ensure(name);
    return (await this.options.cache.completeSize(hubCacheKey(this.ref, name)))!;
  }

  /** Downloads every file not yet in the cache, reporting progress over all of them. */
  async download(onProgress?: (p: DownloadProgress) => void): Promise<void> {
    const files = await this.resolve();
    this.progress = { done: new Map(), started: Date.now(), received: 0, listener: onProgress };
    for (const name of files.keys()) {
      const size = await this.options.cache.completeSize(hubCacheKey(this.ref, name));
      if (size !== undefined) this.progress.done.set(name, size);
    }
    for (const name of files.keys()) await this.ensure(name);
    this.progress.listener = undefined;
  }

  private resolve(): Promise<Map<string, number | undefined>> {
    this.listing ??= this.resolveNow().catch((e: unknown) => {
      this.listing = undefined;
      throw e;
    });
    return this.listing;
  }

  private async resolveNow(): Promise<Map<string, number | undefined>> {
    const cache = this.options.cache;
    const manifestKey = hubCacheKey(this.ref, MANIFEST);
    if ((await cache.completeSize(manifestKey)) !== undefined) {
      const saved = JSON.parse(bytesToText(await cache.read(manifestKey))) as { files: Record<string, number | null> };
      this.files = new Map(Object.entries(saved.files).map(([n, s]) => [n, s ?? undefined]));
      return this.files;
    }
    const files = new Map<string, number | undefined>();
    this.files = files;
    for (const { name, required } of SMALL_FILES) {
      files.set(name, undefined);
      try {
        if ((await cache.completeSize(hubCacheKey(this.ref, name))) === undefined) await this.fetchFile(name);
        files.set(name, await cache.completeSize(hubCacheKey(this.ref, name)));
      } catch (e) {
        files.delete(name);
        if (!(e instanceof NotFound)) throw e;
        if (required) throw statusError(this.urlOf(name), 404, 'Not Found', this.label);
      }
    }
    const single = await this.head(WEIGHTS_FILE);
    if (single.found) {
      files.set(WEIGHTS_FILE, single.size);
    } else {
      files.set(WEIGHTS_INDEX_FILE, undefined);
      try {
        if ((await cache.completeSize(hubCacheKey(this.ref, WEIGHTS_INDEX_FILE))) === undefined) await this.fetchFile(WEIGHTS_INDEX_FILE);
      } catch (e) {
        if (e instanceof NotFound) throw new LabError('hub', `the repository has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE} (HTTP 404 for ${this.urlOf(WEIGHTS_FILE)} and ${this.urlOf(WEIGHTS_INDEX_FILE)})`, { file: this.label, expected: 'safetensors weights', found: 'HTTP 404', hint: 'The lab reads safetensors only: pick a repository that has them (most do), or convert the weights' });
        throw e;
      }
      const key = hubCacheKey(this.ref, WEIGHTS_INDEX_FILE);
      files.set(WEIGHTS_INDEX_FILE, await cache.completeSize(key));
      let map: unknown;
      try {
        map = (JSON.parse(bytesToText(await cache.read(key))) as { weight_map?: unknown }).weight_map;
      } catch (e) {
        throw new LabError('hub', `not valid JSON: ${(e as Error).message}`, { file: this.urlOf(WEIGHTS_INDEX_FILE) });
      }
      if (typeof map !== 'object' || map === null) throw new LabError('hub', 'the index has no weight_map', { file: this.urlOf(WEIGHTS_INDEX_FILE), field: 'weight_map', expected: '{tensor name: shard file}', found: JSON.stringify(map) });
      for (const shard of [...new Set(Object.values(map as Record<string, unknown>).map(String))].sort()) {
        const h = await this.head(shard);
        if (!h.found) throw statusError(this.urlOf(shard), 404, 'Not Found', this.label);
        files.set(shard, h.size);
      }
    }
    const manifest = textToBytes(JSON.stringify({ files: Object.fromEntries([...files].map(([n, s]) => [n, s ?? null])) }));
    await cache.startPartial(manifestKey, { total: manifest.byteLength });
    await cache.appendPartial(manifestKey, manifest);
    await cache.completePartial(manifestKey);
    return files;
  }

  /** A file's size without downloading it (HEAD, following the Hub's redirect to its file store). */
  private async head(file: string): Promise<{ found: boolean; size?: number }> {
    const url = this.urlOf(file);
    let res: Response;
    try {
      res = await this.fetch(url, { method: 'HEAD', signal: this.options.signal });
    } catch (e) {
      throw new LabError('hub', `cannot reach ${url}: ${(e as Error).message}`, { file: this.label, hint: 'Check the connection, or set another Hub address (a mirror)' });
    }
    if (res.status === 404) return { found: false };
    if (!res.ok) throw statusError(url, res.status, res.statusText, this.label);
    const length = res.headers.get('content-length');
    return { found: true, size: length !== null ? Number(length) : undefined };
  }

  private async ensure(name: string): Promise<void> {
    const files = await this.resolve();
    if (!files.has(name)) throw new LabError('hub', `the repository has no file named ${name}`, { file: this.label, expected: [...files.keys()].join(', ') });
    const key = hubCacheKey(this.ref, name);
    if ((await this.options.cache.completeSize(key)) !== undefined) return;
    let p = this.pending.get(name);
    if (!p) {
      p = this.fetchFile(name).finally(() => this.pending.delete(name));
      this.pending.set(name, p);
    }
    await p;
  }

  private report(file: string, fileDone: number, fileTotal: number | undefined, received: number): void {
    const pr = this.progress;
    pr.received += received;
    pr.done.set(file, fileDone);
    if (!pr.listener) return;
    let done = 0;
    for (const d of pr.done.values()) done += d;
    let total = 0;
    let filesDone = 0;
    for (const [name, size] of this.files ?? []) {
      const whole = (name === file ? fileTotal : size) ?? pr.done.get(name);
      total += whole ?? 0;
      if (whole !== undefined && pr.done.get(name) === whole) filesDone++;
    }
    const seconds = Math.max(1e-3, (Date.now() - pr.started) / 1000);
    const bytesPerSecond = pr.received / seconds;
    pr.listener({ file, fileDone, fileTotal, done, total, bytesPerSecond, etaSeconds: bytesPerSecond > 0 ? Math.max(0, total - done) / bytesPerSecond : undefined, files: this.files?.size ?? 0, filesDone });
  }

  /**
   * Downloads one file into the cache, going on from a partial with a Range request: the server's
   * Content-Range must start where the partial ends and name the same total, else the file starts
   * over. A cut (an error while reading the body) keeps what arrived and tries again.
   */
  private async fetchFile(file: string): Promise<void> {
    const cache = this.options.cache;
    const key = hubCacheKey(this.ref, file);
    const url = this.urlOf(file);
    const retries = this.options.retries ?? 3;
    const writeBytes = this.options.writeBytes ?? 4 << 20;
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const part = await cache.partial(key);
      const from = part?.bytes ?? 0;
      const headers: Record<string, string> = {};
      if (part && from > 0) {
        headers.Range = `bytes=${from}-`;
        if (part.etag) headers['If-Range'] = part.etag;
      }
      let res: Response;
      try {
        res = await this.fetch(url, { headers, signal: this.options.signal });
      } catch (e) {
        lastError = e;
        if (this.options.signal?.aborted) break;
        continue;
      }
      if (res.status === 404) {
        await res.body?.cancel();
        throw new NotFound(url);
      }
      const etag = res.headers.get('etag') ?? undefined;
      let total: number | undefined;
      let at: number;
      if (res.status === 206) {
        const range = parseContentRange(res.headers.get('content-range'));
        if (range.start !== from || (part?.total !== undefined && range.total !== part.total)) {
          // Not the rest of the same file: start over.
          await res.body?.cancel();
          await cache.startPartial(key, {});
          continue;
        }
        total = range.total;
        at = from;
      } else if (res.status === 416 && part) {
        await res.body?.cancel();
        const range = parseContentRange(res.headers.get('content-range'));
        if (range.total === from && (part.total === undefined || part.total === from)) {
          await cache.completePartial(key);
          return;
        }
        await cache.startPartial(key, {});
        continue;
      } else if (res.ok) {
        const length = res.headers.get('content-length');
        total = length !== null && !res.headers.get('content-encoding') ? Number(length) : undefined;
        await cache.startPartial(key, { total, etag });
        at = 0;
      } else {
        await res.body?.cancel();
        throw statusError(url, res.status, res.statusText, this.label);
      }
      this.report(file, at, total, 0);
      const reader = res.body?.getReader();
      const held: Uint8Array[] = [];
      let heldBytes = 0;
      const flush = async () => {
        if (heldBytes === 0) return;
        const chunk = held.length === 1 ? held[0] : concatBytes(held, heldBytes);
        held.length = 0;
        heldBytes = 0;
        await cache.appendPartial(key, chunk);
      };
      try {
        for (;;) {
          const { done, value } = reader ? await reader.read() : { done: true, value: undefined };
          if (done || !value) break;
          held.push(value);
          heldBytes += value.byteLength;
          at += value.byteLength;
          if (heldBytes >= writeBytes) await flush();
          this.report(file, at, total, value.byteLength);
        }
        await flush();
      } catch (e) {
        // Keep what arrived: the next attempt (or the next load) asks for the rest.
        await flush();
        lastError = e;
        if (this.options.signal?.aborted) break;
        continue;
      }
      if (total !== undefined && at !== total) {
        lastError = new Error(`the body ended after ${at} of ${total} bytes`);
        continue;
      }
      await cache.completePartial(key);
      return;
    }
    const part = await cache.partial(key);
    throw new LabError('hub', `the download of ${url} stopped: ${lastError instanceof Error ? lastError.message : String(lastError)}`, {
      file: this.label,
      expected: part?.total !== undefined ? `${part.total} bytes` : 'the whole file',
      found: `${part?.bytes ?? 0} bytes`,
      hint: 'Load the model again: the download resumes where it stopped',
    });
  }
}


/** True for a source that downloads (a HubModel): the service reports its progress. */
export function isDownloading(src: FileSource): src is FileSource & { download(onProgress?: (p: DownloadProgress) => void): Promise<void> } {
  return typeof (src as { download?: unknown }).download === 'function';
}
