/**
 * WGSL kernels of the engine's own for tfjs's WebGPU backend (docs/engine.md#webgpu-kernels), run
 * through the backend's program runner so they share its buffers and command queue. RMSNorm: tfjs
 * builds it from five ops (square, mean, add, rsqrt, two multiplies) and keeps their intermediates for
 * the gradient; here one workgroup per row reads the row once for its sum of squares and once to write
 * it out, and the gradient is a kernel of the same shape. RoPE: one elementwise kernel each way,
 * instead of a product with the rotate_half matrix, two multiplies and an add.
 */
import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { customOp } from './ops';

const WORKGROUP = 64;

/** The reduction over a row's columns into buf[0], shared by the kernels: each thread sums its stride, then a tree. */
const ROW_SUM = `
      buf[tid] = partial;
      workgroupBarrier();
      for (var s = ${WORKGROUP} >> 1; s > 0; s = s >> 1) {
        if (tid < s) { buf[tid] = buf[tid] + buf[tid + s]; }
        workgroupBarrier();
      }`;

/** The row's log-sum-exp of the logits into lse: a max, then a sum of exponentials, each reduced like ROW_SUM. */
const ROW_LOGSUMEXP = `
      var partial = -3.402823e+38;
      for (var col = tid; col < cols; col += ${WORKGROUP}) { partial = max(partial, getLogits(row, col)); }
      buf[tid] = partial;
      workgroupBarrier();
      for (var s = ${WORKGROUP} >> 1; s > 0; s = s >> 1) {
        if (tid < s) { buf[tid] = max(buf[tid], buf[tid + s]); }
        workgroupBarrier();
      }
      let top = buf[0];
      workgroupBarrier();
      partial = 0.0;
      for (var col = tid; col < cols; col += ${WORKGROUP}) { partial += exp(getLogits(row, col) - top); }
      ${ROW_SUM}
      let lse = top + log(buf[0]);`;

/** A one-workgroup-per-row main over [rows, cols] logits: the row's log-sum-exp into lse, then `body`. */
function logitsRow(cols: string, body: string): string {
  return `
    var<workgroup> buf : array<f32, ${WORKGROUP}>;
    fn main(index : i32) {
      let row = index / ${WORKGROUP};
      let tid = i32(localId.x);
      // From the uniforms, not written into the code: a compiled shader is reused for every shape.
      let cols = ${cols};
      ${ROW_LOGSUMEXP}
      ${body}
    }`;
}

/** What every program here shares: 64 threads a workgroup, and one workgroup per row of the output (reductions) or one thread per element. */
export abstract class Program implements WebGPUProgram {
  abstract variableNames: string[];
  abstract shaderKey: string;
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  size: boolean;

  constructor(outputShape: number[], per: 'row' | 'element') {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.size = per === 'element';
    this.dispatch = [per === 'row' ? outputShape[0] : Math.ceil(outputShape.reduce((a, b) => a * b, 1) / WORKGROUP), 1, 1];
  }

  abstract getUserCode(): string;
}

/** A per-element program's main: its bindings (`lets`), then output[index] = `value`, for each index of the output. */
function perElement(lets: string, value: string): string {
  return `
    fn main(index : i32) {
      if (index < uniforms.size) {
        ${lets}
        setOutputAtIndex(index, ${value});
      }
    }`;
}

/** The row's inverse root mean square, rsqrt(mean(x²) + eps), into the workgroup's inv (RMSNorm both ways). */
const ROW_INVERSE_RMS = `
      let row = index / ${WORKGROUP};
      let tid = i32(localId.x);
      let cols = uniforms.outShape[1];
      var partial = 0.0;
      for (var col = tid; col < cols; col += ${WORKGROUP}) {
        let v = getX(row, col);
        partial += v * v;
      }
      ${ROW_SUM}
      if (tid == 0) { inv = inverseSqrt(buf[0] / f32(cols) + uniforms.eps); }
      workgroupBarrier();`;

/** y = x · rsqrt(mean(x²) + eps) · w, one workgroup per row of a [rows, cols] input. */
class RmsNormProgram extends Program {
  variableNames = ['x', 'w'];
  shaderKey = 'thor_rmsnorm';
  uniforms = 'eps : f32,';

  constructor(rows: number, cols: number) {
    super([rows, cols], 'row');
  }

