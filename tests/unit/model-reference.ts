/**
 * A plain-JS, float64 forward pass of a Llama / Qwen2 / Qwen3 decoder written straight from Hugging
 * Face's modeling_llama.py and modeling_qwen3.py (rotate_half RoPE, repeat_kv GQA, attention biases,
 * per-head q/k RMSNorm, SwiGLU, RMSNorm), on HF-layout weights. Slow and obvious: the yardstick the
 * tfjs model is checked against.
 */
import type { ModelConfig } from '../../src/core/model/config';
import type { WeightMap } from '../../src/core/model/weights';

type Vec = Float64Array;

function get(w: WeightMap, name: string): Float32Array {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return t.data;
}

/** y = W x + b with HF Linear layout W [out, in]. */
function linear(x: Vec, w: Float32Array, out: number, bias?: Float32Array): Vec {
  const inDim = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = bias ? bias[o] : 0;
    for (let i = 0; i < inDim; i++) s += w[o * inDim + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rmsNorm(x: Vec, w: Float32Array, eps: number): Vec {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

function rope(x: Vec, pos: number, theta: number): Vec {
  const d = x.length;
  const half = d / 2;
  const out = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const angle = pos / Math.pow(theta, (2 * (j % half)) / d);
    const rotated = j < half ? -x[j + half] : x[j - half];
    out[j] = x[j] * Math.cos(angle) + rotated * Math.sin(angle);
  }
  return out;
}

/** Logits [T][V] for one sequence of ids. */
export function referenceLogits(cfg: ModelConfig, w: WeightMap, ids: number[]): number[][] {
  const h = cfg.hidden_size;
  const nH = cfg.num_attention_heads;
  const nKV = cfg.num_key_value_heads;
  const hd = cfg.head_dim;
  const group = nH / nKV;
  const emb = get(w, 'model.embed_tokens.weight');
  let xs: Vec[] = ids.map((id) => Float64Array.from(emb.subarray(id * h, (id + 1) * h)));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    // Whichever biases and q/k norms the checkpoint has (parameterShapes decides which it must have).
    const bias = (n: string) => w.get(`${p}.self_attn.${n}.bias`)?.data;
    const qNorm = w.get(`${p}.self_attn.q_norm.weight`)?.data;
    const kNorm = w.get(`${p}.self_attn.k_norm.weight`)?.data;
    const normed1 = (x: Vec, norm: Float32Array | undefined) => (norm ? rmsNorm(x, norm, cfg.rms_norm_eps) : x);
    const normed = xs.map((x) => rmsNorm(x, get(w, `${p}.input_layernorm.weight`), cfg.rms_norm_eps));
    const q = normed.map((x) => linear(x, get(w, `${p}.self_attn.q_proj.weight`), nH * hd, bias('q_proj')));
    const k = normed.map((x) => linear(x, get(w, `${p}.self_attn.k_proj.weight`), nKV * hd, bias('k_proj')));
    const v = normed.map((x) => linear(x, get(w, `${p}.self_attn.v_proj.weight`), nKV * hd, bias('v_proj')));
    const head = (vec: Vec, i: number) => vec.subarray(i * hd, (i + 1) * hd);
    const attnOut = xs.map((_, t) => {
      const out = new Float64Array(nH * hd);
      for (let hq = 0; hq < nH; hq++) {
        const kvh = Math.floor(hq / group);
        const qr = rope(normed1(head(q[t], hq), qNorm), t, cfg.rope_theta);
        const scores = [];
        for (let s = 0; s <= t; s++) {
          const kr = rope(normed1(head(k[s], kvh), kNorm), s, cfg.rope_theta);
          let dot = 0;
          for (let j = 0; j < hd; j++) dot += qr[j] * kr[j];
          scores.push(dot / Math.sqrt(hd));
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          const vs = head(v[s], kvh);
          for (let j = 0; j < hd; j++) out[hq * hd + j] += (e[s] / z) * vs[j];
        }
      }
      return linear(out, get(w, `${p}.self_attn.o_proj.weight`), h, bias('o_proj'));
    });
    xs = xs.map((x, t) => x.map((val, i) => val + attnOut[t][i]));
    xs = xs.map((x) => {
      const n = rmsNorm(x, get(w, `${p}.post_attention_layernorm.weight`), cfg.rms_norm_eps);
      const gate = linear(n, get(w, `${p}.mlp.gate_proj.weight`), cfg.intermediate_size);
      const up = linear(n, get(w, `${p}.mlp.up_proj.weight`), cfg.intermediate_size);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = linear(act, get(w, `${p}.mlp.down_proj.weight`), h);
      return x.map((val, i) => val + down[i]);
    });
  }
  const head = cfg.tie_word_embeddings ? emb : get(w, 'lm_head.weight');
  return xs.map((x) => Array.from(linear(rmsNorm(x, get(w, 'model.norm.weight'), cfg.rms_norm_eps), head, cfg.vocab_size)));
}
