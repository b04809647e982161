/**
 * TreeLoRA: the method and its parts (signature accumulator, K-D tree,
 * bandit search, regulariser, options), and TreeLoRA inside HiDe-LoRA's
 * task decomposition (the paper's ViT pipeline, `hide_treelora.ts`).
 *
 * @module
 */

export * from "./bandit.ts";
export * from "./kd_tree.ts";
export * from "./options.ts";
export * from "./regularizer.ts";
export * from "./signature.ts";
export { createTreeLora } from "./treelora.ts";
export * from "./exhaustive.ts";
export {
  createHideTreeLora,
  HIDE_TREELORA_DEFAULTS,
  splitHideTreeLoraOptions,
} from "./hide_treelora.ts";