  getUserCode(): string {
    return `
    var<workgroup> buf : array<f32, ${WORKGROUP}>;
    var<workgroup> inv : f32;
    fn main(index : i32) {
      ${ROW_INVERSE_RMS}
      for (var col = tid; col < cols; col += ${WORKGROUP}) {
        setOutputAtCoords(row, col, getX(row, col) * inv * getW(col));
      }
    }`;
  }
}

/**
 * The input's gradient: with r = rsqrt(mean(x²) + eps) and g = dy · w,
 * dx = r · (g − x · r² · mean(g · x)).
 */
class RmsNormGradProgram extends Program {
  variableNames = ['x', 'w', 'dy'];
  shaderKey = 'thor_rmsnorm_grad';
  uniforms = 'eps : f32,';

  constructor(rows: number, cols: number) {
    super([rows, cols], 'row');
  }

  getUserCode(): string {
    return `
    var<workgroup> buf : array<f32, ${WORKGROUP}>;
    var<workgroup> inv : f32;
    var<workgroup> meanGx : f32;
    fn main(index : i32) {
      ${ROW_INVERSE_RMS}
      partial = 0.0;
      for (var col = tid; col < cols; col += ${WORKGROUP}) {
        partial += getDy(row, col) * getW(col) * getX(row, col);
      }
      ${ROW_SUM}
      if (tid == 0) { meanGx = buf[0] / f32(cols); }
      workgroupBarrier();
      for (var col = tid; col < cols; col += ${WORKGROUP}) {
        let g = getDy(row, col) * getW(col);
        setOutputAtCoords(row, col, inv * (g - getX(row, col) * inv * inv * meanGx));
      }
    }`;
  }
}

/**
 * RoPE in HF's rotate_half convention, one thread per element of x [batch, length, heads, d], with
 * cos and sin [batch or 1, length, 1, d]: forward y_j = x_j·cos_j ∓ x_partner·sin_j (minus in the first
 * half); backward dx_j = dy_j·cos_j ± dy_partner·sin_partner (plus in the first half), partner = j ± d/2.
 */
class RopeProgram extends Program {
  variableNames = ['x', 'cs', 'sn'];
  shaderKey: string;

  constructor(
    shape: number[],
    private readonly backward: boolean,
  ) {
    super(shape, 'element');
    this.shaderKey = backward ? 'thor_rope_grad' : 'thor_rope';
  }

  getUserCode(): string {
    const term = this.backward
      ? 'getX(c[0], c[1], c[2], j) * getCs(b, c[1], 0, j) + select(-1.0, 1.0, j < half) * getX(c[0], c[1], c[2], partner) * getSn(b, c[1], 0, partner)'
      : 'getX(c[0], c[1], c[2], j) * getCs(b, c[1], 0, j) + select(1.0, -1.0, j < half) * getX(c[0], c[1], c[2], partner) * getSn(b, c[1], 0, j)';
    return perElement(
      `let c = getCoordsFromIndex(index);
        let j = c[3];
        let half = uniforms.xShape[3] / 2;
        let partner = select(j - half, j + half, j < half);
        let b = select(c[0], 0, uniforms.csShape[0] == 1);`,
      term,
    );
  }
}

/**
 * SwiGLU's product silu(g) · u = g · σ(g) · u, elementwise over same-shaped g and u, and its two
 * gradients: dg = dy · u · σ(g) · (1 + g · (1 − σ(g))), du = dy · g · σ(g).
 */
class SwigluProgram extends Program {
  variableNames: string[];
  shaderKey: string;

  constructor(
    shape: number[],
    private readonly part: 'value' | 'dg' | 'du',
  ) {
    super(shape, 'element');
    this.variableNames = part === 'value' ? ['gate', 'up'] : ['gate', 'up', 'dy'];
    this.shaderKey = `thor_swiglu_${part}`;
  }

  getUserCode(): string {
    const result = { value: 'g * s * u', dg: 'dy[index] * u * s * (1.0 + g * (1.0 - s))', du: 'dy[index] * g * s' }[this.part];
    return perElement('let g = gate[index];\n        let u = up[index];\n        let s = 1.0 / (1.0 + exp(-g));', result);
  }
}

