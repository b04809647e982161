/**
 * What the class-incremental trainer needs from an image model: logits over
 * all head outputs, plus the LoRA sites and head variables a method may train.
 * Prompt methods (L2P, DualPrompt) additionally use the optional prompted
 * forward pass and the frozen query feature.
 *
 * @module
 */

import type { AdaptedModel } from "./backbone.ts";
import type { Prompts } from "./prompt.ts";
import type { Tensor2D, Tensor4D } from "../tensor.ts";

/** Options of {@link ImageClassifier.promptedLogits}. */
export interface PromptedForwardOptions {
  /** Training mode (LoRA dropout on). */
  training: boolean;
  /** Dropout seed when training. */
  seed?: number;
  /** Prompt tokens and/or per-block key/value prefixes, [B, P, dim] each. */
  prompts: Prompts;
  /**
   * The head's input: `"cls"` (default), the final-LN [CLS] output, or `"prompts"`,
   * the mean of the prompt tokens' final-LN outputs (L2P).
   */
  pool?: "cls" | "prompts";
}

/** An image classifier with LoRA sites and one head over all classes of the stream. */
export interface ImageClassifier extends AdaptedModel {
  /** Number of head outputs (all classes of the stream). */
  readonly numOutputs: number;
  /** Logits [B, numOutputs] for NHWC images [B, H, W, 3]. `seed` drives dropout when training. */
  logits(x: Tensor4D, options: { training: boolean; seed?: number }): Tensor2D;
  /** The backbone's feature vector [B, dim] (the head's input), when the model exposes it. */
  features?(x: Tensor4D, options: { training: boolean; seed?: number }): Tensor2D;
  /** The head alone on features [B, dim] → logits [B, numOutputs], when exposed. */
  headLogits?(features: Tensor2D): Tensor2D;
  /** Token width and number of blocks, for building prompts (prompt-capable models only). */
  readonly promptShape?: { readonly dim: number; readonly depth: number };
  /** Logits [B, numOutputs] of the prompted forward pass (prompt-capable models only). */
  promptedLogits?(x: Tensor4D, options: PromptedForwardOptions): Tensor2D;
  /**
   * The query feature of prompt methods [B, dim]: the final-LN [CLS] of the pre-trained
   * backbone in evaluation mode, with no prompts and no LoRA branch (nor adapter pool).
   */
  queryFeatures?(x: Tensor4D): Tensor2D;
}

/** The members of an image model that prompt methods (L2P, DualPrompt) call. */
export type PromptCapable = Required<
  Pick<ImageClassifier, "promptShape" | "promptedLogits" | "queryFeatures">
>;

/**
 * `model` as a prompt-capable image model, or an error naming the method that
 * needs it (`who`) and what is missing.
 *
 * @example
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import { promptCapable } from "./image_classifier.ts";
 * assertThrows(() => promptCapable({}, { who: "L2P" }), Error, "L2P needs a prompt-capable");
 * ```
 */
export function promptCapable(model: unknown, options: { who: string }): PromptCapable {
  const m = model as Partial<ImageClassifier>;
  if (!m.promptedLogits || !m.queryFeatures || !m.promptShape) {
    throw new Error(
      `${options.who} needs a prompt-capable image model (promptShape, promptedLogits, ` +
        "queryFeatures), e.g. createVitClassifier",
    );
  }
  return m as PromptCapable;
}
