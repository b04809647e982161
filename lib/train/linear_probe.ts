/**
 * A linear probe: the number that says whether frozen features transfer to
 * classes the backbone was not trained on. A softmax regression (weights
 * and bias, no hidden layer) is fitted on the training features and scored
 * on the test features.
 *
 * Protocol: features are standardised with the training set's per-dimension
 * mean and standard deviation; full-batch Adam (lr 0.01 by default) on the
 * mean cross-entropy plus an L2 penalty (`weightDecay`·‖W‖²/2) for a fixed
 * number of epochs from zero weights, so the result is deterministic and
 * needs no seed. The accuracy is the share of test rows whose arg-max class
 * equals the label.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor2D } from "../tensor.ts";
import { createAdam, optimizerStep } from "./step.ts";

/** Features [rows, dim] with one label per row. */
export interface ProbeSet {
  /** Row-major features, `rows × dim`. */
  features: Float32Array;
  /** Class of each row, 0…numClasses−1. */
  labels: Int32Array;
  /** Feature dimension. */
  dim: number;
}

/** Options of {@link linearProbe}. */
export interface LinearProbeOptions {
  /** Classes (the output width). */
  numClasses: number;
  /** Full-batch Adam steps (default 300). */
  epochs?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** L2 penalty on the weights (default 1e-4). */
  weightDecay?: number;
}

/** What {@link linearProbe} measured. */
export interface LinearProbeResult {
  /** Test accuracy, %. */
  testAccuracy: number;
  /** Training accuracy, %. */
  trainAccuracy: number;
  /** Final training loss (cross-entropy + penalty). */
  finalLoss: number;
}

function check(set: ProbeSet, what: string, numClasses: number): number {
  const rows = set.labels.length;
  if (set.features.length !== rows * set.dim) {
    throw new Error(
      `linearProbe: ${what} has ${set.features.length} feature values for ${rows} rows × ${set.dim}`,
    );
  }
  const bad = set.labels.findIndex((y) => !(y >= 0 && y < numClasses));
  if (bad >= 0) {
    throw new Error(
      `linearProbe: ${what} row ${bad} has label ${set.labels[bad]}, outside 0…${numClasses - 1}`,
    );
  }
  return rows;
}

/**
 * Fit a softmax regression on `train` and report its accuracy on `test` (module doc).
 *
 * @example
 * ```ts ignore
 * const r = await linearProbe(train, test, { numClasses: 10 });
 * r.testAccuracy; // e.g. 41.5
 * ```
 */
export async function linearProbe(
  train: ProbeSet,
  test: ProbeSet,
  options: LinearProbeOptions,
): Promise<LinearProbeResult> {
  const k = options.numClasses;
  const n = check(train, "train", k);
  const m = check(test, "test", k);
  if (test.dim !== train.dim) {
    throw new Error(`linearProbe: train features have ${train.dim} dimensions, test ${test.dim}`);
  }
  if (n === 0 || m === 0) throw new Error("linearProbe: empty train or test set");
  const d = train.dim;
  // Standardise with the training statistics.
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = train.features[i * d + j];
      mean[j] += v;
      sq[j] += v * v;
    }
  }
  const std = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    mean[j] /= n;
    std[j] = Math.sqrt(Math.max(sq[j] / n - mean[j] * mean[j], 0)) || 1;
  }
  const standardise = (x: Float32Array, rows: number) =>
    Float32Array.from({ length: rows * d }, (_, i) => (x[i] - mean[i % d]) / std[i % d]);
  const xTrain = tf.tensor2d(standardise(train.features, n), [n, d]);
  const xTest = tf.tensor2d(standardise(test.features, m), [m, d]);
  const yTrain = tf.tidy(() => tf.oneHot(tf.tensor1d(train.labels, "int32"), k));
  const w = tf.tidy(() => tf.variable(tf.zeros([d, k]), true));
  const b = tf.tidy(() => tf.variable(tf.zeros([k]), true));
  const optimizer = createAdam({ lr: options.lr ?? 0.01 });
  const decay = options.weightDecay ?? 1e-4;
  let finalLoss = NaN;
  const accuracy = async (x: Tensor2D, labels: Int32Array) => {
    const pred = tf.tidy(() => tf.argMax(tf.add(tf.matMul(x, w), b), 1));
    const p = await pred.data();
    pred.dispose();
    let correct = 0;
    for (let i = 0; i < labels.length; i++) if (p[i] === labels[i]) correct++;
    return (100 * correct) / labels.length;
  };
  try {
    for (let e = 0; e < (options.epochs ?? 300); e++) {
      const r = await optimizerStep([w, b], () => ({
        total: tf.add(
          tf.losses.softmaxCrossEntropy(yTrain, tf.add(tf.matMul(xTrain, w), b)),
          tf.mul(tf.sum(tf.square(w)), decay / 2),
        ) as Scalar,
        terms: {},
      }), { optimizer, clipNorm: 0 });
      finalLoss = r.total;
    }
    return {
      testAccuracy: await accuracy(xTest, test.labels),
      trainAccuracy: await accuracy(xTrain, train.labels),
      finalLoss,
    };
  } finally {
    optimizer.dispose();
    tf.dispose([xTrain, xTest, yTrain, w, b]);
  }
}
