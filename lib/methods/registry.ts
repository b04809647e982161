/**
 * Methods by name, so experiments can list them declaratively.
 *
 * @module
 */

import { createDualPromptLm } from "./dual_prompt/lm.ts";
import { createDualPrompt } from "./dual_prompt/vit.ts";
import { createEwc } from "./ewc.ts";
import { createFix } from "./fix.ts";
import { createGem } from "./gem.ts";
import { createHideLora } from "./hide_lora/hide_lora.ts";
import { createInfLora } from "./inflora.ts";
import { createJoint } from "./joint.ts";
import { createL2pLm } from "./l2p/lm.ts";
import { createL2p } from "./l2p/vit.ts";
import { createLwf } from "./lwf.ts";
import type { ContinualMethod, Track } from "./method.ts";
import { createOgd } from "./ogd.ts";
import { createOLora } from "./o_lora.ts";
import { createSeqLora } from "./seq_lora.ts";
import { createHideTreeLora } from "./treelora/hide_treelora.ts";
import { createTreeLora } from "./treelora/treelora.ts";

export type { Track } from "./method.ts";

/** A method factory: options from the experiment spec/CLI, the track. */
export type MethodFactory = (
  options: Record<string, unknown>,
  context: { track: Track },
) => ContinualMethod;

const FACTORIES: Record<string, MethodFactory> = {
  seqlora: (options) => {
    const keys = Object.keys(options);
    if (keys.length > 0) throw new Error(`seqlora takes no options; got ${keys.join(", ")}`);
    return createSeqLora();
  },
  treelora: (options, { track }) => createTreeLora(options, { track }),
  ogd: (options) => createOgd(options),
  "o-lora": (options) => createOLora(options),
  inflora: (options) => createInfLora(options),
  "hide-lora": (options, { track }) => createHideLora(options, { track }),
  // TreeLoRA inside HiDe-LoRA's task decomposition: the paper's ViT pipeline (spec §5.2).
  "hide-treelora": (options) => createHideTreeLora(options),
  ewc: (options, { track }) => createEwc(options, { track }),
  gem: (options, { track }) => createGem(options, { track }),
  lwf: (options) => createLwf(options),
  // Prompt methods: the ViT versions (prompt/prefix tuning, keys queried by the frozen [CLS])
  // and the LM ports (prompts prepended to the input embeddings) are separate modules.
  l2p: (options, { track }) =>
    track === "lm" ? createL2pLm(options) : createL2p(options, { track }),
  dualprompt: (options, { track }) =>
    track === "lm" ? createDualPromptLm(options) : createDualPrompt(options, { track }),
  joint: (options) => createJoint(options),
  fix: (options) => createFix(options),
};

/** Methods that exist on one track only (the rest run on both). */
const ONLY_ON: Record<string, Track> = {
  // In-context learning with demonstrations: a language-model baseline (Table 3).
  fix: "lm",
  // TreeLoRA's ViT pipeline: per-task adapters, TII and classifier alignment are vision-only.
  "hide-treelora": "vit",
};

/**
 * Names of the registered methods; with `track`, only those that run on it.
 *
 * @example
 * ```ts
 * import { methodNames } from "./registry.ts";
 * methodNames({ track: "vit" }); // ["seqlora", "treelora", "ogd", "o-lora", "inflora", "ewc", "lwf", "joint"]
 * ```
 */
export function methodNames(options: { track?: Track } = {}): string[] {
  return Object.keys(FACTORIES).filter((n) =>
    options.track === undefined || ONLY_ON[n] === undefined || ONLY_ON[n] === options.track
  );
}

/**
 * Build a method by registry name.
 *
 * @example
 * ```ts
 * import { createMethod } from "./registry.ts";
 * const m = createMethod("seqlora", { options: {}, track: "vit" });
 * ```
 */
export function createMethod(
  name: string,
  options: { options?: Record<string, unknown>; track: Track },
): ContinualMethod {
  const factory = FACTORIES[name];
  if (!factory) {
    throw new Error(`unknown method "${name}"; known methods: ${methodNames().join(", ")}`);
  }
  return factory(options.options ?? {}, { track: options.track });
}
