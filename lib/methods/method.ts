/**
 * The one interface every continual-learning method implements.
 *
 * The trainer owns the loop, the data and the evaluation (Mammoth style); a
 * method only hooks into it:
 *
 * ```
 * for each task:   beginTask
 *   for each epoch:  beginEpoch
 *     for each batch: beforeStep → [tape: task loss → loss()] → clip → Adam → afterStep
 *   endTask
 *   evaluate every task seen so far
 * ```
 *
 * `loss()` runs inside the gradient tape and must be synchronous; any work
 * that reads tensor values (bandit draws, signatures) belongs in
 * `beforeStep` / `afterStep`, which may be async.
 *
 * Optional hooks used by the classic baselines (all backward compatible):
 * `ctx.batch` (the step's batch, set before `beforeStep`: LwF's teacher
 * logits), the third argument of `loss()` (the step's full training logits),
 * `replayAll` (Joint: train on the union of tasks 0..t), `evalPrompt` (FIX:
 * rewrite LM test prompts), `ctx.examples` (stored training examples of the
 * tasks seen so far and the task loss on them: GEM's memory, HiDe-LoRA's
 * class statistics) and `forward` (replace the class-incremental logits,
 * in training and evaluation: a per-sample adapter or prompt choice). A
 * method whose `trainableVariables` is empty is not optimised at all (the
 * trainers skip the batches; FIX). On the LM track, `inputPrefix` puts input
 * embeddings (learned prompts) before the tokens, in the training step,
 * `ctx.batch.logits`, `ctx.examples.loss` and generation (DualPrompt, L2P).
 *
 * @module
 */

import type { AdaptedModel } from "../models/backbone.ts";
import type { Decoder } from "../models/decoder.ts";
import type { ImageClassifier } from "../models/image_classifier.ts";
import type { Rng, RngState } from "../random.ts";
import type { Timer } from "./timer.ts";
import type { NamedTensorMap, Scalar, Tensor, Tensor2D, Tensor4D, Variable } from "../tensor.ts";

/** Which experiment track a method is built for (sets track-specific defaults). */
export type Track = "vit" | "lm";

/** Where a method is being called from: the model, the task, the position in the schedule. */
export interface MethodContext {
  /** The model's LoRA sites and head. */
  model: AdaptedModel;
  /** 0-based index of the current task. */
  taskIndex: number;
  /** Number of tasks in the stream. */
  numTasks: number;
  /** 0-based epoch within the task. */
  epoch: number;
  /** Epochs of this task. */
  epochs: number;
  /** 0-based step within the epoch (the spec's t). */
  step: number;
  /** Steps in one epoch of this task (the spec's T). */
  stepsPerEpoch: number;
  /** The method's own random stream (bandit draws, sampling). */
  rng: Rng;
  /** Timer for the method's named components. */
  timer: Timer;
  /** The current step's batch: set by the trainers before `beforeStep`, cleared after `afterStep`. */
  batch?: StepBatch;
  /** Training examples of the tasks seen so far (set by both trainers). */
  examples?: ExampleAccess;
}

/**
 * A set of training examples of one task, by position in that task's training split.
 * Opaque to a method beyond these fields: only {@link ExampleAccess} reads the data.
 */
export interface ExampleSet {
  /** 0-based task the examples belong to. */
  readonly taskIndex: number;
  /** Positions in the task's training split. */
  readonly indices: readonly number[];
}

/**
 * The trainers' access to stored training examples. It never reads a task after the
 * current one: {@link ExampleAccess.select} throws for it, so a method cannot see
 * future data (the order of reads is observable through `onRead`).
 */
export interface ExampleAccess {
  /** Number of training examples of task `taskIndex` (≤ the current task). */
  trainSize(taskIndex: number): number;
  /** Examples `indices` of task `taskIndex`'s training split (≤ the current task). */
  select(taskIndex: number, indices: readonly number[]): ExampleSet;
  /**
   * The task loss of the model on a set, in evaluation mode (no dropout): cross-entropy over
   * the set's task's head outputs (class-incremental, through the method's `forward` when it
   * has one) or the masked answer-token cross-entropy (LM). Differentiable: call it inside a
   * tape or `tidy`.
   */
  loss(set: ExampleSet): Scalar;
  /** Class-incremental only: normalised images [n, H, W, 3] (caller disposes) and head outputs. */
  images?(set: ExampleSet): { x: Tensor4D; y: Int32Array };
}

/**
 * The batch of the current step, as far as a method may use it (LwF computes
 * its teacher's logits from it in `beforeStep`).
 */
