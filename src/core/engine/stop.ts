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

/**
 * The token ids that end a row: config.json's eos_token_id (one id or a list) together with the
 * tokenizer's (its eos token and generation_config.json's eos_token_id). Qwen2.5-Instruct lists
 * <|im_end|> and <|endoftext|>; either ends the answer (docs/models.md#prompts-and-stop-tokens).
 */
export function stopTokenIds(configEos: number | number[] | null | undefined, tokenizerEos: readonly number[] = []): number[] {
  const fromConfig = configEos === undefined || configEos === null ? [] : [configEos].flat();
  return [...new Set([...fromConfig, ...tokenizerEos])];
}
