/**
 * The TensorFlow.js side of `deno task bench`: {@link timeTfjsSteps} builds
 * the harness model of a {@link BenchSpec} and times `optimizerStep` (Adam,
 * clipping) on synthetic inputs.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { createDecoder } from "../../lib/models/decoder.ts";
import { createVitClassifier } from "../../lib/models/vit_classifier.ts";
import { Rng } from "../../lib/random.ts";
import { lmLoss } from "../../lib/train/lm_loss.ts";
import { createAdam, optimizerStep } from "../../lib/train/step.ts";
import type { BenchSpec, ParamCounts } from "./specs.ts";

// ---------------------------------------------------------------------------
// The TensorFlow.js side

/** What {@link timeTfjsSteps} measured. */
export interface TfjsTiming {
  /** ms of each timed step (after warm-up). */
  msPerStep: number[];
  /** Parameter counts of the model as built. */
  params: ParamCounts;
  /** Peak tensor bytes during one extra profiled step (`tf.profile`), when asked for. */
  peakTensorBytes?: number;
  /** Tensors alive after the steps minus before building the model (0 = no leak). */
  leakedTensors: number;
  /** Loss of the first and last step (a sanity check that training moves). */
  loss: { first: number; last: number };
}

/**
 * Build the harness model of `spec` (seed 0), then run `warmup` + `steps`
 * optimiser steps (Adam, clipping, LoRA dropout on) on a fixed synthetic
 * batch, timing each of the last `steps`; optionally one more step under
 * `tf.profile` for its peak tensor memory. The batch tensors are made inside
 * each step from typed arrays, as the trainers do. Everything is disposed,
 * and the tensors left over are counted.
 *
 * @example
 * ```ts ignore
 * const t = await timeTfjsSteps(spec, { steps: 5, warmup: 2, profile: true });
 * ```
 */
export async function timeTfjsSteps(
  spec: BenchSpec,
  options: { steps: number; warmup: number; profile?: boolean },
): Promise<TfjsTiming> {
  const before = tf.memory().numTensors;
  const t = await runTfjsSteps(spec, options);
  return { ...t, leakedTensors: tf.memory().numTensors - before };
}

async function runTfjsSteps(
  spec: BenchSpec,
  options: { steps: number; warmup: number; profile?: boolean },
): Promise<Omit<TfjsTiming, "leakedTensors">> {
  const rng = new Rng(0);
  const built = buildTfjs(spec, rng);
  const optimizer = createAdam({ lr: spec.lr, beta1: spec.beta1, beta2: spec.beta2 });
  try {
    const step = () =>
      optimizerStep(built.variables, () => ({ total: built.loss(rng.seed()), terms: {} }), {
        optimizer,
        clipNorm: spec.clipNorm,
      });
    const losses: number[] = [];
    for (let i = 0; i < options.warmup; i++) losses.push((await step()).total);
    const ms: number[] = [];
    for (let i = 0; i < options.steps; i++) {
      const t0 = performance.now();
      const r = await step();
      ms.push(performance.now() - t0);
      losses.push(r.total);
    }
    let peakTensorBytes: number | undefined;
    if (options.profile) {
      const info = await tf.profile(async () => {
        await step();
      });
      peakTensorBytes = info.peakBytes;
    }
    return {
      msPerStep: ms,
      params: built.params,
      ...(peakTensorBytes !== undefined ? { peakTensorBytes } : {}),
      loss: { first: losses[0] ?? NaN, last: losses[losses.length - 1] ?? NaN },
    };
  } finally {
    optimizer.dispose();
    built.dispose();
  }
}

interface BuiltTfjs {
  variables: tf.Variable[];
  params: ParamCounts;
  loss(seed: number): tf.Scalar;
  dispose(): void;
}

function sizeOf(vars: tf.Variable[]): number {
  return vars.reduce((a, v) => a + v.size, 0);
}

function buildTfjs(spec: BenchSpec, rng: Rng): BuiltTfjs {
  const dataRng = new Rng(1);
  if (spec.model === "vit") {
    const c = spec.config;
    const model = createVitClassifier(c, { numOutputs: spec.numClasses, rng });
    const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
    const head = model.headVariables();
    const base = [...model.vit.baseWeights().values()];
    if (spec.mode === "full") model.vit.setBaseTrainable(true);
    const variables = spec.mode === "lora" ? [...lora, ...head] : [...base, ...head];
    const n = spec.batch * c.imageSize * c.imageSize * c.channels;
    const x = Float32Array.from({ length: n }, () => dataRng.normal());
    const y = Int32Array.from({ length: spec.batch }, () => dataRng.int(spec.numClasses));
    const counts = { base: sizeOf(base), lora: sizeOf(lora), head: sizeOf(head) };
    return {
      variables,
      params: {
        ...counts,
        total: counts.base + counts.lora + counts.head,
        trainable: sizeOf(variables),
      },
      loss: (seed) => {
        const images = tf.tensor4d(x, [spec.batch, c.imageSize, c.imageSize, c.channels]);
        const logits = model.logits(images, { training: true, seed });
        const onehot = tf.oneHot(tf.tensor1d(y, "int32"), spec.numClasses);
        return tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
      },
      dispose: () => model.dispose(),
    };
  }
  const c = spec.config;
  const model = createDecoder(c, { rng });
  const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
  const base = [...model.baseWeights().values()];
  if (spec.mode === "full") model.setBaseTrainable(true);
  const variables = spec.mode === "lora" ? lora : base;
  const ids = Int32Array.from(
    { length: spec.batch * spec.seqLength },
    () => dataRng.int(c.vocabSize),
  );
  const counts = { base: sizeOf(base), lora: sizeOf(lora), head: 0 };
  return {
    variables,
    params: { ...counts, total: counts.base + counts.lora, trainable: sizeOf(variables) },
    loss: (seed) => {
      const t = tf.tensor2d(ids, [spec.batch, spec.seqLength], "int32");
      return lmLoss(model.logits(t, { training: true, seed }), ids);
    },
    dispose: () => model.dispose(),
  };
}
