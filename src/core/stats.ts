/** Small statistics over plain arrays, shared by advantages, metrics and evaluation. */

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation with Bessel's correction (n - 1), as torch.std in verl and TRL. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export interface Group<T> {
  id: string;
  members: T[];
}

/** Groups in order of first appearance, members in their original order. */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Group<T>[] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const members = groups.get(k);
    if (members) members.push(item);
    else groups.set(k, [item]);
  }
  return [...groups].map(([id, members]) => ({ id, members }));
}
