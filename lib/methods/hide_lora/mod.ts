/**
 * HiDe-LoRA: the method by track ({@link createHideLora}), its ViT form and
 * that form's parts (per-task adapter pool, class statistics, task-identity
 * inference, classifier alignment), and its LM form.
 *
 * @module
 */

export * from "./adapters.ts";
export * from "./alignment.ts";
export * from "./gaussians.ts";
export { createHideLora } from "./hide_lora.ts";
export * from "./lm.ts";
export * from "./tii.ts";
export * from "./vit.ts";
