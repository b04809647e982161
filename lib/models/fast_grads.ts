/**
 * A faster gradient for `BatchMatMul` (every `tf.matMul`).
 *
 * The stock tfjs gradient computes `dA` and `dB` with `matMul(..., transposeA,
 * transposeB)`. On the wasm backend a matMul with a transpose flag set leaves
 * XNNPACK's fast path and runs about 10× slower than a plain one (see
 * `shared/docs/tfjs-on-deno.md` §2). The replacement below transposes the
 * operands explicitly (`tf.transpose` of the last two axes) and then calls a
 * plain `tf.matMul`, which makes a ViT training step 2–4× faster on wasm.
 *
 * When the native BLAS kernel serves the active backend (`native_blas.ts`),
 * transposes cost nothing there (they are `cblas_sgemm` flags), so the
 * gradient passes them as flags instead of copying: measured 3–5% faster per
 * training step than the explicit transposes with native BLAS.
 *
 * Like the stock gradient it does not reduce over broadcast batch axes: the
 * batch dimensions of `a` and `b` must match exactly (they do in every model
 * of the harness); otherwise the gradient throws.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { nativeMatMulActive } from "../native_blas.ts";
import type { Tensor } from "../tensor.ts";

const KERNEL = "BatchMatMul";

/** The gradient tfjs registered for BatchMatMul, captured before any replacement. */
export const STOCK_MATMUL_GRADIENT: tf.GradConfig | undefined = tf.getGradient(KERNEL);

/** Swap the last two axes of `x` (rank ≥ 2). */
function swapLastTwo(x: Tensor): Tensor {
  const r = x.rank;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/**
 * op(a)·op(b) with op = transpose of the last two axes where asked, in the form that is fast on
 * the backend running: transpose flags when the native BLAS kernel is active (they are
 * `cblas_sgemm` flags there), explicit transposes and a plain product otherwise (a flagged
 * matMul is several times slower on stock wasm; module doc).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { matMulT } from "./fast_grads.ts";
 * const y = matMulT(tf.tensor2d([[1, 2]]), tf.tensor2d([[3, 4]]), false, true); // [[11]]
 * ```
 */
export function matMulT<T extends Tensor>(
  a: T,
  b: T,
  transposeA: boolean,
  transposeB: boolean,
): T {
  if (nativeMatMulActive() || (!transposeA && !transposeB)) {
    return tf.matMul(a, b, transposeA, transposeB) as T;
  }
  return tf.tidy(() =>
    tf.matMul(transposeA ? swapLastTwo(a) : a, transposeB ? swapLastTwo(b) : b) as T
  );
}

function checkBatchDims(a: Tensor, b: Tensor): void {
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const same = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
  if (!same) {
    throw new Error(
      `fast BatchMatMul gradient: batch dimensions must match exactly, got a [${a.shape}] and ` +
        `b [${b.shape}] (batch [${batchA}] vs [${batchB}]); broadcasting matMul is not supported ` +
        `by the replacement gradient (restoreStockMatMulGradient() brings back the stock one)`,
    );
  }
}

/**
 * The replacement gradient config (kernel `BatchMatMul`, inputs `a`, `b`).
 * For y = op(a)·op(b) with upstream gradient dy and T = swap of the last two axes:
 *
 * | transposeA, transposeB | dA | dB |
 * |---|---|---|
 * | false, false | dy·T(b) | T(a)·dy |
 * | false, true | dy·b | T(dy)·a |
 * | true, false | b·T(dy) | a·dy |
 * | true, true | T(b)·T(dy) | T(dy)·T(a) |
 *
 * With the native BLAS kernel active, each T(x) is a transpose flag of the matMul instead.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { FAST_MATMUL_GRADIENT } from "./fast_grads.ts";
 * tf.registerGradient(FAST_MATMUL_GRADIENT);
 * ```
 */
export const FAST_MATMUL_GRADIENT: tf.GradConfig = {
  kernelName: KERNEL,
  inputsToSave: ["a", "b"],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs?: tf.NamedAttrMap) => {
    const [a, b] = saved;
    const g = dy as Tensor;
    const transposeA = Boolean(attrs?.transposeA);
    const transposeB = Boolean(attrs?.transposeB);
    checkBatchDims(a, b);
    if (nativeMatMulActive()) {
      const mt = (x: Tensor, tx: boolean, y: Tensor, ty: boolean) => tf.matMul(x, y, tx, ty);
      if (!transposeA && !transposeB) {
        return {
          a: () => mt(g, false, b, true),
          b: () => mt(a, true, g, false),
        };
      }
      if (!transposeA && transposeB) {
        return {
          a: () => mt(g, false, b, false),
          b: () => mt(g, true, a, false),
        };
      }
      if (transposeA && !transposeB) {
        return {
          a: () => mt(b, false, g, true),
          b: () => mt(a, false, g, false),
        };
      }
      return { a: () => mt(b, true, g, true), b: () => mt(g, true, a, true) };
    }
    const mm = (x: Tensor, y: Tensor) => tf.matMul(x, y);
    if (!transposeA && !transposeB) {
      return { a: () => mm(g, swapLastTwo(b)), b: () => mm(swapLastTwo(a), g) };
    }
    if (!transposeA && transposeB) {
      return { a: () => mm(g, b), b: () => mm(swapLastTwo(g), a) };
    }
    if (transposeA && !transposeB) {
      return { a: () => mm(b, swapLastTwo(g)), b: () => mm(a, g) };
    }
    return {
      a: () => mm(swapLastTwo(b), swapLastTwo(g)),
      b: () => mm(swapLastTwo(g), swapLastTwo(a)),
    };
  },
};

/**
 * Replace the `BatchMatMul` gradient with {@link FAST_MATMUL_GRADIENT}.
 * Idempotent; affects every backend (gradients are global in tfjs).
 *
 * @example
 * ```ts
 * import { registerFastMatMulGradient } from "./fast_grads.ts";
 * registerFastMatMulGradient();
 * ```
 */
export function registerFastMatMulGradient(): void {
  if (isFastMatMulGradientRegistered()) return;
  tf.registerGradient(FAST_MATMUL_GRADIENT);
}

/**
 * Put the stock tfjs `BatchMatMul` gradient back (for comparisons and benchmarks).
 *
 * @example
 * ```ts
 * import { registerFastMatMulGradient, restoreStockMatMulGradient } from "./fast_grads.ts";
 * registerFastMatMulGradient();
 * restoreStockMatMulGradient();
 * ```
 */
export function restoreStockMatMulGradient(): void {
  if (!STOCK_MATMUL_GRADIENT) {
    throw new Error("restoreStockMatMulGradient: tfjs registered no BatchMatMul gradient");
  }
  tf.registerGradient(STOCK_MATMUL_GRADIENT);
}

/**
 * True when the fast gradient is the registered one.
 *
 * @example
 * ```ts
 * import { isFastMatMulGradientRegistered } from "./fast_grads.ts";
 * console.log(isFastMatMulGradientRegistered());
 * ```
 */
export function isFastMatMulGradientRegistered(): boolean {
  return tf.getGradient(KERNEL) === FAST_MATMUL_GRADIENT;
}
