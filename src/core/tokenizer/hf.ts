/**
 * Hugging Face tokenizers: tokenizer.json through @huggingface/tokenizers, the chat template from
 * tokenizer_config.json (or chat_template.jinja) through @huggingface/jinja, and the stop ids and
 * sampling defaults of generation_config.json (docs/models.md#prompts-and-stop-tokens).
 *
 * encode adds no special tokens of its own (no BOS from a post-processor): the chat template writes
 * them into the text, as transformers' apply_chat_template(tokenize=True) does. decode keeps special
 * tokens and spaces as they are, so decode(encode(text)) === text for NFC text.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer as HFTokenizerCore } from '@huggingface/tokenizers';
import { LabError } from '../errors';
import { GENERATION_CONFIG_JSON, parseGenerationConfig, type GenerationConfig, type GenerationDefaults } from './generation-config';
import type { ChatMessage, ChatTemplateOptions, Tokenizer } from './types';

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
  /** Text of generation_config.json, if the folder has one. */
  generationConfig?: string;
}

/** A token tokenizer_config.json lists in added_tokens_decoder. */
export interface AddedToken {
  content: string;
  special: boolean;
}

export class HFTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  readonly eosIds: readonly number[];
  readonly generationDefaults: GenerationDefaults;
  /** Special token strings from tokenizer_config.json, passed to the chat template. */
  readonly specialTokens: { bos_token?: string; eos_token?: string; pad_token?: string; unk_token?: string };
  /** tokenizer_config.json's added_tokens_decoder, by id (checked against tokenizer.json). */
  readonly addedTokens: ReadonlyMap<number, AddedToken>;
  readonly chatTemplate: string | undefined;
  /** Where the chat template came from (named in its errors). */
  readonly chatTemplateSource: string;
  /** The text a prompt without a chat template starts with: what transformers' tokenizer adds in front of a text (Llama's BOS), else nothing. */
  readonly basePromptStart: string;
  readonly generationConfig: GenerationConfig | undefined;
  private readonly core: HFTokenizerCore;
  private readonly template: Template | undefined;

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
    this.addedTokens = addedTokensOf(config, (id) => this.core.id_to_token(id));

    this.specialTokens = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const) {
      const token = tokenString(config[key]);
      if (token !== undefined) this.specialTokens[key] = token;
    }
    const idOf = (key: 'bos_token' | 'eos_token' | 'pad_token') => {
      const token = this.specialTokens[key];
      if (token === undefined) return undefined;
      const id = this.core.token_to_id(token);
      if (id === undefined) throw new LabError('tokenizer', `the ${key} is not in the vocabulary`, { file: TOKENIZER_CONFIG_JSON, field: key, expected: `a token of ${TOKENIZER_JSON}`, found: JSON.stringify(token), hint: 'The tokenizer files belong to different models' });
      return id;
    };
    this.bosId = idOf('bos_token');
    this.eosId = idOf('eos_token');
    this.padId = idOf('pad_token');
    this.basePromptStart = this.addedPrefix(config.add_bos_token);

    this.generationConfig = files.generationConfig === undefined ? undefined : parseGenerationConfig(files.generationConfig);
    const outside = this.generationConfig?.eosTokenIds.find((id) => id >= this.vocabSize);
    if (outside !== undefined) throw new LabError('tokenizer', 'an end-of-sequence id is outside the vocabulary', { file: GENERATION_CONFIG_JSON, field: 'eos_token_id', expected: `ids below ${this.vocabSize}`, found: String(outside), hint: 'The generation config belongs to another model' });
    this.eosIds = [...new Set([...(this.eosId === undefined ? [] : [this.eosId]), ...(this.generationConfig?.eosTokenIds ?? [])])];
    this.generationDefaults = this.generationConfig?.defaults ?? {};

    this.chatTemplate = files.chatTemplate ?? pickTemplate(config.chat_template);
    this.chatTemplateSource = files.chatTemplate !== undefined ? CHAT_TEMPLATE_FILE : `${TOKENIZER_CONFIG_JSON} (chat_template)`;
    // A broken template is refused when the folder loads, not when the first question is asked.
    if (this.chatTemplate !== undefined) {
      try {
        this.template = new Template(this.chatTemplate);
      } catch (e) {
        throw new LabError('tokenizer', `the chat template does not parse: ${jinjaMessage(e)}`, {
          file: files.chatTemplate !== undefined ? CHAT_TEMPLATE_FILE : TOKENIZER_CONFIG_JSON,
          ...(files.chatTemplate === undefined && { field: 'chat_template' }),
          expected: 'a Jinja template',
          hint: 'Take the template from the model\'s own files; every {% for %} and {% if %} needs its {% endfor %} / {% endif %}',
        });
      }
    }
  }

  /**
   * What tokenizing a text with special tokens puts in front of it: the BOS token when
   * tokenizer_config.json sets add_bos_token, nothing when it turns it off, else whatever
   * tokenizer.json's post-processor adds (Llama 3's <|begin_of_text|>).
   */
  private addedPrefix(addBos: unknown): string {
    if (addBos === true) return this.specialTokens.bos_token ?? '';
    if (addBos === false) return '';
    const plain = this.core.encode('a', { add_special_tokens: false }).ids;
    const marked = this.core.encode('a', { add_special_tokens: true }).ids;
    const at = marked.findIndex((_, i) => plain.every((id, j) => marked[i + j] === id));
    return at > 0 ? this.decode(marked.slice(0, at)) : '';
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  encode(text: string): number[] {
    return this.core.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[]): string {
    // The library refuses an empty list; nothing decodes to nothing (a stop string in a row's first token asks for it).
    if (ids.length === 0) return '';
    return this.core.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.core.token_to_id(token);
  }

  /** The chat through the template, as transformers' apply_chat_template(tokenize=False) renders it. */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = false, options: ChatTemplateOptions = {}): string {
    if (this.template === undefined) {
      throw new LabError('tokenizer', 'this tokenizer has no chat template', { file: TOKENIZER_CONFIG_JSON, field: 'chat_template', expected: 'a Jinja template', found: 'nothing', hint: `Add chat_template to ${TOKENIZER_CONFIG_JSON} or a ${CHAT_TEMPLATE_FILE} file, or use a chat (instruct) model's tokenizer` });
    }
    try {
      return this.template.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        ...this.specialTokens,
        ...(options.enableThinking !== undefined && { enable_thinking: options.enableThinking }),
      });
    } catch (e) {
      throw new LabError('tokenizer', `the chat template failed: ${jinjaMessage(e)}`, { file: this.chatTemplateSource, hint: 'Check the messages (roles, order) the template expects' });
    }
  }

  toFiles(): Record<string, string> {
    const out: Record<string, string> = { [TOKENIZER_JSON]: this.files.tokenizer };
    if (this.files.config !== undefined) out[TOKENIZER_CONFIG_JSON] = this.files.config;
    if (this.files.chatTemplate !== undefined) out[CHAT_TEMPLATE_FILE] = this.files.chatTemplate;
    if (this.files.generationConfig !== undefined) out[GENERATION_CONFIG_JSON] = this.files.generationConfig;
    return out;
  }
}

