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
import { createAdam, optimizerStep, type StepResult } from "../../lib/train/step.ts";
import { isFlatAdam } from "../../lib/train/flat_adam.ts";
import { variableGrads } from "../../lib/train/variable_grads.ts";
import { fusedOps } from "../../lib/models/fused_ops.ts";
import { median } from "./report.ts";
import type { BenchSpec, ParamCounts } from "./specs.ts";

// ---------------------------------------------------------------------------
// The TensorFlow.js side

/** What {@link timeTfjsSteps} measured. */
export interface TfjsTiming {
  /** ms of each timed step (after warm-up). */
  msPerStep: number[];
  /** Parameter counts of the model as built. */
  params: ParamCounts;
  /**
   * Peak tensor bytes during one extra profiled step (`tf.profile`), when asked for, plus
   * FlatAdam's moments (8 bytes per trainable parameter, held in JavaScript arrays).
   */
  peakTensorBytes?: number;
  /**
   * Bytes the gradient tape holds for the backward pass at the end of the forward pass of the
   * profiled step ({@link tapeSavedBytes}: distinct buffers, the weights left out), when asked for.
   */
  savedForBackwardBytes?: number;
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
export function timeTfjsSteps(
  spec: BenchSpec,
  options: { steps: number; warmup: number; profile?: boolean },
): Promise<TfjsTiming> {
  return withHarnessModel(spec, async ({ built, step, optimizer }) => {
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
    let savedForBackwardBytes: number | undefined;
    if (options.profile) {
      const info = await tf.profile(async () => {
        await step();
      });
      // FlatAdam keeps its two moments in JavaScript arrays, outside tfjs's tensor count:
      // 8 bytes per trainable parameter, added so that the column compares like with like.
      peakTensorBytes = info.peakBytes + (isFlatAdam(optimizer) ? 8 * built.params.trainable : 0);
      const weights = new Set<unknown>(built.weights.map((w) => w.dataId));
      await step(() => {
        savedForBackwardBytes = tapeSavedBytes(weights);
      });
    }
    return {
      msPerStep: ms,
      params: built.params,
      ...(peakTensorBytes !== undefined ? { peakTensorBytes } : {}),
      ...(savedForBackwardBytes !== undefined ? { savedForBackwardBytes } : {}),
      loss: { first: losses[0] ?? NaN, last: losses[losses.length - 1] ?? NaN },
    };
  });
}

/**
 * Build the harness model of `spec` (seed 0) and an Adam optimiser, give `run` the model and
 * its optimiser step (Adam, clipping, LoRA dropout on, a fresh dropout seed per call; an
 * `afterForward` callback runs inside the gradient tape once the loss is computed), then
 * dispose both and count the tensors left over (0 = no leak).
 *
 * @example
 * ```ts ignore
 * const first = await withHarnessModel(spec, async ({ step }) => (await step()).total);
 * ```
 */
export async function withHarnessModel<R>(
  spec: BenchSpec,
  run: (
    m: {
      built: BuiltTfjs;
      rng: Rng;
      step: (afterForward?: () => void) => Promise<StepResult>;
      optimizer: tf.Optimizer;
    },
  ) => Promise<R>,
): Promise<R & { leakedTensors: number }> {
  const before = tf.memory().numTensors;
  const rng = new Rng(0);
  const built = buildTfjs(spec, rng);
  const optimizer = createAdam({ lr: spec.lr, beta1: spec.beta1, beta2: spec.beta2 });
  let result: R;
  try {
    result = await run({
      built,
      rng,
      optimizer,
      step: (afterForward) =>
        optimizerStep(built.variables, () => {
          const total = built.loss(rng.seed());
          afterForward?.();
          return { total, terms: {} };
        }, { optimizer, clipNorm: spec.clipNorm }),
    });
  } finally {
    optimizer.dispose();
    built.dispose();
  }
  return { ...result, leakedTensors: tf.memory().numTensors - before };
}

/**
 * Bytes of the distinct buffers the active gradient tape holds for the backward pass: every
 * tape node's saved tensors, each buffer (`dataId`) counted once, the buffers in `exclude` (the
 * weights) left out, and so are the saves `lib/train/variable_grads.ts` has already disposed;
 * 0 outside a gradient computation. Read at the end of the forward pass, this is the activation
 * memory the backward pass starts from. It reads `tf.engine().state.activeTape`, engine state
 * that tfjs does not export as API: a diagnostic for the bench, not for training code.
 *
 * @example
 * ```ts ignore
 * optimizerStep(vars, () => { const l = loss(); console.log(tapeSavedBytes(new Set())); return { total: l, terms: {} }; }, opts);
 * ```
 */
export function tapeSavedBytes(exclude: ReadonlySet<unknown>): number {
  const state = tf.engine().state as unknown as { activeTape: { saved?: tf.Tensor[] }[] | null };
  const seen = new Set<unknown>();
  let bytes = 0;
  for (const node of state.activeTape ?? []) {
    for (const t of node.saved ?? []) {
      if (t.isDisposed || exclude.has(t.dataId) || seen.has(t.dataId)) continue;
      seen.add(t.dataId);
      bytes += t.size * (t.dtype === "int32" || t.dtype === "float32" ? 4 : 1);
    }
  }
  return bytes;
}

/** Kernel time of one kernel name in a profiled phase, per step. */
export interface KernelTime {
  /** The kernel's name as tfjs registers it (`BatchMatMul`, `Softmax`, …). */
  name: string;
  /** Calls per step. */
  calls: number;
  /** Milliseconds per step inside the kernel (mean over the profiled steps). */
  ms: number;
}

/** One phase of a training step under {@link profileTfjsStep}. */
export interface PhaseProfile {
  /** Median wall-clock ms of the phase, measured without the profiler. */
  wallMs: number;
  /** Kernel time per kernel name (profiled), largest first. */
  kernels: KernelTime[];
  /**
   * Profile entries that are not kernels of the backend but scopes around them (a
   * `tf.customGrad` function, a composite op such as `softmaxCrossEntropy__op`): their time
   * includes the kernels they ran, which are counted in `kernels`, so they are kept apart.
   */
  scopes: KernelTime[];
  /** Peak tensor bytes during the phase (profiled). */
  peakBytes: number;
}

/** What {@link profileTfjsStep} measured. */
export interface StepProfile {
  /** The loss only (`tf.tidy`, training mode). */
  forward: PhaseProfile;
  /**
   * Loss and the gradients of the trainable variables, computed as `optimizerStep` computes
   * them: the releasing backward pass of `lib/train/variable_grads.ts` with the fused ops on,
   * `tf.variableGrads` with them off.
   */
  forwardBackward: PhaseProfile;
  /** The harness's whole `optimizerStep`: forward, backward, global-norm clipping, Adam. */
  step: PhaseProfile;
  /** Parameter counts of the model as built. */
  params: ParamCounts;
  /** Tensors alive after profiling minus before building the model (0 = no leak). */
  leakedTensors: number;
}

/**
 * Profile the three nested phases of one training step of `spec`'s harness model (seed 0):
 * the forward pass, forward + backward, and the whole `optimizerStep`. Each phase runs
 * `warmup` times, then `steps` times timed by the wall clock (no profiler), then `steps` times
 * under `tf.profile` for the time inside each kernel (the wasm backend times a kernel by the
 * wall clock around its synchronous call; gradient kernels are kernels too) and the peak
 * tensor bytes. Wall time minus kernel time is what runs outside kernels (the tape, tensor
 * bookkeeping, allocation, JavaScript glue).
 *
 * @example
 * ```ts ignore
 * const p = await profileTfjsStep(spec, { steps: 5, warmup: 2 });
 * p.step.kernels[0]; // e.g. { name: "BatchMatMul", calls: 96, ms: 41.2 }
 * ```
 */
export function profileTfjsStep(
  spec: BenchSpec,
  options: { steps: number; warmup: number },
): Promise<StepProfile> {
  return withHarnessModel(spec, async ({ built, rng, step }) => {
    const phases: Record<"forward" | "forwardBackward" | "step", () => Promise<void>> = {
      forward: () => {
        tf.tidy(() => built.loss(rng.seed())).dispose();
        return Promise.resolve();
      },
      forwardBackward: () => {
        const loss = () => built.loss(rng.seed());
        const { value, grads } = fusedOps()
          ? variableGrads(loss, built.variables)
          : tf.variableGrads(loss, built.variables);
        value.dispose();
        tf.dispose(Object.values(grads));
        return Promise.resolve();
      },
      step: async () => {
        await step();
      },
    };
    const out: Partial<Record<keyof typeof phases, PhaseProfile>> = {};
    for (
      const [name, run] of Object.entries(phases) as [keyof typeof phases, () => Promise<void>][]
    ) {
      for (let i = 0; i < options.warmup; i++) await run();
      const wall: number[] = [];
      for (let i = 0; i < options.steps; i++) {
        const t0 = performance.now();
        await run();
        wall.push(performance.now() - t0);
      }
      const totals = new Map<string, { calls: number; ms: number }>();
      let peakBytes = 0;
      for (let i = 0; i < options.steps; i++) {
        const info = await tf.profile(run);
        peakBytes = Math.max(peakBytes, info.peakBytes);
        for (const k of info.kernels) {
          const t = totals.get(k.name) ?? { calls: 0, ms: 0 };
          t.calls += 1;
          t.ms += Number(k.kernelTimeMs);
          totals.set(k.name, t);
        }
      }
      const perStep = [...totals].map(([kernel, t]) => ({
        name: kernel,
        calls: t.calls / options.steps,
        ms: t.ms / options.steps,
      })).sort((a, b) => b.ms - a.ms);
      const backend = tf.getBackend();
      const isKernel = (k: KernelTime) => tf.getKernel(k.name, backend) !== undefined;
      out[name] = {
        wallMs: median(wall),
        peakBytes,
        kernels: perStep.filter(isKernel),
        scopes: perStep.filter((k) => !isKernel(k)),
      };
    }
    return {
      forward: out.forward!,
      forwardBackward: out.forwardBackward!,
      step: out.step!,
      params: built.params,
    };
  });
}

interface BuiltTfjs {
  variables: tf.Variable[];
  /** Every weight of the model, trainable or frozen. */
  weights: tf.Tensor[];
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
      weights: [...base, ...lora, ...head],
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
    weights: [...base, ...lora],
    params: { ...counts, total: counts.base + counts.lora, trainable: sizeOf(variables) },
    loss: (seed) => {
      const t = tf.tensor2d(ids, [spec.batch, spec.seqLength], "int32");
      return lmLoss(model.logits(t, { training: true, seed }), ids);
    },
    dispose: () => model.dispose(),
  };
}
