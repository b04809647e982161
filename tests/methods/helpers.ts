/** Shared fixtures of the baseline-method tests: a micro ViT, a 2–3 task stream, a context. */

import * as tf from "@tensorflow/tfjs";
import { splitClassIncremental } from "../../lib/data/class_split.ts";
import { generateSyntheticImages } from "../../lib/data/synthetic_images.ts";
import type { MethodContext } from "../../lib/methods/method.ts";
import { VIT_PRESETS } from "../../lib/models/vit.ts";
import { createVitClassifier, type VitClassifier } from "../../lib/models/vit_classifier.ts";
import { Rng } from "../../lib/random.ts";
import {
  type RunRecorder,
  trainClassIncremental,
  type TrainConfig,
} from "../../lib/train/class_incremental.ts";
import type { EvalRow } from "../../lib/train/evaluate.ts";
import type { LossRecord } from "../../lib/train/task_loop.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { type Decoder, lmAdaptedModel } from "../../lib/models/decoder.ts";
import { Timer } from "../../lib/methods/timer.ts";

export const CONFIG: TrainConfig = {
  epochs: 1,
  batchSize: 8,
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.999,
  clipNorm: 1,
  resetOptimizerPerTask: true,
  maxStepsPerEpoch: 3,
  logEvery: 1,
  evalBatchSize: 64,
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};

export function stream(numTasks = 2) {
  const { train, test } = generateSyntheticImages({
    seed: 5,
    trainPerClass: 4,
    testPerClass: 2,
    numCoarse: 2 * numTasks,
    finePerCoarse: 2,
  });
  return splitClassIncremental(train, test, { numTasks, orderSeed: 0 });
}

export function microModel(numOutputs: number, dropout = 0): VitClassifier {
  return createVitClassifier({ ...VIT_PRESETS.micro, lora: { rank: 2, alpha: 4, dropout } }, {
    numOutputs,
    rng: new Rng(0),
  });
}

export function context(model: VitClassifier, over: Partial<MethodContext> = {}): MethodContext {
  return {
    model,
    taskIndex: 0,
    numTasks: 2,
    epoch: 0,
    epochs: 1,
    step: 0,
    stepsPerEpoch: 3,
    rng: new Rng(9),
    timer: new Timer(),
    ...over,
  };
}

export const silentRecorder = (losses: { task: number; term: string; value: number }[] = []) =>
  ({
    taskDone: () => Promise.resolve(),
    losses: (l) => {
      losses.push(...l);
      return Promise.resolve();
    },
  }) satisfies RunRecorder;

/** `n` random NHWC 32×32 images (standard normal values from `seed`). */
export function images(n: number, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(Float32Array.from({ length: n * 32 * 32 * 3 }, () => rng.normal()), [
    n,
    32,
    32,
    3,
  ]);
}

/** Every base weight and LoRA variable of the model, copied. */
export function frozenValues(model: VitClassifier): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const v of model.baseVariables!()) out.set(v.name, v.dataSync() as Float32Array);
  for (const s of model.loraSites()) {
    out.set(s.a.name, s.a.dataSync() as Float32Array);
    out.set(s.b.name, s.b.dataSync() as Float32Array);
  }
  return out;
}

/** Whether two arrays of the same length differ anywhere. */
export function changed(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.some((x, i) => x !== b[i]);
}

/** A method context on the LM track: task 1 of 2, one step, method seed 3. */
export function lmContext(model: Decoder, over: Partial<MethodContext> = {}): MethodContext {
  return {
    model: lmAdaptedModel(model),
    taskIndex: 0,
    numTasks: 2,
    epoch: 0,
    epochs: 1,
    step: 0,
    stepsPerEpoch: 1,
    rng: new Rng(3),
    timer: new Timer(),
    ...over,
  };
}

/** A recorder that keeps every finished task's evaluation row and summary, and every loss record. */
export function collectingRecorder() {
  const rows: EvalRow[] = [];
  const summaries: Record<string, unknown>[] = [];
  const losses: LossRecord[] = [];
  const recorder: RunRecorder = {
    taskDone: (_t, r) => {
      rows.push(r.row);
      summaries.push(r.summary ?? {});
      return Promise.resolve();
    },
    losses: (l) => {
      losses.push(...l);
      return Promise.resolve();
    },
  };
  return { recorder, rows, summaries, losses };
}

/** Train `method` through the stream with {@link CONFIG}, `epochs` per task, data seed 1, method seed 2. */
export async function trainMicro(
  s: ReturnType<typeof stream>,
  options: {
    model: VitClassifier;
    method: ContinualMethod;
    recorder: RunRecorder;
    epochs?: number;
  },
): Promise<void> {
  await trainClassIncremental(s, {
    model: options.model,
    method: options.method,
    config: { ...CONFIG, epochs: options.epochs ?? 2 },
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: options.recorder,
  });
}
