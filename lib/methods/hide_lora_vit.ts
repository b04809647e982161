/**
 * HiDe-LoRA, ViT (class-incremental) track: the hierarchical decomposition of
 * HiDe-Prompt / HiDe-PET (Wang et al., NeurIPS 2023; thu-ml/HiDe-Prompt),
 * with a LoRA adapter as the task-specific parameters.
 *
 * ```
 * within-task prediction  task t trains its own adapter (the sites' live A, B; a fresh LoRA, or a
 *                         copy of task t−1's with `adapterInit: "previous"`) and the head, with the
 *                         trainer's logits cut to task t's classes; finished adapters stay frozen
 *                         in the sites' pools, and every forward pass runs ONE adapter alone
 * statistics (endTask t)  features of task t's training images only: per class a mean and a
 *                         covariance (full or diagonal, + ridge·I), of
 *                           · the task's own adapter (the features the head sees: WTP), and
 *                           · the TII model: `tiiFeatures` "first-task" (the first task's adapter,
 *                             the spec's "first-session-adapted model") or "pretrained" (no adapter)
 * task identity (TII)     at evaluation, from the TII model's feature of a test image: the
 *                         argmax of a linear TII head over the seen classes — the closed-form
 *                         Gaussian discriminant of the TII statistics (`tiiRule: "lda"`,
 *                         default), or HiDe's head trained for `tiiEpochs` after each task on
 *                         features sampled from the classes' TII Gaussians (`"head"`, same SGD
 *                         schedule as the alignment); or the nearest class mean. The class's
 *                         task names the adapter; the batch is grouped by predicted task
 * classifier alignment    after each task t ≥ 1 (HiDe: not after the first), the model's head is
 *                         trained on features sampled from the WTP Gaussians of every seen class
 *                         (logits cut to the seen classes): SGD with momentum and weight decay,
 *                         cosine-annealed over `alignEpochs`, fresh samples every epoch (ctx.rng)
 * ```
 *
 * Nothing reads a task before its turn: statistics come from `ctx.examples` of
 * the current task only, and the TII model is either the frozen pre-trained
 * backbone or the adapter of task 1 (trained on task 1 alone). This departs
 * from the released HiDe-LoRA scripts, whose TII "original model" is trained
 * on every task beforehand (thu-ml/HiDe-Prompt#1, a leak).
 *
 * Training adds HiDe-LoRA's contrastive term on the features (`orth_loss`,
 * {@link contrastiveTerm}; `contrastiveWeight`, default 0.01 as HiDe's CIFAR
 * config), with the stored class means of earlier tasks as prototypes.
 *
 * Left out (documented): label smoothing of the training loss (parsed but
 * unused by the released code), the multi-centroid statistics (the released
 * default; the papers describe one Gaussian per class, which is what is kept)
 * and `lora_momentum` (undefined for CIFAR in the released configs).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { resetLiveAdapter, TaskAdapters } from "../models/adapter_pool.ts";
import type { ImageClassifier } from "../models/image_classifier.ts";
import { makeVariable, uniqueScope } from "../models/init.ts";
import { LIVE_ADAPTER, withActiveAdapter } from "../models/lora.ts";
import type { Rng } from "../random.ts";
import type { ContinualMethod, MethodContext, MethodState } from "./method.ts";
import { taskLossOnly } from "./method.ts";

/** HiDe-LoRA (ViT) options. */
export interface HideLoraVitOptions {
  /**
   * The model whose features feed task-identity inference: `"first-task"` (the first task's
   * adapter, the spec's "first-session-adapted model"; default) or `"pretrained"` (the backbone
   * with no adapter).
   */
  tiiFeatures: "first-task" | "pretrained";
  /**
   * How a task is inferred from the TII feature: `"head"` (default; HiDe's: a linear head over
   * the seen classes trained by SGD on features sampled from the class Gaussians for
   * `tiiEpochs`, warm-started from the previous task's head, new classes at zero),
   * `"lda"` (the Gaussian discriminant with the classes' pooled covariance Σ in closed form:
   * w_c = Σ⁻¹μ_c, b_c = −½·μ_cᵀΣ⁻¹μ_c, what the sampled-feature head approximates; see
   * {@link ldaHead}) or `"nearest-mean"` (closest class mean). With the earlier default of 10
   * epochs the warm-started head underfitted the newest task's classes and routed most of its
   * images to older adapters (`exp:hide-lora-diagnosis`, README).
   */
  tiiRule: "head" | "nearest-mean" | "lda";
  /** Class covariance: `"full"` (default; HiDe's `covariance`) or `"diagonal"` (`variance`). */
  covariance: "full" | "diagonal";
  /** Added to the covariance diagonal (default 1e-4, HiDe's). */
  covarianceRidge: number;
  /**
   * Task t's adapter starts as a copy of task t−1's trained adapter (`"previous"`, default:
   * HiDe-LoRA's released engine copies slot t−1 into slot t before training) or as a fresh
   * LoRA (`"fresh"`: A redrawn, B = 0).
   */
  adapterInit: "fresh" | "previous";
  /**
   * Weight of HiDe-LoRA's contrastive term on the features (the released `orth_loss`, `reg`;
   * default 0.01, its CIFAR value; 0 disables): with F the batch's features (task t's adapter)
   * and P the stored class means of the earlier tasks, M = [P; F], S = M·Mᵀ / temperature, the
   * term is the mean cross-entropy of each row of S against its own index.
   */
  contrastiveWeight: number;
  /** Temperature of the contrastive term (default 0.8, HiDe's). */
  contrastiveTemperature: number;
  /**
   * Epochs of classifier alignment, fresh samples each (default 30, HiDe's `crct_epochs`; 0
   * disables the alignment).
   */
  alignEpochs: number;
  /**
   * Epochs of the TII head (`tiiRule: "head"`), same schedule otherwise (default 30, as HiDe's
   * Gaussian-sampled head training; 0 leaves the head at zero, which sends every image to the
   * first class's task).
   */
  tiiEpochs: number;
  /** Features sampled per seen class per epoch, alignment and TII head (default 64). */
  alignSamplesPerClass: number;
  /** Mini-batch of sampled features (default 128). */
  alignBatchSize: number;
  /** SGD learning rate at the first epoch, cosine-annealed to 0 (default 0.01). */
  alignLr: number;
  /** SGD momentum (default 0.9, HiDe's). */
  alignMomentum: number;
  /** SGD weight decay (default 5e-4, HiDe's). */
  alignWeightDecay: number;
}

