/**
 * `tf.addN` and `tf.stack` over any number of tensors, on every backend.
 *
 * tfjs-backend-webgpu 4.22 binds each input of `AddN` and `Pack` (`tf.stack`) as a storage
 * buffer of one shader; WebGPU's default limit is 8 storage buffers per shader stage, and with 8
 * or more inputs the kernels return wrong values without an error (measured: `tf.addN` of the
 * scalars 1…8 gives 28 instead of 36, of 1…9 gives 0; `tf.stack` of 8 scalars sums to 0). The
 * harness sums one term per trainable tensor (the gradient norm), per adapter site (the
 * regularisers) and stacks one key per task (DualPrompt), so these counts are common.
 *
 * {@link addN} adds in groups of at most {@link MAX_INPUTS} inputs, folding from the left, so
 * the float32 additions happen in the same order as one `AddN` kernel's (the cpu and wasm
 * results are unchanged, bit for bit); {@link stack} concatenates expanded tensors above
 * {@link MAX_INPUTS} (`Concat` splits its inputs into groups on webgpu itself).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor } from "../tensor.ts";

/** The most inputs one `AddN` or `Pack` kernel gets (well under WebGPU's 8 bindings). */
export const MAX_INPUTS = 6;

/**
 * The element-wise sum of `tensors` (same shape), as `tf.addN`, in groups of at most
 * {@link MAX_INPUTS} inputs (module doc).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { addN } from "./many_inputs.ts";
 * const s = addN(Array.from({ length: 12 }, (_, i) => tf.scalar(i + 1))); // 78
 * ```
 */
export function addN<T extends Tensor>(tensors: readonly T[]): T {
  if (tensors.length === 0) throw new Error("addN: no tensors to add");
  if (tensors.length <= MAX_INPUTS) return tf.addN(tensors as T[]);
  return tf.tidy(() => {
    let acc = tf.addN(tensors.slice(0, MAX_INPUTS) as T[]);
    for (let i = MAX_INPUTS; i < tensors.length; i += MAX_INPUTS - 1) {
      acc = tf.addN([acc, ...tensors.slice(i, i + MAX_INPUTS - 1)]);
    }
    return acc;
  });
}

/**
 * `tensors` (same shape) stacked along a new axis `axis` (default 0), as `tf.stack`; above
 * {@link MAX_INPUTS} inputs as a concatenation of the expanded tensors (module doc).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { stack } from "./many_inputs.ts";
 * const s = stack(Array.from({ length: 9 }, (_, i) => tf.tensor1d([i, -i]))); // [9, 2]
 * ```
 */
export function stack<R extends Tensor>(tensors: readonly Tensor[], axis = 0): R {
  if (tensors.length === 0) throw new Error("stack: no tensors to stack");
  if (tensors.length <= MAX_INPUTS) return tf.stack(tensors as Tensor[], axis) as R;
  return tf.tidy(() => tf.concat(tensors.map((t) => tf.expandDims(t, axis)), axis)) as R;
}
