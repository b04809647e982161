/**
 * The trainers' {@link ExampleAccess}: stored training examples of the tasks
 * seen so far, for methods that keep a memory (GEM) or statistics (HiDe-LoRA)
 * of them. A set names its task and positions in that task's training split;
 * the data are read only here, and a task after the current one is refused,
 * so no method sees future data.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { imageBatch } from "../data/batches.ts";
import type { ClassIncrementalStream } from "../data/task.ts";
import type { ExampleAccess, ExampleSet, LmPrefixAt, LmPrefixRows } from "../methods/method.ts";
import type { Decoder } from "../models/decoder.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { taskOutputRange } from "./evaluate.ts";
import { type LmExample, type TrainingBatch, trainingBatch } from "./lm_batches.ts";
import { IGNORE_INDEX, lmLoss } from "./lm_loss.ts";
import type { Scalar, Tensor, Tensor1D, Tensor2D, Tensor4D } from "../tensor.ts";

/** The logits function a class-incremental set's loss is computed with. */
export type ImageForward = (
  x: Tensor4D,
  options: { training: boolean; seed?: number; taskIndex?: number },
) => Tensor2D;

/** Called on every read of examples (task index, positions): lets tests observe the stream. */
export type ExampleReadHook = (taskIndex: number, indices: readonly number[]) => void;

function checkedSelect(
  sizes: (t: number) => number,
  currentTask: number,
  numTasks: number,
): (taskIndex: number, indices: readonly number[]) => ExampleSet {
  return (taskIndex, indices) => {
    if (!Number.isInteger(taskIndex) || taskIndex < 0 || taskIndex >= numTasks) {
      throw new Error(`examples: task ${taskIndex} does not exist (0..${numTasks - 1})`);
    }
    if (taskIndex > currentTask) {
      throw new Error(
        `examples: task ${taskIndex + 1} is a future task (training task ${currentTask + 1}); ` +
          `a method may read only tasks 1..${currentTask + 1}`,
      );
    }
    const n = sizes(taskIndex);
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= n) {
        throw new Error(
          `examples: position ${i} of task ${taskIndex + 1} is out of range; expected 0..${n - 1}`,
        );
      }
    }
    if (indices.length === 0) throw new Error(`examples: empty selection of task ${taskIndex + 1}`);
    return { taskIndex, indices: [...indices] };
  };
}

/**
 * Example access of the class-incremental trainer while it trains `currentTask`:
 * a set's loss is the cross-entropy over its task's head outputs, in evaluation mode.
 *
 * @example
 * ```ts ignore
 * const ex = imageExamples(stream, { currentTask: 2, forward: (x, o) => model.logits(x, o) });
 * const set = ex.select(0, [0, 1, 2]);
 * const loss = tf.tidy(() => ex.loss(set));
 * ```
 */
export function imageExamples(
  stream: ClassIncrementalStream,
  options: {
    currentTask: number;
    forward: ImageForward;
    mean?: readonly [number, number, number];
    std?: readonly [number, number, number];
    onRead?: ExampleReadHook;
  },
): ExampleAccess {
  const { currentTask, forward } = options;
  const sizes = (t: number) => stream.tasks[t].train.length;
  const select = checkedSelect(sizes, currentTask, stream.tasks.length);
  const images = (set: ExampleSet) => {
    select(set.taskIndex, set.indices);
    options.onRead?.(set.taskIndex, set.indices);
    const task = stream.tasks[set.taskIndex];
    const idx = set.indices.map((i) => task.train[i]);
    const batch = imageBatch(stream.train, idx, {
      labelToOutput: stream.labelToOutput,
      mean: options.mean,
      std: options.std,
    });
    const s = stream.train.size;
    return { x: tf.tensor4d(batch.x, [idx.length, s, s, 3]), y: batch.y };
  };
  return {
    trainSize: (t) => {
      select(t, [0]);
      return sizes(t);
    },
    select,
    images,
    loss(set) {
      return tf.tidy(() => {
        const { x, y } = images(set);
        const [start, end] = taskOutputRange(stream, stream.tasks[set.taskIndex]);
        const full = forward(x, { training: false, taskIndex: set.taskIndex });
        const logits = tf.slice(full, [0, start], [-1, end - start]);
        const local = tf.sub(tf.tensor1d(y, "int32"), tf.scalar(start, "int32"));
        const onehot = tf.oneHot(local as Tensor1D, end - start);
        return tf.losses.softmaxCrossEntropy(onehot, logits) as Scalar;
      });
    },
  };
}

