/**
 * HiDe-LoRA by track: {@link createHideLora} builds the ViT form (the
 * hierarchical decomposition of HiDe-Prompt / HiDe-PET: per-task LoRA,
 * task-identity inference from class-wise feature statistics, classifier
 * alignment; `vit.ts`) or the LM form (the released TreeLoRA repo's Gram
 * cross-entropy variant; `lm.ts`). The two forms share no code: the LM one
 * never chooses an adapter per sample.
 *
 * @module
 */

import type { ContinualMethod, Track } from "../method.ts";
import { createHideLoraLm } from "./lm.ts";
import { createHideLoraVit } from "./vit.ts";

/**
 * Create HiDe-LoRA: on the ViT track the hierarchical decomposition (options:
 * `HideLoraVitOptions` of `vit.ts`), on the LM track the Gram cross-entropy
 * variant (options: `HideLoraOptions` of `lm.ts`).
 *
 * @example
 * ```ts
 * import { createHideLora } from "./hide_lora.ts";
 * const m = createHideLora({}, { track: "lm" });
 * m.options().temperature; // 0.8
 * const v = createHideLora({ tiiFeatures: "pretrained" }, { track: "vit" });
 * v.options().tiiRule; // "head"
 * ```
 */
export function createHideLora(
  options: Record<string, unknown>,
  context: { track: Track },
): ContinualMethod {
  if (context.track === "vit") return createHideLoraVit(options);
  if (context.track !== "lm") {
    throw new Error(`hide-lora: unknown track "${context.track}"; expected "vit" or "lm"`);
  }
  return createHideLoraLm(options);
}
