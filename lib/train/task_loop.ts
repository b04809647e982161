/**
 * The per-task training loop shared by the class-incremental and the LM
 * trainers: optimiser creation/reset, `beginTask`, the epochs (`beginEpoch`)
 * and steps (batch → `ctx.batch` → `beforeStep` → dropout seed →
 * [tape: track's task loss → `loss()`] → `adjustGradients` → clip → Adam →
 * `afterStep` → loss window → progress), then `endTask`. What differs between
 * the tracks (how a batch is built, what `ctx.batch` holds, the forward pass
 * and task loss) comes in as a {@link TaskTrack}.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";
import { shuffledBatches } from "../data/batches.ts";
import type { ContinualMethod, MethodContext, StepBatch } from "../methods/method.ts";
import type { Rng } from "../random.ts";
import type { Progress } from "./progress.ts";
import { createAdam, optimizerStep } from "./step.ts";
import type { Scalar, Tensor } from "../tensor.ts";

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

/** The part of a trainer config the task loop reads. */
export interface TaskLoopConfig {
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
  /** Fresh Adam state per task (true) or carried over (false). */
  resetOptimizerPerTask: boolean;
  /** Cap on steps per epoch; null = full epochs. */
  maxStepsPerEpoch: number | null;
  /** Record the loss terms every this many steps. */
  logEvery: number;
}

/** What a track supplies to the task loop for its batches of type `B`. */
export interface TaskTrack<B> {
  /** Build the batch of the given training indices (timed as `data`). */
  batch(idx: Int32Array): B;
  /** The `ctx.batch` the method sees during the step. */
  view(batch: B, idx: Int32Array): StepBatch;
  /**
   * The training-mode forward pass and task loss, run inside the tape; `logits`
   * is what `method.loss` receives.
   */
  taskLoss(batch: B, seed: number): { taskLoss: Scalar; logits: Tensor };
  /** Called after each step's counters are updated (e.g. token counts). */
  counted?(batch: B): void;
  /** Task name shown in the non-finite-loss error (e.g. a TRACE task). */
  taskName?: string;
  /** Progress throughput unit (`ex`); omitted = the progress default. */
  unit?: string;
  /**
   * Called once before the first step (0 items, 0 steps) and after every step with the items
   * and steps trained so far in this task (a learning curve's probe). Its time is not
   * training time: it is subtracted from `trainSeconds`.
   */
  probe?(progress: { items: number; steps: number }): Promise<void>;
}

/** Run-wide counters the task loop updates (for throughput and ETA). */
export interface RunCounters {
  /** `performance.now()` at the start of the run. */
  start: number;
  /** Items (images, examples) trained so far in the run; updated in place. */
  done: number;
  /** Items of the whole run. */
  total: number;
}

/**
 * Steps per epoch of a training set of `count` items: ⌈count / batchSize⌉,
 * capped by `maxStepsPerEpoch`.
 *
 * @example
 * ```ts
 * import { stepsPerEpochFor } from "./task_loop.ts";
 * stepsPerEpochFor(10, { batchSize: 4, maxStepsPerEpoch: 2 }); // 2
 * ```
 */
export function stepsPerEpochFor(
  count: number,
  config: Pick<TaskLoopConfig, "batchSize" | "maxStepsPerEpoch">,
): number {
  const fullSteps = Math.ceil(count / config.batchSize);
  return config.maxStepsPerEpoch === null
    ? fullSteps
    : Math.min(fullSteps, config.maxStepsPerEpoch);
}

/**
 * Train one task (the one of `ctx.taskIndex`): reset the timer, create or
 * keep the optimiser, call `beginTask`, run the epochs and steps over
 * `indices`, call `endTask`. Returns the optimiser (to carry into the next
 * task), the items trained and the training seconds.
 *
 * @example
 * ```ts ignore
 * const r = await trainTask(ctx, { method, config, optimizer, indices, rngs, recorder, track, run });
 * ```
 */