/**
 * The defaults. HiDe's alignment runs 30 epochs (`crct_epochs`) at lr 0.005 with 10·t batches of
 * 120 samples per epoch (about 110 samples per seen class); here 30 epochs of 64 samples per
 * class in batches of 128 at lr 0.01 (cosine), for the alignment and the TII head each.
 */
export const HIDE_LORA_VIT_DEFAULTS: Readonly<HideLoraVitOptions> = Object.freeze({
  tiiFeatures: "first-task",
  tiiRule: "head",
  covariance: "full",
  covarianceRidge: 1e-4,
  adapterInit: "previous",
  contrastiveWeight: 0.01,
  contrastiveTemperature: 0.8,
  alignEpochs: 30,
  tiiEpochs: 30,
  alignSamplesPerClass: 64,
  alignBatchSize: 128,
  alignLr: 0.01,
  alignMomentum: 0.9,
  alignWeightDecay: 5e-4,
});

const CHOICES: Record<string, readonly string[]> = {
  tiiFeatures: ["first-task", "pretrained"],
  tiiRule: ["head", "nearest-mean", "lda"],
  covariance: ["full", "diagonal"],
  adapterInit: ["fresh", "previous"],
};
const INTEGERS = new Set(["alignEpochs", "tiiEpochs", "alignSamplesPerClass", "alignBatchSize"]);

/**
 * Check `options` against {@link HIDE_LORA_VIT_DEFAULTS} and fill in the rest.
 *
 * @example
 * ```ts
 * import { resolveHideLoraVitOptions } from "./hide_lora_vit.ts";
 * resolveHideLoraVitOptions({ tiiFeatures: "pretrained" }).tiiRule; // "head"
 * ```
 */
