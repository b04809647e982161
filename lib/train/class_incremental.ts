/**
 * The class-incremental trainer (design.md "The protocols"): one head over all
 * classes; while training task t the logits are restricted to task t's
 * classes (the logits of other classes are cut out, which is the same as
 * masking them to −∞); after each task every task seen so far is evaluated
 * with no task id, and the row of the accuracy matrix goes to the recorder at
 * once, so a crash later loses nothing already computed.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { imageBatch } from "../data/batches.ts";
import type { ClassIncrementalStream } from "../data/task.ts";
import type { ContinualMethod, MethodContext } from "../methods/method.ts";
import type { ImageClassifier } from "../models/image_classifier.ts";
import { Rng } from "../random.ts";
import { type EvalRow, evaluateSeenTasks, taskOutputRange } from "./evaluate.ts";
import type { Progress } from "./progress.ts";
import { epochsFor } from "./schedule.ts";
import { captureCheckpoint, restoreTrainer, type TrainerCheckpoint } from "./checkpoint.ts";
import { Timer } from "../methods/timer.ts";
import { type ExampleReadHook, imageExamples, type ImageForward } from "./example_access.ts";
import { type LossRecord, stepsPerEpochFor, type TaskLoopConfig, trainTask } from "./task_loop.ts";
import type { Scalar, Tensor1D, Tensor2D, Tensor4D } from "../tensor.ts";

export type { LossRecord } from "./task_loop.ts";

/**
 * Optimisation schedule of a class-incremental run: the shared loop's fields
 * ({@link TaskLoopConfig}: batch size, Adam, clip, reset, step cap, logging) plus these.
 */
export interface TrainConfig extends TaskLoopConfig {
  /** Epochs per task: one number for every task, or a list (one per task). */
  epochs: number | number[];
  /** Evaluation batch size. */
  evalBatchSize: number;
  /** Per-channel normalisation mean applied to pixels/255. */
  mean: [number, number, number];
  /** Per-channel normalisation std. */
  std: [number, number, number];
  /**
   * Learning curve (the paper's Fig. 1): every this many steps of a task (and before its first
   * step), the accuracy on a fixed held-out subset of the task being trained. Absent, null or
   * 0 = off. The probe's time is not training time.
   */
  curveEvery?: number | null;
  /** Learning-curve subset: the first this many test images of the task (default 100). */
  curveImages?: number;
}

/**
 * One learning-curve point: after `samplesSeen` training images of task `task` (0-based),
 * the accuracy (%) on the task's held-out subset — the first `images` test images of the
 * task, scored by the method's forward with the task's own index (its adapter, for per-task
 * methods) and the argmax over the task's own classes.
 */
export interface CurvePoint {
  /** 0-based task being trained. */
  task: number;
  /** Optimiser steps taken in this task so far. */
  step: number;
  /** Training images seen in this task so far (epochs × images, counting repeats). */
  samplesSeen: number;
  /** Accuracy (%) on the subset. */
  accuracy: number;
  /** Size of the subset. */
  images: number;
}

/** Per-task timing, in seconds. */
export interface TaskTiming {
  /** Training wall-clock seconds (all epochs, hooks included). */
  trainSeconds: number;
  /** Evaluation wall-clock seconds. */
  evalSeconds: number;
  /** Training images processed (epochs × images). */
  trainImages: number;
  /** trainImages / trainSeconds. */
  imagesPerSecond: number;
  /** Seconds per named component (trainer and method). */
  components: Record<string, number>;
}

/** Where the trainer sends what it produces. Implementations write to disk at once. */
export interface RunRecorder {
  /** A finished task: its accuracy row, timings and the method's own summary of the task. */
  taskDone(
    taskIndex: number,
    result: { row: EvalRow; timing: TaskTiming; summary?: Record<string, unknown> },
  ): Promise<void>;
  /** Loss records of the last logging window. */
  losses(records: LossRecord[]): Promise<void>;
  /** A checkpoint after a finished task (written before the next task starts). */
  checkpoint?(checkpoint: TrainerCheckpoint): Promise<void>;
  /** Learning-curve points of a finished task (when `curveEvery` is set). */
  curve?(points: CurvePoint[]): Promise<void>;
}

/**
 * Train `method` on every task of `stream` in order, evaluating after each.
 *
 * @example
 * ```ts ignore
 * await trainClassIncremental(stream, { model, method, config, rngs, recorder, progress });
 * ```
 */
