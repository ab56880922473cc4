/**
 * A small seeded pseudo-random generator, so that task sets, sampling and training runs are
 * reproducible from a seed on every platform (Math.random cannot be seeded).
 */

/** 32-bit FNV-1a hash of a string (Fowler–Noll–Vo): stable ids and split assignment from text. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [lo, hi], both ends included. */
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  /** Fisher–Yates shuffle of a copy. */
  shuffle<T>(items: readonly T[]): T[];
  /** An independent generator derived from this one's seed and a label (order of calls elsewhere does not matter). */
  fork(label: string): Rng;
  /** Internal state, to save and restore (createRng(seed) then setState). */
  state(): number;
  setState(state: number): void;
}

/** mulberry32 (Tommy Ettinger): one 32-bit state word, full period 2^32, good enough for sampling. */
export function createRng(seed: number): Rng {
  const seed32 = Math.floor(seed) >>> 0;
  let s = seed32;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => {
    if (!(hi >= lo)) throw new RangeError(`rng.int: empty range [${lo}, ${hi}]`);
    return lo + Math.floor(next() * (hi - lo + 1));
  };
  return {
    next,
    int,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('rng.pick: no items');
      return items[int(0, items.length - 1)];
    },
    shuffle: (items) => {
      const out = items.slice();
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i);
        [out[i], out[j]] = [out[j], out[i]];
      }
      return out;
    },
    fork: (label) => createRng((seed32 ^ hashString(label)) >>> 0),
    state: () => s,
    setState: (state) => {
      s = state >>> 0;
    },
  };
}
