/**
 * Transformer building blocks written with tfjs ops only, shared by the ViT
 * and the language model.
 *
 * Conventions, chosen for the wasm backend (see `shared/docs/tfjs-on-deno.md`):
 *
 * - activations are 2-D `[rows, width]` between blocks, so every linear map
 *   is one plain 2-D `tf.matMul` (XNNPACK's fast path);
 * - linear weights are stored PyTorch-style, `[out, in]`, and transposed
 *   explicitly (`x·Wᵀ`), never through matMul's transpose flags;
 * - attention uses batched matMuls over `[batch·heads, tokens, headDim]`;
 *   there is no einsum, gather or stridedSlice anywhere.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LoraSite } from "./backbone.ts";
import { loraDelta } from "./lora.ts";
import { attentionCore } from "./attention_core.ts";
import { fusedOps } from "./fused_ops.ts";
import type { Tensor, Tensor2D, Tensor3D, Variable } from "../tensor.ts";

/** Weight and bias of a LayerNorm over the last axis. */
export interface NormParams {
  /** Gain γ [width]. */
  weight: Variable;
  /** Shift β [width]. */
  bias: Variable;
}

/** A linear map y = x·Wᵀ + b, optionally with a LoRA site on it. */
export interface LinearParams {
  /** W [out, in] (PyTorch layout). */
  weight: Variable;
  /** b [out]; absent for a bias-free map (LLaMA's projections). */
  bias?: Variable;
  /** The LoRA update added to this map, if any. */
  lora?: LoraSite;
}

/** How the LoRA branches of a forward pass behave. */
export interface LoraForward {
  /** s = alpha / rank. */
  scale: number;
  /** Dropout on the LoRA input (training only). */
  dropout: number;
  /** Training mode (dropout on). */
  training: boolean;
  /** Base seed of this forward pass; each site derives its own mask seed from it. */
  seed?: number;
}

/**
 * LayerNorm over the last axis: (x − mean) / √(var + eps) · γ + β. The
 * forward pass is the plain composite of tfjs ops; the gradient of the
 * normalisation is written out (a custom gradient: 5 elementwise ops and 2
 * row means) instead of being traced back through `moments`, `rsqrt` and the
 * broadcasts, which takes about twice as many kernels.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { layerNorm } from "./layers.ts";
 * const p = { weight: tf.variable(tf.ones([4])), bias: tf.variable(tf.zeros([4])) };
 * const y = layerNorm(tf.tensor2d([[1, 2, 3, 4]]), p, { eps: 1e-6 });
 * ```
 */
export function layerNorm<T extends Tensor>(
  x: T,
  p: NormParams,
  options: { eps: number },
): T {
  const eps = options.eps;
  // Only the normalisation is a custom op: γ and β stay on the tape, so their gradients are
  // computed only when they are trained.
  const normalize = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const xx = args[0] as Tensor;
    const { mean, variance } = tf.moments(xx, -1, true);
    const r = tf.rsqrt(tf.add(variance, eps));
    const normed = tf.mul(tf.sub(xx, mean), r);
    (args[1] as tf.GradSaveFunc)([normed, r]);
    return {
      value: normed,
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [n, rr] = saved;
        const d = dy as Tensor;
        // x̂ = (x − μ)·r: dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
        const m1 = tf.mean(d, -1, true);
        const m2 = tf.mean(tf.mul(d, n), -1, true);
        return [tf.mul(tf.sub(tf.sub(d, m1), tf.mul(n, m2)), rr)];
      },
    };
  });
  return tf.tidy(() => tf.add(tf.mul(normalize(x), p.weight), p.bias) as T);
}

/**
 * RMSNorm over the last axis (LLaMA): x / √(mean(x²) + eps) · γ, with no
 * mean subtraction and no shift.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { rmsNorm } from "./layers.ts";
 * const w = tf.variable(tf.ones([2]));
 * const y = rmsNorm(tf.tensor2d([[3, 4]]), w, { eps: 0 }); // [[0.8485, 1.1314]]
 * ```
 */
