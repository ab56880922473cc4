;; The engine's own matrix product for tfjs's wasm backend (docs/engine.md#the-wasm-matrix-kernel),
;; and after it the fused RMSNorm and RoPE kernels (docs/engine.md#fused-wasm-kernels).
;;
;; C[M, N] = A[M, K] · B[K, N], C row-major with leading dimension ldc (in floats), every pointer a
;; byte offset into tfjs's own wasm memory, which this module imports: the kernel reads the operands
;; where tfjs keeps them and writes the product where tfjs expects it. A's value (m, k) lies at
;; a + m·rowA + k·colA (bytes): row-major A has rowA = 4·lda, colA = 4; a transposed one, A [K, M]
;; read as Aᵀ, has rowA = 4, colA = 4·M, and needs no copy. B is read in
;; blocks of 8 columns: row k of block j lies at b + j·colB + k·rowB (bytes). Row-major B has rowB =
;; 4·ldb, colB = 32; B packed in panels (pack_panels: each block's K rows of 8 one after the other)
;; has rowB = 32, colB = 32·K, and is read in one sequential stream per block instead of one cache
;; line per row, which a wide B (a row of 4 KB at N = 1024) turns into cache-set conflicts.
;; N must be a multiple of 8 (the caller pads); M and K may be anything.
;;
;; Each step of the inner loop takes one row of B, 8 columns wide (two 4-lane vectors), and adds it,
;; times A's value broadcast to all lanes, to 4 rows of accumulators: 8 products and 8 sums in
;; registers for 2 vector loads and 4 scalar loads, the register-blocked form of a GEMM micro-kernel
;; (Goto & van de Geijn 2008, "Anatomy of high-performance matrix multiplication"). Two or three rows
;; left after the last multiple of 4 go through the same block with A's last row repeated (and not
;; stored); one row left goes through a one-row kernel of the same shape.
;;
;; Built by scripts/build-wasm-kernels.mjs into src/core/model/wasm-gemm.generated.ts; `@SHARED@` is
;; replaced by nothing for tfjs's single-threaded build and by `shared` for its threaded one, whose
;; memory is a SharedArrayBuffer.
(module
  (import "env" "memory" (memory 0 65536 @SHARED@))

  (func $min (param $x i32) (param $y i32) (result i32)
    (select (local.get $x) (local.get $y) (i32.lt_s (local.get $x) (local.get $y))))

  (func $gemm (export "gemm")
    (param $a i32) (param $rowA i32) (param $colA i32)
    (param $b i32) (param $rowB i32) (param $colB i32)
    (param $c i32) (param $ldc i32)
    (param $M i32) (param $K i32) (param $N i32)
    (local $i i32) (local $j i32) (local $k i32)
    (local $pa0 i32) (local $pa1 i32) (local $pa2 i32) (local $pa3 i32)
    (local $pb i32) (local $pc i32) (local $strideC i32) (local $last i32)
    (local $b0 v128) (local $b1 v128) (local $av v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $strideC (i32.shl (local.get $ldc) (i32.const 2)))

;; Blocks of 4 rows, the last block also where only 2 or 3 rows are left (decoding's attention has
    ;; 1 to 8 query rows a kv head): its missing rows repeat the last row of A and are not stored, so B
    ;; is still read once for all of them.
    (local.set $last (i32.mul (i32.sub (local.get $M) (i32.const 1)) (local.get $rowA)))
    (local.set $i (i32.const 0))
    (block $rows4_done
      (loop $rows4
        (br_if $rows4_done (i32.lt_s (i32.sub (local.get $M) (local.get $i)) (i32.const 2)))
        (local.set $j (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_s (local.get $j) (local.get $N)))
            (local.set $c00 (v128.const f32x4 0 0 0 0)) (local.set $c01 (v128.const f32x4 0 0 0 0))
            (local.set $c10 (v128.const f32x4 0 0 0 0)) (local.set $c11 (v128.const f32x4 0 0 0 0))
            (local.set $c20 (v128.const f32x4 0 0 0 0)) (local.set $c21 (v128.const f32x4 0 0 0 0))
            (local.set $c30 (v128.const f32x4 0 0 0 0)) (local.set $c31 (v128.const f32x4 0 0 0 0))
            (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowA))))
            (local.set $pa1 (i32.add (local.get $pa0) (local.get $rowA)))
            (local.set $pa2 (i32.add (local.get $a) (call $min (i32.mul (i32.add (local.get $i) (i32.const 2)) (local.get $rowA)) (local.get $last))))
            (local.set $pa3 (i32.add (local.get $a) (call $min (i32.mul (i32.add (local.get $i) (i32.const 3)) (local.get $rowA)) (local.get $last))))
            (local.set $pb (i32.add (local.get $b) (i32.mul (i32.shr_u (local.get $j) (i32.const 3)) (local.get $colB))))
            (local.set $k (local.get $K))
            ;; Where A's rows are contiguous, four steps of k at a time: one vector load of four
            ;; values a row, each broadcast in turn by a shuffle (one instruction, where a scalar load
            ;; and a splat are two), and the loop's own work paid once for four steps.
            (if (i32.eq (local.get $colA) (i32.const 4))
              (then
                (block $q_done
                  (loop $qloop
                    (br_if $q_done (i32.lt_s (local.get $k) (i32.const 4)))
                    (local.set $a0 (v128.load (local.get $pa0)))
                    (local.set $a1 (v128.load (local.get $pa1)))
                    (local.set $a2 (v128.load (local.get $pa2)))
                    (local.set $a3 (v128.load (local.get $pa3)))
                    ;; k + 0: lane 0 of each row's four values
                    (local.set $b0 (v128.load (local.get $pb)))
                    (local.set $b1 (v128.load offset=16 (local.get $pb)))
                    (local.set $av (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $a0) (local.get $a0)))
                    (local.set $c00 (@madd (local.get $av) (local.get $b0) (local.get $c00)))
                    (local.set $c01 (@madd (local.get $av) (local.get $b1) (local.get $c01)))
                    (local.set $av (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $a1) (local.get $a1)))
                    (local.set $c10 (@madd (local.get $av) (local.get $b0) (local.get $c10)))
                    (local.set $c11 (@madd (local.get $av) (local.get $b1) (local.get $c11)))
                    (local.set $av (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $a2) (local.get $a2)))
                    (local.set $c20 (@madd (local.get $av) (local.get $b0) (local.get $c20)))
                    (local.set $c21 (@madd (local.get $av) (local.get $b1) (local.get $c21)))
                    (local.set $av (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $a3) (local.get $a3)))
                    (local.set $c30 (@madd (local.get $av) (local.get $b0) (local.get $c30)))
                    (local.set $c31 (@madd (local.get $av) (local.get $b1) (local.get $c31)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    ;; k + 1: lane 1 of each row's four values
                    (local.set $b0 (v128.load (local.get $pb)))
                    (local.set $b1 (v128.load offset=16 (local.get $pb)))
                    (local.set $av (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $a0) (local.get $a0)))
                    (local.set $c00 (@madd (local.get $av) (local.get $b0) (local.get $c00)))
                    (local.set $c01 (@madd (local.get $av) (local.get $b1) (local.get $c01)))
                    (local.set $av (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $a1) (local.get $a1)))
                    (local.set $c10 (@madd (local.get $av) (local.get $b0) (local.get $c10)))
                    (local.set $c11 (@madd (local.get $av) (local.get $b1) (local.get $c11)))
                    (local.set $av (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $a2) (local.get $a2)))
                    (local.set $c20 (@madd (local.get $av) (local.get $b0) (local.get $c20)))
                    (local.set $c21 (@madd (local.get $av) (local.get $b1) (local.get $c21)))
                    (local.set $av (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $a3) (local.get $a3)))
                    (local.set $c30 (@madd (local.get $av) (local.get $b0) (local.get $c30)))
                    (local.set $c31 (@madd (local.get $av) (local.get $b1) (local.get $c31)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    ;; k + 2: lane 2 of each row's four values
                    (local.set $b0 (v128.load (local.get $pb)))
                    (local.set $b1 (v128.load offset=16 (local.get $pb)))
                    (local.set $av (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $a0) (local.get $a0)))
                    (local.set $c00 (@madd (local.get $av) (local.get $b0) (local.get $c00)))
                    (local.set $c01 (@madd (local.get $av) (local.get $b1) (local.get $c01)))
                    (local.set $av (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $a1) (local.get $a1)))
                    (local.set $c10 (@madd (local.get $av) (local.get $b0) (local.get $c10)))
                    (local.set $c11 (@madd (local.get $av) (local.get $b1) (local.get $c11)))
                    (local.set $av (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $a2) (local.get $a2)))
                    (local.set $c20 (@madd (local.get $av) (local.get $b0) (local.get $c20)))
                    (local.set $c21 (@madd (local.get $av) (local.get $b1) (local.get $c21)))
                    (local.set $av (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $a3) (local.get $a3)))
                    (local.set $c30 (@madd (local.get $av) (local.get $b0) (local.get $c30)))
                    (local.set $c31 (@madd (local.get $av) (local.get $b1) (local.get $c31)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    ;; k + 3: lane 3 of each row's four values
                    (local.set $b0 (v128.load (local.get $pb)))
                    (local.set $b1 (v128.load offset=16 (local.get $pb)))
                    (local.set $av (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $a0) (local.get $a0)))
                    (local.set $c00 (@madd (local.get $av) (local.get $b0) (local.get $c00)))
                    (local.set $c01 (@madd (local.get $av) (local.get $b1) (local.get $c01)))
                    (local.set $av (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $a1) (local.get $a1)))
                    (local.set $c10 (@madd (local.get $av) (local.get $b0) (local.get $c10)))
                    (local.set $c11 (@madd (local.get $av) (local.get $b1) (local.get $c11)))
                    (local.set $av (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $a2) (local.get $a2)))
                    (local.set $c20 (@madd (local.get $av) (local.get $b0) (local.get $c20)))
                    (local.set $c21 (@madd (local.get $av) (local.get $b1) (local.get $c21)))
                    (local.set $av (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $a3) (local.get $a3)))
                    (local.set $c30 (@madd (local.get $av) (local.get $b0) (local.get $c30)))
                    (local.set $c31 (@madd (local.get $av) (local.get $b1) (local.get $c31)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    (local.set $pa0 (i32.add (local.get $pa0) (i32.const 16)))
                    (local.set $pa1 (i32.add (local.get $pa1) (i32.const 16)))
                    (local.set $pa2 (i32.add (local.get $pa2) (i32.const 16)))
                    (local.set $pa3 (i32.add (local.get $pa3) (i32.const 16)))
                    (local.set $k (i32.sub (local.get $k) (i32.const 4)))
                    (br $qloop)))))
            ;; The rest of k (all of it for a strided A), one step at a time.
            (block $k_done
              (loop $kloop
                (br_if $k_done (i32.le_s (local.get $k) (i32.const 0)))
                (local.set $b0 (v128.load (local.get $pb)))
                (local.set $b1 (v128.load offset=16 (local.get $pb)))
                (local.set $av (f32x4.splat (f32.load (local.get $pa0))))
                (local.set $c00 (@madd (local.get $av) (local.get $b0) (local.get $c00)))
                (local.set $c01 (@madd (local.get $av) (local.get $b1) (local.get $c01)))
                (local.set $av (f32x4.splat (f32.load (local.get $pa1))))
                (local.set $c10 (@madd (local.get $av) (local.get $b0) (local.get $c10)))
                (local.set $c11 (@madd (local.get $av) (local.get $b1) (local.get $c11)))
                (local.set $av (f32x4.splat (f32.load (local.get $pa2))))
                (local.set $c20 (@madd (local.get $av) (local.get $b0) (local.get $c20)))
                (local.set $c21 (@madd (local.get $av) (local.get $b1) (local.get $c21)))
                (local.set $av (f32x4.splat (f32.load (local.get $pa3))))
                (local.set $c30 (@madd (local.get $av) (local.get $b0) (local.get $c30)))
                (local.set $c31 (@madd (local.get $av) (local.get $b1) (local.get $c31)))
                (local.set $pa0 (i32.add (local.get $pa0) (local.get $colA)))
                (local.set $pa1 (i32.add (local.get $pa1) (local.get $colA)))
                (local.set $pa2 (i32.add (local.get $pa2) (local.get $colA)))
                (local.set $pa3 (i32.add (local.get $pa3) (local.get $colA)))
                (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                (br $kloop)))
            (local.set $pc (i32.add (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $strideC))) (i32.shl (local.get $j) (i32.const 2))))
            (v128.store (local.get $pc) (local.get $c00))
            (v128.store offset=16 (local.get $pc) (local.get $c01))
            (local.set $pc (i32.add (local.get $pc) (local.get $strideC)))
            (v128.store (local.get $pc) (local.get $c10))
            (v128.store offset=16 (local.get $pc) (local.get $c11))
            (local.set $pc (i32.add (local.get $pc) (local.get $strideC)))
            (if (i32.lt_s (i32.add (local.get $i) (i32.const 2)) (local.get $M))
              (then
                (v128.store (local.get $pc) (local.get $c20))
                (v128.store offset=16 (local.get $pc) (local.get $c21))))
            (local.set $pc (i32.add (local.get $pc) (local.get $strideC)))
            (if (i32.lt_s (i32.add (local.get $i) (i32.const 3)) (local.get $M))
              (then
                (v128.store (local.get $pc) (local.get $c30))
                (v128.store offset=16 (local.get $pc) (local.get $c31))))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $cols)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows4)))

    ;; A last row on its own.
    (block $rows1_done
      (loop $rows1
        (br_if $rows1_done (i32.ge_s (local.get $i) (local.get $M)))
        (local.set $j (i32.const 0))
        (block $cols1_done
          (loop $cols1
            (br_if $cols1_done (i32.ge_s (local.get $j) (local.get $N)))
            (local.set $c00 (v128.const f32x4 0 0 0 0)) (local.set $c01 (v128.const f32x4 0 0 0 0))
            ;; Steps alternate between two pairs of sums, so that each sum waits on the one before it
            ;; half as often (a single row's products are otherwise one chain of dependent additions).
            (local.set $c10 (v128.const f32x4 0 0 0 0)) (local.set $c11 (v128.const f32x4 0 0 0 0))
            (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowA))))
            (local.set $pb (i32.add (local.get $b) (i32.mul (i32.shr_u (local.get $j) (i32.const 3)) (local.get $colB))))
            (local.set $k (local.get $K))
            (if (i32.eq (local.get $colA) (i32.const 4))
              (then
                (block $q1_done
                  (loop $q1
                    (br_if $q1_done (i32.lt_s (local.get $k) (i32.const 4)))
                    (local.set $a0 (v128.load (local.get $pa0)))
                    (local.set $av (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $a0) (local.get $a0)))
                    (local.set $c00 (@madd (local.get $av) (v128.load (local.get $pb)) (local.get $c00)))
                    (local.set $c01 (@madd (local.get $av) (v128.load offset=16 (local.get $pb)) (local.get $c01)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    (local.set $av (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $a0) (local.get $a0)))
                    (local.set $c10 (@madd (local.get $av) (v128.load (local.get $pb)) (local.get $c10)))
                    (local.set $c11 (@madd (local.get $av) (v128.load offset=16 (local.get $pb)) (local.get $c11)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    (local.set $av (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $a0) (local.get $a0)))
                    (local.set $c00 (@madd (local.get $av) (v128.load (local.get $pb)) (local.get $c00)))
                    (local.set $c01 (@madd (local.get $av) (v128.load offset=16 (local.get $pb)) (local.get $c01)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    (local.set $av (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $a0) (local.get $a0)))
                    (local.set $c10 (@madd (local.get $av) (v128.load (local.get $pb)) (local.get $c10)))
                    (local.set $c11 (@madd (local.get $av) (v128.load offset=16 (local.get $pb)) (local.get $c11)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    (local.set $pa0 (i32.add (local.get $pa0) (i32.const 16)))
                    (local.set $k (i32.sub (local.get $k) (i32.const 4)))
                    (br $q1)))))
            (local.set $c00 (f32x4.add (local.get $c00) (local.get $c10)))
            (local.set $c01 (f32x4.add (local.get $c01) (local.get $c11)))
            (block $k1_done
              (loop $k1
                (br_if $k1_done (i32.le_s (local.get $k) (i32.const 0)))
                (local.set $av (f32x4.splat (f32.load (local.get $pa0))))
                (local.set $c00 (@madd (local.get $av) (v128.load (local.get $pb)) (local.get $c00)))
                (local.set $c01 (@madd (local.get $av) (v128.load offset=16 (local.get $pb)) (local.get $c01)))
                (local.set $pa0 (i32.add (local.get $pa0) (local.get $colA)))
                (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                (br $k1)))
            (local.set $pc (i32.add (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $strideC))) (i32.shl (local.get $j) (i32.const 2))))
            (v128.store (local.get $pc) (local.get $c00))
            (v128.store offset=16 (local.get $pc) (local.get $c01))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $cols1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows1)))
  )

;; gemm over blocks of $nc columns at a time (a multiple of 8), each block for all rows before the
  ;; next: for a product of few rows, each block of B (K·nc values) is read from memory once and then
  ;; from the L1 cache for every 4 rows, where gemm's rows-first order reads the whole of B from the
  ;; caches beyond L1 once per 4 rows.
  (func (export "gemm_by_columns")
    (param $a i32) (param $rowA i32) (param $colA i32)
    (param $b i32) (param $rowB i32) (param $colB i32)
    (param $c i32) (param $ldc i32)
    (param $M i32) (param $K i32) (param $N i32) (param $nc i32)
    (local $j i32)
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_s (local.get $j) (local.get $N)))
        (call $gemm
          (local.get $a) (local.get $rowA) (local.get $colA)
          (i32.add (local.get $b) (i32.mul (i32.shr_u (local.get $j) (i32.const 3)) (local.get $colB))) (local.get $rowB) (local.get $colB)
          (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldc)
          (local.get $M) (local.get $K) (call $min (local.get $nc) (i32.sub (local.get $N) (local.get $j))))
        (local.set $j (i32.add (local.get $j) (local.get $nc)))
        (br $blocks)))
  )

  ;; B [K, N] (row-major, leading dimension ldb), or with `transposed` Bᵀ for B [N, K], written in
  ;; panels for gemm: block j of 8 columns holds its K rows of 8 values one after the other at
  ;; dst + 32·K·j; columns past N are zeros. Row-major blocks move 8 values at a time.
  (func (export "pack_panels")
    (param $b i32) (param $ldb i32) (param $K i32) (param $N i32) (param $transposed i32) (param $dst i32)
    (local $j i32) (local $k i32) (local $l i32) (local $col i32) (local $src i32) (local $out i32) (local $strideB i32)
    (local.set $strideB (i32.shl (local.get $ldb) (i32.const 2)))
    (local.set $out (local.get $dst))
    (local.set $j (i32.const 0))
    (block $j_done
      (loop $jloop
        (br_if $j_done (i32.ge_s (local.get $j) (local.get $N)))
        (if (i32.and (i32.eqz (local.get $transposed)) (i32.le_s (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
          (then
            ;; A whole block of row-major B: two vectors a row.
            (local.set $src (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $k (i32.const 0))
            (block $rk_done
              (loop $rk
                (br_if $rk_done (i32.ge_s (local.get $k) (local.get $K)))
                (v128.store (local.get $out) (v128.load (local.get $src)))
                (v128.store offset=16 (local.get $out) (v128.load offset=16 (local.get $src)))
                (local.set $src (i32.add (local.get $src) (local.get $strideB)))
                (local.set $out (i32.add (local.get $out) (i32.const 32)))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $rk))))
          (else
            ;; Value by value: Bᵀ, or the last block of row-major B, zero past column N.
            (local.set $k (i32.const 0))
            (block $k_done
              (loop $kloop
                (br_if $k_done (i32.ge_s (local.get $k) (local.get $K)))
                (local.set $l (i32.const 0))
                (block $l_done
                  (loop $lloop
                    (br_if $l_done (i32.ge_s (local.get $l) (i32.const 8)))
                    (local.set $col (i32.add (local.get $j) (local.get $l)))
                    (f32.store (i32.add (local.get $out) (i32.shl (local.get $l) (i32.const 2)))
                      (if (result f32) (i32.lt_s (local.get $col) (local.get $N))
                        (then (f32.load (if (result i32) (local.get $transposed)
                          (then (i32.add (i32.add (local.get $b) (i32.mul (local.get $col) (local.get $strideB))) (i32.shl (local.get $k) (i32.const 2))))
                          (else (i32.add (i32.add (local.get $b) (i32.mul (local.get $k) (local.get $strideB))) (i32.shl (local.get $col) (i32.const 2)))))))
                        (else (f32.const 0))))
                    (local.set $l (i32.add (local.get $l) (i32.const 1)))
                    (br $lloop)))
                (local.set $out (i32.add (local.get $out) (i32.const 32)))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $kloop)))))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $jloop)))
  )

  ;; dst [cols, rows] = srcᵀ for src [rows, cols] (row-major): 4 × 4 blocks moved with two rounds of
  ;; shuffles, the rows and columns past the last multiple of 4 one value at a time.
  (func (export "transpose")
    (param $src i32) (param $rows i32) (param $cols i32) (param $dst i32)
    (local $r i32) (local $c i32) (local $r4 i32) (local $c4 i32) (local $p i32) (local $q i32)
    (local $sr i32) (local $sd i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $sr (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $sd (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $r4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $c4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $r (i32.const 0))
    (block $r_done
      (loop $rloop
        (br_if $r_done (i32.ge_s (local.get $r) (local.get $r4)))
        (local.set $c (i32.const 0))
        (block $c_done
          (loop $cloop
            (br_if $c_done (i32.ge_s (local.get $c) (local.get $c4)))
            (local.set $p (i32.add (local.get $src) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $cols)) (local.get $c)) (i32.const 2))))
            (local.set $x0 (v128.load (local.get $p)))
            (local.set $x1 (v128.load (i32.add (local.get $p) (local.get $sr))))
            (local.set $x2 (v128.load (i32.add (local.get $p) (i32.shl (local.get $sr) (i32.const 1)))))
            (local.set $x3 (v128.load (i32.add (local.get $p) (i32.mul (local.get $sr) (i32.const 3)))))
            ;; (x0[0] x1[0] x0[1] x1[1]), (x0[2] x1[2] x0[3] x1[3]), the same for x2, x3; then halves paired.
            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x0) (local.get $x1)))
            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x0) (local.get $x1)))
            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x2) (local.get $x3)))
            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x2) (local.get $x3)))
            (local.set $q (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $rows)) (local.get $r)) (i32.const 2))))
            (v128.store (local.get $q) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
            (v128.store (i32.add (local.get $q) (local.get $sd)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
            (v128.store (i32.add (local.get $q) (i32.shl (local.get $sd) (i32.const 1))) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
            (v128.store (i32.add (local.get $q) (i32.mul (local.get $sd) (i32.const 3))) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $cloop)))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $rloop)))
    ;; What the blocks left: columns c4.. of every row, then rows r4.. of the first c4 columns.
    (local.set $r (i32.const 0))
    (block $tr_done
      (loop $trloop
        (br_if $tr_done (i32.ge_s (local.get $r) (local.get $rows)))
        (local.set $c (select (i32.const 0) (local.get $c4) (i32.ge_s (local.get $r) (local.get $r4))))
        (block $tc_done
          (loop $tcloop
            (br_if $tc_done (i32.ge_s (local.get $c) (local.get $cols)))
            (f32.store
              (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $rows)) (local.get $r)) (i32.const 2)))
              (f32.load (i32.add (local.get $src) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $cols)) (local.get $c)) (i32.const 2)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tcloop)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $trloop)))
  )

  ;; C[M, N] = A[M, K] · B[N, K]ᵀ, for few rows of A (one-token decoding's scores over the KV cache):
  ;; four dot products at a time along K, 4 lanes wide, reduced across lanes at the end with two
  ;; rounds of shuffles. K must be a multiple of 4; N may be anything.
  (func (export "gemm_nt")
    (param $a i32) (param $lda i32)
    (param $b i32) (param $ldb i32)
    (param $c i32) (param $ldc i32)
    (param $M i32) (param $K i32) (param $N i32)
    (local $m i32) (local $n i32) (local $o i32) (local $kb i32)
    (local $pa i32) (local $pb0 i32) (local $pb1 i32) (local $pb2 i32) (local $pb3 i32) (local $pc i32)
    (local $strideB i32)
    (local $av v128) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $u v128) (local $w v128)
    (local.set $strideB (i32.shl (local.get $ldb) (i32.const 2)))
    (local.set $kb (i32.shl (local.get $K) (i32.const 2)))
    (local.set $m (i32.const 0))
    (block $m_done
      (loop $mloop
        (br_if $m_done (i32.ge_s (local.get $m) (local.get $M)))
        (local.set $pa (i32.add (local.get $a) (i32.shl (i32.mul (local.get $m) (local.get $lda)) (i32.const 2))))
        (local.set $pc (i32.add (local.get $c) (i32.shl (i32.mul (local.get $m) (local.get $ldc)) (i32.const 2))))
        (local.set $n (i32.const 0))
        (block $n4_done
          (loop $n4
            (br_if $n4_done (i32.gt_s (i32.add (local.get $n) (i32.const 4)) (local.get $N)))
            (local.set $pb0 (i32.add (local.get $b) (i32.mul (local.get $n) (local.get $strideB))))
            (local.set $pb1 (i32.add (local.get $pb0) (local.get $strideB)))
            (local.set $pb2 (i32.add (local.get $pb1) (local.get $strideB)))
            (local.set $pb3 (i32.add (local.get $pb2) (local.get $strideB)))
            (local.set $s0 (v128.const f32x4 0 0 0 0)) (local.set $s1 (v128.const f32x4 0 0 0 0))
            (local.set $s2 (v128.const f32x4 0 0 0 0)) (local.set $s3 (v128.const f32x4 0 0 0 0))
            (local.set $o (i32.const 0))
            (block $k_done
              (loop $kloop
                (br_if $k_done (i32.ge_s (local.get $o) (local.get $kb)))
                (local.set $av (v128.load (i32.add (local.get $pa) (local.get $o))))
                (local.set $s0 (@madd (local.get $av) (v128.load (i32.add (local.get $pb0) (local.get $o))) (local.get $s0)))
                (local.set $s1 (@madd (local.get $av) (v128.load (i32.add (local.get $pb1) (local.get $o))) (local.get $s1)))
                (local.set $s2 (@madd (local.get $av) (v128.load (i32.add (local.get $pb2) (local.get $o))) (local.get $s2)))
                (local.set $s3 (@madd (local.get $av) (v128.load (i32.add (local.get $pb3) (local.get $o))) (local.get $s3)))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $kloop)))
            ;; (s0, s1) -> (s0[0]+s0[2], s1[0]+s1[2], s0[1]+s0[3], s1[1]+s1[3]); the same for (s2, s3);
            ;; then the two halves of each summed into (Σs0, Σs1, Σs2, Σs3).
            (local.set $u (f32x4.add
              (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $s0) (local.get $s1))
              (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $s0) (local.get $s1))))
            (local.set $w (f32x4.add
              (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $s2) (local.get $s3))
              (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $s2) (local.get $s3))))
            (v128.store (i32.add (local.get $pc) (i32.shl (local.get $n) (i32.const 2)))
              (f32x4.add
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u) (local.get $w))
                (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u) (local.get $w))))
            (local.set $n (i32.add (local.get $n) (i32.const 4)))
            (br $n4)))
        ;; The last columns, one at a time.
        (block $n1_done
          (loop $n1
            (br_if $n1_done (i32.ge_s (local.get $n) (local.get $N)))
            (local.set $pb0 (i32.add (local.get $b) (i32.mul (local.get $n) (local.get $strideB))))
            (local.set $s0 (v128.const f32x4 0 0 0 0))
            (local.set $o (i32.const 0))
            (block $k1_done
              (loop $k1
                (br_if $k1_done (i32.ge_s (local.get $o) (local.get $kb)))
                (local.set $s0 (@madd (v128.load (i32.add (local.get $pa) (local.get $o))) (v128.load (i32.add (local.get $pb0) (local.get $o))) (local.get $s0)))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $k1)))
            (f32.store (i32.add (local.get $pc) (i32.shl (local.get $n) (i32.const 2)))
              (f32.add
                (f32.add (f32x4.extract_lane 0 (local.get $s0)) (f32x4.extract_lane 2 (local.get $s0)))
                (f32.add (f32x4.extract_lane 1 (local.get $s0)) (f32x4.extract_lane 3 (local.get $s0)))))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (br $n1)))
        (local.set $m (i32.add (local.get $m) (i32.const 1)))
        (br $mloop)))
  )

