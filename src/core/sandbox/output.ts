/**
 * What a call writes to stdout, kept as bytes up to a limit. With shared memory, the bytes are also
 * written through to a SharedArrayBuffer the pool holds, so the output a call printed before it timed
 * out is not lost when its worker has to be terminated (the interrupt did not land in time).
 */

/** UTF-8 bytes kept for `maxChars` characters (a character is at most 4 bytes). */
export const captureBytes = (maxChars: number) => maxChars * 4;

/** A shared buffer for one worker's output: an Int32 count of the bytes kept, then the bytes. */
export function createOutputMirror(maxChars: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 + captureBytes(maxChars));
}

/** Decoded text (invalid UTF-8 becomes U+FFFD), cut to `maxChars`, and whether anything was dropped. */
function decode(bytes: Uint8Array, dropped: boolean, maxChars: number): { text: string; truncated: boolean } {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return text.length > maxChars ? { text: text.slice(0, maxChars), truncated: true } : { text, truncated: dropped };
}

/** The output a worker's current (or last) call had written when it was read. */
export function readOutputMirror(mirror: SharedArrayBuffer, maxChars: number): { text: string; truncated: boolean } {
  const kept = Atomics.load(new Int32Array(mirror, 0, 1), 0);
  const capacity = mirror.byteLength - 4;
  // A copy: TextDecoder refuses views of shared memory.
  return decode(new Uint8Array(mirror, 4, Math.min(kept, capacity)).slice(), kept >= capacity, maxChars);
}

/** Collects one stream's bytes for a call, keeping at most `limit` of them (and mirroring them when asked). */
export class OutputCapture {
  private chunks: Uint8Array[] = [];
  private kept = 0;
  private total = 0;
  private readonly count?: Int32Array;
  private readonly bytes?: Uint8Array;

  constructor(
    private readonly limit: number,
    mirror?: SharedArrayBuffer,
  ) {
    if (mirror) {
      this.count = new Int32Array(mirror, 0, 1);
      this.bytes = new Uint8Array(mirror, 4, Math.min(limit, mirror.byteLength - 4));
    }
  }

  write = (buffer: Uint8Array): number => {
    this.total += buffer.length;
    const room = Math.min(this.limit, this.bytes?.length ?? this.limit) - this.kept;
    if (room > 0) {
      const piece = buffer.slice(0, Math.min(buffer.length, room));
      this.chunks.push(piece);
      if (this.bytes && this.count) {
        this.bytes.set(piece, this.kept);
        Atomics.store(this.count, 0, this.kept + piece.length);
      }
      this.kept += piece.length;
    }
    return buffer.length;
  };

  reset(): void {
    this.chunks = [];
    this.kept = 0;
    this.total = 0;
    if (this.count) Atomics.store(this.count, 0, 0);
  }

  /** Decoded text and whether anything was dropped. */
  text(maxChars: number): { text: string; truncated: boolean } {
    const all = new Uint8Array(this.kept);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    return decode(all, this.total > this.kept, maxChars);
  }
}