/** silu(gate) · up in one kernel, and its gradients in two (docs/engine.md#webgpu-kernels). */
export function swigluWebGPU<T extends tf.Tensor>(gate: T, up: T): T {
  const op = customOp(([g, u], save) => {
    save([g, u]);
    const value = run(new SwigluProgram(g.shape, 'value'), [g, u]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => [run(new SwigluProgram(dy.shape, 'dg'), [...saved, dy]), run(new SwigluProgram(dy.shape, 'du'), [...saved, dy])];
    return { value, gradFunc };
  });
  return op(gate, up) as T;
}

/**
 * log softmax(logits)[target] per row of [rows, vocab] logits, one workgroup per row: the row's
 * log-sum-exp, and the target's logit minus it; nothing of size rows × vocab is written.
 */
class TargetLogprobProgram extends Program {
  variableNames = ['logits', 'targets'];
  shaderKey = 'thor_target_logprob';

  constructor(rows: number) {
    super([rows], 'row');
  }

  getUserCode(): string {
    return logitsRow('uniforms.logitsShape[1]', 'if (tid == 0) { setOutputAtIndex(row, getLogits(row, i32(getTargets(row))) - lse); }');
  }
}

/** Its gradient: d logits[r, j] = dy[r] · (1[j = target] − softmax(logits[r])_j), the softmax recomputed per row. */
class TargetLogprobGradProgram extends Program {
  variableNames = ['logits', 'targets', 'dy'];
  shaderKey = 'thor_target_logprob_grad';

  constructor(rows: number, vocab: number) {
    super([rows, vocab], 'row');
  }

  getUserCode(): string {
    return logitsRow(
      'uniforms.outShape[1]',
      `let picked = i32(getTargets(row));
      let g = getDy(row);
      for (var col = tid; col < cols; col += ${WORKGROUP}) {
        let hit = select(0.0, 1.0, col == picked);
        setOutputAtCoords(row, col, g * (hit - exp(getLogits(row, col) - lse)));
      }`,
    );
  }
}

/** log softmax(logits)[target] for each row of [rows, vocab] logits, with its gradient (docs/engine.md#webgpu-kernels). */
export function targetLogprobsWebGPU(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [rows, vocab] = logits.shape;
  const op = customOp(([l], save) => {
    save([l]);
    const value = run(new TargetLogprobProgram(rows), [l, targets]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => run(new TargetLogprobGradProgram(rows, vocab), [saved[0], targets, dy]);
    return { value, gradFunc };
  });
  return op(logits) as tf.Tensor1D;
}

/** After ROW_LOGSUMEXP: H = lse − Σ_j p_j · x_j into entropy. */
const ROW_ENTROPY = `
      workgroupBarrier();
      partial = 0.0;
      for (var col = tid; col < cols; col += ${WORKGROUP}) {
        let x = getLogits(row, col);
        partial += exp(x - lse) * x;
      }
      ${ROW_SUM}
      let entropy = lse - buf[0];`;

/**
 * The entropy of softmax(logits) per row of [rows, vocab] logits, one workgroup per row:
 * H = lse − Σ_j p_j · x_j from the row's maximum, its sum of exponentials and their x-weighted sum,
 * reduced like the log-sum-exp; nothing of size rows × vocab is written.
 */
class EntropyProgram extends Program {
  variableNames = ['logits'];
  shaderKey = 'thor_entropy';

  constructor(rows: number) {
    super([rows], 'row');
  }

  getUserCode(): string {
    return logitsRow('uniforms.logitsShape[1]', `${ROW_ENTROPY}
      if (tid == 0) { setOutputAtIndex(row, entropy); }`);
  }
}

/** Its gradient: dH/dx_j = −p_j · (x_j − lse + H), times the row's upstream gradient. */
class EntropyGradProgram extends Program {
  variableNames = ['logits', 'dy'];
  shaderKey = 'thor_entropy_grad';

  constructor(rows: number, vocab: number) {
    super([rows, vocab], 'row');
  }

  getUserCode(): string {
    return logitsRow(
      'uniforms.outShape[1]',
      `${ROW_ENTROPY}
      let g = getDy(row, 0);
      for (var col = tid; col < cols; col += ${WORKGROUP}) {
        let x = getLogits(row, col);
        setOutputAtCoords(row, col, -g * exp(x - lse) * (x - lse + entropy));
      }`,
    );
  }
}

/** The entropy of softmax(logits) for each row of [rows, vocab] logits, with its gradient (docs/engine.md#webgpu-kernels). */
export function entropyWebGPU(logits: tf.Tensor2D): tf.Tensor1D {
  const [rows, vocab] = logits.shape;
  const op = customOp(([l], save) => {
    save([l]);
    const value = run(new EntropyProgram(rows), [l]);
    // dy as [rows, 1]: a 1-D input's strides are an empty uniform, which would shift the ones that follow.
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => run(new EntropyGradProgram(rows, vocab), [saved[0], tf.reshape(dy, [rows, 1])]);
    return { value, gradFunc };
  });
  return op(logits) as tf.Tensor1D;
}

/** One AdamW step's new moment m, moment v or weight, elementwise from the old weight, gradient and moments. */
class AdamWProgram extends Program {
  /** Only what the part reads: a binding the shader never touches is left out of its layout. */
  variableNames: string[];
  shaderKey: string;
  uniforms = 'beta1 : f32, beta2 : f32, c1 : f32, c2 : f32, eps : f32, lr : f32, decay : f32,';

  constructor(
    shape: number[],
    private readonly part: 'm' | 'v' | 'w',
  ) {
    super(shape, 'element');
    this.shaderKey = `thor_adamw_${part}`;
    this.variableNames = { m: ['g', 'm'], v: ['g', 'v'], w: ['w', 'g', 'm', 'v'] }[part];
  }

  getUserCode(): string {
    const m1 = 'uniforms.beta1 * m[index] + (1.0 - uniforms.beta1) * g[index]';
    const v1 = 'uniforms.beta2 * v[index] + (1.0 - uniforms.beta2) * g[index] * g[index]';
    const result = { m: m1, v: v1, w: `w[index] * uniforms.decay - uniforms.lr * ((${m1}) / uniforms.c1) / (sqrt((${v1}) / uniforms.c2) + uniforms.eps)` }[this.part];
    return perElement('', result);
  }
}

export interface AdamWStep {
  beta1: number;
  beta2: number;
  /** Bias corrections 1 − β1ᵗ and 1 − β2ᵗ. */
  c1: number;
  c2: number;
  eps: number;
  lr: number;
  /** 1 − lr · weight decay for decayed weights, 1 otherwise. */
  decay: number;
}

/** AdamW's new m, v and weight in three elementwise kernels, all read from the old values (src/core/optim/adamw.ts has the formulas). */
export function adamwWebGPU(w: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: AdamWStep): { w: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const uniforms = [s.beta1, s.beta2, s.c1, s.c2, s.eps, s.lr, s.decay].map((x) => ({ type: 'float32', data: [x] }));
  // As [1, n]: a 1-D input's strides are an empty uniform, which would shift the ones that follow.
  const [fw, fg, fm, fv] = [w, g, m, v].map((t) => tf.reshape(t, [1, t.size]));
  const inputs = { m: [fg, fm], v: [fg, fv], w: [fw, fg, fm, fv] };
  const part = (p: 'm' | 'v' | 'w') => tf.reshape(run(new AdamWProgram([1, w.size], p), inputs[p], uniforms), w.shape);
  const out = { m: part('m'), v: part('v'), w: part('w') };
  tf.dispose([fw, fg, fm, fv]);
  return out;
}

/** Runs a program on tfjs's WebGPU backend (its buffers and queue); a number is one float uniform. */
export function run(program: WebGPUProgram, inputs: tf.Tensor[], uniforms?: number | { type: string; data: number[] }[], dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  const backend = tf.backend() as unknown as WebGPUBackend;
  const given = typeof uniforms === 'number' ? [{ type: 'float32', data: [uniforms] }] : uniforms;
  const info = backend.runWebGPUProgram(program, inputs, dtype, given);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/**
 * x·cos + rotate_half(x)·sin (HF apply_rotary_pos_emb) in one kernel each way, for x [batch, length,
 * heads, d] and cos, sin [batch or 1, length, 1, d]; the tables are constants (no gradient).
 */
export function ropeWebGPU(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const op = customOp(([xs], save) => {
    save([]);
    const value = run(new RopeProgram(xs.shape, false), [xs, cos, sin]);
    const gradFunc = (dy: tf.Tensor) => run(new RopeProgram(dy.shape, true), [dy, cos, sin]);
    return { value, gradFunc };
  });
  return op(x);
}

/**
 * RMSNorm over the last axis on WebGPU with the kernels above, and its gradients (the weight's is
 * Σ over rows of dy · x · r, a column sum tfjs does well). Any shape; rows are every axis but the last.
 */
export function rmsNormWebGPU<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number): T {
  const cols = x.shape[x.rank - 1];
  const rows = x.size / cols;
  const op = customOp(([xs, ws], save) => {
    const x2 = tf.reshape(xs, [rows, cols]);
    save([x2, ws]);
    const value = tf.reshape(run(new RmsNormProgram(rows, cols), [x2, ws], eps), xs.shape);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xr, wr] = saved;
      const dy2 = tf.reshape(dy, [rows, cols]);
      const dx = tf.reshape(run(new RmsNormGradProgram(rows, cols), [xr, wr, dy2], eps), xs.shape);
      const r = tf.rsqrt(tf.add(tf.mean(tf.square(xr), -1, true), eps));
      const dw = tf.sum(tf.mul(dy2, tf.mul(xr, r)), 0);
      return [dx, dw];
    };
    return { value, gradFunc };
  });
  return op(x, w) as T;
}

