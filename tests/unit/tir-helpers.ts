/**
 * A small real model taught, by SFT on a few fixed TIR responses, to write exactly those responses
 * under greedy decoding: the rollout tests then drive real tfjs generation and real Pyodide with
 * behaviour they can predict.
 */
import { parseModelConfig } from '../../src/core/model/config';
import { Transformer } from '../../src/core/model/transformer';
import { sftSequence, trainSft } from '../../src/core/rl/sft';
import { CharTokenizer } from '../../src/core/tokenizer/char';

export const tokenizer = CharTokenizer.fromCharset();

export async function memorisingModel(examples: { question: string; response: string }[], steps = 160): Promise<Transformer> {
  const cfg = parseModelConfig({
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: tokenizer.vocabSize,
    max_position_embeddings: 256,
    tie_word_embeddings: true,
    eos_token_id: tokenizer.eosId,
  });
  const model = Transformer.create(cfg, { seed: 1 });
  const seqs = examples.map((e) => sftSequence(tokenizer, e.question, e.response, ''));
  await trainSft(model, seqs, { steps, batchSize: seqs.length, lr: 1e-2, warmupSteps: 10, schedule: 'cosine', minLrRatio: 0.1, maxGradNorm: 1, seed: 1, optimizer: { weightDecay: 0 } });
  return model;
}
