/** The stdout capture and its shared mirror (what the pool reads when it must terminate a worker). */
import { describe, expect, it } from 'vitest';
import { captureBytes, createOutputMirror, OutputCapture, readOutputMirror } from '../../src/core/sandbox/output';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('sandbox output capture', () => {
  it('mirrors every write, so a reader sees what was printed so far', () => {
    const mirror = createOutputMirror(100);
    const out = new OutputCapture(captureBytes(100), mirror);
    expect(readOutputMirror(mirror, 100)).toEqual({ text: '', truncated: false });
    out.write(utf8('step 1\n'));
    expect(readOutputMirror(mirror, 100)).toEqual({ text: 'step 1\n', truncated: false });
    out.write(utf8('√2 ≈ 1.414\n'));
    expect(readOutputMirror(mirror, 100)).toEqual(out.text(100));
    expect(out.text(100)).toEqual({ text: 'step 1\n√2 ≈ 1.414\n', truncated: false });
    out.reset();
    expect(readOutputMirror(mirror, 100)).toEqual({ text: '', truncated: false });
  });

  it('keeps at most its limit, in the capture and the mirror alike, and says so', () => {
    const maxChars = 5;
    const mirror = createOutputMirror(maxChars);
    const out = new OutputCapture(captureBytes(maxChars), mirror);
    for (let i = 0; i < 100; i++) out.write(utf8(`${i}\n`));
    expect(out.text(maxChars)).toEqual({ text: '0\n1\n2', truncated: true });
    expect(readOutputMirror(mirror, maxChars)).toEqual({ text: '0\n1\n2', truncated: true });
  });

  it('decodes a character cut at the byte limit as U+FFFD, never throwing', () => {
    const mirror = createOutputMirror(1); // 4 bytes
    const out = new OutputCapture(captureBytes(1), mirror);
    out.write(utf8('ab€')); // 2 + 3 bytes: the euro sign is cut after its first 2 bytes
    expect(readOutputMirror(mirror, 10).text).toBe('ab\uFFFD');
    expect(out.text(10)).toEqual({ text: 'ab\uFFFD', truncated: true });
  });
});