export function resolveHideLoraVitOptions(options: Record<string, unknown>): HideLoraVitOptions {
  const defaults = HIDE_LORA_VIT_DEFAULTS as unknown as Record<string, unknown>;
  const unknown = Object.keys(options).filter((k) => !(k in defaults));
  if (unknown.length > 0) {
    throw new Error(
      `unknown hide-lora (ViT) option(s): ${unknown.join(", ")}; known: ${Object.keys(defaults)}`,
    );
  }
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const choices = CHOICES[k];
    if (choices) {
      if (typeof v !== "string" || !choices.includes(v)) {
        throw new Error(`hide-lora: option ${k} must be one of ${choices.join(", ")}; got ${v}`);
      }
    } else if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new Error(`hide-lora: option ${k} must be a finite number ≥ 0, got ${v}`);
    } else if (INTEGERS.has(k) && !Number.isInteger(v)) {
      throw new Error(`hide-lora: option ${k} must be an integer, got ${v}`);
    }
    out[k] = v;
  }
  const o = out as unknown as HideLoraVitOptions;
  if (o.alignSamplesPerClass < 1 || o.alignBatchSize < 1) {
    throw new Error("hide-lora: alignSamplesPerClass and alignBatchSize must be ≥ 1");
  }
  if (!(o.alignLr > 0)) throw new Error("hide-lora: alignLr must be > 0");
  if (!(o.alignMomentum < 1)) throw new Error("hide-lora: alignMomentum must be in [0, 1)");
  if (!(o.contrastiveTemperature > 0)) {
    throw new Error("hide-lora: contrastiveTemperature must be > 0");
  }
  return o;
}

// ---------------------------------------------------------------------------
// Class statistics and sampling

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
 * import { classGaussians } from "./hide_lora_vit.ts";
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
 */
function cholesky(a: ArrayLike<number>, d: number): Float64Array {
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
  sample(perClass: number, seed: number): tf.Tensor2D;
  /** Free the means and factors. */
  dispose(): void;
}

/**
 * A sampler of mean + L·z (L the Cholesky factor of a full covariance, or √ of a diagonal one;
 * z standard normal).
 *
 * @example
 * ```ts
 * import { createGaussianSampler } from "./hide_lora_vit.ts";
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
        const z = tf.randomNormal([c, perClass, d], 0, 1, "float32", seed) as tf.Tensor3D;
        const spread = full ? tf.matMul(z, factorT) : tf.mul(z, factorT);
        return tf.reshape(tf.add(spread, meanT), [c * perClass, d]) as tf.Tensor2D;
      });
    },
    dispose() {
      tf.dispose([meanT, factorT]);
    },
  };
}

// ---------------------------------------------------------------------------
// Training a head on sampled features

/** The schedule of {@link alignHead} (the `align*` options). */
export interface AlignSchedule {
  /** Epochs; each draws fresh samples. */
  epochs: number;
  /** Samples per class per epoch. */
  samplesPerClass: number;
  /** Mini-batch size. */
  batchSize: number;
  /** Learning rate at epoch 0; epoch e uses lr·(1 + cos(π·e/epochs))/2. */
  lr: number;
  /** Momentum μ: v ← μ·v + g, w ← w − lr·v (PyTorch's SGD). */
  momentum: number;
  /** Weight decay: g ← g + wd·w. */
  weightDecay: number;
}

/**
 * Train head variables on features sampled from class Gaussians (classifier alignment): the
 * cross-entropy of `logits(f)`, cut to `columns` (the head output of each class, in the order
 * of `gaussians`), against the sampled class. Returns the mean loss of every epoch.
 *
 * @example
 * ```ts ignore
 * const losses = await alignHead(
 *   { variables: model.headVariables(), logits: (f) => model.headLogits!(f) },
 *   { gaussians, columns: [0, 1, 2], schedule: { ...HIDE_SCHEDULE }, rng },
 * );
 * ```
 */
