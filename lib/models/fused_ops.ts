/**
 * One switch between the fused ops of a training step and the plain tfjs compositions they
 * replace (issue 20).
 *
 * On (the default, what every run uses): scaled dot-product attention is one op with its own
 * gradient (`attention_core.ts`), so are the LoRA branch (`lora.ts`), RMSNorm's normalisation
 * and SiLU (`layers.ts`), and on the `cpu` and `wasm` backends `createAdam` returns the flat
 * optimiser step with the gradient clipping folded in (`lib/train/flat_adam.ts`).
 *
 * Off: the same functions compute the compositions of tfjs ops that tfjs's autodiff
 * differentiates, exactly as the harness did before the fused ops, and `createAdam` returns
 * `tf.train.adam`. This is the reference the fused ops are tested against
 * (`tests/train/fused_losses_test.ts`) and the "before" column of the bench
 * (`deno task bench --variants wasm+blas,wasm+blas-unfused`), interleaved in one process so
 * that the machine's drift between runs does not enter the ratio.
 *
 * The switch is read when an op is built (attention, LoRA, norms) or an optimiser is created;
 * set it before building a model and its optimiser, not in the middle of a step.
 *
 * @module
 */

let fused = true;

/**
 * Turn the fused ops on (default) or off (module doc).
 *
 * @example
 * ```ts
 * import { fusedOps, setFusedOps } from "./fused_ops.ts";
 * setFusedOps(false);
 * fusedOps(); // false
 * setFusedOps(true);
 * ```
 */
export function setFusedOps(on: boolean): void {
  fused = on;
}

/**
 * Whether the fused ops are on (module doc).
 *
 * @example
 * ```ts
 * import { fusedOps } from "./fused_ops.ts";
 * fusedOps(); // true unless setFusedOps(false) was called
 * ```
 */
export function fusedOps(): boolean {
  return fused;
}