;; Causal attention of a cached forward step (docs/engine.md#fused-wasm-kernels): for each row b
  ;; and kv head g, the R = group · T query rows of the heads sharing it (row r at step t = r mod T),
  ;; over the first S slots of the cache: out = softmax(q·Kᵀ + bias) · V. q, out [B, nKV, R, d]; k, v
  ;; [B, nKV, C, d]; bias [B, 1, T, C]; q comes scaled by 1/√d. A decoding batch's cache does not fit
  ;; the processor's caches, so each key and value is read from memory once for all R rows: the
  ;; scores go 4 keys at a time for every row (the 4 keys stay in the L1 cache; their dot products
  ;; are reduced across lanes with two rounds of shuffles, as in gemm_nt) into $scratch [R, S]; per
  ;; row, the bias's maximum, exp(score − max) 4 lanes at a time ($exp4) and the division by their
  ;; sum; then out = P·V is the gemm above, which reads V once per 4 rows. d must be a multiple of 8.
  (func (export "attend")
    (param $q i32) (param $k i32) (param $v i32) (param $bias i32) (param $out i32) (param $scratch i32)
    (param $B i32) (param $nKV i32) (param $R i32) (param $T i32) (param $C i32) (param $S i32) (param $d i32)
    (local $bg i32) (local $r i32) (local $s i32) (local $o i32) (local $db i32) (local $S4 i32) (local $Sb i32)
    (local $pk i32) (local $pq i32) (local $pb i32) (local $srow i32) (local $brow0 i32)
    (local $k0 i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $qv v128) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $u v128) (local $w v128)
    (local $mx v128) (local $sum v128) (local $p v128)
    (local $m f32) (local $x f32) (local $total f32)
    (local.set $db (i32.shl (local.get $d) (i32.const 2)))
    (local.set $S4 (i32.and (local.get $S) (i32.const -4)))
    (local.set $Sb (i32.shl (local.get $S) (i32.const 2)))
    (local.set $bg (i32.const 0))
    (block $bg_done
      (loop $bgloop
        (br_if $bg_done (i32.ge_s (local.get $bg) (i32.mul (local.get $B) (local.get $nKV))))
        (local.set $pk (i32.add (local.get $k) (i32.mul (i32.mul (local.get $bg) (local.get $C)) (local.get $db))))
        ;; bias row of step 0 of this batch row (b = bg / nKV); step t's row is t · C floats on
        (local.set $brow0 (i32.add (local.get $bias) (i32.shl (i32.mul (i32.mul (i32.div_u (local.get $bg) (local.get $nKV)) (local.get $T)) (local.get $C)) (i32.const 2))))
        ;; Scores, 4 keys at a time for every row, the bias added.
        (local.set $s (i32.const 0))
        (block $s4_done
          (loop $s4
            (br_if $s4_done (i32.ge_s (local.get $s) (local.get $S4)))
            (local.set $k0 (i32.add (local.get $pk) (i32.mul (local.get $s) (local.get $db))))
            (local.set $k1 (i32.add (local.get $k0) (local.get $db)))
            (local.set $k2 (i32.add (local.get $k1) (local.get $db)))
            (local.set $k3 (i32.add (local.get $k2) (local.get $db)))
            (local.set $r (i32.const 0))
            (block $r4_done
              (loop $r4
                (br_if $r4_done (i32.ge_s (local.get $r) (local.get $R)))
                (local.set $pq (call $qrow (local.get $q) (local.get $bg) (local.get $R) (local.get $r) (local.get $db)))
                (local.set $s0 (v128.const f32x4 0 0 0 0)) (local.set $s1 (v128.const f32x4 0 0 0 0))
                (local.set $s2 (v128.const f32x4 0 0 0 0)) (local.set $s3 (v128.const f32x4 0 0 0 0))
                (local.set $o (i32.const 0))
                (block $dot_done
                  (loop $dot
                    (br_if $dot_done (i32.ge_s (local.get $o) (local.get $db)))
                    (local.set $qv (v128.load (i32.add (local.get $pq) (local.get $o))))
                    (local.set $s0 (@madd (local.get $qv) (v128.load (i32.add (local.get $k0) (local.get $o))) (local.get $s0)))
                    (local.set $s1 (@madd (local.get $qv) (v128.load (i32.add (local.get $k1) (local.get $o))) (local.get $s1)))
                    (local.set $s2 (@madd (local.get $qv) (v128.load (i32.add (local.get $k2) (local.get $o))) (local.get $s2)))
                    (local.set $s3 (@madd (local.get $qv) (v128.load (i32.add (local.get $k3) (local.get $o))) (local.get $s3)))
                    (local.set $o (i32.add (local.get $o) (i32.const 16)))
                    (br $dot)))
                (local.set $u (f32x4.add
                  (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $s0) (local.get $s1))
                  (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $s0) (local.get $s1))))
                (local.set $w (f32x4.add
                  (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $s2) (local.get $s3))
                  (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $s2) (local.get $s3))))
                (local.set $pb (i32.add (local.get $brow0) (i32.shl (i32.add (i32.mul (i32.rem_u (local.get $r) (local.get $T)) (local.get $C)) (local.get $s)) (i32.const 2))))
                (v128.store (i32.add (local.get $scratch) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $S)) (local.get $s)) (i32.const 2)))
                  (f32x4.add
                    (f32x4.add
                      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u) (local.get $w))
                      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u) (local.get $w)))
                    (v128.load (local.get $pb))))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $r4)))
            (local.set $s (i32.add (local.get $s) (i32.const 4)))
            (br $s4)))
        ;; The last keys, one at a time.
        (block $s1_done
          (loop $s1loop
            (br_if $s1_done (i32.ge_s (local.get $s) (local.get $S)))
            (local.set $k0 (i32.add (local.get $pk) (i32.mul (local.get $s) (local.get $db))))
            (local.set $r (i32.const 0))
            (block $r1_done
              (loop $r1
                (br_if $r1_done (i32.ge_s (local.get $r) (local.get $R)))
                (local.set $pq (call $qrow (local.get $q) (local.get $bg) (local.get $R) (local.get $r) (local.get $db)))
                (local.set $s0 (v128.const f32x4 0 0 0 0))
                (local.set $o (i32.const 0))
                (block $dot1_done
                  (loop $dot1
                    (br_if $dot1_done (i32.ge_s (local.get $o) (local.get $db)))
                    (local.set $s0 (@madd (v128.load (i32.add (local.get $pq) (local.get $o))) (v128.load (i32.add (local.get $k0) (local.get $o))) (local.get $s0)))
                    (local.set $o (i32.add (local.get $o) (i32.const 16)))
                    (br $dot1)))
                (local.set $pb (i32.add (local.get $brow0) (i32.shl (i32.add (i32.mul (i32.rem_u (local.get $r) (local.get $T)) (local.get $C)) (local.get $s)) (i32.const 2))))
                (f32.store (i32.add (local.get $scratch) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $S)) (local.get $s)) (i32.const 2)))
                  (f32.add
                    (f32.add
                      (f32.add (f32x4.extract_lane 0 (local.get $s0)) (f32x4.extract_lane 2 (local.get $s0)))
                      (f32.add (f32x4.extract_lane 1 (local.get $s0)) (f32x4.extract_lane 3 (local.get $s0))))
                    (f32.load (local.get $pb))))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $r1)))
            (local.set $s (i32.add (local.get $s) (i32.const 1)))
            (br $s1loop)))
        ;; Per row: the maximum, exp(score − max), and the division by their sum.
        (local.set $r (i32.const 0))
        (block $row_done
          (loop $rowloop
            (br_if $row_done (i32.ge_s (local.get $r) (local.get $R)))
            (local.set $srow (i32.add (local.get $scratch) (i32.mul (local.get $r) (local.get $Sb))))
            (local.set $mx (v128.const f32x4 -inf -inf -inf -inf))
            (local.set $o (i32.const 0))
            (block $m4_done
              (loop $m4
                (br_if $m4_done (i32.ge_s (local.get $o) (i32.shl (local.get $S4) (i32.const 2))))
                (local.set $mx (f32x4.max (local.get $mx) (v128.load (i32.add (local.get $srow) (local.get $o)))))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $m4)))
            (local.set $m (f32.max
              (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx)))
              (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx)))))
            (block $m1_done
              (loop $m1
                (br_if $m1_done (i32.ge_s (local.get $o) (local.get $Sb)))
                (local.set $m (f32.max (local.get $m) (f32.load (i32.add (local.get $srow) (local.get $o)))))
                (local.set $o (i32.add (local.get $o) (i32.const 4)))
                (br $m1)))
            (local.set $mx (f32x4.splat (local.get $m)))
            (local.set $sum (v128.const f32x4 0 0 0 0))
            (local.set $o (i32.const 0))
            (block $e4_done
              (loop $e4
                (br_if $e4_done (i32.ge_s (local.get $o) (i32.shl (local.get $S4) (i32.const 2))))
                (local.set $p (call $exp4 (f32x4.sub (v128.load (i32.add (local.get $srow) (local.get $o))) (local.get $mx))))
                (v128.store (i32.add (local.get $srow) (local.get $o)) (local.get $p))
                (local.set $sum (f32x4.add (local.get $sum) (local.get $p)))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $e4)))
            (local.set $total (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $sum)) (f32x4.extract_lane 1 (local.get $sum)))
              (f32.add (f32x4.extract_lane 2 (local.get $sum)) (f32x4.extract_lane 3 (local.get $sum)))))
            (block $e1_done
              (loop $e1
                (br_if $e1_done (i32.ge_s (local.get $o) (local.get $Sb)))
                (local.set $x (f32x4.extract_lane 0 (call $exp4 (f32x4.splat (f32.sub (f32.load (i32.add (local.get $srow) (local.get $o))) (local.get $m))))))
                (f32.store (i32.add (local.get $srow) (local.get $o)) (local.get $x))
                (local.set $total (f32.add (local.get $total) (local.get $x)))
                (local.set $o (i32.add (local.get $o) (i32.const 4)))
                (br $e1)))
            (local.set $x (f32.div (f32.const 1) (local.get $total)))
            (local.set $p (f32x4.splat (local.get $x)))
            (local.set $o (i32.const 0))
            (block $n4_done
              (loop $n4
                (br_if $n4_done (i32.ge_s (local.get $o) (i32.shl (local.get $S4) (i32.const 2))))
                (v128.store (i32.add (local.get $srow) (local.get $o)) (f32x4.mul (v128.load (i32.add (local.get $srow) (local.get $o))) (local.get $p)))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $n4)))
            (block $n1_done
              (loop $n1
                (br_if $n1_done (i32.ge_s (local.get $o) (local.get $Sb)))
                (f32.store (i32.add (local.get $srow) (local.get $o)) (f32.mul (f32.load (i32.add (local.get $srow) (local.get $o))) (local.get $x)))
                (local.set $o (i32.add (local.get $o) (i32.const 4)))
                (br $n1)))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $rowloop)))
        ;; out [R, d] = P [R, S] · V [S, d] (V row-major: rows 4·d bytes apart, blocks of 8 columns 32 bytes apart).
        (call $gemm
          (local.get $scratch) (local.get $Sb) (i32.const 4)
          (i32.add (local.get $v) (i32.sub (local.get $pk) (local.get $k))) (local.get $db) (i32.const 32)
          (call $qrow (local.get $out) (local.get $bg) (local.get $R) (i32.const 0) (local.get $db)) (local.get $d)
          (local.get $R) (local.get $S) (local.get $d))
        (local.set $bg (i32.add (local.get $bg) (i32.const 1)))
        (br $bgloop)))
  )

  ;; Byte address of row r of kv head bg in q or out [B·nKV, R, d] (db = 4·d bytes a row).
  (func $qrow (param $base i32) (param $bg i32) (param $R i32) (param $r i32) (param $db i32) (result i32)
    (i32.add (local.get $base) (i32.mul (i32.add (i32.mul (local.get $bg) (local.get $R)) (local.get $r)) (local.get $db))))

  ;; e^x for 4 lanes at once (attention's x, a score minus the row's maximum, is ≤ 0; SwiGLU's −g
  ;; may be above): x = n·ln 2 + f with n an integer and |f| ≤ ln 2 / 2 (ln 2 in two parts, as
  ;; Cephes' expf does, so that f keeps its precision), e^f by its Taylor polynomial of degree 6
  ;; (relative error under 1e-7 there), times 2^n built in the exponent bits. Below −87.3 (e^x under
  ;; float32's smallest normal, and the masked slots' −1e9) it is 0; above 88.3 it stays e^88.3.
  (func $exp4 (param $x v128) (result v128)
    (local $c v128) (local $n v128) (local $f v128) (local $p v128)
    (local.set $c (f32x4.max (local.get $x) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
    (local.set $c (f32x4.min (local.get $c) (v128.const f32x4 88.3 88.3 88.3 88.3)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $c) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))))
    (local.set $f (f32x4.sub (local.get $c) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $f (f32x4.sub (local.get $f) (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.38888889e-3 1.38888889e-3 1.38888889e-3 1.38888889e-3))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 8.33333333e-3 8.33333333e-3 8.33333333e-3 8.33333333e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 4.16666667e-2 4.16666667e-2 4.16666667e-2 4.16666667e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 0.166666667 0.166666667 0.166666667 0.166666667)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 1 1 1 1)))
    (v128.and
      (f32x4.mul (local.get $p)
        (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127)) (i32.const 23)))
      (f32x4.ge (local.get $x) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
  )

