/**
 * HiDe-LoRA (ViT): the per-task adapter pool. Task t trains the sites' live
 * adapter; when task t+1 begins, task t's adapter is frozen into the sites'
 * pools as `task<t>` and the live one continues from it (`adapterInit:
 * "previous"`) or is redrawn (`"fresh"`) ({@link beginTaskAdapter}). Every
 * forward pass runs one adapter alone: {@link taskAdapter} names task t's,
 * {@link featuresWith} reads features through one, and {@link byGroup} runs
 * each group of images through its own.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { resetLiveAdapter, type TaskAdapters } from "../../models/adapter_pool.ts";
import type { ImageClassifier } from "../../models/image_classifier.ts";
import { LIVE_ADAPTER, withActiveAdapter } from "../../models/lora.ts";
import type { MethodContext } from "../method.ts";
import type { Tensor2D, Tensor4D } from "../../tensor.ts";

/**
 * The adapter of task `task` (0-based): frozen in the sites' pools as `task<k>`, or the live
 * one for the newest task (`task` = the number of frozen adapters). Throws for a task that has
 * none.
 *
 * @example
 * ```ts
 * import { TaskAdapters } from "../../models/adapter_pool.ts";
 * import { taskAdapter } from "./adapters.ts";
 * taskAdapter(new TaskAdapters(), 0); // the live adapter (no task frozen yet)
 * ```
 */
export function taskAdapter(pool: TaskAdapters, task: number): string {
  if (task === pool.count) return LIVE_ADAPTER;
  if (task >= 0 && task < pool.count) return `task${task}`;
  throw new Error(
    `hide-lora (ViT): task ${task + 1} has no adapter (tasks 1..${pool.count + 1} have one)`,
  );
}

/**
 * At the start of task t (≥ 1, first call for it): freeze task t−1's live adapter into the
 * pools as `task<t−1>` and, with `adapterInit: "fresh"`, redraw the live adapter (A from
 * `ctx.rng`, B = 0); with `"previous"` the live adapter continues from task t−1's. Throws
 * unless the pool then holds exactly t adapters (tasks trained in order).
 *
 * @example
 * ```ts ignore
 * await beginTaskAdapter(pool, ctx, { adapterInit: "previous" });
 * ```
 */
export async function beginTaskAdapter(
  pool: TaskAdapters,
  ctx: MethodContext,
  options: { adapterInit: "fresh" | "previous" },
): Promise<void> {
  const sites = ctx.model.loraSites();
  pool.attach(sites);
  if (ctx.taskIndex > 0 && pool.count < ctx.taskIndex) {
    await pool.freezeLive(sites, `task${ctx.taskIndex - 1}`);
    if (options.adapterInit === "fresh") {
      for (const s of sites) resetLiveAdapter(s, { rng: ctx.rng });
    }
  }
  if (pool.count !== ctx.taskIndex) {
    throw new Error(
      `hide-lora (ViT): task ${ctx.taskIndex + 1} begins with ${pool.count} frozen adapters; ` +
        "tasks must be trained in order",
    );
  }
}

/**
 * Evaluation-mode features [B, dim] of images `x` through one adapter alone (`null`: the
 * backbone without LoRA). The model must expose `features()`.
 *
 * @example
 * ```ts ignore
 * const f = featuresWith(model, x, { adapter: taskAdapter(pool, 0) });
 * ```
 */
export function featuresWith(
  model: ImageClassifier,
  x: Tensor4D,
  options: { adapter: string | null },
): Tensor2D {
  return withActiveAdapter(model.loraSites(), () => model.features!(x, { training: false }), {
    adapter: options.adapter,
  });
}

/**
 * Run `run` once per group of rows of `x` (rows with the same `groups` value) and put the
 * outputs back in row order: [B, K]. HiDe-LoRA runs each group of test images through the
 * adapter of its inferred task.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { byGroup } from "./adapters.ts";
 * const x = tf.zeros([3, 1, 1, 1]) as tf.Tensor4D;
 * const out = byGroup(x, {
 *   groups: Int32Array.from([1, 0, 1]),
 *   run: (group, xs) => tf.fill([xs.shape[0], 1], group) as tf.Tensor2D,
 * }); // [[1], [0], [1]]
 * ```
 */
export function byGroup(
  x: Tensor4D,
  options: { groups: Int32Array; run: (group: number, x: Tensor4D) => Tensor2D },
): Tensor2D {
  const { groups, run } = options;
  const ids = [...new Set(groups)].sort((a, b) => a - b);
  if (ids.length === 1) return run(ids[0], x);
  return tf.tidy(() => {
    const order: number[] = [];
    const parts = ids.map((g) => {
      const rows = [];
      for (let i = 0; i < groups.length; i++) if (groups[i] === g) rows.push(i);
      order.push(...rows);
      return run(g, tf.gather(x, Int32Array.from(rows)) as Tensor4D);
    });
    const inverse = new Int32Array(order.length);
    order.forEach((row, k) => (inverse[row] = k));
    return tf.gather(tf.concat(parts, 0), inverse) as Tensor2D;
  });
}
