/**
 * HiDe-LoRA (ViT): classifier alignment. After each task (but the first) the
 * model's head is trained on features sampled from the Gaussians of every
 * seen class (the within-task-prediction statistics), with the logits cut to
 * the seen classes: SGD with momentum and weight decay, cosine-annealed over
 * the epochs, fresh samples every epoch ({@link alignHead}). The TII head
 * (`tii.ts`) is trained by the same routine on the TII statistics.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../../random.ts";
import { type ClassGaussian, createGaussianSampler } from "./gaussians.ts";
import type { Scalar, Tensor, Tensor2D, Variable } from "../../tensor.ts";

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
  head: { variables: Variable[]; logits: (features: Tensor2D) => Tensor2D },
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
  let select: Tensor2D | null = null;
  const cut = (logits: Tensor2D): Tensor2D => {
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
  const velocity: (Tensor | null)[] = head.variables.map(() => null);
  const losses: number[] = [];
  try {
    for (let e = 0; e < schedule.epochs; e++) {
      const lr = schedule.lr * 0.5 * (1 + Math.cos(Math.PI * e / schedule.epochs));
      const samples = sampler.sample(schedule.samplesPerClass, rng.seed());
      const order = rng.permutation(n);
      let sum: Scalar = tf.scalar(0);
      let batches = 0;
      for (let b = 0; b < n; b += schedule.batchSize) {
        const rows = Int32Array.from(order.slice(b, Math.min(n, b + schedule.batchSize)));
        const classOf = Int32Array.from(rows, (r) => Math.floor(r / schedule.samplesPerClass));
        const next = tf.tidy(() => {
          const x = tf.gather(samples, rows) as Tensor2D;
          const target = tf.oneHot(tf.tensor1d(classOf, "int32"), c);
          const { value, grads } = tf.variableGrads(() => {
            const logits = cut(head.logits(x));
            return tf.losses.softmaxCrossEntropy(target, logits) as Scalar;
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
          return tf.add(sum, value) as Scalar;
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
    tf.dispose(velocity.filter((v): v is Tensor => v !== null));
    (select as Tensor2D | null)?.dispose();
    sampler.dispose();
  }
  return losses;
}
