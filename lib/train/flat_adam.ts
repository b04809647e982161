/**
 * Adam with global-norm clipping as one pass over the gradients in
 * JavaScript, for the backends whose tensors live in main memory (`cpu`,
 * `wasm`). tfjs's `tf.train.adam` runs about ten kernels per trainable tensor
 * and step (moments, bias correction, square root, division, assignment),
 * and the clipping another four per tensor; each kernel costs tfjs's
 * per-operation overhead, which dominates for the many small tensors of a
 * LoRA model. {@link FlatAdam} reads each gradient once, clips, updates both
 * moments and the weight in one loop, and writes the weight back: no kernels.
 *
 * **Same numbers.** Every arithmetic step is rounded to float32 with
 * `Math.fround` in the order `tf.train.adam` (tfjs-core 4.22) applies its
 * float32 kernels: m ← m·β₁ + g·(1−β₁); v ← v·β₂ + g²·(1−β₂);
 * m̂ = m / (1 − β₁ᵗ); v̂ = v / (1 − β₂ᵗ); w ← (m̂ / (√v̂ + ε))·(−lr) + w, with
 * β₁ᵗ kept as a float32 product like tfjs's `accBeta1`. A float32 operation
 * computed in float64 and rounded once gives the correctly rounded float32
 * result for +, −, ×, ÷ and √, so an update from the same gradient is bit-for-
 * bit tfjs's (tested against `tf.train.adam` on the cpu backend). Clipping
 * computes the global norm as the harness's tfjs path does on the cpu backend:
 * each tensor's sum of float32 squares accumulated in float64 and rounded once
 * (tfjs-backend-cpu's `Sum`), the tensors' sums added in float32 in tensor
 * order (`AddN`), then the float32 square root. Other backends' `sum` kernels
 * may add in another order, so there the clipped gradient can differ in the
 * last bits.
 *
 * The optimiser state (`getWeights`/`setWeights`) has tfjs's Adam layout: the
 * iteration count, then the first moments, then the second moments, in the
 * order the variables were first updated, so checkpoints are interchangeable.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { NamedTensorMap, Tensor } from "../tensor.ts";

const f = Math.fround;

/** A named tensor as tfjs's optimisers pass them (tfjs-core's `NamedTensor`, not re-exported). */
type NamedTensor = { name: string; tensor: Tensor };

/** Options of {@link FlatAdam}. */
export interface FlatAdamOptions {
  /** Learning rate (may be changed between steps through `learningRate`). */
  lr: number;
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** ε added to √v̂ (default 1e-8). */
  epsilon?: number;
}

/**
 * Adam over Float32Arrays, with an optional global-norm clip in the same pass.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { FlatAdam } from "./flat_adam.ts";
 * const w = tf.variable(tf.tensor1d([1, 2]), true, "w");
 * const adam = new FlatAdam({ lr: 0.1 });
 * const norm = adam.applyClipped({ w: tf.tensor1d([3, 4]) }, { clipNorm: 1 }); // 5
 * ```
 */
export class FlatAdam extends tf.Optimizer {
  /** The serialisation name of tfjs's Adam (the state layout is the same). */
  static get className(): string {
    return "Adam";
  }

  /** Learning rate of the next step. */
  learningRate: number;
  /** First-moment decay. */
  readonly beta1: number;
  /** Second-moment decay. */
  readonly beta2: number;
  /** ε added to √v̂. */
  readonly epsilon: number;
  #m: Float32Array[] = [];
  #v: Float32Array[] = [];
  #names: string[] = [];
  #shapes: number[][] = [];
  // β₁ᵗ and β₂ᵗ as float32 products, as tfjs's accBeta1/accBeta2 variables.
  #accBeta1: number;
  #accBeta2: number;

  /** True when `x` was made by this class (a private-field brand check). */
  static owns(x: unknown): x is FlatAdam {
    return typeof x === "object" && x !== null && #accBeta1 in x;
  }

  /** An optimiser with tfjs's Adam defaults (β₁ 0.9, β₂ 0.999, ε 1e-8). */
  constructor(options: FlatAdamOptions) {
    super();
    this.learningRate = options.lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.#accBeta1 = f(this.beta1);
    this.#accBeta2 = f(this.beta2);
  }

  /** One Adam step on the given gradients (no clipping), as `tf.train.adam`. */
  override applyGradients(variableGradients: NamedTensorMap | NamedTensor[]): void {
    this.applyClipped(variableGradients, { clipNorm: 0 });
  }

