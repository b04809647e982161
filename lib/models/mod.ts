/**
 * Models: the ViT backbone with LoRA, its building blocks, the classifier
 * head, weight files, and the tfjs gradient workaround.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createLinearHead, createVit, VIT_PRESETS } from "./mod.ts";
 * import { Rng } from "../random.ts";
 * const rng = new Rng(0);
 * const vit = createVit(VIT_PRESETS.micro, { rng });
 * const head = createLinearHead({ dim: vit.config.dim, numClasses: 10, rng });
 * const logits = tf.tidy(() =>
 *   head.logits(vit.features(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D, { training: false }))
 * );
 * logits.dispose();
 * head.dispose();
 * vit.dispose();
 * ```
 *
 * @module
 */

export type { AdaptedModel, LoraConfig, LoraSite, PoolAdapter } from "./backbone.ts";
export { addPoolAdapter, clearPool, resetLiveAdapter, TaskAdapters } from "./adapter_pool.ts";
export type { ImageClassifier } from "./image_classifier.ts";
export {
  FAST_MATMUL_GRADIENT,
  isFastMatMulGradientRegistered,
  registerFastMatMulGradient,
  restoreStockMatMulGradient,
} from "./fast_grads.ts";
export { makeVariable, truncatedNormal, uniformArray, uniqueScope } from "./init.ts";
export {
  geluTanh,
  layerNorm,
  linear,
  type LinearParams,
  type LoraForward,
  multiHeadAttention,
  type NormParams,
  siteSeed,
} from "./layers.ts";
export { createLoraSite, loraDelta, loraScale } from "./lora.ts";
export { createLinearHead, type LinearHead } from "./linear_head.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  type LoadedWeights,
  loadWeights,
  saveWeights,
  type TensorData,
  type TensorMap,
} from "./safetensors.ts";
export { stopGradient } from "./stop_gradient.ts";
export {
  applyWeights,
  type ApplyWeightsReport,
  createVit,
  DEFAULT_VIT_LORA,
  patchEmbed,
  type Vit,
  VIT_PRESETS,
  type VitConfig,
} from "./vit.ts";
export { createVitClassifier, type VitClassifier } from "./vit_classifier.ts";