export async function trainClassIncremental(
  stream: ClassIncrementalStream,
  options: {
    model: ImageClassifier;
    method: ContinualMethod;
    config: TrainConfig;
    /**
     * `data` shuffles batches; `method` is handed to the method (bandit draws). Dropout
     * seeds come from a stream split off `method` once at the start, so a method's own
     * draws never shift the dropout masks (TreeLoRA with λ = 0 trains exactly like SeqLoRA).
     */
    rngs: { data: Rng; method: Rng };
    recorder: RunRecorder;
    progress?: Progress;
    /** Continue after the task of this checkpoint (resume): variables, optimiser, RNGs and method restored. */
    resume?: TrainerCheckpoint;
    label?: string;
    /** Observes every read of stored examples through `ctx.examples` (tests). */
    onExampleRead?: ExampleReadHook;
  },
): Promise<void> {
  const { model, method, config, rngs, recorder, progress } = options;
  const numTasks = stream.tasks.length;
  const timer = new Timer();
  const size = stream.train.size;
  let optimizer: tf.Optimizer | null = null;
  const runStart = performance.now();
  const dropoutRng = new Rng(rngs.method.seed());
  // The logits of training and evaluation: the method's own forward when it has one.
  const forward: ImageForward = method.forward
    ? (x, o) => method.forward!(model, x, o)
    : (x, o) => model.logits(x, o);
  const startTask = options.resume ? options.resume.taskIndex + 1 : 0;
  if (options.resume) {
    optimizer = await restoreTrainer(model, {
      checkpoint: options.resume,
      rngs: { data: rngs.data, method: rngs.method, dropout: dropoutRng },
      method,
      config,
      extra: method.checkpointVariables?.(model),
    });
  }
  const run = {
    start: runStart,
    done: 0,
    total: stream.tasks.reduce(
      (acc, t, i) => acc + epochsFor(config.epochs, i) * t.train.length,
      0,
    ),
  };
  for (let ti = startTask; ti < numTasks; ti++) {
    const task = stream.tasks[ti];
    const epochs = epochsFor(config.epochs, ti);
    // Joint (`replayAll`): batches from the union of tasks 0..ti, loss over all their classes.
    const trained = method.replayAll ? stream.tasks.slice(0, ti + 1) : [task];
    const trainIndices = trained.length === 1
      ? task.train
      : concatIndices(trained.map((t) => t.train));
    const ranges = trained.map((t) => taskOutputRange(stream, t));
    const outStart = Math.min(...ranges.map((r) => r[0]));
    const outEnd = Math.max(...ranges.map((r) => r[1]));
    const width = outEnd - outStart;
    if (width !== ranges.reduce((a, r) => a + r[1] - r[0], 0)) {
      throw new Error(
        `tasks 1..${ti + 1}: the head outputs of the trained tasks are not contiguous`,
      );
    }
    const ctx: MethodContext = {
      model,
      taskIndex: ti,
      numTasks,
      epoch: 0,
      epochs,
      step: 0,
      stepsPerEpoch: stepsPerEpochFor(trainIndices.length, config),
      rng: rngs.method,
      timer,
      examples: imageExamples(stream, {
        currentTask: ti,
        forward,
        mean: config.mean,
        std: config.std,
        onRead: options.onExampleRead,
      }),
    };
    const pixels = (idx: Int32Array, x: Float32Array) =>
      tf.tensor4d(x, [idx.length, size, size, 3]);
    const curve: CurvePoint[] = [];
    const every = config.curveEvery ?? 0;
    const [taskStart, taskEnd] = taskOutputRange(stream, task);
    const subset = task.test.subarray(0, Math.min(task.test.length, config.curveImages ?? 100));
    const probe = every > 0
      ? async ({ items, steps }: { items: number; steps: number }) => {
        if (steps % every !== 0) return;
        const accuracy = await subsetAccuracy(subset, {
          stream,
          forward: (x) => forward(x, { training: false, taskIndex: ti }),
          range: [taskStart, taskEnd],
          mean: config.mean,
          std: config.std,
          batchSize: config.evalBatchSize,
        });
        curve.push({ task: ti, step: steps, samplesSeen: items, accuracy, images: subset.length });
      }
      : undefined;
    const trainedTask = await trainTask(ctx, {
      method,
      config,
      optimizer,
      indices: trainIndices,
      rngs: { data: rngs.data, dropout: dropoutRng },
      recorder,
      progress,
      label: options.label ?? method.name,
      run,
      track: {
        batch: (idx) => ({
          idx,
          ...imageBatch(stream.train, idx, {
            labelToOutput: stream.labelToOutput,
            mean: config.mean,
            std: config.std,
          }),
        }),
        view: (batch, idx) => ({
          size: idx.length,
          outputRange: [outStart, outEnd],
          logits: () =>
            tf.tidy(() =>
              forward(pixels(idx, batch.x), {
                training: false,
                taskIndex: ti,
              })
            ),
        }),
        taskLoss: (batch, seed) => {
          const x = pixels(batch.idx, batch.x);
          const full = forward(x, { training: true, seed, taskIndex: ti });
          const logits = tf.slice(full, [0, outStart], [-1, width]);
          const local = tf.sub(tf.tensor1d(batch.y, "int32"), tf.scalar(outStart, "int32"));
          const onehot = tf.oneHot(local as Tensor1D, width);
          const taskLoss = tf.losses.softmaxCrossEntropy(onehot, logits) as Scalar;
          return { taskLoss, logits: full };
        },
        probe,
      },
    });
    if (curve.length > 0) await recorder.curve?.(curve);
    optimizer = trainedTask.optimizer;
    const { trainSeconds, trainItems: trainImages } = trainedTask;
    const e0 = performance.now();
    const row = await evaluateSeenTasks(model, stream, {
      throughTask: ti,
      forward: method.forward ? (x, o) => method.forward!(model, x, o) : undefined,
      inferTask: method.inferTask ? (x) => method.inferTask!(model, x) : undefined,
      batchSize: config.evalBatchSize,
      mean: config.mean,
      std: config.std,
    });
    const evalSeconds = (performance.now() - e0) / 1000;
    const components = timer.totals();
    const accounted = Object.values(components).reduce((a, b) => a + b, 0);
    components.other = Math.max(0, trainSeconds - accounted);
    // The method's summary first (as before), then the checkpoint, then the rows and the status
    // that point at it: a run killed in between never has a status ahead of its checkpoint.
    const summary = method.taskSummary?.();
    if (recorder.checkpoint) {
      await recorder.checkpoint(
        await captureCheckpoint(model, {
          taskIndex: ti,
          optimizer: config.resetOptimizerPerTask ? null : optimizer,
          rngs: { data: rngs.data, method: rngs.method, dropout: dropoutRng },
          method: method.state(),
          extra: method.checkpointVariables?.(model),
        }),
      );
    }
    await recorder.taskDone(ti, {
      row,
      timing: {
        trainSeconds,
        evalSeconds,
        trainImages,
        imagesPerSecond: trainImages / trainSeconds,
        components,
      },
      summary,
    });
    progress?.log(
      `[${options.label ?? method.name}] task ${ti + 1}/${numTasks} done: ` +
        `avg acc ${(row.cil.reduce((a, b) => a + b, 0) / row.cil.length).toFixed(2)}% ` +
        `(train ${trainSeconds.toFixed(1)} s, ${(trainImages / trainSeconds).toFixed(1)} img/s, ` +
        `eval ${evalSeconds.toFixed(1)} s)`,
    );
  }
  optimizer?.dispose();
}

