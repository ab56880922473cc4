/**
 * The tiny model that ships with the app (public/models/thor-tiny/, written by `npm run pretrain`),
 * read over HTTP from the app itself.
 */
import { LabError } from '../../core/errors';
import type { FileSource } from '../../core/files';

export const SHIPPED_MODEL_FILES = ['config.json', 'model.safetensors', 'char_tokenizer.json'];

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
          hint: 'The shipped model is written by `npm run pretrain` into public/models/thor-tiny/; build the app again after it',
        });
      }
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

/** The shipped model's folder and its pretraining notes. */
export function shippedModel(baseUrl: string): { source: FileSource; notes(): Promise<Record<string, unknown> | undefined> } {
  return {
    source: fetchedFolder(baseUrl, SHIPPED_MODEL_FILES, 'thor-tiny'),
    async notes() {
      const response = await fetch(new URL('pretrain.json', baseUrl));
      return response.ok ? ((await response.json()) as Record<string, unknown>) : undefined;
    },
  };
}
