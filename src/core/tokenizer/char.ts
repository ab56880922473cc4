/**
 * A character tokenizer for tiny models: one id per special token, then one id per character
 * (Unicode code point) of a charset. Special tokens written in the text (e.g. "<|eos|>") encode to
 * their ids. A character outside the charset encodes to <|unk|>, which decodes to the text "<|unk|>",
 * so round trips are exact only for text within the charset. Ids at or past vocabSize (a model may
 * have a larger vocab_size than its tokenizer) decode to nothing, as in Hugging Face tokenizers.
 *
 * Chat format: <|bos|> then, per message, <|system|>, <|user|> or <|assistant|>, the content and
 * <|eos|>; the generation prompt is <|assistant|>. Code fences (```python, ```output) are plain text.
 */
import { LabError } from '../errors';
import type { ChatMessage, Tokenizer } from './types';

export const CHAR_TOKENIZER_FILE = 'char_tokenizer.json';

/** Ids 0..6, in this order, in every tokenizer built here. */
export const SPECIAL_TOKENS = ['<|pad|>', '<|bos|>', '<|eos|>', '<|unk|>', '<|system|>', '<|user|>', '<|assistant|>'] as const;

/** Newline, tab and printable ASCII: enough for arithmetic, Python and LaTeX. */
export const DEFAULT_CHARSET = '\n\t' + Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

const ROLE_TOKENS: Record<ChatMessage['role'], string> = { system: '<|system|>', user: '<|user|>', assistant: '<|assistant|>' };

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  readonly vocabSize: number;
  readonly padId: number | undefined;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly eosIds: readonly number[];
  /** The character model's folder has no generation_config.json: the run config's settings apply. */
  readonly generationDefaults = {};
  readonly hasChatTemplate = true;
  readonly unkId: number;
  private readonly pieces: string[];
  private readonly charIds = new Map<string, number>();
  private readonly specialIds = new Map<string, number>();

  /** Special tokens first (ids 0..), then each distinct character of the charset in order. */
  constructor(readonly chars: string[], readonly specialTokens: readonly string[] = SPECIAL_TOKENS) {
    this.pieces = [...specialTokens, ...chars];
    specialTokens.forEach((t, i) => this.specialIds.set(t, i));
    chars.forEach((c, i) => this.charIds.set(c, specialTokens.length + i));
    this.vocabSize = this.pieces.length;
    const unk = this.specialIds.get('<|unk|>');
    if (unk === undefined) throw new LabError('tokenizer', 'a character tokenizer needs the special token <|unk|>', { field: 'special_tokens', expected: 'a list containing "<|unk|>"', found: JSON.stringify(specialTokens) });
    this.unkId = unk;
    this.padId = this.specialIds.get('<|pad|>');
    this.bosId = this.specialIds.get('<|bos|>');
    this.eosId = this.specialIds.get('<|eos|>');
    this.eosIds = this.eosId === undefined ? [] : [this.eosId];
  }

  /** From a charset, in its order (a repeated character keeps its first id). */
  static fromCharset(charset: string = DEFAULT_CHARSET): CharTokenizer {
    return new CharTokenizer([...new Set(Array.from(charset))]);
  }

  /** The sorted distinct characters of a corpus. */
  static fromText(corpus: string): CharTokenizer {
    return new CharTokenizer([...new Set(Array.from(corpus))].sort());
  }

  /** Reads the tokenizer's own file (see toJSON). */
  static fromJSON(text: string, file = CHAR_TOKENIZER_FILE): CharTokenizer {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new LabError('tokenizer', 'not valid JSON', { file, hint: `Rewrite it with CharTokenizer.toJSON (${(e as Error).message})` });
    }
    const r = raw as { type?: unknown; special_tokens?: unknown; chars?: unknown };
    if (typeof r !== 'object' || r === null || r.type !== 'char') {
      throw new LabError('tokenizer', 'not a character tokenizer file', { file, field: 'type', expected: '"char"', found: JSON.stringify(r?.type) });
    }
    const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (!strings(r.special_tokens)) throw new LabError('tokenizer', 'bad special token list', { file, field: 'special_tokens', expected: 'an array of strings', found: JSON.stringify(r.special_tokens)?.slice(0, 80) });
    if (!strings(r.chars)) throw new LabError('tokenizer', 'bad character list', { file, field: 'chars', expected: 'an array of one-character strings', found: JSON.stringify(r.chars)?.slice(0, 80) });
    const chars = r.chars as string[];
    const bad = chars.findIndex((c) => Array.from(c).length !== 1);
    if (bad >= 0) throw new LabError('tokenizer', `entry ${bad} of the character list is not one character`, { file, field: 'chars', expected: 'one Unicode code point', found: JSON.stringify(chars[bad]) });
    if (new Set(chars).size !== chars.length) throw new LabError('tokenizer', 'the character list repeats a character', { file, field: 'chars', hint: 'each character may appear once' });
    return new CharTokenizer(chars, r.special_tokens as string[]);
  }

  toJSON(): string {
    return JSON.stringify({ type: 'char', special_tokens: this.specialTokens, chars: this.chars }, null, 1) + '\n';
  }

  toFiles(): Record<string, string> {
    return { [CHAR_TOKENIZER_FILE]: this.toJSON() };
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    outer: while (i < text.length) {
      if (text.startsWith('<|', i)) {
        for (const [token, id] of this.specialIds) {
          if (text.startsWith(token, i)) {
            ids.push(id);
            i += token.length;
            continue outer;
          }
        }
      }
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      ids.push(this.charIds.get(ch) ?? this.unkId);
      i += ch.length;
    }
    return ids;
  }

  decode(ids: number[]): string {
    let text = '';
    for (const id of ids) text += this.pieces[id] ?? '';
    return text;
  }

  tokenToId(token: string): number | undefined {
    return this.specialIds.get(token) ?? this.charIds.get(token);
  }

  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = false): string {
    let text = '<|bos|>';
    for (const m of messages) text += `${ROLE_TOKENS[m.role]}${m.content}<|eos|>`;
    if (addGenerationPrompt) text += ROLE_TOKENS.assistant;
    return text;
  }
}
