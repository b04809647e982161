/**
 * HiDe-LoRA (ViT): task-identity inference (TII). At evaluation a test image's
 * task is inferred from the TII model's feature of it (the first task's
 * adapter, or the pre-trained backbone): the task of the seen class with the
 * largest TII-head logit, or of the nearest class mean ({@link inferTasks}).
 * The head is either HiDe's, trained by SGD on features sampled from the
 * classes' TII Gaussians ({@link trainTiiHead}, warm-started from the previous
 * head, new classes at zero), or the closed-form Gaussian discriminant of the
 * same statistics ({@link ldaHead}). {@link buildTiiModel} gathers the
 * per-class statistics into the {@link TiiModel} inference reads.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { makeVariable, uniqueScope } from "../../models/init.ts";
import type { Rng } from "../../random.ts";
import { alignHead, type AlignSchedule } from "./alignment.ts";
import { cholesky, type ClassGaussian } from "./gaussians.ts";
import type { Tensor2D } from "../../tensor.ts";

/** What task-identity inference keeps per seen class (the method's class record holds more). */
export interface TiiClass {
  /** Task it was learned in. */
  task: number;
  /** Statistics of the TII model's features. */
  tii: ClassGaussian;
  /** TII head column [dim] (set by {@link trainTiiHead} or {@link ldaHead}; zero before). */
  tiiWeight: Float32Array;
  /** TII head bias. */
  tiiBias: number;
}

/** What task-identity inference knows: per seen class, its task and TII statistics. */
export interface TiiModel {
  /**
   * `"head"` (the argmax of a linear head: the trained TII head or the LDA one) or
   * `"nearest-mean"` (see the `tiiRule` option in `vit.ts`).
   */
  rule: "head" | "nearest-mean";
  /** Feature width. */
  dim: number;
  /** Task of each seen class. */
  tasks: readonly number[];
  /** Class means [C·dim] (nearest-mean). */
  means: Float32Array;
  /** TII head weight [dim, C] row-major (head rule). */
  weight: Float32Array;
  /** TII head bias [C] (head rule). */
  bias: Float32Array;
}

/**
 * The task of each feature row [B, dim]: the task of the class with the largest TII-head
 * logit (`head`) or the closest mean (`nearest-mean`). Reads the values synchronously.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { inferTasks } from "./tii.ts";
 * const tii = {
 *   rule: "nearest-mean" as const,
 *   dim: 1,
 *   tasks: [0, 1],
 *   means: Float32Array.from([-1, 1]),
 *   weight: new Float32Array(2),
 *   bias: new Float32Array(2),
 * };
 * inferTasks(tf.tensor2d([[-0.8], [2]]), tii); // [0, 1]
 * ```
 */
export function inferTasks(features: Tensor2D, tii: TiiModel): Int32Array {
  const c = tii.tasks.length;
  if (c === 0) throw new Error("inferTasks: no class statistics yet");
  if (features.rank !== 2 || features.shape[1] !== tii.dim) {
    throw new Error(`inferTasks: expected features [B, ${tii.dim}], got [${features.shape}]`);
  }
  const best = tf.tidy(() => {
    let scores: Tensor2D;
    if (tii.rule === "head") {
      scores = tf.add(
        tf.matMul(features, tf.tensor2d(tii.weight, [tii.dim, c])),
        tf.tensor1d(tii.bias),
      );
    } else {
      // −‖f − μ‖² up to the per-row constant ‖f‖²: 2·f·μᵀ − ‖μ‖².
      const mu = tf.tensor2d(tii.means, [c, tii.dim]);
      scores = tf.sub(
        tf.mul(tf.matMul(features, mu, false, true), 2),
        tf.sum(tf.square(mu), 1),
      );
    }
    return tf.argMax(scores, 1);
  });
  const cls = best.dataSync();
  best.dispose();
  return Int32Array.from(cls, (k) => tii.tasks[k]);
}

/**
 * The {@link TiiModel} of the seen classes, in their order: the TII means [C·dim], the head
 * weight [dim, C] row-major from the classes' columns and the biases.
 *
 * @example
 * ```ts
 * import { buildTiiModel } from "./tii.ts";
 * const cls = (task: number, mean: number[]) => ({
 *   task,
 *   tii: { mean: Float32Array.from(mean), cov: Float32Array.from([1, 1]), count: 3 },
 *   tiiWeight: Float32Array.from(mean),
 *   tiiBias: task,
 * });
 * const tii = buildTiiModel([cls(0, [1, 2]), cls(1, [3, 4])], { rule: "head" });
 * // tii.weight [1, 3, 2, 4], tii.bias [0, 1], tii.tasks [0, 1]
 * ```
 */
