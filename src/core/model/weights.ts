/** A tensor held as plain data (float32), as read from or written to a checkpoint. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** Parameters by their Hugging Face names (`model.layers.0.self_attn.q_proj.weight`, ...). */
export type WeightMap = Map<string, NamedTensor>;