export function rmsNorm<T extends Tensor>(
  x: T,
  weight: Tensor,
  options: { eps: number },
): T {
  const eps = options.eps;
  if (!fusedOps()) {
    return tf.tidy(() => {
      const ms = tf.mean(tf.square(x), -1, true);
      return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight) as T;
    });
  }
  // As in layerNorm, only the normalisation is a custom op (γ stays on the tape).
  const normalize = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const xx = args[0] as Tensor;
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xx), -1, true), eps));
    const n = tf.mul(xx, r);
    (args[1] as tf.GradSaveFunc)([n, r]);
    return {
      value: n,
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [nn, rr] = saved;
        const d = dy as Tensor;
        // n = x·r, r = (mean(x²) + ε)^(−1/2): dx = r·(dn − n·mean(dn·n)).
        return [tf.mul(tf.sub(d, tf.mul(nn, tf.mean(tf.mul(d, nn), -1, true))), rr)];
      },
    };
  });
  return tf.tidy(() => tf.mul(normalize(x), weight) as T);
}

/**
 * SiLU (swish), x·σ(x), with its gradient written out: σ(x)·(1 + x·(1 − σ(x))).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { silu } from "./layers.ts";
 * const y = silu(tf.tensor1d([0, 1])); // [0, 0.7311]
 * ```
 */
export function silu<T extends Tensor>(x: T): T {
  if (!fusedOps()) return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T);
  const f = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const xx = args[0] as Tensor;
    const s = tf.sigmoid(xx);
    (args[1] as tf.GradSaveFunc)([xx, s]);
    return {
      value: tf.mul(xx, s),
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [xs, sg] = saved;
        return [tf.mul(dy as Tensor, tf.mul(sg, tf.add(tf.mul(xs, tf.sub(1, sg)), 1)))];
      },
    };
  });
  return f(x) as T;
}

/**
 * GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 * (tfjs has no gelu op; this matches PyTorch's `gelu(approximate="tanh")`.)
 * Computed as x·sigmoid(2z) with z = √(2/π)·x·(1 + 0.044715·x²) — the same
 * function, since 0.5·(1 + tanh z) = sigmoid(2z) — without `tf.pow`, whose
 * kernel and gradient are slow on wasm. The gradient is written out (a custom
 * gradient: σ + x·σ·(1 − σ)·c·(1 + 3a·x²), 8 elementwise ops) rather than
 * traced back through the composite. With the fused ops on (`fused_ops.ts`) that derivative is
 * computed in the forward pass, only while a gradient is being recorded, and is the one tensor
 * kept for the backward pass (instead of x, x² and σ), which is then one product.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { geluTanh } from "./layers.ts";
 * const y = geluTanh(tf.tensor1d([-1, 0, 1]));
 * ```
 */
export function geluTanh<T extends Tensor>(x: T): T {
  const c = 2 * Math.sqrt(2 / Math.PI);
  const a = 0.044715;
  // d/dx x·σ(2z) = σ + x·σ·(1 − σ)·c·(1 + 3a·x²), from x² and σ.
  const derivative = (xs: Tensor, sq: Tensor, sg: Tensor) => {
    const h = tf.add(tf.mul(sq, 3 * c * a), c);
    const t = tf.mul(tf.mul(xs, h), tf.mul(sg, tf.sub(1, sg)));
    return tf.add(sg, t);
  };
  const f = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const xx = args[0] as Tensor;
    const x2 = tf.square(xx);
    const s = tf.sigmoid(tf.mul(xx, tf.add(tf.mul(x2, c * a), c)));
    const save = args[1] as tf.GradSaveFunc;
    if (!fusedOps()) {
      save([xx, x2, s]);
      return {
        value: tf.mul(xx, s),
        gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
          const [xs, sq, sg] = saved;
          return [tf.mul(dy as Tensor, derivative(xs, sq, sg))];
        },
      };
    }
    // Fused ops on: the derivative is computed here, when a gradient is being recorded, and is
    // the only tensor kept for the backward pass (one activation instead of three; the same
    // kernels on the same inputs as the backward pass would run, so the same bits).
    if (tf.engine().state.gradientDepth > 0) save([derivative(xx, x2, s)]);
    return {
      value: tf.mul(xx, s),
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => [tf.mul(dy as Tensor, saved[0])],
    };
  });
  return f(x) as T;
}

/**
 * GELU, exact form: 0.5·x·(1 + erf(x/√2)) — PyTorch's default `nn.GELU()`
 * and Hugging Face's `hidden_act: "gelu"` (ViT, BERT). tfjs's `erf` kernel
 * (cpu, wasm) is the Abramowitz–Stegun 7.1.26 approximation, absolute error
 * ≤ 1.5e-7, so this function is within 0.75e-7·|x| of the exact GELU. It
 * differs from {@link geluTanh} by at most 4.73e-4 (at |x| ≈ 2.70), which
 * is the size of the tanh approximation's own error.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { geluErf } from "./layers.ts";
 * const y = geluErf(tf.tensor1d([-1, 0, 1])); // [-0.1587, 0, 0.8413]
 * ```
 */
