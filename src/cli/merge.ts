/**
 * `npm run cli -- merge --model BASE_DIR --adapter ADAPTER_DIR --out DIR`: a LoRA adapter in PEFT's
 * layout (a PEFT save_pretrained folder, or a LoRA run's checkpoint folder) merged into its base
 * model, W + (alpha/r)·B·A, and written as a full model folder (docs/lora.md#files).
 */
import { existsSync } from 'node:fs';
import { LabError } from '../core/errors';
import { loadModelFolder, saveModelFolder } from '../core/model/checkpoint';
import { mergeWeights, readAdapter } from '../core/model/lora';
import { folderSink, folderSource } from '../node/files';
import { parseFlags } from './args';
import type { Subcommand } from './command';

const USAGE = 'merge --model BASE_DIR --adapter ADAPTER_DIR --out DIR';

export const mergeCommand: Subcommand = {
  summary: 'merge a LoRA adapter (PEFT layout) into its base model and write the full model folder',
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(args, { model: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' } }, USAGE);
    for (const flag of ['model', 'adapter', 'out'] as const) {
      if (!flags[flag]) throw new LabError('cli-args', `--${flag} is missing`, { field: `--${flag}`, expected: flag === 'out' ? 'a folder to write' : 'a folder', found: 'nothing', hint: `usage: npm run cli -- ${USAGE}` });
    }
    if (existsSync(flags.out!)) throw new LabError('cli-args', 'the output folder exists already', { field: '--out', found: flags.out, hint: 'pick a new folder' });
    const base = await loadModelFolder(folderSource(flags.model!));
    const { settings, baseModel, weights } = await readAdapter(folderSource(flags.adapter!), base.config);
    const written = await saveModelFolder(folderSink(flags.out!), { ...base, weights: mergeWeights(base.weights, weights, settings) });
    const modules = settings.targetModules.join(', ');
    console.log(`merged a rank-${settings.rank} adapter (alpha ${settings.alpha}; ${modules}${baseModel ? `; trained on ${baseModel}` : ''}) into ${flags.model}`);
    console.log(`wrote ${written.join(', ')} to ${flags.out}`);
    return 0;
  },
};
