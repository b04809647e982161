/**
 * HiDe-LoRA (ViT): per-class Gaussian statistics of features and sampling from
 * them. The statistics feed both task-identity inference (`tii.ts`) and
 * classifier alignment (`alignment.ts`): a mean and a covariance (full or
 * diagonal, plus a ridge) per class ({@link classGaussians}), the Cholesky
 * factor they are sampled and solved with ({@link cholesky}), and a sampler of
 * mean + L·z for a fixed list of classes ({@link createGaussianSampler}).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor2D, Tensor3D } from "../../tensor.ts";

/** Gaussian statistics of one class's features (float32, the checkpoint's precision). */
export interface ClassGaussian {
  /** Mean [dim]. */
  mean: Float32Array;
  /**
   * Covariance with the ridge added: [dim·dim] row-major (full) or its diagonal [dim]
   * (diagonal); the length tells which.
   */
  cov: Float32Array;
  /** Number of features it was computed from. */
  count: number;
}

/**
 * Per-class mean and covariance of features [n, dim] (row-major) grouped by `labels`: the
 * unbiased covariance (divisor n − 1; 0 for a single feature) plus `ridge`·I, full or
 * diagonal. Computed in float64, stored as float32. Keys are the labels.
 *
 * @example
 * ```ts
 * import { classGaussians } from "./gaussians.ts";
 * const g = classGaussians(Float32Array.from([0, 0, 2, 2]), [7, 7], {
 *   dim: 2,
 *   covariance: "diagonal",
 *   ridge: 0,
 * });
 * g.get(7)!.mean; // [1, 1]; cov [2, 2]
 * ```
 */
export function classGaussians(
  features: Float32Array,
  labels: ArrayLike<number>,
  options: { dim: number; covariance: "full" | "diagonal"; ridge: number },
): Map<number, ClassGaussian> {
  const d = options.dim;
  if (features.length !== labels.length * d) {
    throw new Error(
      `classGaussians: ${features.length} values are not ${labels.length} features of width ${d}`,
    );
  }
  const rows = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = rows.get(labels[i]) ?? [];
    list.push(i);
    rows.set(labels[i], list);
  }
  const out = new Map<number, ClassGaussian>();
  for (const [label, idx] of [...rows].sort((a, b) => a[0] - b[0])) {
    const n = idx.length;
    const mean = new Float64Array(d);
    for (const i of idx) for (let j = 0; j < d; j++) mean[j] += features[i * d + j];
    for (let j = 0; j < d; j++) mean[j] /= n;
    const full = options.covariance === "full";
    const cov = new Float64Array(full ? d * d : d);
    const centred = new Float64Array(d);
    for (const i of idx) {
      for (let j = 0; j < d; j++) centred[j] = features[i * d + j] - mean[j];
      if (full) {
        for (let j = 0; j < d; j++) {
          const cj = centred[j];
          for (let k = j; k < d; k++) cov[j * d + k] += cj * centred[k];
        }
      } else {
        for (let j = 0; j < d; j++) cov[j] += centred[j] * centred[j];
      }
    }
    const div = n > 1 ? n - 1 : 1;
    if (full) {
      for (let j = 0; j < d; j++) {
        for (let k = j; k < d; k++) cov[k * d + j] = cov[j * d + k] /= div;
        cov[j * d + j] += options.ridge;
      }
    } else {
      for (let j = 0; j < d; j++) cov[j] = cov[j] / div + options.ridge;
    }
    out.set(label, { mean: Float32Array.from(mean), cov: Float32Array.from(cov), count: n });
  }
  return out;
}

/**
 * Lower Cholesky factor of a symmetric [d, d] matrix; when it is not positive definite
 * (a rank-deficient covariance with no ridge), retried with a growing diagonal jitter.
 * Row-major [d·d] in float64 (the upper triangle is 0).
 *
 * @example
 * ```ts
 * import { cholesky } from "./gaussians.ts";
 * cholesky([4, 2, 2, 5], 2); // [2, 0, 1, 2]
 * ```
 */
