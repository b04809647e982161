/**
 * What the class-incremental trainer needs from an image model: logits over
 * all head outputs, plus the LoRA sites and head variables a method may train.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";
import type { AdaptedModel } from "./backbone.ts";

/** An image classifier with LoRA sites and one head over all classes of the stream. */
export interface ImageClassifier extends AdaptedModel {
  /** Number of head outputs (all classes of the stream). */
  readonly numOutputs: number;
  /** Logits [B, numOutputs] for NHWC images [B, H, W, 3]. `seed` drives dropout when training. */
  logits(x: tf.Tensor4D, options: { training: boolean; seed?: number }): tf.Tensor2D;
  /** The backbone's feature vector [B, dim] (the head's input), when the model exposes it. */
  features?(x: tf.Tensor4D, options: { training: boolean; seed?: number }): tf.Tensor2D;
  /** The head alone on features [B, dim] → logits [B, numOutputs], when exposed. */
  headLogits?(features: tf.Tensor2D): tf.Tensor2D;
}
