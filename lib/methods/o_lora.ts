/**
 * O-LoRA (Wang et al., EMNLP 2023 Findings; cmnfriend/O-LoRA): a new LoRA
 * adapter per task; the finished tasks' adapters stay in the forward pass,
 * frozen (in the site's adapter pool, so the total rank grows by r per task),
 * and the new adapter's A is pushed orthogonal to the old ones:
 *
 *     loss = L_task + λ1·Σ_sites Σ|A_old·A_newᵀ| + λ2·Σ_{new LoRA matrices} ‖·‖_F
 *
 * A_old stacks the rows of every frozen A of the site. λ1 = 0.5, λ2 = 0 (O-LoRA's
 * and the TreeLoRA repo's defaults). The L2 term is a sum of Frobenius norms, not
 * squared, as in both codes (computed as √(Σx² + 1e-12) so its gradient exists at B = 0).
 * The new adapter starts like a fresh LoRA (A ~ U(±1/√d_in) from the method's
 * stream, B = 0); the head (ViT track) stays trainable, as in SeqLoRA.
 *
 * **Difference from the released TreeLoRA repo** (spec §6 item 13): there the
 * old adapters are never concatenated (`r_sum` is reset to 0), so A_old has no
 * rows, the penalty is identically 0 and "O-LoRA" trains exactly like SeqLoRA.
 * This is O-LoRA as its authors describe and release it.
 *
 * {@link createAdapterPerTask} is the skeleton O-LoRA and HiDe-LoRA (LM) share.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { addN } from "../models/many_inputs.ts";
import type { LoraSite } from "../models/backbone.ts";
import { resetLiveAdapter, TaskAdapters } from "../models/adapter_pool.ts";
import type { ContinualMethod, LossParts, MethodState } from "./method.ts";
import type { Scalar, Tensor2D } from "../tensor.ts";

/** O-LoRA's options. */
export interface OLoraOptions {
  /** Weight of the orthogonality term λ1 (default 0.5). */
  lambda1: number;
  /** Weight of the L2 term λ2 on the new adapter (default 0). */
  lambda2: number;
}

/** O-LoRA's defaults (both tracks). */
export const O_LORA_DEFAULTS: Readonly<OLoraOptions> = Object.freeze({ lambda1: 0.5, lambda2: 0 });

/**
 * Check `options` against `defaults` (same keys, finite non-negative numbers or
 * booleans) and fill in the rest.
 *
 * @example
 * ```ts
 * import { O_LORA_DEFAULTS, resolveOptions } from "./o_lora.ts";
 * resolveOptions("o-lora", { lambda1: 1 }, O_LORA_DEFAULTS); // { lambda1: 1, lambda2: 0 }
 * ```
 */
export function resolveOptions<T extends object>(
  method: string,
  options: Record<string, unknown>,
  defaults: Readonly<T>,
): T {
  const unknown = Object.keys(options).filter((k) => !(k in defaults));
  if (unknown.length > 0) {
    throw new Error(
      `unknown ${method} option(s): ${unknown.join(", ")}; known: ${Object.keys(defaults)}`,
    );
  }
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const d = out[k];
    const ok = typeof d === "boolean"
      ? typeof v === "boolean"
      : typeof v === "number" && Number.isFinite(v) && v >= 0;
    if (!ok) throw new Error(`${method}: option ${k} must be like ${d}, got ${v}`);
    out[k] = v;
  }
  return out as T;
}

/**
 * Σ|A_old·A_newᵀ| for one site (A_old [R, d], A_new [r, d]).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { orthogonalityPenalty } from "./o_lora.ts";
 * orthogonalityPenalty(tf.tensor2d([[1, 0]]), tf.tensor2d([[2, 3]])); // 2
 * ```
 */
export function orthogonalityPenalty(old: Tensor2D, current: Tensor2D): Scalar {
  return tf.tidy(() => tf.sum(tf.abs(tf.matMul(old, tf.transpose(current)))));
}

