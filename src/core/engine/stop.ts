/** Stop strings, matched in decoded text so that a string split across several tokens is still found. */

export type Decode = (ids: number[]) => string;

/** Tokens decoded per check: enough for the longest stop string even at one UTF-8 byte per token, plus slack. */
export function stopWindow(stops: string[]): number {
  const longest = Math.max(0, ...stops.map((s) => new TextEncoder().encode(s).length));
  return longest + 8;
}

/**
 * The stop string completed by the newest token of `tokens` (searched from index `from` on), if any.
 * Only the last `window` tokens are decoded; a match must include the newest token's text, so a
 * string seen before is not reported again.
 */
export function findStop(tokens: number[], from: number, stops: string[], decode: Decode, window = stopWindow(stops)): string | undefined {
  if (stops.length === 0 || tokens.length <= from) return undefined;
  const start = Math.max(from, tokens.length - window);
  const text = decode(tokens.slice(start));
  const hits = stops.filter((s) => s.length > 0 && text.includes(s));
  if (hits.length === 0) return undefined;
  const before = decode(tokens.slice(start, -1));
  return hits.find((s) => !before.includes(s));
}
