/**
 * Weights packed as float16 pairs on tfjs's WebGPU backend (docs/engine.md#packed-f16-weights). tfjs
 * has no float16 tensors, so a [rows, cols] float32 matrix is held as an int32 tensor [rows, cols / 2]
 * whose every element carries two halves, packed and unpacked with WGSL's pack2x16float and
 * unpack2x16float (core WGSL: no shader-f16 feature needed). The matrix products below unpack inside
 * the kernel, tile by tile, so no float32 copy of the weight is ever made: half the memory of a
 * weight that does not train (inference, and the frozen base under LoRA). Weights that train stay
 * float32: an update of a half-precision weight would lose most of its small steps.
 */
import * as tf from '@tensorflow/tfjs';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { LabError } from '../errors';
import { customOp } from './ops';
import { Program, run } from './webgpu-kernels';

const WORKGROUP = 64;
/** Output tile of the products: 32 × 32, each of the 64 threads computing 4 × 4; K in steps of 16. */
const TILE = 32;
const TILE_K = 16;

/** A float32 matrix [rows, cols] held as float16 pairs: `bits` is int32 [rows, cols / 2]. */
export interface PackedMatrix {
  bits: tf.Tensor2D;
  rows: number;
  cols: number;
}

/** int32 [rows, cols / 2] from float32 [rows, cols]: element i holds values 2i and 2i + 1 (row-major, cols even). */
class PackProgram extends Program {
  variableNames = ['x'];
  shaderKey = 'thor_f16_pack';

  getUserCode(): string {
    return `
    fn main(index : i32) {
      if (index < uniforms.size) {
        setOutputAtIndexI32(index, bitcast<i32>(pack2x16float(vec2<f32>(x[2 * index], x[2 * index + 1]))));
      }
    }`;
  }
}

/** The half of pair `i` of buffer `name` selected by column `col`'s parity, as float32. */
function half(name: string, pair: string, col: string): string {
  return `select(unpack2x16float(bitcast<u32>(${name}[${pair}])).x, unpack2x16float(bitcast<u32>(${name}[${pair}])).y, (${col}) % 2 == 1)`;
}

/** float32 [rows, cols] back from the pairs. */
class UnpackProgram extends Program {
  variableNames = ['bits'];
  shaderKey = 'thor_f16_unpack';

  getUserCode(): string {
    return `
    fn main(index : i32) {
      if (index < uniforms.size) {
        let cols = uniforms.outShape[1];
        let r = index / cols;
        let c = index - r * cols;
        setOutputAtIndex(index, ${half('bits', 'r * uniforms.bitsShape[1] + c / 2', 'c')});
      }
    }`;
  }
}

/** Rows `ids` [n, 1] of a packed table [V, h / 2], unpacked: [n, h] (the embedding lookup). */
class GatherProgram extends Program {
  variableNames = ['table', 'ids'];
  shaderKey = 'thor_f16_gather';

  getUserCode(): string {
    return `
    fn main(index : i32) {
      if (index < uniforms.size) {
        let cols = uniforms.outShape[1];
        let n = index / cols;
        let c = index - n * cols;
        let row = ids[n];
        setOutputAtIndex(index, ${half('table', 'row * uniforms.tableShape[1] + c / 2', 'c')});
      }
    }`;
  }
}

/**
 * y [M, N] = x [M, K] · W, with W packed along its last axis:
 * - 'n': W is [K, N], stored [K, N / 2] (a Linear weight held [in, out]: y = x·W);
 * - 't': W is [N, K], stored [N, K / 2], and y = x·Wᵀ (the tied head reading the embedding [V, h],
 *   and the input gradient dy·Wᵀ of a Linear weight).
 * One workgroup per 32 × 32 output tile; x and the unpacked weight pass through workgroup memory
 * 16 columns of K at a time.
 */
