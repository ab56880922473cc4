import { describe, expect, it } from 'vitest';
import { halfToFloat, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/core/model/safetensors';
import type { WeightMap } from '../../src/core/model/weights';
import { catchLab } from '../fixtures/errors';

/** Builds a safetensors file by hand from a header object and the raw data bytes. */
function buildFile(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function u16(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint16(i * 2, v, true));
  return out;
}


const sample = (): WeightMap =>
  new Map([
    ['model.embed_tokens.weight', { shape: [3, 2], data: Float32Array.from([1, -2, 0.5, 3.25, -0, 1e-8]) }],
    ['model.norm.weight', { shape: [3], data: Float32Array.from([1, 1, Math.PI]) }],
    ['scalar', { shape: [], data: Float32Array.from([42]) }],
  ]);

describe('safetensors writer', () => {
  it('writes the spec layout: u64 LE header length, JSON header padded with spaces to 8 bytes, F32 data in order', () => {
    const bytes = writeSafetensors(sample(), { format: 'pt', note: 'x' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText.startsWith('{')).toBe(true);
    expect(headerText.trimEnd().endsWith('}')).toBe(true);
    const header = JSON.parse(headerText);
    expect(header.__metadata__).toEqual({ format: 'pt', note: 'x' });
    expect(header['model.embed_tokens.weight']).toEqual({ dtype: 'F32', shape: [3, 2], data_offsets: [0, 24] });
    expect(header['model.norm.weight']).toEqual({ dtype: 'F32', shape: [3], data_offsets: [24, 36] });
    expect(header.scalar).toEqual({ dtype: 'F32', shape: [], data_offsets: [36, 40] });
    expect(bytes.length).toBe(8 + n + 40);
    expect(new DataView(bytes.buffer).getFloat32(8 + n + 12, true)).toBe(3.25);
  });

  it('round-trips tensors bit for bit, with metadata, also from an unaligned view', () => {
    const w = sample();
    const bytes = writeSafetensors(w, { format: 'pt' });
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    for (const view of [bytes, shifted.subarray(3)]) {
      const back = readSafetensors(view, 'x.safetensors');
      expect([...back.keys()]).toEqual([...w.keys()]);
      for (const [name, t] of w) {
        expect(back.get(name)!.shape).toEqual(t.shape);
        expect(Array.from(back.get(name)!.data)).toEqual(Array.from(t.data));
      }
      expect(readSafetensorsHeader(view).metadata).toEqual({ format: 'pt' });
    }
  });

  it('refuses a tensor whose data does not fill its shape', () => {
    const e = catchLab(() => writeSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]])));
    expect(e.message).toContain('"w"');
  });
});

describe('safetensors reader: half precision', () => {
  it('reads BF16 as the top 16 bits of float32', () => {
    // 1.0 = 0x3F80, -2.5 = 0xC020, 0.15625 = 0x3E20, 3.140625 = 0x4049, -0 = 0x8000
    const bytes = buildFile({ w: { dtype: 'BF16', shape: [5], data_offsets: [0, 10] } }, u16([0x3f80, 0xc020, 0x3e20, 0x4049, 0x8000]));
    const w = readSafetensors(bytes).get('w')!;
    expect(Array.from(w.data)).toEqual([1, -2.5, 0.15625, 3.140625, -0]);
  });

  it('reads F16 including subnormals, the largest half and infinity', () => {
    const bytes = buildFile({ h: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 12] } }, u16([0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0x7c00]));
    const h = readSafetensors(bytes).get('h')!;
    expect(h.shape).toEqual([2, 3]);
    expect(Array.from(h.data)).toEqual([1, -2, Math.fround(0.333251953125), Math.fround(2 ** -24), 65504, Infinity]);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
  });
});

describe('safetensors reader: bad input', () => {
  const good = writeSafetensors(sample());

  it('a file shorter than the length prefix', () => {
    const e = catchLab(() => readSafetensors(good.subarray(0, 5), 'cut.safetensors'));
    expect(e.message).toContain('cut.safetensors');
    expect(e.message).toMatch(/truncated/);
    expect(e.message).toMatch(/fetch it again/);
  });

  it('a file cut inside the header: the header length points past the end', () => {
    const e = catchLab(() => readSafetensors(good.subarray(0, 40), 'cut.safetensors'));
    expect(e.message).toContain('cut.safetensors');
    expect(e.message).toMatch(/header length points past the end/);
  });

  it('a file cut inside the data names the tensor that lies outside', () => {
    const e = catchLab(() => readSafetensors(good.subarray(0, good.length - 10), 'cut.safetensors'));
    expect(e.message).toContain('cut.safetensors');
    expect(e.message).toContain('"model.norm.weight"');
    expect(e.message).toMatch(/truncated|cut off/);
  });

  it('a header that is not JSON', () => {
    const bytes = new Uint8Array(8 + 16);
    new DataView(bytes.buffer).setBigUint64(0, 16n, true);
    bytes.set(new TextEncoder().encode('this is not json'), 8);
    const e = catchLab(() => readSafetensors(bytes, 'bad.safetensors'));
    expect(e.message).toContain('bad.safetensors');
    expect(e.message).toMatch(/not valid JSON/);
    expect(e.details.hint).toBeTruthy();
  });

  it('a PyTorch pickle read as safetensors', () => {
    const pickle = new Uint8Array(64).fill(0x80);
    const e = catchLab(() => readSafetensors(pickle, 'pytorch_model.bin'));
    expect(e.message).toMatch(/PyTorch/);
  });

  it('an unknown or unsupported dtype names the tensor and the dtype', () => {
    const q = buildFile({ 'model.layers.0.mlp.up_proj.weight': { dtype: 'Q4_K', shape: [4], data_offsets: [0, 2] } }, new Uint8Array(2));
    const e = catchLab(() => readSafetensors(q, 'q.safetensors'));
    expect(e.message).toContain('q.safetensors');
    expect(e.message).toContain('"model.layers.0.mlp.up_proj.weight"');
    expect(e.message).toContain('unknown dtype "Q4_K"');
    expect(e.message).toMatch(/expected F32, F16 or BF16/);

    const i64 = buildFile({ position_ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16));
    expect(catchLab(() => readSafetensors(i64)).message).toContain('found I64');
    // A filter that leaves the tensor out reads the rest.
    expect(readSafetensors(i64, 'x', { include: (n) => n !== 'position_ids' }).size).toBe(0);
  });

  it('a byte size that disagrees with shape x dtype', () => {
    const bytes = buildFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
    const e = catchLab(() => readSafetensors(bytes, 'x.safetensors'));
    expect(e.message).toContain('"w"');
    expect(e.message).toContain('expected 12 bytes for F32 [3], found 8 bytes');
  });

  it('overlapping tensors', () => {
    const bytes = buildFile(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      new Uint8Array(12),
    );
    const e = catchLab(() => readSafetensors(bytes, 'x.safetensors'));
    expect(e.message).toMatch(/"a" and "b" overlap/);
  });

  it('a malformed header entry', () => {
    const bytes = buildFile({ w: { dtype: 'F32', shape: 'three', data_offsets: [0, 12] } }, new Uint8Array(12));
    expect(catchLab(() => readSafetensors(bytes)).message).toMatch(/"w" has a malformed header entry/);
  });
});
