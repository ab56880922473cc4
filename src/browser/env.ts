/** The lab service's environment in a browser's policy worker. */
import { LabError } from '../core/errors';
import type { LabEnv } from '../core/lab/service';
import { selectBrowserBackend } from './backend';
import { SHIPPED_MODEL_FILES, shippedModel } from '../core/lab/models';
import { fetchedFolder, fetchedNotes, pickedFilesSource } from './files';
import { HubModel, parseHubRef } from '../core/hub/hub';
import { IdbHubCache } from './hub-cache';
import { startPythonSandbox } from './python';
import { openRunStore } from './runstore';

/** Optimiser moments above this are not kept with a browser checkpoint (about 64M parameters): IndexedDB quotas are small. */
const MAX_MOMENT_BYTES = 512 * 1024 * 1024;

export function browserLabEnv(): LabEnv {
  return {
    selectBackend: selectBrowserBackend,
    startPython: () => startPythonSandbox(),
    modelFiles: (source, signal) => {
      if (source.kind === 'shipped') {
        // Served by the app itself from public/ (kept for offline use with the rest: src/app/lib/offline.ts).
        const { name, folder } = shippedModel(source.name);
        const url = new URL(`${import.meta.env.BASE_URL}${folder}/`, location.href).href;
        return { files: fetchedFolder(url, SHIPPED_MODEL_FILES, name), label: name, notes: () => fetchedNotes(url) };
      }
      if (source.kind === 'files') return { files: pickedFilesSource(source.files, source.label), label: source.label };
      if (source.kind === 'hub') {
        const ref = parseHubRef(source.repo, { revision: source.revision, baseUrl: source.baseUrl });
        return { files: new HubModel(ref, { cache: new IdbHubCache(), token: source.token, signal }), label: `${ref.repo}@${ref.revision}` };
      }
      throw new LabError('model', 'a browser cannot read a folder by its path', { found: source.path, hint: 'pick the folder in the Model panel' });
    },
    openRunStore: () => openRunStore(),
    resourceUrls: () => performance.getEntriesByType('resource').map((e) => e.name),
    maxMomentBytes: MAX_MOMENT_BYTES,
  };
}
