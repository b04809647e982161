/**
 * SeqLoRA: one LoRA adapter (and the classifier head) trained on task after
 * task with the plain task loss. No reset, no merge, no regulariser. This is
 * the paper's lower bound and the code's `lora` baseline (spec §8.3).
 *
 * @module
 */

import type { ContinualMethod, LossParts, MethodContext, MethodState } from "./method.ts";
import { taskLossOnly } from "./method.ts";
import type { Scalar, Variable } from "../tensor.ts";

/** SeqLoRA has no options; the LoRA shape belongs to the backbone config. */
export type SeqLoraOptions = Record<string, never>;

/**
 * Create the SeqLoRA method.
 *
 * @example
 * ```ts
 * import { createSeqLora } from "./seq_lora.ts";
 * const method = createSeqLora();
 * method.name; // "seqlora"
 * ```
 */
export function createSeqLora(_options: SeqLoraOptions = {}): ContinualMethod {
  return {
    name: "seqlora",
    options: () => ({}),
    beginTask: () => {},
    trainableVariables(ctx: MethodContext): Variable[] {
      return [...ctx.model.loraSites().flatMap((s) => [s.a, s.b]), ...ctx.model.headVariables()];
    },
    loss: (_ctx: MethodContext, taskLoss: Scalar): LossParts => taskLossOnly(taskLoss),
    endTask: () => {},
    state: (): MethodState => ({ json: {}, arrays: {} }),
    restore: () => {},
    dispose: () => {},
  };
}