/** Largest head_dim the attention kernels take (4 dims a thread); wider heads use tfjs's ops. */
export const ATTENTION_MAX_HEAD_DIM = 4 * WORKGROUP;
/** Key positions whose probabilities pass through workgroup memory at a time. */
const CHUNK = 256;

/**
 * What the attention kernels share: the shapes from the uniforms, this workgroup's query row
 * (b, h, t) or key row (b, kv head, s), and q·k + bias for one pair. q [B, nH, T, hd] is already
 * scaled by 1/√hd; k, v [B, nKV, S, hd]; bias [B or 1, 1, T, S] (the causal and padding mask).
 */
const ATTENTION_COMMON = `
    var<workgroup> buf : array<f32, ${WORKGROUP}>;
    var<workgroup> ps : array<f32, ${CHUNK}>;
    var<workgroup> ds : array<f32, ${CHUNK}>;
    fn qkBias(qOff : i32, kOff : i32, biasOff : i32, hd : i32) -> f32 {
      var acc = 0.0;
      for (var j = 0; j < hd; j++) { acc += q[qOff + j] * k[kOff + j]; }
      return acc + bias[biasOff];
    }`;

const ATTENTION_SHAPES = `
      let tid = i32(localId.x);
      let nH = uniforms.qShape[1];
      let T = uniforms.qShape[2];
      let hd = uniforms.qShape[3];
      let nKV = uniforms.kShape[1];
      let S = uniforms.kShape[2];
      let oneBias = uniforms.biasShape[0] == 1;`;

