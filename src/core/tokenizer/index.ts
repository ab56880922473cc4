/** Loads whichever tokenizer a model folder holds: Hugging Face tokenizer.json, or the character tokenizer's file. */
import { LabError } from '../errors';
import { bytesToText, MemoryFiles, type FileSource } from '../files';
import { CHAR_TOKENIZER_FILE, CharTokenizer } from './char';
import { GENERATION_CONFIG_JSON } from './generation-config';
import { CHAT_TEMPLATE_FILE, HFTokenizer, TOKENIZER_CONFIG_JSON, TOKENIZER_JSON } from './hf';
import type { Tokenizer } from './types';

export { CharTokenizer, HFTokenizer };
export type { ChatMessage, ChatTemplateOptions, Tokenizer } from './types';
export type { GenerationDefaults } from './generation-config';

/**
 * File names that belong to a tokenizer (copied along with a model folder). generation_config.json
 * travels with them: its end-of-sequence ids and sampling defaults shape prompts and stops as the
 * tokenizer's do (docs/models.md#prompts-and-stop-tokens).
 */
export const TOKENIZER_FILES = [TOKENIZER_JSON, TOKENIZER_CONFIG_JSON, CHAT_TEMPLATE_FILE, GENERATION_CONFIG_JSON, CHAR_TOKENIZER_FILE];

/** Files of a Hugging Face tokenizer that the lab cannot read without tokenizer.json (slow-tokenizer files). */
const SLOW_TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer.model', 'vocab.txt', 'spiece.model'];

/** Builds a tokenizer from file texts by name (as toFiles() returns them). */
export function tokenizerFromFiles(files: Record<string, string>, label = 'model folder'): Tokenizer {
  if (files[TOKENIZER_JSON] !== undefined) {
    return new HFTokenizer({ tokenizer: files[TOKENIZER_JSON], config: files[TOKENIZER_CONFIG_JSON], chatTemplate: files[CHAT_TEMPLATE_FILE], generationConfig: files[GENERATION_CONFIG_JSON] });
  }
  if (files[CHAR_TOKENIZER_FILE] !== undefined) return CharTokenizer.fromJSON(files[CHAR_TOKENIZER_FILE]);
  if (files[TOKENIZER_CONFIG_JSON] !== undefined) throw noTokenizerJson(label, Object.keys(files));
  throw new LabError('tokenizer', 'no tokenizer found', {
    file: label,
    expected: `${TOKENIZER_JSON} (with ${TOKENIZER_CONFIG_JSON}) or ${CHAR_TOKENIZER_FILE}`,
    found: Object.keys(files).length ? Object.keys(files).join(', ') : 'no tokenizer files',
    hint: 'Copy the tokenizer files of the model into the folder',
  });
}

export async function loadTokenizer(src: FileSource): Promise<Tokenizer> {
  const present = new Set(await src.list());
  const files: Record<string, string> = {};
  if (!present.has(TOKENIZER_JSON) && !present.has(CHAR_TOKENIZER_FILE) && SLOW_TOKENIZER_FILES.some((name) => present.has(name))) throw noTokenizerJson(src.label, [...present]);
  for (const name of TOKENIZER_FILES) if (present.has(name)) files[name] = bytesToText(await src.read(name));
  return tokenizerFromFiles(files, src.label);
}

/** A Hugging Face folder with the tokenizer's other files but not tokenizer.json, which is what the lab reads. */
function noTokenizerJson(label: string, names: string[]): LabError {
  const found = names.filter((n) => n === TOKENIZER_CONFIG_JSON || SLOW_TOKENIZER_FILES.includes(n));
  return new LabError('tokenizer', `the folder has no ${TOKENIZER_JSON}`, {
    file: label,
    expected: `${TOKENIZER_JSON} (the fast tokenizer)`,
    found: found.join(', '),
    hint: `Save the tokenizer with transformers (AutoTokenizer.from_pretrained(folder).save_pretrained(folder) writes ${TOKENIZER_JSON}) and copy it into the folder`,
  });
}

/** True when these file names include a tokenizer the lab reads (an adapter checkpoint has none). */
export function hasTokenizerFile(names: readonly string[]): boolean {
  return names.includes(TOKENIZER_JSON) || names.includes(CHAR_TOKENIZER_FILE);
}

/** The tokenizer among a checkpoint's files (held in memory). */
export function checkpointTokenizer(checkpoint: Record<string, Uint8Array>): Promise<Tokenizer> {
  return loadTokenizer(new MemoryFiles('checkpoint', checkpoint));
}