/** A method's LM input-prefix hook, as the trainers call it (`ContinualMethod.inputPrefix`). */
export type LmPrefixHook = (at: LmPrefixAt, rows: LmPrefixRows) => Tensor | undefined;

/**
 * The prompt positions of a training batch, row-major [B·T]: 1 at real tokens whose label is
 * −100 (BOS and prompt), 0 at padding and at the labelled answer and EOS.
 *
 * @example
 * ```ts
 * import { promptPositions } from "./example_access.ts";
 * const batch = {
 *   ids: Int32Array.from([258, 256, 49, 50, 257]),
 *   labels: Int32Array.from([-100, -100, -100, 50, 257]),
 *   mask: Int32Array.from([0, 1, 1, 1, 1]),
 *   shape: [1, 5] as [number, number],
 *   lengths: [4],
 * };
 * promptPositions(batch); // [0, 1, 1, 0, 0]
 * ```
 */
export function promptPositions(batch: TrainingBatch): Float32Array {
  return Float32Array.from(
    batch.mask,
    (m, i) => (m === 1 && batch.labels[i] === IGNORE_INDEX ? 1 : 0),
  );
}

/**
 * The hook's prefix for a training batch (inside the caller's `tidy` or tape), or undefined
 * without a hook.
 *
 * @example
 * ```ts ignore
 * const prefix = trainingBatchPrefix(batch, { hook, at: { taskIndex: 0, training: false }, model, ids, mask });
 * ```
 */
export function trainingBatchPrefix(
  batch: TrainingBatch,
  options: {
    hook?: LmPrefixHook;
    at: LmPrefixAt;
    model: Decoder;
    ids: Tensor2D;
    mask: Tensor2D;
  },
): Tensor | undefined {
  const { hook, model, ids, mask } = options;
  if (!hook) return undefined;
  const promptMask = tf.tensor2d(promptPositions(batch), batch.shape);
  return hook(options.at, { model, ids, attentionMask: mask, promptMask });
}

/**
 * Example access of the LM trainer while it trains `currentTask`: a set's loss is
 * the masked answer-token cross-entropy of spec §9.3, in evaluation mode (with the
 * method's input prefix for the set's task when `inputPrefix` is given).
 *
 * @example
 * ```ts ignore
 * const ex = lmExamples(tasks, { currentTask: 1, model, tokenizer, maxLength: 64 });
 * ```
 */
export function lmExamples(
  tasks: readonly { train: readonly LmExample[] }[],
  options: {
    currentTask: number;
    model: Decoder;
    tokenizer: Tokenizer;
    maxLength: number;
    onRead?: ExampleReadHook;
    /** The method's `inputPrefix` hook (called with the set's task, `training` false). */
    inputPrefix?: LmPrefixHook;
  },
): ExampleAccess {
  const { currentTask, model } = options;
  const sizes = (t: number) => tasks[t].train.length;
  const select = checkedSelect(sizes, currentTask, tasks.length);
  return {
    trainSize: (t) => {
      select(t, [0]);
      return sizes(t);
    },
    select,
    loss(set) {
      select(set.taskIndex, set.indices);
      options.onRead?.(set.taskIndex, set.indices);
      const examples = set.indices.map((i) => tasks[set.taskIndex].train[i]);
      const batch = trainingBatch(examples, {
        tokenizer: options.tokenizer,
        maxLength: options.maxLength,
      });
      return tf.tidy(() => {
        const ids = tf.tensor2d(batch.ids, batch.shape, "int32");
        const mask = tf.tensor2d(batch.mask, batch.shape, "int32");
        const prefix = trainingBatchPrefix(batch, {
          hook: options.inputPrefix,
          at: { taskIndex: set.taskIndex, training: false },
          model,
          ids,
          mask,
        });
        const logits = model.logits(ids, { training: false, attentionMask: mask, prefix });
        return lmLoss(logits, batch.labels);
      });
    },
  };
}
