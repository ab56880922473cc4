/**
 * AdamW (Loshchilov & Hutter 2019): Adam with weight decay applied to the weights directly, not
 * through the gradient. As torch.optim.AdamW:
 *   m ← β1·m + (1-β1)·g        v ← β2·v + (1-β2)·g²
 *   w ← w - lr·wd·w - lr·(m / (1-β1ᵗ)) / (sqrt(v / (1-β2ᵗ)) + ε)
 */
import * as tf from '@tensorflow/tfjs';
import { LabError } from '../errors';
import type { WeightMap } from '../model/weights';
import { adamwWebGPU, webgpuKernels } from '../model/webgpu-kernels';

/** The optimiser's state outside the device: step count and moments `m.KEY` / `v.KEY` per variable. */
export interface AdamWState {
  step: number;
  moments: WeightMap;
}

export interface AdamWConfig {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay; applied to matrices and embeddings only, never to norms or biases (as nanoGPT). */
  weightDecay?: number;
}

/** torch.optim.AdamW's defaults. */
export const ADAMW_DEFAULTS: Required<AdamWConfig> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

interface Slot {
  variable: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  decay: boolean;
}

export class AdamW {
  readonly config: Required<AdamWConfig>;
  private readonly slots = new Map<string, Slot>();
  /** Updates applied so far (t in the bias corrections). */
  step = 0;

  /** Optimises the given variables, keyed by the variable's own name (the keys of tf.variableGrads). */
  constructor(variables: tf.Variable[], config: AdamWConfig = {}) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    const zeros = (like: tf.Variable) => {
      const z = tf.zerosLike(like);
      const state = tf.variable(z, false);
      z.dispose();
      return state;
    };
    for (const variable of variables) this.slots.set(variable.name, { variable, m: zeros(variable), v: zeros(variable), decay: variable.rank >= 2 });
  }

  /** One update with learning rate lr; grads keyed by variable name (missing ones are left alone). */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    this.step += 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const c1 = 1 - Math.pow(beta1, this.step);
    const c2 = 1 - Math.pow(beta2, this.step);
    for (const [name, g] of Object.entries(grads)) {
      const s = this.slots.get(name);
      if (!s) continue;
      tf.tidy(() => {
        if (webgpuKernels()) {
          // Three elementwise kernels instead of about a dozen ops (docs/engine.md#webgpu-kernels).
          const next = adamwWebGPU(s.variable, g, s.m, s.v, { beta1, beta2, c1, c2, eps, lr, decay: s.decay && weightDecay > 0 ? 1 - lr * weightDecay : 1 });
          s.m.assign(next.m);
          s.v.assign(next.v);
          s.variable.assign(next.w);
          return;
        }
        const m = tf.add(tf.mul(s.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(s.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        const decayed = s.decay && weightDecay > 0 ? tf.mul(s.variable, 1 - lr * weightDecay) : s.variable;
        s.m.assign(m);
        s.v.assign(v);
        s.variable.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  /** A copy of the state; `key` names each variable (e.g. its parameter name) stably across models. */
  async exportState(key: (variable: tf.Variable) => string): Promise<AdamWState> {
    const moments: WeightMap = new Map();
    for (const s of this.slots.values()) {
      const k = key(s.variable);
      moments.set(`m.${k}`, { shape: [...s.m.shape], data: Float32Array.from((await s.m.data()) as Float32Array) });
      moments.set(`v.${k}`, { shape: [...s.v.shape], data: Float32Array.from((await s.v.data()) as Float32Array) });
    }
    return { step: this.step, moments };
  }

  /** Restores a state from exportState; every variable's moments must be there with its shape. */
  importState(state: AdamWState, key: (variable: tf.Variable) => string, file = 'optimizer state'): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new LabError('optimizer', 'the step count is not a whole number', { file, field: 'step', expected: 'an integer >= 0', found: String(state.step) });
    const checked = [...this.slots.values()].map((s) => {
      const k = key(s.variable);
      const [m, v] = [state.moments.get(`m.${k}`), state.moments.get(`v.${k}`)];
      for (const [name, t] of [[`m.${k}`, m], [`v.${k}`, v]] as const) {
        if (!t) throw new LabError('optimizer', 'a moment is missing', { file, field: name, expected: `[${s.variable.shape.join(', ')}]`, found: 'nothing' });
        if (t.shape.join() !== s.variable.shape.join()) throw new LabError('optimizer', 'a moment has the wrong shape', { file, field: name, expected: `[${s.variable.shape.join(', ')}]`, found: `[${t.shape.join(', ')}]` });
      }
      return { s, m: m!, v: v! };
    });
    for (const { s, m, v } of checked) {
      tf.tidy(() => {
        s.m.assign(tf.tensor(m.data, s.variable.shape, 'float32'));
        s.v.assign(tf.tensor(v.data, s.variable.shape, 'float32'));
      });
    }
    this.step = state.step;
  }

  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}
