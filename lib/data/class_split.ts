/**
 * Cut a labelled train/test pair into a class-incremental stream.
 *
 * The classes are put in an order (natural, or a seeded permutation that is
 * recorded in the stream), then cut into consecutive groups of equal size:
 * task `t` owns `classOrder[t·k … (t+1)·k)`, and head output `i` is
 * `classOrder[i]`. Each task keeps the indices (ascending) of its images in
 * the train and the test set; the sets themselves are shared, not copied.
 *
 * @module
 */

import { Rng } from "../random.ts";
import type { ClassIncrementalStream, ClassTask, ImageSet } from "./task.ts";

/** Options of {@link splitClassIncremental}. */
export interface ClassSplitOptions {
  /**
   * Seed of the class order: `new Rng(orderSeed).permutation(n)` applied to
   * the natural order; `null` keeps the natural order. Required so that the
   * choice is always explicit.
   */
  orderSeed: number | null;
  /** Number of tasks. Default 10, or `classes / classesPerTask` when only `classesPerTask` is given. */
  numTasks?: number;
  /** Classes per task. Default `classes / numTasks`; when both are given their product must equal the class count. */
  classesPerTask?: number;
  /**
   * The fine labels to use, in their natural order. Default: every fine label
   * present in the train set, ascending. Images of other classes are left out.
   */
  classes?: number[];
}

function uniqueSorted(labels: Int32Array): number[] {
  return [...new Set(labels)].sort((a, b) => a - b);
}

/**
 * Split a train and a test set into class-incremental tasks.
 *
 * Throws when the number of classes is not divisible into the tasks, or when
 * a chosen class has no train or no test images (naming the class).
 *
 * @example
 * ```ts
 * import { splitClassIncremental } from "./class_split.ts";
 * import { generateSyntheticImages } from "./synthetic_images.ts";
 * const { train, test } = generateSyntheticImages({ seed: 0, trainPerClass: 2, testPerClass: 1 });
 * const stream = splitClassIncremental(train, test, { numTasks: 10, orderSeed: 1993 });
 * console.log(stream.tasks.length, stream.tasks[0].classes.length); // 10 10
 * console.log(stream.labelToOutput[stream.classOrder[0]]); // 0
 * ```
 */
export function splitClassIncremental(
  train: ImageSet,
  test: ImageSet,
  options: ClassSplitOptions,
): ClassIncrementalStream {
  const where = `splitClassIncremental(train=${train.source}, test=${test.source})`;
  const { orderSeed } = options;
  if (orderSeed === undefined) {
    throw new Error(`${where}: orderSeed is required (a number, or null for the natural order)`);
  }
  if (orderSeed !== null && !Number.isInteger(orderSeed)) {
    throw new Error(`${where}: orderSeed must be an integer or null, got ${orderSeed}`);
  }

  const natural = options.classes ? [...options.classes] : uniqueSorted(train.fine);
  const seen = new Set<number>();
  for (const c of natural) {
    if (!Number.isInteger(c) || c < 0) {
      throw new Error(`${where}: class ${c} is not a fine label (expected an integer >= 0)`);
    }
    if (seen.has(c)) throw new Error(`${where}: class ${c} is listed twice in options.classes`);
    seen.add(c);
  }
  const n = natural.length;
  if (n === 0) throw new Error(`${where}: no classes to split`);

  let numTasks: number;
  let k: number;
  if (options.classesPerTask !== undefined) {
    k = options.classesPerTask;
    if (!Number.isInteger(k) || k < 1) {
      throw new Error(`${where}: classesPerTask must be an integer >= 1, got ${k}`);
    }
    numTasks = options.numTasks ?? n / k;
    if (numTasks * k !== n) {
      throw new Error(
        `${where}: ${n} classes cannot be cut into ` +
          `${options.numTasks ?? "whole"} tasks of ${k} classes; ` +
          `numTasks × classesPerTask must equal the number of classes (pass options.classes to use a subset)`,
      );
    }
  } else {
    numTasks = options.numTasks ?? 10;
    if (!Number.isInteger(numTasks) || numTasks < 1) {
      throw new Error(`${where}: numTasks must be an integer >= 1, got ${numTasks}`);
    }
    k = n / numTasks;
    if (!Number.isInteger(k)) {
      throw new Error(
        `${where}: ${n} classes are not divisible into ${numTasks} tasks ` +
          `(${n} mod ${numTasks} = ${n % numTasks}); pass options.classes to use a subset`,
      );
    }
  }

  const classOrder = orderSeed === null
    ? natural
    : new Rng(orderSeed).permutation(n).map((i) => natural[i]);

  let maxLabel = Math.max(...classOrder);
  for (const set of [train, test]) {
    for (let i = 0; i < set.count; i++) if (set.fine[i] > maxLabel) maxLabel = set.fine[i];
  }
  const labelToOutput = new Int32Array(maxLabel + 1).fill(-1);
  classOrder.forEach((c, i) => (labelToOutput[c] = i));

  const indicesPerTask = (set: ImageSet, split: "train" | "test"): Int32Array[] => {
    const perClass = new Int32Array(n);
    for (let i = 0; i < set.count; i++) {
      const out = labelToOutput[set.fine[i]];
      if (out >= 0) perClass[out]++;
    }
    perClass.forEach((count, out) => {
      if (count === 0) {
        throw new Error(
          `${where}: class ${classOrder[out]} (fine label) has no ${split} images in ${set.source}`,
        );
      }
    });
    const sizes = new Int32Array(numTasks);
    perClass.forEach((count, out) => (sizes[Math.floor(out / k)] += count));
    const result = Array.from(sizes, (size) => new Int32Array(size));
    const fill = new Int32Array(numTasks);
    for (let i = 0; i < set.count; i++) {
      const out = labelToOutput[set.fine[i]];
      if (out < 0) continue;
      const t = Math.floor(out / k);
      result[t][fill[t]++] = i;
    }
    return result;
  };
  const trainIdx = indicesPerTask(train, "train");
  const testIdx = indicesPerTask(test, "test");

  const tasks: ClassTask[] = [];
  for (let t = 0; t < numTasks; t++) {
    tasks.push({
      index: t,
      name: `task-${t}`,
      classes: classOrder.slice(t * k, (t + 1) * k),
      train: trainIdx[t],
      test: testIdx[t],
    });
  }
  return { train, test, tasks, classOrder, orderSeed, labelToOutput };
}
