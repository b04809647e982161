/**
 * LoRA: a low-rank update added to a frozen linear map (spec §4.1).
 *
 *     y = W0·x + b + s·B·A·drop(x),   s = alpha / r
 *
 * A ∈ R^{r×d_in} is drawn from U(−1/√d_in, 1/√d_in) (PEFT's Kaiming-uniform
 * with a = √5), B ∈ R^{d_out×r} starts at zero, so the update is zero at
 * initialisation. Dropout acts on the LoRA input only, and only in training.
 *
 * The layer that owns W0 computes `W0·x + b` itself and adds
 * {@link loraDelta}. A site may carry a pool of further adapters (`site.pool`,
 * see `adapter_pool.ts`); they are summed with the site's own A, B
 * (ΔW = s·Σ_i B_i·A_i, one concatenated product). All products are plain 2-D `tf.matMul`s on explicitly
 * transposed weights (the fast path of the wasm backend).
 *
 * {@link withActiveAdapter} narrows the sum, for the duration of one
 * synchronous call, to a single adapter (the site's own, one pool adapter, or
 * none): per-task methods (HiDe-LoRA on the ViT) run each task's adapter alone.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../random.ts";
import type { LoraConfig, LoraSite } from "./backbone.ts";
import { makeVariable, uniformArray, uniqueScope } from "./init.ts";
import { fusedOps } from "./fused_ops.ts";
import { matMulT } from "./fast_grads.ts";
import type { Tensor, Tensor2D } from "../tensor.ts";

/**
 * The LoRA scale s = alpha / rank.
 *
 * @example
 * ```ts
 * import { loraScale } from "./lora.ts";
 * loraScale({ rank: 8, alpha: 32, dropout: 0.1 }); // 4
 * ```
 */
export function loraScale(config: LoraConfig): number {
  if (!(config.rank > 0) || !Number.isInteger(config.rank)) {
    throw new Error(`LoRA rank must be a positive integer, got ${config.rank}`);
  }
  return config.alpha / config.rank;
}

/**
 * Create one LoRA site: A [rank, dIn] ~ U(±1/√dIn) drawn from `rng` (row-major),
 * B [dOut, rank] = 0, both trainable. Variables are named
 * `<scope>/<name>.lora_a` / `.lora_b`; `scope` defaults to a fresh `loraN`.
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { createLoraSite } from "./lora.ts";
 * const site = createLoraSite("blocks.0.attn.q", {
 *   dIn: 64,
 *   dOut: 64,
 *   lora: { rank: 4, alpha: 8, dropout: 0 },
 *   rng: new Rng(0),
 * });
 * site.a.dispose();
 * site.b.dispose();
 * ```
 */
export function createLoraSite(
  name: string,
  options: { dIn: number; dOut: number; lora: LoraConfig; rng: Rng; scope?: string },
): LoraSite {
  const { dIn, dOut, lora, rng } = options;
  loraScale(lora);
  if (!(dIn > 0 && dOut > 0)) throw new Error(`LoRA site ${name}: bad shape ${dIn}→${dOut}`);
  const scope = options.scope ?? uniqueScope("lora");
  const r = lora.rank;
  const a = makeVariable(uniformArray(r * dIn, { rng, bound: 1 / Math.sqrt(dIn) }), [r, dIn], {
    name: `${scope}/${name}.lora_a`,
    trainable: true,
  });
  const b = makeVariable(new Float32Array(dOut * r), [dOut, r], {
    name: `${scope}/${name}.lora_b`,
    trainable: true,
  });
  return { name, dIn, dOut, a, b };
}

/** The name that selects a site's own A, B (the live adapter) in {@link withActiveAdapter}. */
export const LIVE_ADAPTER = "live";

// Sites narrowed by `withActiveAdapter`: adapter name, or null for no adapter at all.
const activeAdapters = new WeakMap<LoraSite, string | null>();