;; SwiGLU's gating of n values (docs/engine.md#fused-wasm-kernels): out = silu(g) · u = (g · s) · u with
  ;; s = sigmoid(g) = 1 / (1 + e^−g), 4 lanes at a time; n must be a multiple of 4.
  (func (export "swiglu") (param $g i32) (param $u i32) (param $out i32) (param $n i32)
    (local $o i32) (local $end i32) (local $x v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $x (v128.load (i32.add (local.get $g) (local.get $o))))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (f32x4.mul
            (f32x4.mul (local.get $x) (call $sigmoid4 (local.get $x)))
            (v128.load (i32.add (local.get $u) (local.get $o)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $each)))
  )

  ;; sigmoid(x) = 1 / (1 + e^−x) for 4 lanes. Below −88, where it is under 6e−39, it is 0: $exp4 holds
  ;; e^−x at e^88.3 past its range, and g · sigmoid(g) would otherwise grow with |g| (−0.45 at −1e38).
  (func $sigmoid4 (param $x v128) (result v128)
    (v128.and
      (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp4 (f32x4.neg (local.get $x)))))
      (f32x4.ge (local.get $x) (v128.const f32x4 -88 -88 -88 -88)))
  )

  ;; Its gradients from dy: with s = sigmoid(g), dg = dy · u · s · (1 + g · (1 − s)) and du = dy · g · s.
  (func (export "swiglu_grad") (param $g i32) (param $u i32) (param $dy i32) (param $dg i32) (param $du i32) (param $n i32)
    (local $o i32) (local $end i32) (local $x v128) (local $s v128) (local $d v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $x (v128.load (i32.add (local.get $g) (local.get $o))))
        (local.set $d (v128.load (i32.add (local.get $dy) (local.get $o))))
        (local.set $s (call $sigmoid4 (local.get $x)))
        (v128.store (i32.add (local.get $du) (local.get $o)) (f32x4.mul (local.get $d) (f32x4.mul (local.get $x) (local.get $s))))
        (v128.store (i32.add (local.get $dg) (local.get $o))
          (f32x4.mul
            (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $u) (local.get $o))))
            (f32x4.mul (local.get $s)
              (f32x4.add (v128.const f32x4 1 1 1 1)
                (f32x4.mul (local.get $x) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $s)))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $each)))
  )

  ;; RMSNorm of each row of x [rows, cols]: y = x · w / √(mean(x²) + eps) (docs/engine.md#fused-wasm-kernels).
  ;; cols must be a multiple of 4.
  (func (export "rms_norm")
    (param $x i32) (param $w i32) (param $y i32) (param $rows i32) (param $cols i32) (param $eps f32)
    (local $r i32) (local $o i32) (local $cb i32) (local $px i32) (local $py i32)
    (local $acc v128) (local $v v128) (local $inv v128)
    (local.set $cb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $r (i32.const 0))
    (block $done
      (loop $row
        (br_if $done (i32.ge_s (local.get $r) (local.get $rows)))
        (local.set $px (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $cb))))
        (local.set $py (i32.add (local.get $y) (i32.mul (local.get $r) (local.get $cb))))
        (local.set $acc (v128.const f32x4 0 0 0 0))
        (local.set $o (i32.const 0))
        (block $sum_done
          (loop $sum
            (br_if $sum_done (i32.ge_s (local.get $o) (local.get $cb)))
            (local.set $v (v128.load (i32.add (local.get $px) (local.get $o))))
            (local.set $acc (@madd (local.get $v) (local.get $v) (local.get $acc)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $sum)))
        (local.set $inv (f32x4.splat (call $inverse_rms (local.get $acc) (local.get $cols) (local.get $eps))))
        (local.set $o (i32.const 0))
        (block $scale_done
          (loop $scale
            (br_if $scale_done (i32.ge_s (local.get $o) (local.get $cb)))
            (v128.store (i32.add (local.get $py) (local.get $o))
              (f32x4.mul
                (f32x4.mul (v128.load (i32.add (local.get $px) (local.get $o))) (local.get $inv))
                (v128.load (i32.add (local.get $w) (local.get $o)))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $scale)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
  )

  ;; 1 / √(Σ lanes of sum / n + eps).
  (func $inverse_rms (param $sum v128) (param $n i32) (param $eps f32) (result f32)
    (f32.div (f32.const 1)
      (f32.sqrt (f32.add
        (f32.div
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $sum)) (f32x4.extract_lane 1 (local.get $sum)))
            (f32.add (f32x4.extract_lane 2 (local.get $sum)) (f32x4.extract_lane 3 (local.get $sum))))
          (f32.convert_i32_s (local.get $n)))
        (local.get $eps))))
  )

  ;; Its gradient: with r = 1 / √(mean(x²) + eps) and g = dy · w, dx = r · g − x · r³ · (g·x) / cols,
  ;; and dw += dy · x · r summed over the rows (the caller zeroes dw). cols a multiple of 4.
  (func (export "rms_norm_grad")
    (param $x i32) (param $w i32) (param $dy i32) (param $dx i32) (param $dw i32)
    (param $rows i32) (param $cols i32) (param $eps f32)
    (local $r i32) (local $o i32) (local $cb i32) (local $px i32) (local $pd i32) (local $pdx i32)
    (local $ss v128) (local $gx v128) (local $v v128) (local $d v128) (local $inv v128) (local $k v128)
    (local $rinv f32)
    (local.set $cb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $r (i32.const 0))
    (block $done
      (loop $row
        (br_if $done (i32.ge_s (local.get $r) (local.get $rows)))
        (local.set $px (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $cb))))
        (local.set $pd (i32.add (local.get $dy) (i32.mul (local.get $r) (local.get $cb))))
        (local.set $pdx (i32.add (local.get $dx) (i32.mul (local.get $r) (local.get $cb))))
        (local.set $ss (v128.const f32x4 0 0 0 0))
        (local.set $gx (v128.const f32x4 0 0 0 0))
        (local.set $o (i32.const 0))
        (block $sum_done
          (loop $sum
            (br_if $sum_done (i32.ge_s (local.get $o) (local.get $cb)))
            (local.set $v (v128.load (i32.add (local.get $px) (local.get $o))))
            (local.set $ss (@madd (local.get $v) (local.get $v) (local.get $ss)))
            (local.set $gx (f32x4.add (local.get $gx)
              (f32x4.mul (f32x4.mul (v128.load (i32.add (local.get $pd) (local.get $o))) (v128.load (i32.add (local.get $w) (local.get $o)))) (local.get $v))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $sum)))
        (local.set $rinv (call $inverse_rms (local.get $ss) (local.get $cols) (local.get $eps)))
        (local.set $inv (f32x4.splat (local.get $rinv)))
        ;; k = r³ · (g·x) / cols
        (local.set $k (f32x4.splat (f32.div
          (f32.mul (f32.mul (local.get $rinv) (f32.mul (local.get $rinv) (local.get $rinv)))
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $gx)) (f32x4.extract_lane 1 (local.get $gx)))
              (f32.add (f32x4.extract_lane 2 (local.get $gx)) (f32x4.extract_lane 3 (local.get $gx)))))
          (f32.convert_i32_s (local.get $cols)))))
        (local.set $o (i32.const 0))
        (block $out_done
          (loop $out
            (br_if $out_done (i32.ge_s (local.get $o) (local.get $cb)))
            (local.set $v (v128.load (i32.add (local.get $px) (local.get $o))))
            (local.set $d (v128.load (i32.add (local.get $pd) (local.get $o))))
            (v128.store (i32.add (local.get $pdx) (local.get $o))
              (f32x4.sub
                (f32x4.mul (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $w) (local.get $o)))) (local.get $inv))
                (f32x4.mul (local.get $v) (local.get $k))))
            (v128.store (i32.add (local.get $dw) (local.get $o))
              (f32x4.add (v128.load (i32.add (local.get $dw) (local.get $o)))
                (f32x4.mul (f32x4.mul (local.get $d) (local.get $v)) (local.get $inv))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $out)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
  )

  ;; RoPE in Hugging Face's half-split convention (docs/engine.md#fused-wasm-kernels): for x [rows, H, d]
  ;; (rows = batch · length) and tables cos, sin [rows or length, d], each head's halves (lo, hi) become
  ;; (lo·cos₁ − hi·sin₁, hi·cos₂ + lo·sin₂), the tables' halves 1 and 2. With $inverse the gradient,
  ;; the transposed rotation: (lo·cos₁ + hi·sin₂, hi·cos₂ − lo·sin₁). d must be a multiple of 8.
  ;; $tableRows is rows when each row has its own table row, or length when the batch shares them.
  (func (export "rope")
    (param $x i32) (param $cos i32) (param $sin i32) (param $y i32)
    (param $rows i32) (param $tableRows i32) (param $H i32) (param $d i32) (param $inverse i32)
    (local $r i32) (local $h i32) (local $j i32) (local $half i32) (local $db i32)
    (local $pc i32) (local $ps i32) (local $px i32) (local $py i32) (local $table i32)
    (local $lo v128) (local $hi v128) (local $s1 v128) (local $s2 v128) (local $a v128) (local $b v128)
    (local.set $db (i32.shl (local.get $d) (i32.const 2)))
    (local.set $half (i32.shr_u (local.get $db) (i32.const 1)))
    (local.set $r (i32.const 0))
    (block $done
      (loop $row
        (br_if $done (i32.ge_s (local.get $r) (local.get $rows)))
        (local.set $table (i32.mul (i32.rem_u (local.get $r) (local.get $tableRows)) (local.get $db)))
        (local.set $pc (i32.add (local.get $cos) (local.get $table)))
        (local.set $ps (i32.add (local.get $sin) (local.get $table)))
        (local.set $h (i32.const 0))
        (block $heads_done
          (loop $head
            (br_if $heads_done (i32.ge_s (local.get $h) (local.get $H)))
            (local.set $px (i32.add (local.get $x) (i32.mul (i32.add (i32.mul (local.get $r) (local.get $H)) (local.get $h)) (local.get $db))))
            (local.set $py (i32.add (local.get $y) (i32.sub (local.get $px) (local.get $x))))
            (local.set $j (i32.const 0))
            (block $lanes_done
              (loop $lanes
                (br_if $lanes_done (i32.ge_s (local.get $j) (local.get $half)))
                (local.set $lo (v128.load (i32.add (local.get $px) (local.get $j))))
                (local.set $hi (v128.load (i32.add (local.get $px) (i32.add (local.get $j) (local.get $half)))))
                (local.set $s1 (v128.load (i32.add (local.get $ps) (local.get $j))))
                (local.set $s2 (v128.load (i32.add (local.get $ps) (i32.add (local.get $j) (local.get $half)))))
                ;; forward: a = −s₁ (times hi, into lo), b = s₂ (times lo, into hi); inverse: a = s₂, b = −s₁
                (local.set $a (select (result v128) (local.get $s2) (f32x4.neg (local.get $s1)) (local.get $inverse)))
                (local.set $b (select (result v128) (f32x4.neg (local.get $s1)) (local.get $s2) (local.get $inverse)))
                (v128.store (i32.add (local.get $py) (local.get $j))
                  (f32x4.add
                    (f32x4.mul (local.get $lo) (v128.load (i32.add (local.get $pc) (local.get $j))))
                    (f32x4.mul (local.get $hi) (local.get $a))))
                (v128.store (i32.add (local.get $py) (i32.add (local.get $j) (local.get $half)))
                  (f32x4.add
                    (f32x4.mul (local.get $hi) (v128.load (i32.add (local.get $pc) (i32.add (local.get $j) (local.get $half)))))
                    (f32x4.mul (local.get $lo) (local.get $b))))
                (local.set $j (i32.add (local.get $j) (i32.const 16)))
                (br $lanes)))
            (local.set $h (i32.add (local.get $h) (i32.const 1)))
            (br $head)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
  )
)
