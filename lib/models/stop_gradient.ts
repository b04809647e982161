/**
 * `stopGradient`: the identity in the forward pass, zero gradient backwards.
 *
 * TensorFlow.js has no stop-gradient op. Regularisers that normalise by their
 * own value (TreeLoRA's code-mode regulariser, spec §4.6) need one.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor } from "../tensor.ts";

/**
 * Return a tensor equal to `x` through which no gradient flows.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { stopGradient } from "./stop_gradient.ts";
 * const x = tf.scalar(3);
 * const g = tf.grad((v: tf.Tensor) => tf.mul(v, stopGradient(v)))(x); // 3, not 6
 * ```
 */
export function stopGradient<T extends Tensor>(x: T): T {
  const f = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => ({
    value: (args[0] as Tensor).clone(),
    gradFunc: (dy: Tensor) => tf.zerosLike(dy),
  }));
  return f(x) as T;
}