export interface StepBatch {
  /** Examples in the batch. */
  size: number;
  /**
   * Evaluation-mode (no dropout) logits of the model as it is now on this batch, over all
   * outputs: [B, numOutputs] (class-incremental) or [B, T, vocab] (LM). The caller owns
   * the tensor. Call it outside the tape (in `beforeStep`).
   */
  logits(): Tensor;
  /** Class-incremental: the head outputs [start, end) the task loss is computed over. */
  outputRange?: [number, number];
  /**
   * LM: [B·T] weights, 1 at positions whose next-token prediction the task loss scores
   * (answer tokens and EOS), 0 elsewhere.
   */
  scoredPositions?: Float32Array;
}

/** What the trainer hands `loss()` besides the task loss (inside the tape). */
export interface StepOutputs {
  /** The step's training-mode logits over all outputs (same layout as {@link StepBatch.logits}). */
  logits: Tensor;
  /**
   * Build a term on `tap(term, v)` instead of the variable `v` (an identity) and the trainer
   * reports that term's gradient, and the task loss's gradient without it, to `afterStep`
   * (`StepInfo.termGradients`, `StepInfo.taskGradients`) from the same backward pass.
   * Absent when a caller does not support taps (then build on `v` directly).
   */
  tap?: (term: string, v: Variable) => Tensor;
}

/** Where an LM test prompt comes from, for {@link ContinualMethod.evalPrompt}. */
export interface EvalPromptContext {
  /** 0-based index of the evaluated task. */
  taskIndex: number;
  /** Task name (e.g. `MeetingBank`). */
  taskName: string;
  /** 0-based index of the example in the evaluated test list. */
  exampleIndex: number;
  /** The task's training examples (never the evaluated split). */
  train: readonly { prompt: string; answer: string }[];
}

/** When {@link ContinualMethod.inputPrefix} is called: which task, training or not. */
export interface LmPrefixAt {
  /**
   * The task of the rows: the task being trained (training step, `ctx.batch.logits`), the
   * set's task (`ctx.examples.loss`) or the evaluated task (generation). At generation this is
   * task identity at test time, as the released DualPrompt uses it; a method that infers the
   * task from the input (L2P) ignores it.
   */
  taskIndex: number;
  /**
   * True only in the training step, inside the gradient tape (the prefix is differentiated and
   * `loss()` follows in the same tape); false in `ctx.batch.logits`, `ctx.examples.loss` and
   * generation.
   */
  training: boolean;
}

/** The rows {@link ContinualMethod.inputPrefix} makes a prefix for. */
export interface LmPrefixRows {
  /** The decoder (frozen features for a query: `model.features`). */
  model: Decoder;
  /**
   * int32 token ids [B, T], left-padded: BOS + prompt + answer + EOS (training, examples) or
   * BOS + prompt (generation).
   */
  ids: Tensor2D;
  /** [B, T] attention mask: 1 = real token, 0 = padding. */
  attentionMask: Tensor2D;
  /**
   * [B, T] float32, 1 at the prompt's tokens (BOS and prompt; not padding, answer or EOS), so
   * a query pooled over it is the same in training and at generation.
   */
  promptMask: Tensor2D;
}

/** The loss a method returns: the total to differentiate and its named terms for `losses.csv`. */
export interface LossParts {
  /** Scalar to differentiate. */
  total: Scalar;
  /** Named terms (e.g. `regularizer`), logged alongside `task`. */
  terms: Record<string, Scalar>;
}

/** What the trainer tells `afterStep`. */
export interface StepInfo {
  /** The step's task-loss value. */
  taskLoss: number;
  /**
   * Gradients of the total loss of the variables named by `gradientVariables`, before
   * `adjustGradients` and clipping.
   */
  gradients?: Float32Array[];
  /**
   * The same gradients minus every tapped term's (`StepOutputs.tap`): the task loss's own
   * gradient when each term the method adds reaches the variables only through taps
   * (TreeLoRA's paper penalty, EWC's penalty). Equal to `gradients` when nothing is tapped.
   */
  taskGradients?: Float32Array[];
  /** Per tapped term, its gradient of the same variables. */
  termGradients?: Record<string, Float32Array[]>;
}

/** A method's checkpointable state: JSON plus named float arrays. */
export interface MethodState {
  /** Plain JSON data (counters, options, RNG states). */
  json: Record<string, unknown>;
  /** Named arrays (stored signatures, adapters). */
  arrays: Record<string, { shape: number[]; data: Float32Array }>;
  /** RNG state of the method stream when relevant. */
  rng?: RngState;
}

