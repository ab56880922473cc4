/**
 * AdamW (Loshchilov & Hutter 2019): Adam with weight decay applied to the weights directly, not
 * through the gradient. As torch.optim.AdamW:
 *   m ← β1·m + (1-β1)·g        v ← β2·v + (1-β2)·g²
 *   w ← w - lr·wd·w - lr·(m / (1-β1ᵗ)) / (sqrt(v / (1-β2ᵗ)) + ε)
 */
import * as tf from '@tensorflow/tfjs';

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

  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}
