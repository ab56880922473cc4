/**
 * The model a command runs: `--model` names a folder on disk, a Hugging Face repository as
 * `hf:owner/name` (optionally `@revision`), or a Hub address (https://host/owner/name[/tree/rev]);
 * without it, the shipped tiny model. HF_ENDPOINT names a mirror (docs/models.md#loading-from-the-hub).
 * `--weights f16` holds a real model's matrices as float16 pairs on WebGPU (docs/engine.md#packed-f16-weights).
 */
import type { EventSink, LabApi, ModelSource, ModelSummary } from '../core/lab/api';
import { LabError } from '../core/errors';
import { downloadText } from './progress';

export function modelSourceOf(flag: string | undefined, weights?: string): ModelSource {
  if (weights !== undefined && weights !== 'f32' && weights !== 'f16') throw new LabError('cli-args', `--weights must be f32 or f16, not "${weights}"`, { field: '--weights', expected: 'f32 or f16', found: weights });
  const format = weights === 'f16' ? { weights: 'f16' as const } : {};
  if (flag === undefined || flag === '') {
    if (weights === 'f16') throw new LabError('cli-args', '--weights f16 is for real models: the shipped tiny model trains every weight', { field: '--weights', expected: 'f32 with the shipped model, or --model', found: 'f16' });
    return { kind: 'shipped' };
  }
  if (flag.startsWith('hf:')) {
    const [repo, revision] = flag.slice(3).split('@');
    return { kind: 'hub', repo: repo!, ...(revision && { revision }), ...format };
  }
  if (/^https?:\/\//i.test(flag)) return { kind: 'hub', repo: flag, ...format };
  return { kind: 'path', path: flag, ...format };
}

/** Loads the model `--model` names, printing a Hub download's progress and the memory budget to stderr. */
export async function loadCliModel(lab: Pick<LabApi, 'loadModel'>, flag: string | undefined, weights?: string): Promise<ModelSummary> {
  let last = 0;
  const onEvent: EventSink = (e) => {
    if (e.type === 'download' && (Date.now() - last > 1000 || e.progress.done === e.progress.total)) {
      last = Date.now();
      process.stderr.write(`${downloadText(e.progress)}\n`);
    } else if (e.type === 'memory-budget' && !e.fits) {
      process.stderr.write('memory budget: this model does not fit the device at the default settings\n');
    }
  };
  return lab.loadModel(modelSourceOf(flag, weights), onEvent);
}
