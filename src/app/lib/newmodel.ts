import { parseModelConfig, type ModelConfig } from '../../core/model/config';
import type { Tokenizer } from '../../core/tokenizer/types';

/** The size of a new character-level model, as the Model panel asks for it. */
export interface NewModelSize {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  context: number;
}

/** The HF config of a new Llama-style character model of that size (tied embeddings). */
export function newModelConfig(size: NewModelSize, tokenizer: Pick<Tokenizer, 'vocabSize' | 'bosId' | 'eosId'>): ModelConfig {
  return parseModelConfig(
    {
      model_type: 'llama',
      num_hidden_layers: size.layers,
      hidden_size: size.hidden,
      num_attention_heads: size.heads,
      num_key_value_heads: size.kvHeads,
      intermediate_size: size.intermediate,
      max_position_embeddings: size.context,
      vocab_size: tokenizer.vocabSize,
      bos_token_id: tokenizer.bosId,
      eos_token_id: tokenizer.eosId,
      tie_word_embeddings: true,
    },
    'new model',
  );
}
