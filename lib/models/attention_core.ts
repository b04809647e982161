/**
 * The core of scaled dot-product attention as one op with its own gradient:
 * O = softmax(s·Q·Kᵀ + bias)·V on batched heads, for the ViT's and the
 * decoder's attention.
 *
 * Differentiated by tfjs's autodiff, the same composition records a tape node
 * per op (scale, product, reshape, bias, softmax, product), clones every
 * tensor each node saves, and runs the softmax gradient and the products'
 * gradients as separate kernels. Here the forward pass saves Q, Kᵀ, V and the
 * probabilities P once, and the backward pass is the textbook one:
 *
 *     dV  = Pᵀ·dO
 *     dP  = dO·Vᵀ
 *     dS  = P ⊙ (dP − rowsum(dP ⊙ P))
 *     dQ  = s·dS·K          (K = (Kᵀ)ᵀ, read from Kᵀ by a transposed product)
 *     dKᵀ = (s·Q)ᵀ·dS     (s·Q is what the forward pass multiplied and saved)
 *
 * four batched products and four element-wise kernels. The transposed products are transpose
 * flags with the native BLAS kernel and explicit transposes otherwise (`matMulT`). The bias (a padding or
 * causal mask) is a constant: it receives no gradient.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor, Tensor3D } from "../tensor.ts";
import { fusedOps } from "./fused_ops.ts";
import { matMulT } from "./fast_grads.ts";

/** Options of {@link attentionCore}. */
export interface AttentionCoreOptions {
  /** The score scale s (1/√d for scaled dot-product attention). */
  scale: number;
  /**
   * Adds the bias to the scores [N, Tq, Tk] (called inside the forward pass; the result must
   * have the scores' shape). Omit for no bias.
   */
  addBias?: (scores: Tensor3D) => Tensor3D;
}

/**
 * softmax(s·q·kT + bias)·v for q [N, Tq, d], kT [N, d, Tk], v [N, Tk, d] → [N, Tq, d], with
 * the gradient written out (module doc). Gradients flow to q, kT and v. With the fused ops off
 * (`fused_ops.ts`) the same composition of tfjs ops, differentiated by tfjs.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { attentionCore } from "./attention_core.ts";
 * const q = tf.randomNormal([2, 3, 4]) as tf.Tensor3D;
 * const kT = tf.randomNormal([2, 4, 5]) as tf.Tensor3D;
 * const v = tf.randomNormal([2, 5, 4]) as tf.Tensor3D;
 * const o = attentionCore(q, kT, v, { scale: 0.5 }); // [2, 3, 4]
 * ```
 */
export function attentionCore(
  q: Tensor3D,
  kT: Tensor3D,
  v: Tensor3D,
  options: AttentionCoreOptions,
): Tensor3D {
  const [n, , d] = q.shape;
  const [nk, dk, tk] = kT.shape;
  if (nk !== n || dk !== d) {
    throw new Error(`attentionCore: q [${q.shape}] does not fit kᵀ [${kT.shape}]`);
  }
  if (v.shape[0] !== n || v.shape[1] !== tk) {
    throw new Error(`attentionCore: v [${v.shape}] does not fit kᵀ [${kT.shape}]`);
  }
  const s = options.scale;
  if (!fusedOps()) {
    return tf.tidy(() => {
      let scores = tf.matMul(tf.mul(q, s) as Tensor3D, kT) as Tensor3D;
      if (options.addBias) scores = options.addBias(scores);
      return tf.matMul(tf.softmax(scores, -1) as Tensor3D, v);
    });
  }
  const core = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [qq, kk, vv] = args as Tensor3D[];
    const save = args[3] as tf.GradSaveFunc;
    // The scale goes on q (Tq·d values) rather than on the scores (Tq·Tk).
    const qs = tf.mul(qq, s) as Tensor3D;
    let scores = tf.matMul(qs, kk) as Tensor3D;
    if (options.addBias) scores = options.addBias(scores);
    const p = tf.softmax(scores, -1) as Tensor3D;
    save([qs, kk, vv, p]);
    return {
      value: tf.matMul(p, vv),
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [sqs, sk, sv, sp] = saved as Tensor3D[];
        const dO = dy as Tensor3D;
        const dV = matMulT(sp, dO, true, false);
        const dP = matMulT(dO, sv, false, true);
        const dS = tf.mul(sp, tf.sub(dP, tf.sum(tf.mul(dP, sp), -1, true))) as Tensor3D;
        const dQ = tf.mul(matMulT(dS, sk, false, true), s);
        const dKT = matMulT(sqs, dS, true, false); // (s·Q)ᵀ·dS
        return [dQ, dKT, dV];
      },
    };
  });
  return core(q, kT, v) as Tensor3D;
}
