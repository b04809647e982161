/**
 * A linear classifier head: logits = features · W + b, W [dim, numClasses].
 *
 * Initialisation (drawn in JavaScript from the given {@link Rng}, so it is the
 * same on every backend): by default W ~ truncated normal with std 0.02
 * (±2σ, as timm's `trunc_normal_`) and b = 0; `init: "zeros"` gives W = 0
 * (then all logits start equal and the first gradient is still non-zero).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../random.ts";
import { makeVariable, truncatedNormal, uniqueScope } from "./init.ts";
import type { Tensor2D, Variable } from "../tensor.ts";

/** A classifier head. */
export interface LinearHead {
  /** Feature width. */
  readonly dim: number;
  /** Number of outputs. */
  readonly numClasses: number;
  /** W [dim, numClasses]. */
  readonly weight: Variable;
  /** b [numClasses]. */
  readonly bias: Variable;
  /** Logits [B, numClasses] for features [B, dim]. */
  logits(features: Tensor2D): Tensor2D;
  /** [weight, bias], trainable. */
  variables(): Variable[];
  /** Free both variables. */
  dispose(): void;
}

/**
 * Create a head. `std` (default 0.02) applies to `init: "normal"` (the default).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../random.ts";
 * import { createLinearHead } from "./linear_head.ts";
 * const head = createLinearHead({ dim: 8, numClasses: 3, rng: new Rng(0) });
 * const logits = head.logits(tf.ones([2, 8])); // [2, 3]
 * head.dispose();
 * ```
 */
export function createLinearHead(
  options: { dim: number; numClasses: number; rng: Rng; init?: "normal" | "zeros"; std?: number },
): LinearHead {
  const { dim, numClasses } = options;
  if (!(Number.isInteger(dim) && dim > 0 && Number.isInteger(numClasses) && numClasses > 0)) {
    throw new Error(`createLinearHead: bad shape dim ${dim}, numClasses ${numClasses}`);
  }
  const init = options.init ?? "normal";
  const scope = uniqueScope("head");
  const w = init === "zeros"
    ? new Float32Array(dim * numClasses)
    : truncatedNormal(dim * numClasses, { rng: options.rng, std: options.std ?? 0.02 });
  const weight = makeVariable(w, [dim, numClasses], { name: `${scope}/weight`, trainable: true });
  const bias = makeVariable(new Float32Array(numClasses), [numClasses], {
    name: `${scope}/bias`,
    trainable: true,
  });
  return {
    dim,
    numClasses,
    weight,
    bias,
    logits(features: Tensor2D): Tensor2D {
      if (features.rank !== 2 || features.shape[1] !== dim) {
        throw new Error(
          `LinearHead.logits: expected features [B, ${dim}], got [${features.shape}]`,
        );
      }
      return tf.tidy(() => tf.add(tf.matMul(features, weight), bias));
    },
    variables: () => [weight, bias],
    dispose() {
      weight.dispose();
      bias.dispose();
    },
  };
}