/** Rows of every frozen pool A of the site, stacked [R, d] (null when the pool is empty). */
export function oldRows(site: LoraSite): Tensor2D | null {
  const pool = site.pool ?? [];
  if (pool.length === 0) return null;
  return pool.length === 1 ? pool[0].a as Tensor2D : tf.concat(pool.map((p) => p.a as Tensor2D), 0);
}

/**
 * Σ over the live adapters' A and B of √(Σx² + 1e-12) (the L2 term of O-LoRA and HiDe-LoRA).
 *
 * @example
 * ```ts ignore
 * const l2 = liveL2Norms(model.loraSites());
 * ```
 */
export function liveL2Norms(sites: LoraSite[]): Scalar {
  return addN(
    sites.flatMap((s) => [s.a, s.b]).map((v) => tf.sqrt(tf.add(tf.sum(tf.square(v)), 1e-12))),
  ) as Scalar;
}

/**
 * A method that trains a new adapter per task and freezes the old ones into
 * the sites' pools (`keepOldAdapters`; otherwise one continued adapter), with
 * a penalty added to the task loss. `penalty` returns the weighted total and
 * the raw named terms (logged).
 *
 * @example
 * ```ts ignore
 * const m = createAdapterPerTask({ name: "x", options: {}, keepOldAdapters: true, penalty: () => null });
 * ```
 */
export function createAdapterPerTask(config: {
  name: string;
  options: Record<string, unknown>;
  keepOldAdapters: boolean;
  penalty: (sites: LoraSite[]) => { total: Scalar; terms: Record<string, Scalar> } | null;
}): ContinualMethod {
  const pool = new TaskAdapters();
  return {
    name: config.name,
    options: () => ({ ...config.options }),
    async beginTask(ctx) {
      const sites = ctx.model.loraSites();
      pool.attach(sites);
      if (!config.keepOldAdapters || ctx.taskIndex === 0 || pool.count >= ctx.taskIndex) return;
      await pool.freezeLive(sites, `task${ctx.taskIndex - 1}`);
      for (const s of sites) resetLiveAdapter(s, { rng: ctx.rng });
    },
    trainableVariables: (ctx) => [
      ...ctx.model.loraSites().flatMap((s) => [s.a, s.b]),
      ...ctx.model.headVariables(),
    ],
    loss(ctx, taskLoss): LossParts {
      const p = config.penalty(ctx.model.loraSites());
      if (p === null) return { total: taskLoss, terms: {} };
      return { total: tf.add(taskLoss, p.total) as Scalar, terms: p.terms };
    },
    endTask: () => {},
    taskSummary: () => ({ frozenAdapters: pool.count }),
    state: (): MethodState => ({
      json: { options: config.options, frozenAdapters: pool.count },
      arrays: pool.arrays(),
    }),
    restore: (state) => pool.restore(state.arrays),
    dispose: () => pool.dispose(),
  };
}

/**
 * Create O-LoRA. Options: {@link OLoraOptions}.
 *
 * @example
 * ```ts
 * import { createOLora } from "./o_lora.ts";
 * const m = createOLora({ lambda1: 0.5 });
 * m.options(); // { lambda1: 0.5, lambda2: 0 }
 * ```
 */
export function createOLora(options: Record<string, unknown> = {}): ContinualMethod {
  const opts = resolveOptions("o-lora", options, O_LORA_DEFAULTS);
  return createAdapterPerTask({
    name: "o-lora",
    options: { ...opts },
    keepOldAdapters: true,
    penalty(sites) {
      const pairs = sites.map((s) => [oldRows(s), s.a] as const).filter(([o]) => o !== null);
      if (pairs.length === 0 && opts.lambda2 === 0) return null;
      const terms: Record<string, Scalar> = {};
      let total: Scalar = tf.scalar(0);
      if (pairs.length > 0) {
        const orth = addN(
          pairs.map(([o, a]) => orthogonalityPenalty(o!, a as Tensor2D)),
        ) as Scalar;
        terms.orthogonality = orth;
        total = tf.add(total, tf.mul(orth, opts.lambda1));
      }
      if (opts.lambda2 > 0) {
        const l2 = liveL2Norms(sites);
        terms.l2 = l2;
        total = tf.add(total, tf.mul(l2, opts.lambda2));
      }
      return { total, terms };
    },
  });
}