export async function alignHead(
  head: { variables: tf.Variable[]; logits: (features: tf.Tensor2D) => tf.Tensor2D },
  options: {
    gaussians: readonly ClassGaussian[];
    columns: readonly number[];
    schedule: AlignSchedule;
    rng: Rng;
  },
): Promise<number[]> {
  const { gaussians, columns, schedule, rng } = options;
  if (columns.length !== gaussians.length) {
    throw new Error(`alignHead: ${columns.length} columns for ${gaussians.length} classes`);
  }
  if (gaussians.length === 0 || schedule.epochs === 0) return [];
  const dim = gaussians[0].mean.length;
  const c = gaussians.length;
  const n = c * schedule.samplesPerClass;
  const sampler = createGaussianSampler(gaussians, { dim });
  // Cutting the logits to `columns` is a product with a 0/1 selection matrix [K, C]: the
  // gradient of a gather (a segment sum) has no wasm kernel. Built at the first batch (K known).
  let select: tf.Tensor2D | null = null;
  const cut = (logits: tf.Tensor2D): tf.Tensor2D => {
    const k = logits.shape[1];
    if (k === c && columns.every((col, i) => col === i)) return logits;
    if (select === null) {
      const s = new Float32Array(k * c);
      columns.forEach((col, i) => {
        if (!(Number.isInteger(col) && col >= 0 && col < k)) {
          throw new Error(`alignHead: column ${col} is not a head output (0..${k - 1})`);
        }
        s[col * c + i] = 1;
      });
      select = tf.keep(tf.tensor2d(s, [k, c]));
    }
    return tf.matMul(logits, select);
  };
  const velocity: (tf.Tensor | null)[] = head.variables.map(() => null);
  const losses: number[] = [];
  try {
    for (let e = 0; e < schedule.epochs; e++) {
      const lr = schedule.lr * 0.5 * (1 + Math.cos(Math.PI * e / schedule.epochs));
      const samples = sampler.sample(schedule.samplesPerClass, rng.seed());
      const order = rng.permutation(n);
      let sum: tf.Scalar = tf.scalar(0);
      let batches = 0;
      for (let b = 0; b < n; b += schedule.batchSize) {
        const rows = Int32Array.from(order.slice(b, Math.min(n, b + schedule.batchSize)));
        const classOf = Int32Array.from(rows, (r) => Math.floor(r / schedule.samplesPerClass));
        const next = tf.tidy(() => {
          const x = tf.gather(samples, rows) as tf.Tensor2D;
          const target = tf.oneHot(tf.tensor1d(classOf, "int32"), c);
          const { value, grads } = tf.variableGrads(() => {
            const logits = cut(head.logits(x));
            return tf.losses.softmaxCrossEntropy(target, logits) as tf.Scalar;
          }, head.variables);
          head.variables.forEach((v, i) => {
            let g = grads[v.name];
            if (schedule.weightDecay > 0) g = tf.add(g, tf.mul(v, schedule.weightDecay));
            const old = velocity[i];
            const vel = old === null ? g : tf.add(tf.mul(old, schedule.momentum), g);
            v.assign(tf.sub(v, tf.mul(vel, lr)));
            velocity[i] = tf.keep(vel);
            old?.dispose();
          });
          return tf.add(sum, value) as tf.Scalar;
        });
        sum.dispose();
        sum = next;
        batches++;
      }
      samples.dispose();
      losses.push((await sum.data())[0] / batches);
      sum.dispose();
    }
  } finally {
    tf.dispose(velocity.filter((v): v is tf.Tensor => v !== null));
    (select as tf.Tensor2D | null)?.dispose();
    sampler.dispose();
  }
  return losses;
}

/**
 * The linear discriminant of class Gaussians with their pooled covariance Σ (the mean of the
 * class covariances; full or diagonal as stored): per class w_c = Σ⁻¹μ_c and
 * b_c = −½·μ_cᵀΣ⁻¹μ_c, so argmax_c (w_c·f + b_c) is the most likely class of f under equal
 * priors. Solved in float64 with a Cholesky factor.
 *
 * @example
 * ```ts
 * import { ldaHead } from "./hide_lora_vit.ts";
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

// ---------------------------------------------------------------------------
// The contrastive term

/**
 * HiDe-LoRA's contrastive term (the released `orth_loss`): M = [P; F] (prototypes, then the
 * batch's features), S = M·Mᵀ / `temperature`, and the mean over the rows of M of the
 * cross-entropy of softmax(S_i) against row i itself. It pushes each feature away from the
 * old prototypes and from the other features of the batch (labels unused). Without
 * prototypes (the first task) it runs on F alone. Differentiable in `features`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { contrastiveTerm } from "./hide_lora_vit.ts";
 * const c = contrastiveTerm(tf.tensor2d([[1, 0], [0, 1]]), null, { temperature: 1 });
 * // log(1 + e^-1) = 0.3133
 * ```
 */
