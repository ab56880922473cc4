/**
 * The model a command runs: `--model` names a folder on disk, a Hugging Face repository as
 * `hf:owner/name` (optionally `@revision`), or a Hub address (https://host/owner/name[/tree/rev]);
 * without it, the shipped tiny model. HF_ENDPOINT names a mirror (docs/models.md#loading-from-the-hub).
 */
import type { EventSink, LabApi, ModelSource, ModelSummary } from '../core/lab/api';
import { downloadText } from './progress';

export function modelSourceOf(flag: string | undefined): ModelSource {
  if (flag === undefined || flag === '') return { kind: 'shipped' };
  if (flag.startsWith('hf:')) {
    const [repo, revision] = flag.slice(3).split('@');
    return { kind: 'hub', repo: repo!, ...(revision && { revision }) };
  }
  if (/^https?:\/\//i.test(flag)) return { kind: 'hub', repo: flag };
  return { kind: 'path', path: flag };
}

/** Loads the model `--model` names, printing a Hub download's progress and the memory budget to stderr. */
export async function loadCliModel(lab: Pick<LabApi, 'loadModel'>, flag: string | undefined): Promise<ModelSummary> {
  let last = 0;
  const onEvent: EventSink = (e) => {
    if (e.type === 'download' && (Date.now() - last > 1000 || e.progress.done === e.progress.total)) {
      last = Date.now();
      process.stderr.write(`${downloadText(e.progress)}\n`);
    } else if (e.type === 'memory-budget' && !e.fits) {
      process.stderr.write('memory budget: this model does not fit the device at the default settings\n');
    }
  };
  return lab.loadModel(modelSourceOf(flag), onEvent);
}
