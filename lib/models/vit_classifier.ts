/**
 * A ViT backbone plus one linear head over all classes of a stream: the
 * {@link ImageClassifier} of the class-incremental trainer.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../random.ts";
import type { ImageClassifier } from "./image_classifier.ts";
import { createLinearHead, type LinearHead } from "./linear_head.ts";
import type { TensorMap } from "./safetensors.ts";
import { createVit, type Vit, type VitConfig } from "./vit.ts";

/** A ViT classifier; `vit` and `head` stay reachable for weight I/O. */
export interface VitClassifier extends ImageClassifier {
  /** The backbone. */
  readonly vit: Vit;
  /** The classifier head. */
  readonly head: LinearHead;
  /** Free every variable. */
  dispose(): void;
}

/**
 * Build a ViT with frozen base weights (from `baseWeights`, e.g. the cached
 * pre-trained backbone) and a fresh head and LoRA adapters drawn from `rng`.
 * It is prompt-capable: `promptedLogits` runs the ViT with prompts
 * (`VitForwardOptions`), `queryFeatures` the adapter-free base model.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../random.ts";
 * import { VIT_PRESETS } from "./vit.ts";
 * import { createVitClassifier } from "./vit_classifier.ts";
 * const model = createVitClassifier(VIT_PRESETS.micro, { numOutputs: 10, rng: new Rng(0) });
 * const logits = model.logits(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D, { training: false });
 * logits.dispose();
 * model.dispose();
 * ```
 */
export function createVitClassifier(
  config: VitConfig,
  options: { numOutputs: number; rng: Rng; baseWeights?: TensorMap },
): VitClassifier {
  const vit = createVit(config, { rng: options.rng, weights: options.baseWeights });
  vit.setBaseTrainable(false);
  const head = createLinearHead({
    dim: config.dim,
    numClasses: options.numOutputs,
    rng: options.rng,
  });
  return {
    vit,
    head,
    numOutputs: options.numOutputs,
    logits: (x, o) => tf.tidy(() => head.logits(vit.features(x, o))),
    features: (x, o) => vit.features(x, o),
    headLogits: (f) => head.logits(f),
    promptShape: Object.freeze({ dim: vit.config.dim, depth: vit.config.depth }),
    promptedLogits: (x, o) =>
      tf.tidy(() =>
        head.logits(
          vit.features(x, { training: o.training, seed: o.seed, prompts: o.prompts, pool: o.pool }),
        )
      ),
    queryFeatures: (x) => vit.features(x, { training: false, lora: false }),
    loraSites: () => vit.loraSites(),
    headVariables: () => head.variables(),
    baseVariables: () => [...vit.baseWeights().values()],
    dispose() {
      head.dispose();
      vit.dispose();
    },
  };
}
