/**
 * TreeLoRA's penalty terms, in TensorFlow.js. Both run inside the trainer's
 * gradient tape and take the live LoRA A variables (one tensor per site, any
 * shape) and the selected stored rows (one Float32Array of the same size per
 * site; see `selectedRows`).
 *
 * - {@link codeRegularizer} (spec §4.6): R = c·raw with
 *   raw = −Σ_d ⟨A_d, P_d⟩ and the constant c = τ·L/(raw_value + 1e−5),
 *   computed from plain numbers (the code's stop-gradients). The total loss
 *   is L_task − R.
 * - {@link paperL1Penalty} (Eq. 3): λ·Σ_d ‖x_d − P_d‖₁, differentiable in the
 *   live tensors x_d. The total loss is L_task + penalty.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { addN } from "../../models/many_inputs.ts";
import { stopGradient } from "../../models/stop_gradient.ts";
import type { FloatArray } from "./signature.ts";
import type { Scalar, Tensor } from "../../tensor.ts";

/**
 * The regulariser's coefficient at a step: τ = λ·t/T with `rampPerEpoch`
 * (the code's per-epoch ramp; t is the 0-based step in the epoch, T the
 * steps per epoch, so τ runs 0 → λ·(T−1)/T), otherwise τ = λ.
 *
 * @example
 * ```ts
 * import { regularizerTau } from "./regularizer.ts";
 * regularizerTau(5, 10, { lambda: 0.5, rampPerEpoch: true }); // 0.25
 * regularizerTau(5, 10, { lambda: 0.5, rampPerEpoch: false }); // 0.5
 * ```
 */
export function regularizerTau(
  t: number,
  T: number,
  options: { lambda: number; rampPerEpoch: boolean },
): number {
  if (!options.rampPerEpoch) return options.lambda;
  if (!Number.isInteger(T) || T < 1 || !Number.isInteger(t) || t < 0) {
    throw new Error(`regularizerTau: need integers T >= 1 and t >= 0, got T=${T}, t=${t}`);
  }
  return (options.lambda * t) / T;
}

/** Options of the code regulariser's constant. */
export interface CodeCoefficientOptions {
  /** The task loss value L (a number: the code's stop-gradient). */
  taskLoss: number;
  /** τ (see {@link regularizerTau}). */
  tau: number;
  /**
   * false (code): c = τ·L/(raw + 1e−5). When Σ⟨A, P⟩ > 0 (raw < 0, the usual
   * case) descent on L − R pulls A toward P; when Σ⟨A, P⟩ < 0 it pushes A
   * toward −P. true: c = −τ·L/(|raw| + 1e−5): always a pull toward P, with
   * R = τ·L·sign(Σ⟨A, P⟩) as a value.
   */
  fixSign: boolean;
}

/**
 * The constant c of R = c·raw, from plain numbers (spec §4.6).
 *
 * @example
 * ```ts
 * import { codeRegularizerCoefficient } from "./regularizer.ts";
 * codeRegularizerCoefficient(-2, { taskLoss: 1, tau: 0.5, fixSign: false }); // 0.5/(-2 + 1e-5)
 * ```
 */
export function codeRegularizerCoefficient(
  rawValue: number,
  options: CodeCoefficientOptions,
): number {
  const { taskLoss, tau } = options;
  if (options.fixSign) return -(taskLoss * tau) / (Math.abs(rawValue) + 1e-5);
  return (taskLoss * tau) / (rawValue + 1e-5);
}

function checkTargets(what: string, live: readonly Tensor[], targets: readonly FloatArray[]) {
  if (live.length === 0) throw new Error(`${what}: no sites`);
  if (live.length !== targets.length) {
    throw new Error(`${what}: ${live.length} sites but ${targets.length} targets`);
  }
  live.forEach((x, d) => {
    if (x.size !== targets[d].length) {
      throw new Error(
        `${what}: site ${d} has ${x.size} values (shape [${x.shape}]) but its target has ` +
          `${targets[d].length}`,
      );
    }
  });
}

/** Options of {@link codeRegularizer}. */
export interface CodeRegularizerOptions extends Omit<CodeCoefficientOptions, "taskLoss"> {
  /** The selected stored rows P_{k_d, d}, one per site (reshaped to A's shape). */
  targets: readonly FloatArray[];
  /**
   * The task loss L: a number, or the live scalar (inside the trainer's tape),
   * which is then passed through a stop-gradient.
   */
  taskLoss: number | Scalar;
}

/**
 * The code's regulariser R (spec §4.6): raw = −Σ_d ⟨A_d, P_d⟩ with the live
 * A tensors, R = c·raw with c = {@link codeRegularizerCoefficient}(raw value)
 * a plain number, so R's value is ≈ τ·L and its gradient is c·∂raw/∂A =
 * −c·P_d (nothing flows through L or the normaliser). The caller subtracts
 * it: L_total = L_task − R. The gradient is invariant to a rescaling of P
 * (hence to the accumulator's ×M). The normaliser and L enter through
 * stop-gradients, so nothing is read back from the device mid-tape.
 * Intermediate tensors are freed; only the returned scalar remains.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { codeRegularizer } from "./regularizer.ts";
 * const a = tf.variable(tf.tensor2d([[1, 2]]));
 * const r = codeRegularizer([a], {
 *   targets: [new Float32Array([1, 1])], taskLoss: 2, tau: 0.25, fixSign: false,
 * }); // ≈ 0.5 = τ·L
 * ```
 */