/**
 * Run `fn` with one adapter the only active one on every site of `sites`:
 * `adapter` is {@link LIVE_ADAPTER} (the site's own A, B), the name of a pool
 * adapter, or `null` (no LoRA update: the base model). Other sites, and every
 * site outside the call, keep summing all their adapters. `fn` must be
 * synchronous (a forward pass); the previous selection is restored when it
 * returns or throws, so calls nest. A site without the named pool adapter
 * makes the forward pass throw.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../random.ts";
 * import { createLoraSite, loraDelta, withActiveAdapter } from "./lora.ts";
 * const site = createLoraSite("q", { dIn: 3, dOut: 2, lora: { rank: 1, alpha: 1, dropout: 0 }, rng: new Rng(0) });
 * const opts = { scale: 1, dropout: 0, training: false };
 * const d = withActiveAdapter([site], () => loraDelta(tf.ones([1, 3]), site, opts), { adapter: null }); // zeros [1, 2]
 * d.dispose();
 * site.a.dispose();
 * site.b.dispose();
 * ```
 */
export function withActiveAdapter<T>(
  sites: readonly LoraSite[],
  fn: () => T,
  options: { adapter: string | null },
): T {
  const previous = sites.map((s) => [s, activeAdapters.get(s)] as const);
  for (const s of sites) activeAdapters.set(s, options.adapter);
  try {
    const out = fn();
    if (out instanceof Promise) {
      throw new Error(
        "withActiveAdapter: fn must be synchronous (the selection ends when it returns)",
      );
    }
    return out;
  } finally {
    for (const [s, p] of previous) {
      if (p === undefined) activeAdapters.delete(s);
      else activeAdapters.set(s, p);
    }
  }
}

/** The A [r, dIn] and B [dOut, r] a forward pass uses at `site` (null: no update). */
function activeFactors(site: LoraSite): { a: Tensor; b: Tensor } | null {
  const only = activeAdapters.get(site);
  const pool = site.pool ?? [];
  if (only === undefined) {
    // A pool concatenates ranks: [A; A_1; …] and [B, B_1, …] share the input and the scale.
    if (pool.length === 0) return { a: site.a, b: site.b };
    return {
      a: tf.concat([site.a, ...pool.map((p) => p.a)], 0),
      b: tf.concat([site.b, ...pool.map((p) => p.b)], 1),
    };
  }
  if (only === null) return null;
  if (only === LIVE_ADAPTER) return { a: site.a, b: site.b };
  const p = pool.find((q) => q.name === only);
  if (!p) {
    throw new Error(
      `site ${site.name}: no pool adapter "${only}" to activate; the pool has ` +
        `[${pool.map((q) => q.name).join(", ")}]`,
    );
  }
  return { a: p.a, b: p.b };
}

/**
 * An inverted-dropout mask [rows, cols]: each entry is 0 with probability
 * `rate` and 1 / (1 − rate) otherwise, drawn from a 32-bit generator
 * (mulberry32) seeded with `seed`, so the same seed gives the same mask on
 * every backend. Generated in one typed-array pass and uploaded: `tf.dropout`
 * draws its uniforms one by one through seedrandom and then needs add, floor,
 * div and mul kernels (2.9 vs 1.1 ms for a [2080, 64] mask on wasm).
 *
 * @example
 * ```ts
 * import { dropoutMask } from "./lora.ts";
 * const m = dropoutMask([2, 4], 0.5, 7); // entries 0 or 2
 * m.dispose();
 * ```
 */