/** Adds to acc[i] (dims tid + 64·i) the chunk's weights ps[c] times rows `src` (offset + c·hd). */
function accumulate(acc: string, weights: string, src: string, offset: string): string {
  return `
        for (var c = 0; c < n; c++) {
          let w = ${weights}[c];
          let o = ${offset} + c * hd;
          for (var i = 0; i < 4; i++) {
            let j = tid + i * ${WORKGROUP};
            if (j < hd) { ${acc}[i] += w * ${src}[o + j]; }
          }
        }`;
}

/** This workgroup's query row (b, h, t), where its keys and its mask row start. */
const QUERY_ROW = `
      let row = index / ${WORKGROUP};
      ${ATTENTION_SHAPES}
      let t = row % T;
      let h = (row / T) % nH;
      let b = row / (T * nH);
      let kBase = (b * nKV + h / (nH / nKV)) * S * hd;
      let biasBase = (select(b, 0, oneBias) * T + t) * S;
      let qOff = row * hd;`;

/**
 * Σ_s w_s · src[s] over the query row's keys into its output row, CHUNK keys at a time: `weight`
 * sets w for key s (s < S) into workgroup memory, then each thread sums its dims of src's rows.
 */
function queryRowSum(weight: string, src: 'k' | 'v'): string {
  return `var acc : array<f32, 4>;
      for (var s0 = 0; s0 < S; s0 += ${CHUNK}) {
        for (var c = tid; c < ${CHUNK}; c += ${WORKGROUP}) {
          let s = s0 + c;
          var w = 0.0;
          if (s < S) { ${weight} }
          ps[c] = w;
        }
        workgroupBarrier();
        let n = min(${CHUNK}, S - s0);
        ${accumulate('acc', 'ps', src, 'kBase + s0 * hd')}
        workgroupBarrier();
      }
      for (var i = 0; i < 4; i++) {
        let j = tid + i * ${WORKGROUP};
        if (j < hd) { setOutputAtIndex(row * hd + j, acc[i]); }
      }`;
}

