/**
 * TreeLoRA: the method and its parts (signature accumulator, K-D tree,
 * bandit search, regulariser, options).
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
