/** Loads whichever tokenizer a model folder holds: Hugging Face tokenizer.json, or the character tokenizer's file. */
import { LabError } from '../errors';
import { bytesToText, MemoryFiles, type FileSource } from '../files';
import { CHAR_TOKENIZER_FILE, CharTokenizer } from './char';
import { CHAT_TEMPLATE_FILE, HFTokenizer, TOKENIZER_CONFIG_JSON, TOKENIZER_JSON } from './hf';
import type { Tokenizer } from './types';

export { CharTokenizer, HFTokenizer };
export type { ChatMessage, Tokenizer } from './types';

/** File names that belong to a tokenizer (copied along with a model folder). */
export const TOKENIZER_FILES = [TOKENIZER_JSON, TOKENIZER_CONFIG_JSON, CHAT_TEMPLATE_FILE, CHAR_TOKENIZER_FILE];

/** Builds a tokenizer from file texts by name (as toFiles() returns them). */
export function tokenizerFromFiles(files: Record<string, string>, label = 'model folder'): Tokenizer {
  if (files[TOKENIZER_JSON] !== undefined) {
    return new HFTokenizer({ tokenizer: files[TOKENIZER_JSON], config: files[TOKENIZER_CONFIG_JSON], chatTemplate: files[CHAT_TEMPLATE_FILE] });
  }
  if (files[CHAR_TOKENIZER_FILE] !== undefined) return CharTokenizer.fromJSON(files[CHAR_TOKENIZER_FILE]);
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
  for (const name of TOKENIZER_FILES) if (present.has(name)) files[name] = bytesToText(await src.read(name));
  return tokenizerFromFiles(files, src.label);
}

/** The tokenizer among a checkpoint's files (held in memory). */
export function checkpointTokenizer(checkpoint: Record<string, Uint8Array>): Promise<Tokenizer> {
  return loadTokenizer(new MemoryFiles('checkpoint', checkpoint));
}