/**
 * Accuracy (%) of `forward` on the test images `indices`, the argmax over the outputs
 * `range` [start, end) (one task's classes).
 */
async function subsetAccuracy(
  indices: Int32Array,
  options: {
    stream: ClassIncrementalStream;
    forward: (x: Tensor4D) => Tensor2D;
    range: [number, number];
    mean: [number, number, number];
    std: [number, number, number];
    batchSize: number;
  },
): Promise<number> {
  const { stream, range } = options;
  let correct = 0;
  for (let b = 0; b < indices.length; b += options.batchSize) {
    const idx = indices.subarray(b, Math.min(indices.length, b + options.batchSize));
    const batch = imageBatch(stream.test, idx, {
      labelToOutput: stream.labelToOutput,
      mean: options.mean,
      std: options.std,
    });
    const pred = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, [idx.length, stream.test.size, stream.test.size, 3]);
      const logits = tf.slice(options.forward(x), [0, range[0]], [-1, range[1] - range[0]]);
      return tf.add(tf.argMax(logits, 1), tf.scalar(range[0], "int32"));
    });
    const p = await pred.data();
    pred.dispose();
    for (let i = 0; i < idx.length; i++) if (p[i] === batch.y[i]) correct++;
  }
  return indices.length === 0 ? NaN : (100 * correct) / indices.length;
}

/** The concatenation of index lists (the union of disjoint tasks' train indices). */
function concatIndices(lists: Int32Array[]): Int32Array {
  const out = new Int32Array(lists.reduce((n, l) => n + l.length, 0));
  let o = 0;
  for (const l of lists) {
    out.set(l, o);
    o += l.length;
  }
  return out;
}
