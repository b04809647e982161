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
import { imageBatch, shuffledBatches } from "../data/batches.ts";
import type { ClassIncrementalStream } from "../data/task.ts";
import type { ContinualMethod, MethodContext } from "../methods/method.ts";
import type { ImageClassifier } from "../models/image_classifier.ts";
import { Rng } from "../random.ts";
import { type EvalRow, evaluateSeenTasks, taskOutputRange } from "./evaluate.ts";
import type { Progress } from "./progress.ts";
import { createAdam, optimizerStep } from "./step.ts";
import { epochsFor } from "./schedule.ts";
import { captureCheckpoint, restoreTrainer, type TrainerCheckpoint } from "./checkpoint.ts";
import { Timer } from "./timer.ts";
import { type ExampleReadHook, imageExamples, type ImageForward } from "./example_access.ts";

/** Optimisation schedule of a class-incremental run. */
export interface TrainConfig {
  /** Epochs per task: one number for every task, or a list (one per task). */
  epochs: number | number[];
  /** Mini-batch size. */
  batchSize: number;
  /** Adam learning rate (constant). */
  lr: number;
  /** Adam beta1. */
  beta1: number;
  /** Adam beta2. */
  beta2: number;
  /** Global gradient-norm clip; 0 disables. */
  clipNorm: number;
  /** Start every task with a fresh Adam state (true) or carry it over (false). */
  resetOptimizerPerTask: boolean;
  /** Cap on steps per epoch (for smoke tests); null = full epochs. Recorded in the config. */
  maxStepsPerEpoch: number | null;
  /** Record the loss terms every this many steps. */
  logEvery: number;
  /** Evaluation batch size. */
  evalBatchSize: number;
  /** Per-channel normalisation mean applied to pixels/255. */
  mean: [number, number, number];
  /** Per-channel normalisation std. */
  std: [number, number, number];
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

/** One logged loss record. */
export interface LossRecord {
  /** 0-based task. */
  task: number;
  /** 0-based epoch. */
  epoch: number;
  /** 0-based step within the epoch. */
  step: number;
  /** Term name: `task`, `total`, or a method term. */
  term: string;
  /** Value. */
  value: number;
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
  let imagesDone = 0;
  const totalImages = stream.tasks.reduce(
    (acc, t, i) => acc + epochsFor(config.epochs, i) * t.train.length,
    0,
  );
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
    const fullSteps = Math.ceil(trainIndices.length / config.batchSize);
    const stepsPerEpoch = config.maxStepsPerEpoch === null
      ? fullSteps
      : Math.min(fullSteps, config.maxStepsPerEpoch);
    const ctx: MethodContext = {
      model,
      taskIndex: ti,
      numTasks,
      epoch: 0,
      epochs,
      step: 0,
      stepsPerEpoch,
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
    timer.reset();
    const t0 = performance.now();
    if (optimizer === null || config.resetOptimizerPerTask) {
      optimizer?.dispose();
      optimizer = createAdam({ lr: config.lr, beta1: config.beta1, beta2: config.beta2 });
    }
    await timer.timeAsync("method", async () => await method.beginTask(ctx));
    const variables = method.trainableVariables(ctx);
    const gradientVariables = method.gradientVariables?.(ctx) ?? [];
    let trainImages = 0;
    let window: LossRecord[] = [];
    // A method with nothing to train (in-context FIX) is not optimised at all.
    const trainedEpochs = variables.length > 0 ? epochs : 0;
    for (let epoch = 0; epoch < trainedEpochs; epoch++) {
      ctx.epoch = epoch;
      ctx.step = 0;
      await timer.timeAsync("method", async () => await method.beginEpoch?.(ctx));
      let step = 0;
      for (const idx of shuffledBatches(trainIndices, config.batchSize, rngs.data)) {
        if (step >= stepsPerEpoch) break;
        ctx.step = step;
        const batch = timer.time("data", () =>
          imageBatch(stream.train, idx, {
            labelToOutput: stream.labelToOutput,
            mean: config.mean,
            std: config.std,
          }));
        ctx.batch = {
          size: idx.length,
          outputRange: [outStart, outEnd],
          logits: () =>
            tf.tidy(() =>
              forward(tf.tensor4d(batch.x, [idx.length, size, size, 3]), {
                training: false,
                taskIndex: ti,
              })
            ),
        };
        await timer.timeAsync("method", async () => await method.beforeStep?.(ctx));
        const seed = dropoutRng.seed();
        const opt = optimizer;
        const result = await timer.timeAsync(
          "forward_backward",
          () =>
            optimizerStep(variables, () => {
              const x = tf.tensor4d(batch.x, [idx.length, size, size, 3]);
              const full = forward(x, { training: true, seed, taskIndex: ti });
              const logits = tf.slice(full, [0, outStart], [-1, width]);
              const local = tf.sub(tf.tensor1d(batch.y, "int32"), tf.scalar(outStart, "int32"));
              const onehot = tf.oneHot(local as tf.Tensor1D, width);
              const taskLoss = tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
              const parts = method.loss(ctx, taskLoss, { logits: full });
              return { total: parts.total, terms: { task: taskLoss, ...parts.terms } };
            }, {
              optimizer: opt,
              clipNorm: config.clipNorm,
              readGradients: gradientVariables,
              adjustGradients: method.adjustGradients
                ? (grads) => method.adjustGradients!(ctx, grads)
                : undefined,
            }),
        );
        if (!Number.isFinite(result.total)) {
          throw new Error(
            `non-finite loss ${result.total} at task ${ti + 1}, epoch ${epoch + 1}, step ${
              step + 1
            } ` +
              `(method ${method.name}); lower the learning rate or check the data`,
          );
        }
        await timer.timeAsync(
          "method",
          async () =>
            await method.afterStep?.(ctx, {
              taskLoss: result.terms.task,
              gradients: result.gradients,
            }),
        );
        ctx.batch = undefined;
        trainImages += idx.length;
        imagesDone += idx.length;
        if (step % config.logEvery === 0 || step === stepsPerEpoch - 1) {
          window.push({ task: ti, epoch, step, term: "total", value: result.total });
          for (const [term, value] of Object.entries(result.terms)) {
            window.push({ task: ti, epoch, step, term, value });
          }
        }
        const elapsed = (performance.now() - runStart) / 1000;
        const rate = imagesDone / Math.max(1e-9, elapsed);
        progress?.update({
          label: options.label ?? method.name,
          task: ti + 1,
          tasks: numTasks,
          epoch: epoch + 1,
          epochs,
          step: step + 1,
          steps: stepsPerEpoch,
          loss: result.terms.task,
          imagesPerSecond: trainImages / ((performance.now() - t0) / 1000),
          etaSeconds: config.maxStepsPerEpoch === null ? (totalImages - imagesDone) / rate : NaN,
        });
        step++;
      }
      await recorder.losses(window);
      window = [];
    }
    await timer.timeAsync("method", async () => await method.endTask(ctx));
    const trainSeconds = (performance.now() - t0) / 1000;
    const e0 = performance.now();
    const row = await evaluateSeenTasks(model, stream, {
      throughTask: ti,
      forward: method.forward ? (x, o) => method.forward!(model, x, o) : undefined,
      batchSize: config.evalBatchSize,
      mean: config.mean,
      std: config.std,
    });
    const evalSeconds = (performance.now() - e0) / 1000;
    const components = timer.totals();
    const accounted = Object.values(components).reduce((a, b) => a + b, 0);
    components.other = Math.max(0, trainSeconds - accounted);
    await recorder.taskDone(ti, {
      row,
      timing: {
        trainSeconds,
        evalSeconds,
        trainImages,
        imagesPerSecond: trainImages / trainSeconds,
        components,
      },
      summary: method.taskSummary?.(),
    });
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
    progress?.log(
      `[${options.label ?? method.name}] task ${ti + 1}/${numTasks} done: ` +
        `avg acc ${(row.cil.reduce((a, b) => a + b, 0) / row.cil.length).toFixed(2)}% ` +
        `(train ${trainSeconds.toFixed(1)} s, ${(trainImages / trainSeconds).toFixed(1)} img/s, ` +
        `eval ${evalSeconds.toFixed(1)} s)`,
    );
  }
  optimizer?.dispose();
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
