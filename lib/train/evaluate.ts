/**
 * Class-incremental evaluation: after training through task t, every task
 * j ≤ t is scored on its test split with no task id — the argmax runs over the
 * head outputs of all classes seen so far (CIL accuracy). The task-incremental
 * accuracy (argmax restricted to task j's own classes) comes from the same
 * logits and is reported beside it, labelled as such.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { imageBatch } from "../data/batches.ts";
import type { ClassIncrementalStream, ClassTask } from "../data/task.ts";
import type { ImageClassifier } from "../models/image_classifier.ts";
import type { Tensor2D, Tensor4D } from "../tensor.ts";

/** Accuracies (%) of the evaluated tasks. */
export interface EvalRow {
  /** Class-incremental accuracy per evaluated task (argmax over all seen classes). */
  cil: number[];
  /** Task-incremental accuracy per evaluated task (argmax within the task's classes). */
  til: number[];
  /** Test images scored. */
  images: number;
  /**
   * Task-identity accuracy per evaluated task (%): the share of its test images the method
   * routes to their own task (methods with `inferTask`, e.g. HiDe-LoRA; absent otherwise).
   */
  tii?: number[];
}

/** The contiguous head-output range [start, end) of a task's classes. */
export function taskOutputRange(stream: ClassIncrementalStream, task: ClassTask): [number, number] {
  const outs = task.classes.map((c) => stream.labelToOutput[c]);
  const start = Math.min(...outs);
  const end = Math.max(...outs) + 1;
  if (end - start !== outs.length) {
    throw new Error(`task ${task.name}: head outputs ${outs.join(",")} are not contiguous`);
  }
  return [start, end];
}

/**
 * Score tasks 0..`throughTask` with the argmax over the outputs of tasks 0..`seenThrough`.
 *
 * @example
 * ```ts ignore
 * const row = await evaluateSeenTasks(model, stream, { throughTask: 2, seenThrough: 2 });
 * ```
 */
export async function evaluateSeenTasks(
  model: ImageClassifier,
  stream: ClassIncrementalStream,
  options: {
    throughTask: number;
    seenThrough?: number;
    batchSize?: number;
    mean?: readonly [number, number, number];
    std?: readonly [number, number, number];
    /** Logits to score instead of `model.logits` (a method's `forward`, called with no task id). */
    forward?: (x: Tensor4D, options: { training: boolean }) => Tensor2D;
    /** The task a method would route each image to (its `inferTask`): fills `tii`. */
    inferTask?: (x: Tensor4D) => Int32Array;
  },
): Promise<EvalRow> {
  const seenThrough = options.seenThrough ?? options.throughTask;
  const batchSize = options.batchSize ?? 128;
  const seenEnd = taskOutputRange(stream, stream.tasks[seenThrough])[1];
  const cil: number[] = [];
  const til: number[] = [];
  const tii: number[] = [];
  let images = 0;
  for (let j = 0; j <= options.throughTask; j++) {
    const task = stream.tasks[j];
    const [start, end] = taskOutputRange(stream, task);
    const cilEnd = Math.max(seenEnd, end);
    let correctCil = 0;
    let correctTil = 0;
    let correctTii = 0;
    for (let b = 0; b < task.test.length; b += batchSize) {
      const idx = task.test.subarray(b, Math.min(task.test.length, b + batchSize));
      const batch = imageBatch(stream.test, idx, {
        labelToOutput: stream.labelToOutput,
        mean: options.mean,
        std: options.std,
      });
      const preds = tf.tidy(() => {
        const x = tf.tensor4d(batch.x, [idx.length, stream.test.size, stream.test.size, 3]);
        const logits = options.forward
          ? options.forward(x, { training: false })
          : model.logits(x, { training: false });
        const pc = tf.argMax(tf.slice(logits, [0, 0], [-1, cilEnd]), 1);
        const pt = tf.add(
          tf.argMax(tf.slice(logits, [0, start], [-1, end - start]), 1),
          tf.scalar(start, "int32"),
        );
        return tf.stack([pc, pt]);
      });
      const p = await preds.data();
      preds.dispose();
      if (options.inferTask) {
        const x = tf.tensor4d(batch.x, [idx.length, stream.test.size, stream.test.size, 3]);
        try {
          for (const k of options.inferTask(x)) if (k === j) correctTii++;
        } finally {
          x.dispose();
        }
      }
      for (let i = 0; i < idx.length; i++) {
        if (p[i] === batch.y[i]) correctCil++;
        if (p[idx.length + i] === batch.y[i]) correctTil++;
      }
    }
    images += task.test.length;
    cil.push((100 * correctCil) / task.test.length);
    til.push((100 * correctTil) / task.test.length);
    tii.push((100 * correctTii) / task.test.length);
  }
  return options.inferTask ? { cil, til, images, tii } : { cil, til, images };
}