export function geluErf<T extends Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T);
}

/**
 * A linear map on rows x [N, in] → [N, out]: x·Wᵀ + b, plus the LoRA update
 * when `p.lora` is set. `siteSeed` seeds that site's dropout mask.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { linear } from "./layers.ts";
 * const p = { weight: tf.variable(tf.eye(2)), bias: tf.variable(tf.zeros([2])) };
 * const y = linear(tf.tensor2d([[1, 2]]), p); // [[1, 2]]
 * ```
 */
export function linear(
  x: Tensor2D,
  p: LinearParams,
  options?: { lora?: LoraForward; siteSeed?: number },
): Tensor2D {
  return tf.tidy(() => {
    const xw = tf.matMul(x, tf.transpose(p.weight)) as Tensor2D;
    const y = p.bias ? tf.add(xw, p.bias) as Tensor2D : xw;
    if (!p.lora || !options?.lora) return y;
    const l = options.lora;
    const delta = loraDelta(x, p.lora, {
      scale: l.scale,
      dropout: l.dropout,
      training: l.training,
      seed: options.siteSeed,
    });
    return tf.add(y, delta);
  });
}

/**
 * A per-site dropout seed derived from the forward pass's seed and the site index
 * (undefined when the pass has no seed).
 *
 * @example
 * ```ts
 * import { siteSeed } from "./layers.ts";
 * siteSeed(1234, 0) !== siteSeed(1234, 1); // true
 * ```
 */
export function siteSeed(seed: number | undefined, index: number): number | undefined {
  if (seed === undefined) return undefined;
  let z = (seed + Math.imul(index + 1, 0x9e3779b9)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Scaled dot-product multi-head attention on rows. q, k, v are [B·T, dim]
 * (token-major within each sequence); the result is [B·T, dim] with the heads
 * concatenated. Heads are formed by reshape + transpose to [B·heads, T, dh];
 * the scores, softmax and weighted sum are one op with its own gradient
 * ({@link attentionCore}). `causal` masks future tokens.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { multiHeadAttention } from "./layers.ts";
 * const x = tf.randomNormal([2 * 5, 8]) as tf.Tensor2D;
 * const y = multiHeadAttention({ q: x, k: x, v: x }, { batch: 2, tokens: 5, heads: 2 }); // [10, 8]
 * ```
 */
export function multiHeadAttention(
  qkv: { q: Tensor2D; k: Tensor2D; v: Tensor2D },
  options: { batch: number; tokens: number; heads: number; causal?: boolean },
): Tensor2D {
  const { q, k, v } = qkv;
  const { batch: b, tokens: t, heads: h } = options;
  const dim = q.shape[1];
  if (dim % h !== 0) throw new Error(`attention: width ${dim} is not divisible by ${h} heads`);
  if (q.shape[0] !== b * t) {
    throw new Error(`attention: expected ${b}·${t} rows, got q [${q.shape}]`);
  }
  const dh = dim / h;
  return tf.tidy(() => {
    // [B·T, dim] → [B, T, H, dh] → [B, H, T, dh] → [B·H, T, dh].
    const heads = (x: Tensor2D) =>
      tf.reshape(tf.transpose(tf.reshape(x, [b, t, h, dh]), [0, 2, 1, 3]), [b * h, t, dh]);
    // kᵀ directly: [B, T, H, dh] → [B, H, dh, T] → [B·H, dh, T].
    const kt = tf.reshape(tf.transpose(tf.reshape(k, [b, t, h, dh]), [0, 2, 3, 1]), [
      b * h,
      dh,
      t,
    ]) as Tensor3D;
    const mask = options.causal
      ? tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)), -1e9)
      : null;
    const out = attentionCore(heads(q) as Tensor3D, kt, heads(v) as Tensor3D, {
      scale: 1 / Math.sqrt(dh),
      ...(mask ? { addBias: (scores: Tensor3D) => tf.add(scores, mask) as Tensor3D } : {}),
    }); // [B·H, T, dh]
    return tf.reshape(tf.transpose(tf.reshape(out, [b, h, t, dh]), [0, 2, 1, 3]), [b * t, dim]);
  });
}
