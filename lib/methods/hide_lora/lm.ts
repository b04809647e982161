/**
 * HiDe-LoRA, LM track: the variant of the released TreeLoRA repo
 * (`model/Regular/HideLoRA.py`, spec §8.3). A new adapter per task, the old
 * ones frozen in the sites' pools (as in O-LoRA), and
 *
 *     loss = L_task + λ1·Σ_sites CE(softmax(M·Mᵀ / τ), identity) + λ2·Σ ‖new LoRA‖_F
 *
 * with M = rows of [A_old; A_new] of the site, τ = 0.8, λ1 = 0.5, λ2 = 0. The
 * cross-entropy is the mean over the rows of M (PyTorch's default), summed
 * over the sites, so each row of M is pushed to be most similar to itself.
 *
 * `keepOldAdapters: false` is the released code exactly: its old adapter has
 * no rows (`r_sum` = 0), so one adapter is continued and M holds its rows only.
 *
 * This is not the ViT HiDe-LoRA, which needs the evaluation to choose an
 * adapter per test sample (the trainers' `forward` hook) and lives in
 * `vit.ts`; `createHideLora` (`hide_lora.ts`) picks the form by track.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { addN } from "../../models/many_inputs.ts";
import type { ContinualMethod } from "../method.ts";
import { createAdapterPerTask, liveL2Norms, oldRows, resolveOptions } from "../o_lora.ts";
import type { Scalar, Tensor2D } from "../../tensor.ts";

/** HiDe-LoRA (LM) options. */
export interface HideLoraOptions {
  /** Weight λ1 of the Gram cross-entropy (default 0.5). */
  lambda1: number;
  /** Weight λ2 of the L2 term on the new adapter (default 0). */
  lambda2: number;
  /** Temperature τ of the Gram logits (default 0.8). */
  temperature: number;
  /** Keep finished tasks' adapters frozen in the forward (default true; false = released code). */
  keepOldAdapters: boolean;
}

/** The defaults (the released repo's constants). */
export const HIDE_LORA_DEFAULTS: Readonly<HideLoraOptions> = Object.freeze({
  lambda1: 0.5,
  lambda2: 0,
  temperature: 0.8,
  keepOldAdapters: true,
});

/**
 * CE(softmax(M·Mᵀ/τ), identity targets), mean over the rows of M [n, d].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { gramCrossEntropy } from "./lm.ts";
 * const l = gramCrossEntropy(tf.eye(2) as tf.Tensor2D, { temperature: 1 }); // log(1 + e^-1) ≈ 0.3133
 * ```
 */
export function gramCrossEntropy(m: Tensor2D, options: { temperature: number }): Scalar {
  return tf.tidy(() => {
    const logits = tf.div(tf.matMul(m, tf.transpose(m)), options.temperature);
    const n = m.shape[0];
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.eye(n), tf.logSoftmax(logits, -1)), -1))) as Scalar;
  });
}

/**
 * Create HiDe-LoRA for the LM track: the Gram cross-entropy variant (options:
 * {@link HideLoraOptions}, defaults {@link HIDE_LORA_DEFAULTS}).
 *
 * @example
 * ```ts
 * import { createHideLoraLm } from "./lm.ts";
 * const m = createHideLoraLm({});
 * m.options().temperature; // 0.8
 * ```
 */
export function createHideLoraLm(options: Record<string, unknown>): ContinualMethod {
  const opts = resolveOptions("hide-lora", options, HIDE_LORA_DEFAULTS);
  if (!(opts.temperature > 0)) throw new Error("hide-lora: temperature must be > 0");
  return createAdapterPerTask({
    name: "hide-lora",
    options: { ...opts },
    keepOldAdapters: opts.keepOldAdapters,
    penalty(sites) {
      const ce = addN(sites.map((s) => {
        const old = opts.keepOldAdapters ? oldRows(s) : null;
        const m = old === null ? s.a as Tensor2D : tf.concat([old, s.a as Tensor2D], 0);
        return gramCrossEntropy(m, opts);
      })) as Scalar;
      const terms: Record<string, Scalar> = { gram_ce: ce };
      let total = tf.mul(ce, opts.lambda1) as Scalar;
      if (opts.lambda2 > 0) {
        terms.l2 = liveL2Norms(sites);
        total = tf.add(total, tf.mul(terms.l2, opts.lambda2));
      }
      return { total, terms };
    },
  });
}
