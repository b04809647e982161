/**
 * L2P (Learning to Prompt, Wang et al., CVPR 2022): the ViT form (prompt
 * tokens chosen per sample by key matching on the frozen [CLS] feature;
 * `vit.ts`) and the LM form (prompts prepended to the input embeddings,
 * chosen by the frozen decoder's feature of the prompt; `lm.ts`). The two
 * forms share the idea, not code: the pool operations both use (cosine
 * similarity, top-k choice) live in `lib/models/prompt.ts`. The registry
 * picks the form by track.
 *
 * @module
 */

export * from "./lm.ts";
export * from "./vit.ts";
