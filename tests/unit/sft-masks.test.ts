/**
 * Which characters of a TIR demonstration SFT trains: everything the policy would write, and none of
 * the text a rollout forces after a code block (observationBlock: the line break when the fence ends
 * the line, the output block, the line break after it).
 */
import { describe, expect, it } from 'vitest';
import { sftSequence, splitForced } from '../../src/core/rl/sft';
import { observationBlock } from '../../src/core/tir/format';
import { CharTokenizer } from '../../src/core/tokenizer/char';

const tokenizer = CharTokenizer.fromCharset();
const code = 'Let me compute.\n```python\nprint(2*3)\n```';

describe('forced text in demonstrations', () => {
  it('masks exactly what a rollout forces after a code fence, the line break before the output included', () => {
    const forced = observationBlock('6', false);
    const response = `${code}${forced}So the answer is \\boxed{6}.`;
    expect(splitForced(response)).toEqual([
      { text: code, forced: false },
      { text: forced, forced: true },
      { text: 'So the answer is \\boxed{6}.', forced: false },
    ]);
    const seq = sftSequence(tokenizer, 'What is 2*3?', response, '');
    const masked = seq.lossMask.filter((m) => m === 0).length;
    // Only the forced characters are out of the loss (the EOS the tokenizer adds is trained).
    expect(masked).toBe(tokenizer.encode(forced).length);
  });

  it('leaves the policy its own text between a code block and an output block, and every later block', () => {
    const response = `${code}\nRunning it:\n\`\`\`output\n6\n\`\`\`\nThen again\n\`\`\`python\nprint(7)\n\`\`\`${observationBlock('7', false)}Done.`;
    const pieces = splitForced(response);
    expect(pieces.filter((p) => p.forced).map((p) => p.text)).toEqual(['```output\n6\n```\n', observationBlock('7', false)]);
    expect(pieces.map((p) => p.text).join('')).toBe(response);
  });
});
