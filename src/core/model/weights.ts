/** A tensor held as plain data (float32), as read from or written to a checkpoint. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** Parameters by their Hugging Face names (`model.layers.0.self_attn.q_proj.weight`, ...). */
export type WeightMap = Map<string, NamedTensor>;

/** Transpose of a row-major [rows, cols] matrix (HF's [out, in] Linear layout to the device's [in, out], and back). */
export function transposeData(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}