/** What every CL method implements. */
export interface ContinualMethod {
  /** Registry name (`seqlora`, `treelora`, …). */
  readonly name: string;
  /** The resolved options, written into `config.json`. */
  options(): Record<string, unknown>;
  /** Called once before the first epoch of a task. */
  beginTask(ctx: MethodContext): void | Promise<void>;
  /** Called at the start of every epoch. */
  beginEpoch?(ctx: MethodContext): void | Promise<void>;
  /** The variables the optimiser updates during this task. */
  trainableVariables(ctx: MethodContext): Variable[];
  /** Called before every step, outside the gradient tape. */
  beforeStep?(ctx: MethodContext): void | Promise<void>;
  /**
   * Inside the tape: the task loss plus the method's terms. Synchronous. `outputs` (given by
   * both trainers) holds the step's full logits, for terms on the outputs (LwF).
   */
  loss(ctx: MethodContext, taskLoss: Scalar, outputs?: StepOutputs): LossParts;
  /**
   * Rewrite the step's gradients before clipping and the optimiser (gradient projection:
   * OGD, GEM). Synchronous, inside the step's `tidy`; `grads` is keyed by variable name.
   */
  adjustGradients?(ctx: MethodContext, grads: NamedTensorMap): NamedTensorMap;
  /** Variables whose gradients (before clipping) `afterStep` should receive, in this order. */
  gradientVariables?(ctx: MethodContext): Variable[];
  /** Called after the optimiser step, with the step's task-loss value (and requested gradients). */
  afterStep?(ctx: MethodContext, info: StepInfo): void | Promise<void>;
  /** Called once after the last epoch of a task, before evaluation. */
  endTask(ctx: MethodContext): void | Promise<void>;
  /** What the method wants recorded about the task just finished (e.g. TreeLoRA's tree). */
  taskSummary?(): Record<string, unknown>;
  /**
   * Further variables the method trains that the trainer checkpoint must hold, beyond the LoRA
   * A/B and the head (e.g. the base weights under full fine-tuning). Stored and restored by
   * variable name (without the model's unique scope); absent = none.
   */
  checkpointVariables?(model: AdaptedModel): Variable[];
  /** Checkpointable state. */
  state(): MethodState;
  /** Restore a state returned by {@link ContinualMethod.state}. */
  restore(state: MethodState): void;
  /** Release tensors the method holds. */
  dispose(): void;
  /**
   * When true, the trainers draw the batches of task t from the union of tasks 0..t
   * (class-incremental: the loss covers every seen class). Joint training, the upper bound.
   */
  readonly replayAll?: boolean;
  /**
   * Class-incremental: the logits [B, numOutputs] to use instead of `model.logits`, in the
   * training step, in `ctx.batch.logits`, in `ctx.examples.loss` and in evaluation. For
   * methods that choose an adapter or prompts per sample (HiDe-LoRA, L2P, DualPrompt).
   * `taskIndex` is the task being trained; it is absent at evaluation (no task identity).
   */
  forward?(
    model: ImageClassifier,
    x: Tensor4D,
    options: { training: boolean; seed?: number; taskIndex?: number },
  ): Tensor2D;
  /**
   * Class-incremental, diagnostics only: the task each image of `x` would be routed to at
   * evaluation (task-identity inference, TII; HiDe-LoRA). The trainer compares it with the
   * true task of each test image and records the TII accuracy (`task_identity.csv`); the
   * prediction itself never sees the true task.
   */
  inferTask?(model: ImageClassifier, x: Tensor4D): Int32Array;
  /** LM evaluation: rewrite a test prompt before generation (FIX's demonstrations). */
  evalPrompt?(prompt: string, at: EvalPromptContext): string;
  /**
   * LM: input embeddings to put before the rows' token embeddings — [P, dim] (every row) or
   * [B, P, dim], in the embedding table's space; undefined = none (see `Decoder.logits`'s
   * `prefix`). Called by the LM trainer in the training step (inside the tape, `training`
   * true: the prefix's variables get gradients), in `ctx.batch.logits`, in
   * `ctx.examples.loss` and once per prompt batch at generation. Synchronous. The result is
   * disposed by the caller's `tidy` (it may be a variable: it is never disposed directly).
   * The trainers' logits and the loss cover the token positions only. For prompt-tuning
   * methods (DualPrompt, L2P).
   */
  inputPrefix?(at: LmPrefixAt, rows: LmPrefixRows): Tensor | undefined;
}

/** The loss parts of a method that adds nothing to the task loss. */
export function taskLossOnly(taskLoss: Scalar): LossParts {
  return { total: taskLoss, terms: {} };
}
