/**
 * TreeLoRA inside HiDe-LoRA (ViT track): the paper's vision pipeline (spec §5.2,
 * "incorporating HiDe-LoRA's task decomposition methodology into TreeLoRA").
 *
 * It is the composition of the two methods, not a copy of either:
 *
 * ```
 * HiDe-LoRA (hide_lora/vit.ts)           TreeLoRA (treelora/treelora.ts)
 *   per-task adapter pool: task t trains   signatures of the live adapter (the one of task t),
 *   the live adapter, earlier ones frozen  K-D tree over the finished tasks' signatures,
 *   adapter init (default: copy of t−1's)  bandit selection of an earlier task per level,
 *   contrastive term on the features       regulariser pulling the live A toward the selection
 *   class statistics, TII, alignment
 *
 * beginTask   HiDe (freeze t−1's adapter, initialise t's) → TreeLoRA (records A_init, levels)
 * step        TreeLoRA's beforeStep/afterStep; loss = task + HiDe's contrastive + TreeLoRA's
 * endTask     TreeLoRA (store the signature, rebuild the tree) → HiDe (statistics, TII,
 *             classifier alignment)
 * forward     HiDe's (task t's adapter in training; TII-chosen adapters at evaluation)
 * ```
 *
 * Options are one flat object: each key goes to the method that knows it
 * (TreeLoRA's {@link TreeLoraOptions}, HiDe-LoRA's {@link HideLoraVitOptions}).
 * The defaults differ from plain TreeLoRA in one place: `levels: "block"` (one
 * tree level per adapted block, the paper's "depth 5" = blocks 0–4 with a
 * block's LoRA sites pooled). Signatures follow the TreeLoRA mode: code mode
 * reads the live A values over the last epoch and builds the tree on first
 * differences, which with HiDe's default `adapterInit: "previous"` (each
 * adapter starts as the previous task's) is the released TreeLoRA code's
 * continued adapter exactly; paper mode uses ∂L/∂A. `signatureSource:
 * "lora_a_movement"` uses A − A_init, the adapter's own movement during the
 * task, the sound choice when adapters start fresh (`adapterInit: "fresh"`),
 * where raw A values would compare random initialisations.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { createHideLoraVit, HIDE_LORA_VIT_DEFAULTS } from "../hide_lora/vit.ts";
import type { HideLoraVitOptions } from "../hide_lora/vit.ts";
import type { ContinualMethod, LossParts, MethodState } from "../method.ts";
import { TREELORA_OPTION_KEYS, type TreeLoraOptions } from "./options.ts";
import { createTreeLora } from "./treelora.ts";
import type { Scalar } from "../../tensor.ts";

/** The defaults hide-treelora sets on top of TreeLoRA's and HiDe-LoRA's own. */
export const HIDE_TREELORA_DEFAULTS: Readonly<Partial<TreeLoraOptions & HideLoraVitOptions>> =
  Object.freeze({ levels: "block" });

/**
 * Split a flat options object into TreeLoRA's and HiDe-LoRA's keys; unknown keys throw,
 * naming both lists.
 *
 * @example
 * ```ts
 * import { splitHideTreeLoraOptions } from "./hide_treelora.ts";
 * splitHideTreeLoraOptions({ mode: "paper", alignEpochs: 5 });
 * // { tree: { levels: "block", mode: "paper" }, hide: { alignEpochs: 5 } }
 * ```
 */
export function splitHideTreeLoraOptions(
  options: Record<string, unknown>,
): { tree: Record<string, unknown>; hide: Record<string, unknown> } {
  const treeKeys = TREELORA_OPTION_KEYS as readonly string[];
  const hideKeys = Object.keys(HIDE_LORA_VIT_DEFAULTS);
  const tree: Record<string, unknown> = {};
  const hide: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({ ...HIDE_TREELORA_DEFAULTS, ...options })) {
    if (treeKeys.includes(k)) tree[k] = v;
    else if (hideKeys.includes(k)) hide[k] = v;
    else {
      throw new Error(
        `unknown hide-treelora option "${k}"; TreeLoRA options: ${treeKeys.join(", ")}; ` +
          `HiDe-LoRA options: ${hideKeys.join(", ")}`,
      );
    }
  }
  return { tree, hide };
}

/**
 * Create TreeLoRA inside HiDe-LoRA for the ViT track.
 *
 * @example
 * ```ts
 * import { createHideTreeLora } from "./hide_treelora.ts";
 * const m = createHideTreeLora({ mode: "paper" });
 * m.options().levels; // "block"
 * ```
 */
export function createHideTreeLora(options: Record<string, unknown> = {}): ContinualMethod {
  const split = splitHideTreeLoraOptions(options);
  const tree = createTreeLora(split.tree, { track: "vit" });
  const hide = createHideLoraVit(split.hide);

  return {
    name: "hide-treelora",
    options: () => ({ ...tree.options(), ...hide.options() }),
    async beginTask(ctx) {
      await hide.beginTask(ctx);
      await tree.beginTask(ctx);
    },
    beginEpoch: (ctx) => tree.beginEpoch?.(ctx),
    // HiDe's and TreeLoRA's are the same: the live A, B of every site and the head.
    trainableVariables: (ctx) => hide.trainableVariables(ctx),
    gradientVariables: (ctx) => tree.gradientVariables?.(ctx) ?? [],
    beforeStep: (ctx) => tree.beforeStep?.(ctx),
    loss(ctx, taskLoss, outputs): LossParts {
      const h = hide.loss(ctx, taskLoss, outputs);
      const t = tree.loss(ctx, taskLoss, outputs);
      // Either part alone is returned as it is (bit-identical to that method).
      if (Object.keys(t.terms).length === 0) return h;
      if (Object.keys(h.terms).length === 0) return t;
      return {
        total: tf.add(t.total, tf.sub(h.total, taskLoss)) as Scalar,
        terms: { ...h.terms, ...t.terms },
      };
    },
    afterStep: (ctx, info) => tree.afterStep?.(ctx, info),
    async endTask(ctx) {
      await tree.endTask(ctx);
      await hide.endTask(ctx);
    },
    taskSummary: () => ({ ...hide.taskSummary?.(), ...tree.taskSummary?.() }),
    forward: (model, x, o) => hide.forward!(model, x, o),
    inferTask: (model, x) => hide.inferTask!(model, x),
    state(): MethodState {
      const h = hide.state();
      const t = tree.state();
      const arrays: MethodState["arrays"] = {};
      for (const [k, v] of Object.entries(h.arrays)) arrays[`hide/${k}`] = v;
      for (const [k, v] of Object.entries(t.arrays)) arrays[`tree/${k}`] = v;
      return { json: { hide: h.json, tree: t.json }, arrays };
    },
    restore(state) {
      const part = (prefix: string) =>
        Object.fromEntries(
          Object.entries(state.arrays)
            .filter(([k]) => k.startsWith(prefix))
            .map(([k, v]) => [k.slice(prefix.length), v]),
        );
      const json = state.json as { hide?: Record<string, unknown>; tree?: Record<string, unknown> };
      if (!json.hide || !json.tree) {
        throw new Error("hide-treelora state: expected json.hide and json.tree");
      }
      hide.restore({ json: json.hide, arrays: part("hide/") });
      tree.restore({ json: json.tree, arrays: part("tree/") });
    },
    dispose() {
      tree.dispose();
      hide.dispose();
    },
  };
}