/**
 * softmax(q·kᵀ + bias)·v for one query row per workgroup: the row's maximum and sum of exponentials
 * (each a pass over the keys, reduced in workgroup memory), then the weighted sum of v, CHUNK keys
 * at a time, each thread owning up to four of the head's dims. `stats` instead writes the row's
 * maximum and sum of exponentials, [rows, 2], from which the backward pass recomputes the
 * probabilities (kept apart: a log-sum-exp near a mask's −1e9 would lose the sum to rounding).
 */
class AttentionProgram extends Program {
  /** Only what the part reads: a binding the shader never touches is left out of its layout. */
  variableNames: string[];
  shaderKey: string;

  constructor(
    rows: number,
    headDim: number,
    private readonly part: 'value' | 'stats',
  ) {
    super([rows, part === 'value' ? headDim : 2], 'row');
    this.shaderKey = `thor_attention_${part}`;
    this.variableNames = part === 'value' ? ['q', 'k', 'v', 'bias'] : ['q', 'k', 'bias'];
  }

  getUserCode(): string {
    const finish =
      this.part === 'stats'
        ? `if (tid == 0) {
        setOutputAtIndex(row * 2, top);
        setOutputAtIndex(row * 2 + 1, total);
      }`
        : queryRowSum('w = exp(qkBias(qOff, kBase + s * hd, biasBase + s, hd) - top) / total;', 'v');
    return `
    ${ATTENTION_COMMON}
    fn main(index : i32) {
      ${QUERY_ROW}
      var partial = -3.402823e+38;
      for (var s = tid; s < S; s += ${WORKGROUP}) { partial = max(partial, qkBias(qOff, kBase + s * hd, biasBase + s, hd)); }
      buf[tid] = partial;
      workgroupBarrier();
      for (var r = ${WORKGROUP} >> 1; r > 0; r = r >> 1) {
        if (tid < r) { buf[tid] = max(buf[tid], buf[tid + r]); }
        workgroupBarrier();
      }
      let top = buf[0];
      workgroupBarrier();
      partial = 0.0;
      for (var s = tid; s < S; s += ${WORKGROUP}) { partial += exp(qkBias(qOff, kBase + s * hd, biasBase + s, hd) - top); }
      ${ROW_SUM}
      let total = buf[0];
      workgroupBarrier();
      ${finish}
    }`;
  }
}

/**
 * dq for one query row per workgroup: with p_s = exp(q·k_s + bias − max) / sum and D = dout·out,
 * ds_s = p_s · (dout·v_s − D) and dq = Σ_s ds_s · k_s.
 */
class AttentionGradQProgram extends Program {
  variableNames = ['q', 'k', 'v', 'bias', 'dout', 'stats', 'dsum'];
  shaderKey = 'thor_attention_dq';

  constructor(rows: number, headDim: number) {
    super([rows, headDim], 'row');
  }

  getUserCode(): string {
    return `
    ${ATTENTION_COMMON}
    fn main(index : i32) {
      ${QUERY_ROW}
      let top = stats[2 * row];
      let total = stats[2 * row + 1];
      let D = dsum[row];
      ${queryRowSum(
        `let p = exp(qkBias(qOff, kBase + s * hd, biasBase + s, hd) - top) / total;
            var dp = 0.0;
            for (var j = 0; j < hd; j++) { dp += dout[qOff + j] * v[kBase + s * hd + j]; }
            w = p * (dp - D);`,
        'k',
      )}
    }`;
  }
}

/**
 * dk and dv for one key row (b, kv head, s) per workgroup, over every query row of the heads that
 * share it: dv = Σ p · dout, dk = Σ ds · q. Written side by side, [rows, 2·hd].
 */
class AttentionGradKVProgram extends Program {
  variableNames = ['q', 'k', 'v', 'bias', 'dout', 'stats', 'dsum'];
  shaderKey = 'thor_attention_dkv';

  constructor(rows: number, headDim: number) {
    super([rows, 2 * headDim], 'row');
  }