export function contrastiveTerm(
  features: tf.Tensor2D,
  prototypes: tf.Tensor2D | null,
  options: { temperature: number },
): tf.Scalar {
  return tf.tidy(() => {
    const m = prototypes === null ? features : tf.concat([prototypes, features], 0);
    const n = m.shape[0];
    const s = tf.div(tf.matMul(m, m, false, true), options.temperature);
    const own = tf.oneHot(tf.range(0, n, 1, "int32") as tf.Tensor1D, n);
    return tf.losses.softmaxCrossEntropy(own, s) as tf.Scalar;
  });
}

// ---------------------------------------------------------------------------
// Task-identity inference

/** What task-identity inference knows: per seen class, its task and TII statistics. */
export interface TiiModel {
  /** `"head"` or `"nearest-mean"` (see {@link HideLoraVitOptions.tiiRule}). */
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
 * import { inferTasks } from "./hide_lora_vit.ts";
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
export function inferTasks(features: tf.Tensor2D, tii: TiiModel): Int32Array {
  const c = tii.tasks.length;
  if (c === 0) throw new Error("inferTasks: no class statistics yet");
  if (features.rank !== 2 || features.shape[1] !== tii.dim) {
    throw new Error(`inferTasks: expected features [B, ${tii.dim}], got [${features.shape}]`);
  }
  const best = tf.tidy(() => {
    let scores: tf.Tensor2D;
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
 * Run `run` once per group of rows of `x` (rows with the same `groups` value) and put the
 * outputs back in row order: [B, K].
 */
function byGroup(
  x: tf.Tensor4D,
  groups: Int32Array,
  run: (group: number, x: tf.Tensor4D) => tf.Tensor2D,
): tf.Tensor2D {
  const ids = [...new Set(groups)].sort((a, b) => a - b);
  if (ids.length === 1) return run(ids[0], x);
  return tf.tidy(() => {
    const order: number[] = [];
    const parts = ids.map((g) => {
      const rows = [];
      for (let i = 0; i < groups.length; i++) if (groups[i] === g) rows.push(i);
      order.push(...rows);
      return run(g, tf.gather(x, Int32Array.from(rows)) as tf.Tensor4D);
    });
    const inverse = new Int32Array(order.length);
    order.forEach((row, k) => (inverse[row] = k));
    return tf.gather(tf.concat(parts, 0), inverse) as tf.Tensor2D;
  });
}

// ---------------------------------------------------------------------------
// The method

/** What the method keeps per seen class. */
interface ClassRecord {
  /** Head output. */
  output: number;
  /** Task it was learned in. */
  task: number;
  /** Statistics of the task's own adapter features (alignment). */
  wtp: ClassGaussian;
  /** Statistics of the TII model's features. */
  tii: ClassGaussian;
  /** TII head column [dim] and bias. */
  tiiWeight: Float32Array;
  tiiBias: number;
}

/** Images per forward pass when computing statistics. */
const STATS_BATCH = 200;

function requireFeatures(model: ImageClassifier): void {
  if (typeof model.features !== "function" || typeof model.headLogits !== "function") {
    throw new Error(
      "hide-lora (ViT) needs an image classifier that exposes features() and headLogits() " +
        "(vit_classifier does)",
    );
  }
}

/**
 * Create HiDe-LoRA for the ViT track. Options: {@link HideLoraVitOptions}.
 *
 * @example
 * ```ts
 * import { createHideLoraVit } from "./hide_lora_vit.ts";
 * const m = createHideLoraVit({ tiiFeatures: "pretrained" });
 * m.options().alignEpochs; // 10
 * ```
 */
export function createHideLoraVit(options: Record<string, unknown> = {}): ContinualMethod {
  const opts = resolveHideLoraVitOptions(options);
  const pool = new TaskAdapters();
  let classes: ClassRecord[] = [];
  let tiiCache: TiiModel | null = null;
  let summary: Record<string, unknown> = {};
  // The training step's features (set by forward, read by loss in the same tape).
  let stepFeatures: tf.Tensor2D | null = null;
  const schedule: AlignSchedule = {
    epochs: opts.alignEpochs,
    samplesPerClass: opts.alignSamplesPerClass,
    batchSize: opts.alignBatchSize,
    lr: opts.alignLr,
    momentum: opts.alignMomentum,
    weightDecay: opts.alignWeightDecay,
  };

  // Task k's adapter: frozen in the pools as `task<k>`, or the live one for the newest task.
  const adapterOf = (task: number): string => {
    if (task === pool.count) return LIVE_ADAPTER;
    if (task >= 0 && task < pool.count) return `task${task}`;
    throw new Error(
      `hide-lora (ViT): task ${task + 1} has no adapter (tasks 1..${pool.count + 1} have one)`,
    );
  };
  const tiiAdapter = () => (opts.tiiFeatures === "pretrained" ? null : adapterOf(0));
  const featuresWith = (model: ImageClassifier, adapter: string | null, x: tf.Tensor4D) =>
    withActiveAdapter(model.loraSites(), () => model.features!(x, { training: false }), {
      adapter,
    });
  const seenTasks = () => new Set(classes.map((c) => c.task));
  const tiiModel = (): TiiModel => {
    if (tiiCache) return tiiCache;
    const dim = classes[0].tii.mean.length;
    const c = classes.length;
    const means = new Float32Array(c * dim);
    const weight = new Float32Array(dim * c);
    classes.forEach((r, k) => {
      means.set(r.tii.mean, k * dim);
      for (let j = 0; j < dim; j++) weight[j * c + k] = r.tiiWeight[j];
    });
    tiiCache = {
      rule: opts.tiiRule === "nearest-mean" ? "nearest-mean" : "head",
      dim,
      tasks: classes.map((r) => r.task),
      means,
      weight,
      bias: Float32Array.from(classes, (r) => r.tiiBias),
    };
    return tiiCache;
  };

  async function collectStatistics(ctx: MethodContext, model: ImageClassifier): Promise<void> {
    const ex = ctx.examples;
    if (!ex?.images) {
      throw new Error(
        "hide-lora (ViT) needs ctx.examples with images() (the class-incremental trainer's)",
      );
    }
    const t = ctx.taskIndex;
    const n = ex.trainSize(t);
    const own = adapterOf(t);
    const tiiA = tiiAdapter();
    const shared = tiiA === own;
    const labels = new Int32Array(n);
    let dim = 0;
    let wtpData = new Float32Array(0);
    let tiiData = new Float32Array(0);
    for (let start = 0; start < n; start += STATS_BATCH) {
      const indices = Array.from({ length: Math.min(STATS_BATCH, n - start) }, (_, i) => start + i);
      const { x, y } = ex.images(ex.select(t, indices));
      let fw: tf.Tensor2D | null = null;
      let ft: tf.Tensor2D | null = null;
      try {
        fw = featuresWith(model, own, x);
        ft = shared ? null : featuresWith(model, tiiA, x);
        if (dim === 0) {
          dim = fw.shape[1];
          wtpData = new Float32Array(n * dim);
          tiiData = shared ? wtpData : new Float32Array(n * dim);
        }
        wtpData.set(await fw.data(), start * dim);
        if (ft) tiiData.set(await ft.data(), start * dim);
        labels.set(y, start);
      } finally {
        tf.dispose([x, ...(fw ? [fw] : []), ...(ft ? [ft] : [])]);
      }
    }
    const stat = { dim, covariance: opts.covariance, ridge: opts.covarianceRidge };
    const wtp = classGaussians(wtpData, labels, stat);
    const tii = shared ? wtp : classGaussians(tiiData, labels, stat);
    classes = classes.filter((r) => !wtp.has(r.output));
    for (const [output, g] of wtp) {
      classes.push({
        output,
        task: t,
        wtp: g,
        tii: tii.get(output)!,
        tiiWeight: new Float32Array(dim),
        tiiBias: 0,
      });
    }
    classes.sort((a, b) => a.output - b.output);
    tiiCache = null;
  }

  async function trainTiiHead(ctx: MethodContext): Promise<number[]> {
    const dim = classes[0].tii.mean.length;
    const c = classes.length;
    const { weight, bias } = tiiModel();
    const scope = uniqueScope("hide_tii");
    const w = makeVariable(weight, [dim, c], { name: `${scope}/weight`, trainable: true });
    const b = makeVariable(bias, [c], { name: `${scope}/bias`, trainable: true });
    try {
      const losses = await alignHead(
        { variables: [w, b], logits: (f) => tf.add(tf.matMul(f, w), b) as tf.Tensor2D },
        {
          gaussians: classes.map((r) => r.tii),
          columns: classes.map((_, k) => k),
          schedule: { ...schedule, epochs: opts.tiiEpochs },
          rng: ctx.rng,
        },
      );
      const [wv, bv] = [await w.data(), await b.data()] as Float32Array[];
      classes.forEach((r, k) => {
        for (let j = 0; j < dim; j++) r.tiiWeight[j] = wv[j * c + k];
        r.tiiBias = bv[k];
      });
      tiiCache = null;
      return losses;
    } finally {
      tf.dispose([w, b]);
    }
  }

  return {
    name: "hide-lora",
    options: () => ({ ...opts }),
    async beginTask(ctx) {
      const sites = ctx.model.loraSites();
      pool.attach(sites);
      if (ctx.taskIndex > 0 && pool.count < ctx.taskIndex) {
        await pool.freezeLive(sites, `task${ctx.taskIndex - 1}`);
        if (opts.adapterInit === "fresh") {
          for (const s of sites) resetLiveAdapter(s, { rng: ctx.rng });
        }
      }
      if (pool.count !== ctx.taskIndex) {
        throw new Error(
          `hide-lora (ViT): task ${ctx.taskIndex + 1} begins with ${pool.count} frozen adapters; ` +
            "tasks must be trained in order",
        );
      }
    },
    trainableVariables: (ctx) => [
      ...ctx.model.loraSites().flatMap((s) => [s.a, s.b]),
      ...ctx.model.headVariables(),
    ],
    loss(ctx, taskLoss) {
      const f = stepFeatures;
      stepFeatures = null;
      if (f === null || opts.contrastiveWeight === 0) return taskLossOnly(taskLoss);
      const old = classes.filter((r) => r.task < ctx.taskIndex);
      const dim = f.shape[1];
      const prototypes = old.length === 0 ? null : tf.tensor2d(
        Float32Array.from(old.flatMap((r) => [...r.wtp.mean])),
        [old.length, dim],
      );
      const c = contrastiveTerm(f, prototypes, { temperature: opts.contrastiveTemperature });
      prototypes?.dispose();
      return {
        total: tf.add(taskLoss, tf.mul(c, opts.contrastiveWeight)) as tf.Scalar,
        terms: { contrastive: c },
      };
    },
    forward(model, x, o) {
      const sites = model.loraSites();
      pool.attach(sites);
      const logitsWith = (adapter: string, xs: tf.Tensor4D) =>
        withActiveAdapter(sites, () => model.logits(xs, o), { adapter });
      if (o.taskIndex !== undefined && o.training && opts.contrastiveWeight > 0) {
        // The training step: keep the features for the contrastive term (same ops as logits).
        requireFeatures(model);
        return withActiveAdapter(sites, () => {
          const f = model.features!(x, { training: true, seed: o.seed });
          stepFeatures = f;
          return model.headLogits!(f);
        }, { adapter: adapterOf(o.taskIndex) });
      }
      if (o.taskIndex !== undefined) return logitsWith(adapterOf(o.taskIndex), x);
      const tasks = seenTasks();
      // Before any statistics, or with one task seen, there is nothing to infer.
      if (tasks.size <= 1) {
        return logitsWith(adapterOf(tasks.size === 1 ? [...tasks][0] : pool.count), x);
      }
      requireFeatures(model);
      return tf.tidy(() => {
        const predicted = inferTasks(featuresWith(model, tiiAdapter(), x), tiiModel());
        return byGroup(x, predicted, (task, xs) => logitsWith(adapterOf(task), xs));
      });
    },
    inferTask(model, x) {
      const tasks = seenTasks();
      if (tasks.size <= 1) {
        return new Int32Array(x.shape[0]).fill(tasks.size === 1 ? [...tasks][0] : pool.count);
      }
      requireFeatures(model);
      const f = featuresWith(model, tiiAdapter(), x);
      try {
        return inferTasks(f, tiiModel());
      } finally {
        f.dispose();
      }
    },
    async endTask(ctx) {
      stepFeatures = null;
      const model = ctx.model as ImageClassifier;
      requireFeatures(model);
      await ctx.timer.timeAsync("hide_statistics", () => collectStatistics(ctx, model));
      let tiiLoss: number[] = [];
      if (opts.tiiRule === "head" && opts.tiiEpochs > 0 && seenTasks().size > 1) {
        tiiLoss = await ctx.timer.timeAsync("hide_tii_head", () => trainTiiHead(ctx));
      }
      if (opts.tiiRule === "lda") {
        ctx.timer.time("hide_tii_head", () => {
          const head = ldaHead(classes.map((r) => r.tii));
          classes.forEach((r, k) => {
            r.tiiWeight = head.weights[k];
            r.tiiBias = head.biases[k];
          });
          tiiCache = null;
        });
      }
      let alignLoss: number[] = [];
      if (ctx.taskIndex > 0 && opts.alignEpochs > 0) {
        alignLoss = await ctx.timer.timeAsync("hide_alignment", () =>
          alignHead(
            { variables: model.headVariables(), logits: (f) => model.headLogits!(f) },
            {
              gaussians: classes.map((r) => r.wtp),
              columns: classes.map((r) => r.output),
              schedule,
              rng: ctx.rng,
            },
          ));
      }
      const ends = (l: number[]) => (l.length === 0 ? null : [l[0], l[l.length - 1]]);
      summary = {
        frozenAdapters: pool.count,
        classesWithStatistics: classes.length,
        tiiHeadLoss: ends(tiiLoss),
        alignmentLoss: ends(alignLoss),
      };
    },
    taskSummary: () => ({ ...summary }),
    state(): MethodState {
      const arrays = pool.arrays();
      const c = classes.length;
      if (c > 0) {
        const dim = classes[0].wtp.mean.length;
        const stack = (pick: (r: ClassRecord) => Float32Array, tail: number[]) => {
          const per = tail.reduce((a, b) => a * b, 1);
          const data = new Float32Array(c * per);
          classes.forEach((r, k) => data.set(pick(r), k * per));
          return { shape: [c, ...tail], data };
        };
        const covShape = (g: ClassGaussian) => (g.cov.length === dim ? [dim] : [dim, dim]);
        arrays["stats/wtp_mean"] = stack((r) => r.wtp.mean, [dim]);
        arrays["stats/wtp_cov"] = stack((r) => r.wtp.cov, covShape(classes[0].wtp));
        arrays["stats/tii_mean"] = stack((r) => r.tii.mean, [dim]);
        arrays["stats/tii_cov"] = stack((r) => r.tii.cov, covShape(classes[0].tii));
        arrays["stats/tii_weight"] = stack((r) => r.tiiWeight, [dim]);
        arrays["stats/tii_bias"] = {
          shape: [c],
          data: Float32Array.from(classes, (r) => r.tiiBias),
        };
      }
      return {
        json: {
          options: opts,
          frozenAdapters: pool.count,
          classes: classes.map((r) => ({
            output: r.output,
            task: r.task,
            count: r.wtp.count,
            tiiCount: r.tii.count,
          })),
        },
        arrays,
      };
    },
    restore(state) {
      pool.restore(state.arrays);
      tiiCache = null;
      const list = (state.json.classes ?? []) as {
        output: number;
        task: number;
        count: number;
        tiiCount: number;
      }[];
      if (list.length === 0) {
        classes = [];
        return;
      }
      const get = (key: string) => {
        const a = state.arrays[`stats/${key}`];
        if (!a || a.shape[0] !== list.length) {
          throw new Error(`hide-lora (ViT) state: stats/${key} is missing or has the wrong length`);
        }
        const per = a.data.length / list.length;
        return (k: number) => a.data.slice(k * per, (k + 1) * per);
      };
      const [wm, wc, tm, tc, tw, tb] = [
        "wtp_mean",
        "wtp_cov",
        "tii_mean",
        "tii_cov",
        "tii_weight",
        "tii_bias",
      ].map(get);
      classes = list.map((r, k) => ({
        output: r.output,
        task: r.task,
        wtp: { mean: wm(k), cov: wc(k), count: r.count },
        tii: { mean: tm(k), cov: tc(k), count: r.tiiCount },
        tiiWeight: tw(k),
        tiiBias: tb(k)[0],
      }));
    },
    dispose() {
      pool.dispose();
      classes = [];
      tiiCache = null;
    },
  };
}