export function dropoutMask(shape: [number, number], rate: number, seed: number): Tensor2D {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropoutMask: rate must be in [0, 1), got ${rate}`);
  const n = shape[0] * shape[1];
  const kept = 1 / (1 - rate);
  const threshold = Math.floor(rate * 4294967296);
  const mask = new Float32Array(n);
  let state = seed | 0;
  for (let i = 0; i < n; i++) {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    mask[i] = ((t ^ (t >>> 14)) >>> 0) >= threshold ? kept : 0;
  }
  return tf.tensor2d(mask, shape);
}

/**
 * The LoRA update s·(drop(x)·Aᵀ)·Bᵀ for rows x [N, dIn] → [N, dOut].
 * Dropout (a {@link dropoutMask} drawn from `seed`; inverted scaling) is
 * applied only when `training` and `dropout > 0`, and then a seed is required
 * so masks are reproducible.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../random.ts";
 * import { createLoraSite, loraDelta } from "./lora.ts";
 * const site = createLoraSite("q", {
 *   dIn: 3,
 *   dOut: 2,
 *   lora: { rank: 1, alpha: 2, dropout: 0 },
 *   rng: new Rng(0),
 * });
 * const d = loraDelta(tf.ones([4, 3]), site, { scale: 2, dropout: 0, training: false }); // zeros [4, 2]
 * ```
 */
export function loraDelta(
  x: Tensor2D,
  site: LoraSite,
  options: { scale: number; dropout: number; training: boolean; seed?: number },
): Tensor2D {
  if (x.rank !== 2 || x.shape[1] !== site.dIn) {
    throw new Error(`loraDelta ${site.name}: expected x [N, ${site.dIn}], got [${x.shape}]`);
  }
  return tf.tidy(() => {
    site.recordInput?.(x);
    let mask: Tensor2D | null = null;
    if (options.training && options.dropout > 0) {
      if (options.seed === undefined) {
        throw new Error(`loraDelta ${site.name}: training with dropout needs a seed`);
      }
      mask = dropoutMask(x.shape, options.dropout, options.seed);
    }
    const factors = activeFactors(site);
    if (factors === null) return tf.zeros([x.shape[0], site.dOut]) as Tensor2D;
    return loraProduct(x, factors.a as Tensor2D, factors.b as Tensor2D, {
      scale: options.scale,
      mask,
    });
  });
}

/**
 * s·((x ⊙ mask)·Aᵀ)·Bᵀ as one op with its own gradient: with h = x ⊙ mask, d = h·Aᵀ [N, r]
 * and dy [N, dOut], dB = s·dyᵀ·d, dd = s·dy·B, dA = ddᵀ·h and dx = (dd·A) ⊙ mask: four
 * products and the mask, where tfjs's autodiff of the composition also records and
 * differentiates the two transposes and the scaling. With the fused ops off (`fused_ops.ts`),
 * that composition.
 */
function loraProduct(
  x: Tensor2D,
  a: Tensor2D,
  b: Tensor2D,
  options: { scale: number; mask: Tensor2D | null },
): Tensor2D {
  const { scale, mask } = options;
  if (!fusedOps()) {
    // The composition, as tfjs's autodiff differentiates it (fused_ops.ts).
    const h = mask ? tf.mul(x, mask) as Tensor2D : x;
    const down = tf.matMul(h, tf.transpose(a)); // [N, r]
    return tf.matMul(down, tf.mul(tf.transpose(b), scale) as Tensor2D); // [N, dOut]
  }
  const f = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [xx, aa, bb] = args as Tensor2D[];
    const h = mask ? tf.mul(xx, mask) as Tensor2D : xx;
    const down = matMulT(h, aa, false, true); // [N, r]
    // The scale goes on B [dOut, r], the smallest operand.
    const sb = tf.mul(bb, scale) as Tensor2D;
    // The mask is saved too: made inside the caller's tidy, it would be gone by the backward pass.
    (args[3] as tf.GradSaveFunc)(mask ? [h, down, aa, sb, mask] : [h, down, aa, sb]);
    return {
      value: matMulT(down, sb, false, true), // [N, dOut]
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [sh, sd, sa, ssb, smask] = saved as Tensor2D[];
        const g = dy as Tensor2D;
        const dDown = tf.matMul(g, ssb); // s·dy·B [N, r]
        const dB = tf.mul(matMulT(g, sd, true, false), scale); // s·dyᵀ·d [dOut, r]
        const dA = matMulT(dDown, sh, true, false); // [r, dIn]
        const dh = tf.matMul(dDown, sa); // [N, dIn]
        return [smask ? tf.mul(dh, smask) : dh, dA, dB];
      },
    };
  });
  return f(x, a, b) as Tensor2D;
}
