/**
 * Model folders in the browser: the files a user picked (an <input type="file" multiple
 * webkitdirectory> or a drop), and folders served over HTTP (the shipped model, from the app itself).
 */
import { LabError } from '../core/errors';
import type { FileSource } from '../core/files';

/**
 * Picked files by name. File.name is the base name even when a directory was picked; on a clash
 * (a subfolder holding a file of the same name) the one nearest the top of the folder wins.
 */
export function pickedFilesSource(picked: FileList | File[], label = 'picked files'): FileSource {
  const depth = (f: File) => (f.webkitRelativePath || f.name).split('/').length;
  const byName = new Map<string, File>();
  for (const f of Array.from(picked)) {
    const seen = byName.get(f.name);
    if (!seen || depth(f) < depth(seen)) byName.set(f.name, f);
  }
  return {
    label,
    async list() {
      return [...byName.keys()];
    },
    async read(name) {
      return new Uint8Array(await file(name).arrayBuffer());
    },
    // Weights are read tensor by tensor through these: a picked 2 GB file is never in memory whole.
    async size(name) {
      return file(name).size;
    },
    async readRange(name, begin, end) {
      return new Uint8Array(await file(name).slice(begin, end).arrayBuffer());
    },
  };

  function file(name: string): File {
    const f = byName.get(name);
    if (!f) throw new LabError('files', `no picked file named ${name}`, { file: label, hint: 'Pick the whole model folder' });
    return f;
  }
}

/** A folder served at `baseUrl` (ending in "/") holding the named files. */
export function fetchedFolder(baseUrl: string, names: readonly string[], label: string): FileSource {
  return {
    label,
    async list() {
      return [...names];
    },
    async read(name) {
      let response: Response;
      try {
        response = await fetch(new URL(name, baseUrl));
      } catch (e) {
        throw new LabError('files', `could not fetch ${name}: ${(e as Error).message}`, { file: label, hint: 'Check the connection to the app and reload' });
      }
      if (!response.ok) {
        throw new LabError('files', `could not fetch ${name} (HTTP ${response.status})`, {
          file: label,
          hint: 'The shipped models are written by `npm run pretrain` into public/models/; build the app again after it',
        });
      }
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

/** The pretraining notes (pretrain.json) next to a served model, if there are any. */
export async function fetchedNotes(baseUrl: string): Promise<Record<string, unknown> | undefined> {
  const response = await fetch(new URL('pretrain.json', baseUrl));
  return response.ok ? ((await response.json()) as Record<string, unknown>) : undefined;
}