  /**
   * One Adam step, the gradients first scaled by min(1, clipNorm / (‖g‖ + 1e-6)) when
   * `clipNorm` > 0 (‖g‖ the global L2 norm over all of them). Returns ‖g‖ before clipping.
   * The gradient tensors are read, not disposed.
   */
  applyClipped(
    variableGradients: NamedTensorMap | NamedTensor[],
    options: { clipNorm: number },
  ): number {
    const entries: [string, Tensor | null | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    // A variable without a gradient (null, as `minimize` passes it) keeps its weight and
    // moments, as in tf.train.adam.
    const grads = entries.map(([, g]) => (g ? g.dataSync() as Float32Array : null));
    // Global norm (module doc): per tensor a float64 sum of float32 squares rounded once,
    // across tensors float32 additions in order.
    let total = 0;
    for (const g of grads) {
      if (g === null) continue;
      let s = 0;
      for (let j = 0; j < g.length; j++) s += f(g[j] * g[j]);
      total = f(total + f(s));
    }
    const norm = f(Math.sqrt(total));
    const scale = options.clipNorm > 0
      ? Math.min(1, f(f(options.clipNorm) / f(norm + f(1e-6))))
      : 1;
    const b1 = f(this.beta1);
    const b2 = f(this.beta2);
    const c1 = f(1 - this.beta1);
    const c2 = f(1 - this.beta2);
    const oneMinusAcc1 = f(1 - this.#accBeta1);
    const oneMinusAcc2 = f(1 - this.#accBeta2);
    const eps = f(this.epsilon);
    const negLr = f(-this.learningRate);
    entries.forEach(([name, gradTensor], i) => {
      const variable = tf.engine().registeredVariables[name];
      if (variable === undefined) {
        throw new Error(`FlatAdam: no variable named ${name} for its gradient`);
      }
      if (this.#m[i] === undefined) {
        this.#m[i] = new Float32Array(variable.size);
        this.#v[i] = new Float32Array(variable.size);
        this.#shapes[i] = variable.shape.slice();
      }
      const m = this.#m[i];
      const v = this.#v[i];
      const sameShape = this.#shapes[i].length === variable.shape.length &&
        this.#shapes[i].every((d, k) => d === variable.shape[k]);
      if (!sameShape || (gradTensor && gradTensor.size !== variable.size)) {
        throw new Error(
          `FlatAdam: slot ${i} (${this.#names[i] ?? "new"}) has shape [${this.#shapes[i]}]; ` +
            `${name} has [${variable.shape}] and its gradient ${gradTensor?.size} values`,
        );
      }
      // Named by the variable it serves (after setWeights the names were the checkpoint's).
      this.#names[i] = name;
      const g = grads[i];
      if (g === null) return;
      const w = Float32Array.from(variable.dataSync() as Float32Array);
      for (let j = 0; j < w.length; j++) {
        const gj = scale === 1 ? g[j] : f(g[j] * scale);
        const mj = f(f(m[j] * b1) + f(gj * c1));
        const vj = f(f(v[j] * b2) + f(f(gj * gj) * c2));
        m[j] = mj;
        v[j] = vj;
        const mHat = f(mj / oneMinusAcc1);
        const vHat = f(vj / oneMinusAcc2);
        w[j] = f(f(f(mHat / f(f(Math.sqrt(vHat)) + eps)) * negLr) + w[j]);
      }
      const updated = tf.tensor(w, variable.shape, "float32");
      variable.assign(updated);
      updated.dispose();
    });
    this.#accBeta1 = f(this.#accBeta1 * f(this.beta1));
    this.#accBeta2 = f(this.#accBeta2 * f(this.beta2));
    this.incrementIterations();
    return norm;
  }

  /**
   * The state in tfjs's Adam layout: `iter`, the first moments, the second moments (each in
   * its variable's shape). Unlike tfjs's Adam, every returned tensor is a fresh copy: the
   * caller disposes them all.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const iter = await this.saveIterations();
    return [
      iter,
      // Copies: the cpu backend would otherwise keep the live arrays inside the tensors.
      ...this.#m.map((m, i) => ({
        name: `${this.#names[i]}/m`,
        tensor: tf.tensor(m.slice(), this.#shapes[i]),
      })),
      ...this.#v.map((v, i) => ({
        name: `${this.#names[i]}/v`,
        tensor: tf.tensor(v.slice(), this.#shapes[i]),
      })),
    ];
  }

  /** Restore a state written by {@link getWeights} (or by tfjs's Adam). */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const slots = await this.extractIterations(weightValues);
    if (slots.length % 2 !== 0) {
      throw new Error(`FlatAdam.setWeights: expected pairs of moments, got ${slots.length}`);
    }
    const n = slots.length / 2;
    // tfjs recomputes β^(t+1) with a float32 pow; the same here.
    this.#accBeta1 = f(Math.pow(f(this.beta1), this.iterations + 1));
    this.#accBeta2 = f(Math.pow(f(this.beta2), this.iterations + 1));
    this.#m = slots.slice(0, n).map((s) => Float32Array.from(s.tensor.dataSync() as Float32Array));
    this.#v = slots.slice(n).map((s) => Float32Array.from(s.tensor.dataSync() as Float32Array));
    this.#names = slots.slice(0, n).map((s) => s.name.replace(/\/m$/, ""));
    this.#shapes = slots.slice(0, n).map((s) => s.tensor.shape.slice());
  }

  /** tfjs's Adam configuration. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      learningRate: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
    };
  }

  /** Nothing to free: the state is plain arrays. */
  override dispose(): void {
    this.#m = [];
    this.#v = [];
  }
}

/**
 * True when `optimizer` is a {@link FlatAdam}.
 *
 * @example
 * ```ts
 * import { FlatAdam, isFlatAdam } from "./flat_adam.ts";
 * isFlatAdam(new FlatAdam({ lr: 1e-3 })); // true
 * ```
 */
export function isFlatAdam(optimizer: unknown): optimizer is FlatAdam {
  // Not `instanceof`: tfjs's Optimizer answers instanceof by duck typing, for subclasses too.
  return FlatAdam.owns(optimizer);
}
