/**
 * Floating-point operations of the model's own math, counted from its shapes (docs/engine.md#flops):
 * a multiply-add is 2 FLOPs; the matrix products of the projections, the MLP and the LM head, and the
 * two products of attention (scores Q·Kᵀ and the weighted sum of V); norms, RoPE, softmax and other
 * elementwise work are left out, as in the usual accounting (Kaplan et al. 2020; PaLM's MFU). What an
 * implementation adds on top (padding, masked-out scores, RoPE done as a product) is not counted:
 * effective FLOP/s are work done for the model over time taken.
 */
import type { ModelConfig } from './config';

/** FLOPs of the weight matrices for one token: 2 × (projections + MLP) × layers + 2 × the LM head. */
export function matmulFlopsPerToken(cfg: ModelConfig): number {
  const h = cfg.hidden_size;
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  const perLayer = h * q + 2 * h * kv + q * h + 3 * h * cfg.intermediate_size;
  return 2 * (cfg.num_hidden_layers * perLayer + h * cfg.vocab_size);
}

/** FLOPs of attention for one query token over `attended` positions: scores and weighted sum, every head and layer. */
export function attentionFlopsPerToken(cfg: ModelConfig, attended: number): number {
  return 2 * 2 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * attended;
}

/** A forward pass over `rows` sequences of `length` tokens with causal attention (token t attends to t + 1 positions). */
export function forwardFlops(cfg: ModelConfig, rows: number, length: number): number {
  // Σ_{t=0}^{T-1} (t + 1) = T (T + 1) / 2 attended positions.
  return rows * (length * matmulFlopsPerToken(cfg) + (attentionFlopsPerToken(cfg, 1) * length * (length + 1)) / 2);
}

/** A training step: forward, and a backward pass of twice its FLOPs (a gradient for each operand of every product). */
export function trainFlops(cfg: ModelConfig, rows: number, length: number): number {
  return 3 * forwardFlops(cfg, rows, length);
}

/** Decoding `newTokens` tokens per row after a prompt of `promptLength` (the prompt's own forward not included). */
export function decodeFlops(cfg: ModelConfig, rows: number, promptLength: number, newTokens: number): number {
  let attended = 0;
  for (let i = 0; i < newTokens; i++) attended += promptLength + i + 1;
  return rows * (newTokens * matmulFlopsPerToken(cfg) + attentionFlopsPerToken(cfg, 1) * attended);
}