  getUserCode(): string {
    return `
    ${ATTENTION_COMMON}
    fn main(index : i32) {
      let row = index / ${WORKGROUP};
      ${ATTENTION_SHAPES}
      let s = row % S;
      let kvh = (row / S) % nKV;
      let b = row / (S * nKV);
      let group = nH / nKV;
      let kOff = row * hd;
      let biasB = select(b, 0, oneBias);
      var dk : array<f32, 4>;
      var dv : array<f32, 4>;
      for (var gh = 0; gh < group; gh++) {
        let qBase = (b * nH + kvh * group + gh) * T;
        for (var t0 = 0; t0 < T; t0 += ${CHUNK}) {
          for (var c = tid; c < ${CHUNK}; c += ${WORKGROUP}) {
            let t = t0 + c;
            var p = 0.0;
            var g = 0.0;
            if (t < T) {
              let qRow = qBase + t;
              p = exp(qkBias(qRow * hd, kOff, (biasB * T + t) * S + s, hd) - stats[2 * qRow]) / stats[2 * qRow + 1];
              var dp = 0.0;
              for (var j = 0; j < hd; j++) { dp += dout[qRow * hd + j] * v[kOff + j]; }
              g = p * (dp - dsum[qRow]);
            }
            ps[c] = p;
            ds[c] = g;
          }
          workgroupBarrier();
          let n = min(${CHUNK}, T - t0);
          ${accumulate('dv', 'ps', 'dout', '(qBase + t0) * hd')}
          ${accumulate('dk', 'ds', 'q', '(qBase + t0) * hd')}
          workgroupBarrier();
        }
      }
      for (var i = 0; i < 4; i++) {
        let j = tid + i * ${WORKGROUP};
        if (j < hd) {
          setOutputAtIndex(row * 2 * hd + j, dk[i]);
          setOutputAtIndex(row * 2 * hd + hd + j, dv[i]);
        }
      }
    }`;
  }
}

/**
 * Causal (or any additively masked) attention, softmax(q·kᵀ + bias)·v, in one kernel on WebGPU, with
 * its gradients for q, k and v (docs/engine.md#webgpu-kernels). q [B, nH, T, hd], scaled already;
 * k, v [B, nKV, S, hd] (the KV cache while decoding, S ≥ T; the same positions in training);
 * bias [B or 1, 1, T, S]. Query head h reads kv head ⌊h / (nH / nKV)⌋ (grouped-query attention).
 * Nothing of size T × S is kept: the backward pass recomputes the probabilities from each row's
 * maximum and sum of exponentials. Returns [B, nH, T, hd].
 */
export function attentionWebGPU(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D): tf.Tensor4D {
  const [B, nH, T, hd] = q.shape;
  const [, nKV, S] = k.shape;
  const rows = B * nH * T;
  const op = customOp(([qs, ks, vs], save) => {
    const value = tf.reshape(run(new AttentionProgram(rows, hd, 'value'), [qs, ks, vs, mask]), [B, nH, T, hd]);
    save([qs, ks, vs, mask, value]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sq, sk, sv, sb, out] = saved;
      const stats = run(new AttentionProgram(rows, hd, 'stats'), [sq, sk, sb]);
      // As [rows, 1]: a 1-D input's strides are an empty uniform, which would shift the ones that follow.
      const dsum = tf.reshape(tf.sum(tf.mul(dy, out), -1), [rows, 1]);
      const inputs = [sq, sk, sv, sb, dy, stats, dsum];
      const dq = tf.reshape(run(new AttentionGradQProgram(rows, hd), inputs), [B, nH, T, hd]);
      const dkv = tf.reshape(run(new AttentionGradKVProgram(B * nKV * S, hd), inputs), [B, nKV, S, 2 * hd]);
      const dk = tf.slice(dkv, [0, 0, 0, 0], [B, nKV, S, hd]);
      const dv = tf.slice(dkv, [0, 0, 0, hd], [B, nKV, S, hd]);
      tf.dispose([stats, dsum, dkv]);
      return [dq, dk, dv];
    };
    return { value, gradFunc };
  });
  return op(q, k, v) as tf.Tensor4D;
}

let enabled = true;

/** Turns the engine's own kernels off (tfjs's ops instead), to compare the two. */
export function setWebGPUKernels(on: boolean): void {
  enabled = on;
}

/** Whether the engine's own kernels run here: on tfjs's WebGPU backend, unless turned off. */
export function webgpuKernels(): boolean {
  return enabled && tf.getBackend() === 'webgpu';
}
