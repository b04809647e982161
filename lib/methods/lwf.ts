/**
 * LwF (Li & Hoiem 2016) on the LoRA adapter and head (spec §8.3): the model
 * as it was before the task is the teacher; on each batch of the new task the
 * student's outputs are distilled towards the teacher's with a temperature-T
 * KL divergence.
 *
 * ```
 * beginTask   snapshot the trainable variables (task ≥ 2)
 * beforeStep  swap the snapshot in, teacher logits = ctx.batch.logits(), swap back
 * loss        task + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))
 * ```
 *
 * What is distilled: class-incremental, the outputs of the classes seen before
 * the task (those below `ctx.batch.outputRange`; nothing on the first task or
 * when the range starts at 0); LM, the next-token distribution at the scored
 * (answer) positions. The teacher runs in evaluation mode (no dropout).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { ContinualMethod, MethodContext, MethodState } from "./method.ts";
import { taskLossOnly } from "./method.ts";
import type { Scalar, Tensor } from "../tensor.ts";

/** LwF's options. */
export interface LwfOptions {
  /** Distillation temperature T (the spec's 2). */
  temperature: number;
  /** Weight α of the distillation term. */
  alpha: number;
}

/** The defaults. */
export const LWF_DEFAULTS: Readonly<LwfOptions> = Object.freeze({ temperature: 2, alpha: 1 });

/**
 * T²·KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over rows ([N, C]
 * logits; higher ranks are flattened to rows over the last axis). `weights`
 * (one per row) makes it a weighted mean (LM: the scored positions).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { distillationLoss } from "./lwf.ts";
 * const z = tf.tensor2d([[1, 2, 3]]);
 * distillationLoss(z, z, { temperature: 2 }); // 0
 * ```
 */
export function distillationLoss(
  teacher: Tensor,
  student: Tensor,
  options: { temperature: number; weights?: Float32Array },
): Scalar {
  const t = options.temperature;
  return tf.tidy(() => {
    const c = teacher.shape[teacher.rank - 1];
    const logP = tf.logSoftmax(tf.div(tf.reshape(teacher, [-1, c]), t));
    const logQ = tf.logSoftmax(tf.div(tf.reshape(student, [-1, c]), t));
    const rows = tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1);
    const n = rows.shape[0];
    const w = options.weights;
    const mean = w
      ? tf.div(tf.sum(tf.mul(rows, tf.tensor1d(w))), Math.max(1e-12, w.reduce((a, b) => a + b, 0)))
      : tf.div(tf.sum(rows), n);
    return tf.mul(mean, t * t) as Scalar;
  });
}

/** The slice of the logits LwF distils (null: nothing to distil). */
function distilled(ctx: MethodContext, logits: Tensor): Tensor | null {
  const range = ctx.batch?.outputRange;
  if (range === undefined) return logits;
  return range[0] > 0 ? tf.slice(logits, [0, 0], [-1, range[0]]) : null;
}

/**
 * Create LwF.
 *
 * @example
 * ```ts
 * import { createLwf } from "./lwf.ts";
 * createLwf({}).options(); // { temperature: 2, alpha: 1 }
 * ```
 */
export function createLwf(options: Record<string, unknown> = {}): ContinualMethod {
  const unknown = Object.keys(options).filter((k) => !(k in LWF_DEFAULTS));
  if (unknown.length > 0) throw new Error(`unknown LwF option(s): ${unknown.join(", ")}`);
  const opts: LwfOptions = { ...LWF_DEFAULTS, ...options } as LwfOptions;
  if (!(opts.temperature > 0 && opts.alpha >= 0)) throw new Error("LwF: bad temperature or alpha");
  let snapshot: Tensor[] = [];
  let teacher: Tensor | null = null;
  const trainable = (ctx: MethodContext) => [
    ...ctx.model.loraSites().flatMap((s) => [s.a, s.b]),
    ...ctx.model.headVariables(),
  ];

  return {
    name: "lwf",
    options: () => ({ ...opts }),
    beginTask(ctx) {
      tf.dispose(snapshot);
      snapshot = ctx.taskIndex > 0 ? trainable(ctx).map((v) => tf.clone(v)) : [];
    },
    trainableVariables: trainable,
    beforeStep(ctx) {
      if (snapshot.length === 0 || !ctx.batch || opts.alpha === 0) return;
      const vars = trainable(ctx);
      const current = vars.map((v) => tf.clone(v));
      vars.forEach((v, i) => v.assign(snapshot[i]));
      try {
        const full = ctx.batch.logits();
        const d = distilled(ctx, full);
        if (d !== full) full.dispose();
        teacher = d;
      } finally {
        vars.forEach((v, i) => v.assign(current[i]));
        tf.dispose(current);
      }
    },
    loss(ctx, taskLoss, outputs) {
      if (teacher === null || !outputs) return taskLossOnly(taskLoss);
      const student = distilled(ctx, outputs.logits)!;
      const kl = distillationLoss(teacher, student, {
        temperature: opts.temperature,
        weights: ctx.batch?.scoredPositions,
      });
      return { total: tf.add(taskLoss, tf.mul(kl, opts.alpha)) as Scalar, terms: { lwf: kl } };
    },
    afterStep() {
      teacher?.dispose();
      teacher = null;
    },
    endTask() {
      tf.dispose(snapshot);
      snapshot = [];
    },
    state: (): MethodState => ({ json: { options: opts }, arrays: {} }),
    restore: () => {},
    dispose() {
      tf.dispose(snapshot);
      snapshot = [];
      teacher?.dispose();
      teacher = null;
    },
  };
}