export function cholesky(a: ArrayLike<number>, d: number): Float64Array {
  let meanDiag = 0;
  for (let i = 0; i < d; i++) meanDiag += a[i * d + i];
  meanDiag = Math.max(meanDiag / d, 1e-12);
  for (let attempt = 0; attempt < 8; attempt++) {
    const jitter = attempt === 0 ? 0 : meanDiag * 1e-9 * 10 ** attempt;
    const l = new Float64Array(d * d);
    let ok = true;
    for (let i = 0; i < d && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let s = a[i * d + j] + (i === j ? jitter : 0);
        for (let k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
        if (i === j) {
          if (!(s > 0)) {
            ok = false;
            break;
          }
          l[i * d + i] = Math.sqrt(s);
        } else {
          l[i * d + j] = s / l[j * d + j];
        }
      }
    }
    if (ok) return l;
  }
  throw new Error(`cholesky: the ${d}×${d} covariance is not positive semi-definite`);
}

/** Draws features from a fixed list of class Gaussians (holds tensors: dispose it). */
export interface GaussianSampler {
  /** Number of classes. */
  readonly numClasses: number;
  /**
   * `perClass` features of every class: [numClasses·perClass, dim], class-major (rows
   * c·perClass … (c+1)·perClass − 1 belong to class c). `seed` seeds `tf.randomNormal`.
   */
  sample(perClass: number, seed: number): Tensor2D;
  /** Free the means and factors. */
  dispose(): void;
}

/**
 * A sampler of mean + L·z (L the Cholesky factor of a full covariance, or √ of a diagonal one;
 * z standard normal).
 *
 * @example
 * ```ts
 * import { createGaussianSampler } from "./gaussians.ts";
 * const s = createGaussianSampler([{ mean: Float32Array.from([1, 2]), cov: Float32Array.from([1, 1]), count: 5 }], { dim: 2 });
 * const x = s.sample(10, 42); // [10, 2]
 * x.dispose();
 * s.dispose();
 * ```
 */
export function createGaussianSampler(
  gaussians: readonly ClassGaussian[],
  options: { dim: number },
): GaussianSampler {
  const d = options.dim;
  const c = gaussians.length;
  if (c === 0) throw new Error("createGaussianSampler: no classes");
  const full = gaussians[0].cov.length === d * d && d > 1;
  const means = new Float32Array(c * d);
  const factors = new Float32Array(full ? c * d * d : c * d);
  gaussians.forEach((g, i) => {
    if (g.mean.length !== d || g.cov.length !== (full ? d * d : d)) {
      throw new Error(`createGaussianSampler: class ${i} has the wrong shape for width ${d}`);
    }
    means.set(g.mean, i * d);
    if (full) {
      // Lᵀ, so that z [S, d] · Lᵀ has covariance L·Lᵀ.
      const l = cholesky(g.cov, d);
      for (let r = 0; r < d; r++) {
        for (let k = 0; k < d; k++) factors[i * d * d + r * d + k] = l[k * d + r];
      }
    } else {
      for (let j = 0; j < d; j++) factors[i * d + j] = Math.sqrt(Math.max(0, g.cov[j]));
    }
  });
  const meanT = tf.tensor3d(means, [c, 1, d]);
  const factorT = full ? tf.tensor3d(factors, [c, d, d]) : tf.tensor3d(factors, [c, 1, d]);
  return {
    numClasses: c,
    sample(perClass, seed) {
      return tf.tidy(() => {
        const z = tf.randomNormal([c, perClass, d], 0, 1, "float32", seed) as Tensor3D;
        const spread = full ? tf.matMul(z, factorT) : tf.mul(z, factorT);
        return tf.reshape(tf.add(spread, meanT), [c * perClass, d]) as Tensor2D;
      });
    },
    dispose() {
      tf.dispose([meanT, factorT]);
    },
  };
}