export function codeRegularizer(
  aSites: readonly Tensor[],
  options: CodeRegularizerOptions,
): Scalar {
  checkTargets("codeRegularizer", aSites, options.targets);
  return tf.tidy(() => {
    const products = aSites.map((a, d) =>
      tf.sum(tf.mul(a, tf.tensor(options.targets[d], a.shape, "float32")))
    );
    const raw = tf.neg(addN(products)) as Scalar;
    // c = codeRegularizerCoefficient(raw value, …), as tensors behind stop-gradients.
    const rawValue = stopGradient(raw);
    const scaledLoss = tf.mul(
      typeof options.taskLoss === "number"
        ? tf.scalar(options.taskLoss)
        : stopGradient(options.taskLoss),
      options.tau,
    );
    const c = options.fixSign
      ? tf.neg(tf.div(scaledLoss, tf.add(tf.abs(rawValue), 1e-5)))
      : tf.div(scaledLoss, tf.add(rawValue, 1e-5));
    return tf.mul(raw, c) as Scalar;
  });
}

/** Options of {@link paperL1Penalty}. */
export interface PaperPenaltyOptions {
  /** The selected stored signatures P_{k_d, d}, one per site. */
  targets: readonly FloatArray[];
  /** λ (no ramp unless the caller passes a ramped value). */
  lambda: number;
}

/**
 * The paper's penalty (Eq. 3), λ·Σ_d ‖x_d − P_d‖₁ (a sum over all entries,
 * as the L1 norm is written; no averaging). Differentiable in the live
 * tensors x_d: ∂/∂x_d = λ·sign(x_d − P_d) (where x = P exactly, TF.js's
 * derivative of |·| at 0 is −1, so the entry gets −λ). The caller adds
 * it: L_total = L_task + penalty. What x_d is depends on the signature:
 *
 * - A values (`signatureSource: "lora_a_values"`, `accumulatorScale: "one"`):
 *   x_d = the live A_d. Descent pulls each entry of A_d toward the selected
 *   task's mean A by λ·lr per step (an L1 anti-drift pull).
 * - A gradients (`"lora_a_grads"`): the current gradient is not a
 *   differentiable function of A inside one first-order tape, so pass
 *   x_d = {@link linearizedSignature}(A_d, ḡ_d), whose value is the current
 *   gradient estimate ḡ_d (e.g. the running mean of this task's A gradients
 *   so far) and whose derivative in A_d is the identity. The A update then
 *   gains −lr·λ·sign(ḡ_d − P_d): Eq. 3's −λ·∇ℓ_reg with the gradient taken
 *   with respect to the gradient estimate (Hessian replaced by the identity).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { paperL1Penalty } from "./regularizer.ts";
 * const a = tf.variable(tf.tensor2d([[1, -2]]));
 * paperL1Penalty([a], { targets: [new Float32Array([0.5, 0.5])], lambda: 0.5 }); // 1.5
 * ```
 */
export function paperL1Penalty(
  live: readonly Tensor[],
  options: PaperPenaltyOptions,
): Scalar {
  checkTargets("paperL1Penalty", live, options.targets);
  const { lambda } = options;
  if (!Number.isFinite(lambda) || lambda < 0) {
    throw new Error(`paperL1Penalty: lambda must be a finite number >= 0, got ${lambda}`);
  }
  return tf.tidy(() => {
    const norms = live.map((x, d) =>
      tf.sum(tf.abs(tf.sub(x, tf.tensor(options.targets[d], x.shape, "float32"))))
    );
    return tf.mul(addN(norms), lambda) as Scalar;
  });
}

/**
 * A tensor whose value is `estimate` (reshaped to `a`'s shape) and whose
 * gradient with respect to `a` is the identity: the first-order stand-in for
 * "the current gradient as a function of A" used by {@link paperL1Penalty}
 * with gradient signatures.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { linearizedSignature } from "./regularizer.ts";
 * const a = tf.variable(tf.tensor1d([5, 6]));
 * linearizedSignature(a, new Float32Array([0.1, -0.2])); // value [0.1, -0.2]
 * ```
 */
export function linearizedSignature(a: Tensor, estimate: FloatArray): Tensor {
  if (a.size !== estimate.length) {
    throw new Error(
      `linearizedSignature: tensor has ${a.size} values but the estimate has ${estimate.length}`,
    );
  }
  const shape = a.shape;
  // tfjs takes Float32Array (not Float64Array) values.
  const values = estimate instanceof Float32Array ? estimate : Float32Array.from(estimate);
  // The input `a` only routes the gradient: the value ignores it and the
  // gradient passes dy (shaped like the value, i.e. like `a`) through.
  const f = tf.customGrad(() => ({
    value: tf.tensor(values, shape, "float32"),
    gradFunc: (dy: Tensor) => dy,
  }));
  return f(a);
}