export function buildTiiModel(
  classes: readonly TiiClass[],
  options: { rule: TiiModel["rule"] },
): TiiModel {
  const dim = classes[0].tii.mean.length;
  const c = classes.length;
  const means = new Float32Array(c * dim);
  const weight = new Float32Array(dim * c);
  classes.forEach((r, k) => {
    means.set(r.tii.mean, k * dim);
    for (let j = 0; j < dim; j++) weight[j * c + k] = r.tiiWeight[j];
  });
  return {
    rule: options.rule,
    dim,
    tasks: classes.map((r) => r.task),
    means,
    weight,
    bias: Float32Array.from(classes, (r) => r.tiiBias),
  };
}

/**
 * HiDe's TII head: a linear head over the seen classes, warm-started from the classes'
 * current columns, trained with {@link alignHead} on features sampled from their TII
 * Gaussians. Writes the trained columns and biases back into `classes` and returns the mean
 * loss of every epoch.
 *
 * @example
 * ```ts ignore
 * const losses = await trainTiiHead(classes, { schedule: { ...schedule, epochs: 30 }, rng });
 * ```
 */
export async function trainTiiHead(
  classes: readonly TiiClass[],
  options: { schedule: AlignSchedule; rng: Rng },
): Promise<number[]> {
  const dim = classes[0].tii.mean.length;
  const c = classes.length;
  const { weight, bias } = buildTiiModel(classes, { rule: "head" });
  const scope = uniqueScope("hide_tii");
  const w = makeVariable(weight, [dim, c], { name: `${scope}/weight`, trainable: true });
  const b = makeVariable(bias, [c], { name: `${scope}/bias`, trainable: true });
  try {
    const losses = await alignHead(
      { variables: [w, b], logits: (f) => tf.add(tf.matMul(f, w), b) as Tensor2D },
      {
        gaussians: classes.map((r) => r.tii),
        columns: classes.map((_, k) => k),
        schedule: options.schedule,
        rng: options.rng,
      },
    );
    const [wv, bv] = [await w.data(), await b.data()] as Float32Array[];
    classes.forEach((r, k) => {
      for (let j = 0; j < dim; j++) r.tiiWeight[j] = wv[j * c + k];
      r.tiiBias = bv[k];
    });
    return losses;
  } finally {
    tf.dispose([w, b]);
  }
}

/**
 * The linear discriminant of class Gaussians with their pooled covariance Σ (the mean of the
 * class covariances; full or diagonal as stored): per class w_c = Σ⁻¹μ_c and
 * b_c = −½·μ_cᵀΣ⁻¹μ_c, so argmax_c (w_c·f + b_c) is the most likely class of f under equal
 * priors. Solved in float64 with a Cholesky factor.
 *
 * @example
 * ```ts
 * import { ldaHead } from "./tii.ts";
 * const g = (m: number[]) => ({ mean: Float32Array.from(m), cov: Float32Array.from([2, 2]), count: 5 });
 * ldaHead([g([2, 0]), g([0, 4])]); // weights [[1, 0], [0, 2]], biases [-1, -4]
 * ```
 */
export function ldaHead(
  gaussians: readonly ClassGaussian[],
): { weights: Float32Array[]; biases: number[] } {
  if (gaussians.length === 0) throw new Error("ldaHead: no classes");
  const d = gaussians[0].mean.length;
  const full = gaussians[0].cov.length === d * d && d > 1;
  const pooled = new Float64Array(full ? d * d : d);
  for (const g of gaussians) {
    if (g.cov.length !== pooled.length) {
      throw new Error("ldaHead: classes differ in covariance shape");
    }
    for (let i = 0; i < pooled.length; i++) pooled[i] += g.cov[i] / gaussians.length;
  }
  const solve: (b: Float32Array) => Float64Array = full
    ? (() => {
      const l = cholesky(pooled, d);
      return (b) => {
        const y = new Float64Array(d);
        for (let i = 0; i < d; i++) {
          let s = b[i];
          for (let k = 0; k < i; k++) s -= l[i * d + k] * y[k];
          y[i] = s / l[i * d + i];
        }
        const x = new Float64Array(d);
        for (let i = d - 1; i >= 0; i--) {
          let s = y[i];
          for (let k = i + 1; k < d; k++) s -= l[k * d + i] * x[k];
          x[i] = s / l[i * d + i];
        }
        return x;
      };
    })()
    : (b) => Float64Array.from(b, (v, i) => v / Math.max(pooled[i], 1e-12));
  const weights: Float32Array[] = [];
  const biases: number[] = [];
  for (const g of gaussians) {
    const w = solve(g.mean);
    let quad = 0;
    for (let i = 0; i < d; i++) quad += g.mean[i] * w[i];
    weights.push(Float32Array.from(w));
    biases.push(-0.5 * quad);
  }
  return { weights, biases };
}
