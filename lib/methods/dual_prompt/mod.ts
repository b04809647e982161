/**
 * DualPrompt (Wang et al., ECCV 2022): the ViT form (prefix-tuning with a
 * shared G-prompt and one keyed E-prompt per task, chosen by key matching at
 * evaluation; `vit.ts`) and the LM form (a general prompt and one expert
 * prompt per task prepended to the input embeddings, the task's own expert at
 * evaluation, as the released code runs it; `lm.ts`). The two forms share the
 * idea, not code. The registry picks the form by track.
 *
 * @module
 */

export * from "./lm.ts";
export * from "./vit.ts";
