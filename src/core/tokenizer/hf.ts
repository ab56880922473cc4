/**
 * Hugging Face tokenizers: tokenizer.json through @huggingface/tokenizers, the chat template from
 * tokenizer_config.json (or chat_template.jinja) through @huggingface/jinja.
 *
 * encode adds no special tokens of its own (no BOS from a post-processor): the chat template writes
 * them into the text, as transformers' apply_chat_template(tokenize=True) does. decode keeps special
 * tokens and spaces as they are, so decode(encode(text)) === text for NFC text.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer as HFTokenizerCore } from '@huggingface/tokenizers';
import { LabError } from '../errors';
import type { ChatMessage, Tokenizer } from './types';

export const TOKENIZER_JSON = 'tokenizer.json';
export const TOKENIZER_CONFIG_JSON = 'tokenizer_config.json';
/** Newer transformers versions save the chat template in its own file. */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export interface HFTokenizerFiles {
  /** Text of tokenizer.json. */
  tokenizer: string;
  /** Text of tokenizer_config.json, if the folder has one. */
  config?: string;
  /** Text of chat_template.jinja, if the folder has one (takes precedence over the config's). */
  chatTemplate?: string;
}

export class HFTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  /** Special token strings from tokenizer_config.json, passed to the chat template. */
  readonly specialTokens: { bos_token?: string; eos_token?: string; pad_token?: string; unk_token?: string };
  readonly chatTemplate: string | undefined;
  private readonly core: HFTokenizerCore;
  private template: Template | undefined;

  constructor(private readonly files: HFTokenizerFiles) {
    const tokenizerJson = parseJSON(files.tokenizer, TOKENIZER_JSON);
    const config = files.config === undefined ? {} : parseJSON(files.config, TOKENIZER_CONFIG_JSON);
    try {
      this.core = new HFTokenizerCore(tokenizerJson, config);
    } catch (e) {
      throw new LabError('tokenizer', `cannot build the tokenizer: ${(e as Error).message}`, { file: TOKENIZER_JSON, hint: 'Use the tokenizer.json saved by transformers or tokenizers for this model' });
    }
    let maxId = -1;
    for (const id of this.core.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    this.specialTokens = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const) {
      const token = tokenString(config[key]);
      if (token !== undefined) this.specialTokens[key] = token;
    }
    const idOf = (token: string | undefined) => (token === undefined ? undefined : this.core.token_to_id(token));
    this.bosId = idOf(this.specialTokens.bos_token);
    this.eosId = idOf(this.specialTokens.eos_token);
    this.padId = idOf(this.specialTokens.pad_token);
    this.chatTemplate = files.chatTemplate ?? pickTemplate(config.chat_template);
  }

  encode(text: string): number[] {
    return this.core.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[]): string {
    return this.core.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.core.token_to_id(token);
  }

  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = false): string {
    if (this.chatTemplate === undefined) {
      throw new LabError('tokenizer', 'this tokenizer has no chat template', { file: TOKENIZER_CONFIG_JSON, field: 'chat_template', expected: 'a Jinja template', found: 'nothing', hint: `Add chat_template to ${TOKENIZER_CONFIG_JSON} or a ${CHAT_TEMPLATE_FILE} file, or use a chat (instruct) model's tokenizer` });
    }
    try {
      this.template ??= new Template(this.chatTemplate);
      return this.template.render({ messages, add_generation_prompt: addGenerationPrompt, ...this.specialTokens });
    } catch (e) {
      throw new LabError('tokenizer', `the chat template failed: ${(e as Error).message}`, { file: TOKENIZER_CONFIG_JSON, field: 'chat_template', hint: 'Check the messages (roles, order) the template expects' });
    }
  }

  toFiles(): Record<string, string> {
    const out: Record<string, string> = { [TOKENIZER_JSON]: this.files.tokenizer };
    if (this.files.config !== undefined) out[TOKENIZER_CONFIG_JSON] = this.files.config;
    if (this.files.chatTemplate !== undefined) out[CHAT_TEMPLATE_FILE] = this.files.chatTemplate;
    return out;
  }
}

function parseJSON(text: string, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new LabError('tokenizer', `not valid JSON: ${(e as Error).message}`, { file, hint: 'The file is damaged: fetch it again' });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LabError('tokenizer', 'not a JSON object', { file, expected: 'an object', found: Array.isArray(v) ? 'an array' : typeof v });
  return v as Record<string, unknown>;
}

/** tokenizer_config.json writes special tokens as strings or as AddedToken objects {content, ...}. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** chat_template is a string, or a list of {name, template} of which "default" is the chat one. */
function pickTemplate(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v as { name?: string; template?: string }[];
    return (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  return undefined;
}
