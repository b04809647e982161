/**
 * The language-model training loss: token cross-entropy with next-token
 * shift and ignored positions, as Hugging Face's causal-LM loss.
 *
 * Position t of the logits predicts label t + 1; labels equal to
 * {@link IGNORE_INDEX} (−100: the prompt and the padding, spec §9.3) do not
 * count. The loss is the mean over the counted positions of the batch (not a
 * mean of per-sequence means).
 *
 * The label lookup is a product with a one-hot matrix built from the labels
 * (no `gather`, whose gradient the wasm backend lacks).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor3D } from "../tensor.ts";

/** The label value of positions the loss ignores (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/**
 * Next-token targets: `targets[b, t] = labels[b, t + 1]`, and
 * {@link IGNORE_INDEX} at the last position of every row. `labels` is
 * row-major [B, T].
 *
 * @example
 * ```ts
 * import { shiftLabels } from "./lm_loss.ts";
 * shiftLabels(Int32Array.from([-100, 5, 6]), { batch: 1, tokens: 3 }); // [5, 6, -100]
 * ```
 */
export function shiftLabels(
  labels: Int32Array,
  shape: { batch: number; tokens: number },
): Int32Array {
  const { batch, tokens } = shape;
  if (labels.length !== batch * tokens) {
    throw new Error(`shiftLabels: ${labels.length} labels for shape [${batch}, ${tokens}]`);
  }
  const out = new Int32Array(labels.length).fill(IGNORE_INDEX);
  for (let b = 0; b < batch; b++) {
    out.set(labels.subarray(b * tokens + 1, (b + 1) * tokens), b * tokens);
  }
  return out;
}

/**
 * Masked next-token cross-entropy of logits [B, T, V] against labels
 * (row-major [B, T], {@link IGNORE_INDEX} = ignore): the mean of
 * −log softmax(logits[b, t])[labels[b, t + 1]] over the counted positions.
 * Returns 0 when no position counts. Differentiable w.r.t. the logits.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { lmLoss } from "./lm_loss.ts";
 * const logits = tf.zeros([1, 3, 4]) as tf.Tensor3D;
 * const loss = lmLoss(logits, Int32Array.from([-100, 2, 3])); // ln 4 (uniform logits)
 * ```
 */
export function lmLoss(logits: Tensor3D, labels: Int32Array): Scalar {
  if (logits.rank !== 3) {
    throw new Error(`lmLoss: expected logits [B, T, V], got [${logits.shape}]`);
  }
  const [batch, tokens, vocab] = logits.shape;
  const targets = shiftLabels(labels, { batch, tokens });
  let count = 0;
  for (const y of targets) {
    if (y === IGNORE_INDEX) continue;
    if (!Number.isInteger(y) || y < 0 || y >= vocab) {
      throw new Error(`lmLoss: label ${y} is outside the vocabulary 0..${vocab - 1}`);
    }
    count++;
  }
  const weights = new Float32Array(targets.length);
  const safe = new Int32Array(targets.length);
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] === IGNORE_INDEX) continue;
    weights[i] = 1 / count;
    safe[i] = targets[i];
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(tf.reshape(logits, [batch * tokens, vocab]));
    const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(safe, "int32"), vocab)), 1);
    return tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(weights)))) as Scalar;
  });
}