class PackedMatMulProgram implements WebGPUProgram {
  variableNames = ['x', 'w'];
  shaderKey: string;
  outputShape: number[];
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];

  constructor(
    m: number,
    n: number,
    private readonly layout: 'n' | 't',
  ) {
    this.outputShape = [m, n];
    this.shaderKey = `thor_f16_matmul_${layout}`;
    this.dispatch = [Math.ceil(n / TILE), Math.ceil(m / TILE), 1];
  }

  getUserCode(): string {
    // 256 pairs of the weight tile [16 × 32] per step, 4 per thread.
    const loadW =
      this.layout === 'n'
        ? `let kk = e / ${TILE / 2};
          let pc = e - kk * ${TILE / 2};
          let gk = k0 + kk;
          let gn = n0 + 2 * pc;
          var v = vec2<f32>(0.0, 0.0);
          if (gk < K && gn < N) { v = unpack2x16float(bitcast<u32>(w[gk * uniforms.wShape[1] + gn / 2])); }
          Bs[kk][2 * pc] = v.x;
          Bs[kk][2 * pc + 1] = v.y;`
        : `let nn = e / ${TILE_K / 2};
          let kp = e - nn * ${TILE_K / 2};
          let gn = n0 + nn;
          let gk = k0 + 2 * kp;
          var v = vec2<f32>(0.0, 0.0);
          if (gn < N && gk < K) { v = unpack2x16float(bitcast<u32>(w[gn * uniforms.wShape[1] + gk / 2])); }
          Bs[2 * kp][nn] = v.x;
          Bs[2 * kp + 1][nn] = v.y;`;
    return `
    var<workgroup> As : array<array<f32, ${TILE_K}>, ${TILE}>;
    var<workgroup> Bs : array<array<f32, ${TILE}>, ${TILE_K}>;
    fn main(index : i32) {
      let tid = i32(localIndex);
      // From the uniforms, not written into the code: a compiled shader is reused for every shape.
      let M = uniforms.outShape[0];
      let N = uniforms.outShape[1];
      let K = uniforms.xShape[1];
      let m0 = i32(workgroupId.y) * ${TILE};
      let n0 = i32(workgroupId.x) * ${TILE};
      let tx = tid % 8;
      let ty = tid / 8;
      var acc : array<array<f32, 4>, 4>;
      for (var k0 = 0; k0 < K; k0 += ${TILE_K}) {
        for (var i = 0; i < ${(TILE * TILE_K) / WORKGROUP}; i++) {
          let e = tid + i * ${WORKGROUP};
          let r = e / ${TILE_K};
          let c = e - r * ${TILE_K};
          let gm = m0 + r;
          let gk = k0 + c;
          var a = 0.0;
          if (gm < M && gk < K) { a = x[gm * K + gk]; }
          As[r][c] = a;
        }
        for (var i = 0; i < ${(TILE * TILE_K) / 2 / WORKGROUP}; i++) {
          let e = tid + i * ${WORKGROUP};
          ${loadW}
        }
        workgroupBarrier();
        for (var k = 0; k < ${TILE_K}; k++) {
          let b = vec4<f32>(Bs[k][tx * 4], Bs[k][tx * 4 + 1], Bs[k][tx * 4 + 2], Bs[k][tx * 4 + 3]);
          for (var r = 0; r < 4; r++) {
            let a = As[ty * 4 + r][k];
            acc[r][0] += a * b.x;
            acc[r][1] += a * b.y;
            acc[r][2] += a * b.z;
            acc[r][3] += a * b.w;
          }
        }
        workgroupBarrier();
      }
      for (var r = 0; r < 4; r++) {
        let gm = m0 + ty * 4 + r;
        for (var c = 0; c < 4; c++) {
          let gn = n0 + tx * 4 + c;
          if (gm < M && gn < N) { setOutputAtIndex(gm * N + gn, acc[r][c]); }
        }
      }
    }`;
  }
}

/** Why no weights can be packed on the backend tfjs runs now, or undefined when they can. */
export function f16Unavailable(): string | undefined {
  return tf.getBackend() === 'webgpu' ? undefined : `packed float16 weights need the WebGPU backend (this one is ${tf.getBackend()})`;
}

/** Why a matrix cannot be packed here, or undefined when it can. */
export function cannotPack(shape: readonly number[]): string | undefined {
  const backend = f16Unavailable();
  if (backend) return backend;
  if (shape.length !== 2) return `only matrices are packed (this tensor has rank ${shape.length})`;
  if (shape[1] % 2 !== 0) return `the last axis must have an even length to hold pairs (found ${shape[1]})`;
  return undefined;
}

/** The matrix as float16 pairs (rounded to nearest); the float32 tensor stays the caller's. */
export function packF16(w: tf.Tensor2D): PackedMatrix {
  const why = cannotPack(w.shape);
  if (why) throw new LabError('model', `cannot pack a [${w.shape.join(', ')}] tensor as float16: ${why}`);
  const [rows, cols] = w.shape;
  const bits = run(new PackProgram([rows, cols / 2], 'element'), [w], undefined, 'int32') as tf.Tensor2D;
  return { bits, rows, cols };
}

/** The float32 matrix back (each value as its float16 rounding). */
export function unpackF16(p: PackedMatrix): tf.Tensor2D {
  return run(new UnpackProgram([p.rows, p.cols], 'element'), [p.bits]) as tf.Tensor2D;
}

/** Bytes the packed matrix holds on the device. */
export function packedBytes(p: PackedMatrix): number {
  return p.bits.size * 4;
}

/** x·W (W [K, N] packed) or, `transposed`, x·Wᵀ (W [N, K] packed), without a gradient. */
function product(x: tf.Tensor2D, p: PackedMatrix, transposed: boolean): tf.Tensor2D {
  const [m, k] = x.shape;
  const inner = transposed ? p.cols : p.rows;
  if (k !== inner) throw new LabError('model', `matrix product: x has ${k} columns, the packed weight [${p.rows}, ${p.cols}] needs ${inner}`);
  return run(new PackedMatMulProgram(m, transposed ? p.rows : p.cols, transposed ? 't' : 'n'), [x, p.bits]) as tf.Tensor2D;
}

/**
 * y = x·W for a packed W [in, out], or x·Wᵀ for W [out, in] with `transposed`; the gradient reaches x
 * only (dx = dy·Wᵀ, or dy·W), each from the same packed weight with the other kernel.
 */
export function packedLinear(x: tf.Tensor2D, p: PackedMatrix, transposed = false): tf.Tensor2D {
  const op = customOp(([input], save) => {
    save([]);
    const gradFunc = (dy: tf.Tensor) => [product(dy as tf.Tensor2D, p, !transposed)];
    return { value: product(input as tf.Tensor2D, p, transposed), gradFunc };
  });
  return op(x) as tf.Tensor2D;
}

/** Rows of a packed table [V, h] for ids [n] (int32): [n, h] float32. A frozen table: no gradient. */
export function packedEmbedding(ids: tf.Tensor1D, table: PackedMatrix): tf.Tensor2D {
  return tf.tidy(() => {
    const column = tf.reshape(tf.cast(ids, 'int32'), [ids.size, 1]);
    return run(new GatherProgram([ids.size, table.cols], 'element'), [table.bits, column]) as tf.Tensor2D;
  });
}
