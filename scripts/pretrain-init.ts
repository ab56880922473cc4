/**
 * The model a pretraining phase starts from: seeded weights, or an earlier checkpoint (`--init`),
 * grown deeper when the phase asks for more layers than the checkpoint has (`--layers`;
 * src/core/model/grow.ts keeps what the checkpoint computes).
 */
import type { ModelConfig } from '../src/core/model/config';
import { Transformer } from '../src/core/model/transformer';
import { loadConfig, loadWeights } from '../src/core/model/checkpoint';
import { growLayers } from '../src/core/model/grow';
import { folderSource } from '../src/node/files';

export async function initialModel(cfg: ModelConfig, seed: number, init?: string): Promise<Transformer> {
  const model = Transformer.create(cfg, { seed });
  if (!init) return model;
  const src = folderSource(init);
  const initCfg = await loadConfig(src);
  const trained = await loadWeights(src, initCfg);
  if (initCfg.num_hidden_layers === cfg.num_hidden_layers) {
    model.loadWeights(trained, init);
  } else {
    model.loadWeights(growLayers(initCfg, trained, cfg, await model.exportWeights()), init);
    console.log(`grew ${init} from ${initCfg.num_hidden_layers} to ${cfg.num_hidden_layers} layers (the new ones add nothing until trained)`);
  }
  return model;
}