export async function trainTask<B>(
  ctx: MethodContext,
  options: {
    method: ContinualMethod;
    config: TaskLoopConfig;
    /** The optimiser of the previous task, or null. */
    optimizer: tf.Optimizer | null;
    /** Training indices shuffled into batches each epoch. */
    indices: Int32Array;
    /** `data` shuffles the batches; `dropout` draws one seed per step. */
    rngs: { data: Rng; dropout: Rng };
    recorder: { losses(records: LossRecord[]): Promise<void> };
    progress?: Progress;
    /** Progress label. */
    label: string;
    track: TaskTrack<B>;
    run: RunCounters;
  },
): Promise<{ optimizer: tf.Optimizer; trainItems: number; trainSeconds: number }> {
  const { method, config, rngs, recorder, progress, track, run } = options;
  const { timer, taskIndex: ti, numTasks, epochs, stepsPerEpoch } = ctx;
  timer.reset();
  const t0 = performance.now();
  let optimizer = options.optimizer;
  if (optimizer === null || config.resetOptimizerPerTask) {
    optimizer?.dispose();
    optimizer = createAdam({ lr: config.lr, beta1: config.beta1, beta2: config.beta2 });
  }
  await timer.timeAsync("method", async () => await method.beginTask(ctx));
  const variables = method.trainableVariables(ctx);
  let probeSeconds = 0;
  let stepsDone = 0;
  const probe = async (items: number) => {
    if (!track.probe) return;
    const p0 = performance.now();
    await track.probe({ items, steps: stepsDone });
    probeSeconds += (performance.now() - p0) / 1000;
  };
  if (variables.length > 0) await probe(0);
  const gradientVariables = method.gradientVariables?.(ctx) ?? [];
  let trainItems = 0;
  let window: LossRecord[] = [];
  const where = track.taskName === undefined ? "" : ` (${track.taskName})`;
  // A method with nothing to train (in-context FIX) is not optimised at all.
  const trainedEpochs = variables.length > 0 ? epochs : 0;
  for (let epoch = 0; epoch < trainedEpochs; epoch++) {
    ctx.epoch = epoch;
    ctx.step = 0;
    await timer.timeAsync("method", async () => await method.beginEpoch?.(ctx));
    let step = 0;
    for (const idx of shuffledBatches(options.indices, config.batchSize, rngs.data)) {
      if (step >= stepsPerEpoch) break;
      ctx.step = step;
      const batch = timer.time("data", () => track.batch(idx));
      ctx.batch = track.view(batch, idx);
      await timer.timeAsync("method", async () => await method.beforeStep?.(ctx));
      const seed = rngs.dropout.seed();
      const opt = optimizer;
      const result = await timer.timeAsync(
        "forward_backward",
        () =>
          optimizerStep(variables, (tap) => {
            const { taskLoss, logits } = track.taskLoss(batch, seed);
            const parts = method.loss(ctx, taskLoss, { logits, tap: tap.through });
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
          `non-finite loss ${result.total} at task ${ti + 1}${where}, epoch ${epoch + 1}, ` +
            `step ${step + 1} (method ${method.name}); lower the learning rate or check the data`,
        );
      }
      await timer.timeAsync(
        "method",
        async () =>
          await method.afterStep?.(ctx, {
            taskLoss: result.terms.task,
            gradients: result.gradients,
            taskGradients: result.taskGradients,
            termGradients: result.termGradients,
          }),
      );
      ctx.batch = undefined;
      trainItems += idx.length;
      stepsDone++;
      await probe(trainItems);
      run.done += idx.length;
      track.counted?.(batch);
      if (step % config.logEvery === 0 || step === stepsPerEpoch - 1) {
        window.push({ task: ti, epoch, step, term: "total", value: result.total });
        for (const [term, value] of Object.entries(result.terms)) {
          window.push({ task: ti, epoch, step, term, value });
        }
      }
      const elapsed = (performance.now() - run.start) / 1000;
      const rate = run.done / Math.max(1e-9, elapsed);
      progress?.update({
        label: options.label,
        task: ti + 1,
        tasks: numTasks,
        epoch: epoch + 1,
        epochs,
        step: step + 1,
        steps: stepsPerEpoch,
        loss: result.terms.task,
        // Progress's throughput field: items (images or examples) per second.
        imagesPerSecond: trainItems / ((performance.now() - t0) / 1000),
        ...(track.unit === undefined ? {} : { unit: track.unit }),
        etaSeconds: config.maxStepsPerEpoch === null ? (run.total - run.done) / rate : NaN,
      });
      step++;
    }
    await recorder.losses(window);
    window = [];
  }
  await timer.timeAsync("method", async () => await method.endTask(ctx));
  const trainSeconds = (performance.now() - t0) / 1000 - probeSeconds;
  return { optimizer, trainItems, trainSeconds };
}