/** @huggingface/jinja reports a block left open as a TypeError about a missing token. */
function jinjaMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return e instanceof TypeError ? `${message} (the template ends inside an open block)` : message;
}

/** added_tokens_decoder of tokenizer_config.json: {"151643": {"content": "<|endoftext|>", "special": true, ...}}, each checked against tokenizer.json. */
function addedTokensOf(config: Record<string, unknown>, tokenOf: (id: number) => string | undefined): Map<number, AddedToken> {
  const out = new Map<number, AddedToken>();
  const decoder = config.added_tokens_decoder;
  if (decoder === undefined || decoder === null) return out;
  if (typeof decoder !== 'object' || Array.isArray(decoder)) throw new LabError('tokenizer', 'bad value', { file: TOKENIZER_CONFIG_JSON, field: 'added_tokens_decoder', expected: 'an object {id: {content, special}}', found: Array.isArray(decoder) ? 'an array' : typeof decoder });
  for (const [key, value] of Object.entries(decoder as Record<string, unknown>)) {
    const id = Number(key);
    const field = `added_tokens_decoder.${key}`;
    const content = (value as { content?: unknown } | null)?.content;
    if (!Number.isInteger(id) || id < 0 || typeof content !== 'string') throw new LabError('tokenizer', 'bad added token', { file: TOKENIZER_CONFIG_JSON, field, expected: '"<id>": {"content": "<token>", "special": true|false}', found: JSON.stringify(value) });
    const inVocab = tokenOf(id);
    if (inVocab !== content) throw new LabError('tokenizer', `added token ${id} differs from ${TOKENIZER_JSON}`, { file: TOKENIZER_CONFIG_JSON, field, expected: inVocab === undefined ? `an id of ${TOKENIZER_JSON}` : JSON.stringify(inVocab), found: JSON.stringify(content), hint: 'The tokenizer files belong to different models' });
    out.set(id, { content, special: (value as { special?: unknown }).special === true });
  }
  return out;
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
