/**
 * Joint training: the multi-task upper bound (spec §8.1/§8.2), not a
 * continual-learning method. While task t is trained, the batches come from
 * the union of the training sets of tasks 0..t (`replayAll`, read by both
 * trainers; class-incremental: the loss covers every class seen so far). One
 * LoRA adapter and the head continue from task to task, as SeqLoRA's do, so
 * on a one-task stream Joint and SeqLoRA train identically.
 *
 * @module
 */

import type { ContinualMethod, MethodContext } from "./method.ts";
import { taskLossOnly } from "./method.ts";
import type { Variable } from "../tensor.ts";

/**
 * Create the Joint upper bound.
 *
 * @example
 * ```ts
 * import { createJoint } from "./joint.ts";
 * createJoint().replayAll; // true
 * ```
 */
export function createJoint(options: Record<string, unknown> = {}): ContinualMethod {
  const keys = Object.keys(options);
  if (keys.length > 0) throw new Error(`joint takes no options; got ${keys.join(", ")}`);
  return {
    name: "joint",
    replayAll: true,
    options: () => ({ upperBound: true, replayAll: true }),
    beginTask: () => {},
    trainableVariables(ctx: MethodContext): Variable[] {
      return [...ctx.model.loraSites().flatMap((s) => [s.a, s.b]), ...ctx.model.headVariables()];
    },
    loss: (_ctx, taskLoss) => taskLossOnly(taskLoss),
    endTask: () => {},
    taskSummary: () => ({ upperBound: true }),
    state: () => ({ json: {}, arrays: {} }),
    restore: () => {},
    dispose: () => {},
  };
}
