/**
 * DualPrompt (Wang et al., ECCV 2022) on the ViT track (class-incremental):
 * prefix-tuning with a shared G(eneral)-prompt in the first blocks and one
 * E(xpert)-prompt per task, with a key, in the following blocks. The backbone
 * and the LoRA adapters stay frozen.
 *
 * ```
 * query q    = final-LN [CLS] of the frozen pre-trained ViT (no prompts, no LoRA)
 * training   = task t's E-prompt for every sample (the true task);
 *              loss = CE + λ·mean_b(1 − cos(q_b, key_t))
 * evaluation = per sample, the E-prompt whose key is nearest q (cosine), among
 *              the tasks trained so far; no task identity
 * blocks     = G: key/value prefixes of length 5 in gBlocks; E: length 20 in eBlocks
 * feature    = final-LN [CLS] (DualPrompt's head_type "token")
 * trainable  = G-prompt, the current task's E-prompt and key, head
 * ```
 *
 * Choices (spec §5.2: length-5 G-prompts in layers 1–2, length-20 E-prompts in
 * layers 3–5; the rest follows `JH-LEE-KR/dualprompt-pytorch`
 * configs/cifar100_dualprompt.py):
 *
 * - Layers 1–2 → blocks [0, 1], layers 3–5 → blocks [2, 3, 4]; blocks the
 *   model does not have are dropped, and the blocks used are recorded in
 *   `taskSummary()` (`tiny-p8`, depth 4: G [0, 1], E [2, 3]).
 * - "Length L" means a key prefix of L tokens and a value prefix of L tokens
 *   (the PyTorch port's prefix shape `[2, L, heads, dh]`), in the attention's
 *   post-projection space.
 * - λ = 1 (`pull_constraint_coeff` of the DualPrompt config; the keys get no
 *   other gradient, so under Adam λ only matters through gradient clipping).
 * - A new task's E-prompt starts as a copy of the previous one
 *   (`shared_prompt_pool`); its key starts fresh. Prompts and keys start
 *   U[−1, 1).
 * - Each task's E-prompt and key are separate variables and only the current
 *   task's are handed to the optimiser, so old prompts never move.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { stack } from "../../models/many_inputs.ts";
import { promptCapable } from "../../models/image_classifier.ts";
import { makeVariable, uniqueScope } from "../../models/init.ts";
import {
  cosineSimilarity,
  keyPullLoss,
  type PrefixPrompt,
  selectRows,
  topKIndices,
  uniformVariable,
} from "../../models/prompt.ts";
import { Rng } from "../../random.ts";
import type { ContinualMethod, MethodContext, MethodState, Track } from "../method.ts";
import { taskLossOnly } from "../method.ts";
import type { Scalar, Tensor, Tensor2D, Tensor3D, Variable } from "../../tensor.ts";

/** DualPrompt's options. */
export interface DualPromptOptions {
  /** G-prompt length (key and value prefix tokens each; spec: 5). */
  gLength: number;
  /** E-prompt length (spec: 20). */
  eLength: number;
  /** 0-based blocks of the G-prompt (spec layers 1–2: [0, 1]). */
  gBlocks: number[];
  /** 0-based blocks of the E-prompts (spec layers 3–5: [2, 3, 4]; clamped to the depth). */
  eBlocks: number[];
  /** Weight λ of the key-pull term (DualPrompt: 1). */
  pullWeight: number;
  /** A new task's E-prompt starts as a copy of the previous task's (DualPrompt: true). */
  transferPrompt: boolean;
}

/** The defaults. */
export const DUAL_PROMPT_DEFAULTS: Readonly<DualPromptOptions> = Object.freeze({
  gLength: 5,
  eLength: 20,
  gBlocks: Object.freeze([0, 1]) as unknown as number[],
  eBlocks: Object.freeze([2, 3, 4]) as unknown as number[],
  pullWeight: 1,
  transferPrompt: true,
});

function resolve(options: Record<string, unknown>): DualPromptOptions {
  const unknown = Object.keys(options).filter((k) => !(k in DUAL_PROMPT_DEFAULTS));
  if (unknown.length > 0) {
    throw new Error(
      `unknown DualPrompt option(s): ${unknown.join(", ")}; known: ${
        Object.keys(DUAL_PROMPT_DEFAULTS).join(", ")
      }`,
    );
  }
  const o = { ...DUAL_PROMPT_DEFAULTS, ...options } as DualPromptOptions;
  for (const k of ["gLength", "eLength"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) {
      throw new Error(`DualPrompt: ${k} must be a positive integer, got ${o[k]}`);
    }
  }
  for (const k of ["gBlocks", "eBlocks"] as const) {
    const v = o[k];
    if (!Array.isArray(v) || v.some((b) => !Number.isInteger(b) || b < 0)) {
      throw new Error(`DualPrompt: ${k} must be a list of block indices ≥ 0, got ${v}`);
    }
    if (new Set(v).size !== v.length) throw new Error(`DualPrompt: ${k} lists a block twice`);
  }
  if (!(typeof o.pullWeight === "number" && o.pullWeight >= 0)) {
    throw new Error(`DualPrompt: pullWeight must be a number ≥ 0, got ${o.pullWeight}`);
  }
  if (typeof o.transferPrompt !== "boolean") {
    throw new Error("DualPrompt: transferPrompt must be true or false");
  }
  return { ...o, gBlocks: [...o.gBlocks], eBlocks: [...o.eBlocks] };
}

/**
 * Create DualPrompt for the ViT track. Options: {@link DualPromptOptions}
 * (defaults {@link DUAL_PROMPT_DEFAULTS}). On the LM track it throws: the LM
 * port lives elsewhere.
 *
 * @example
 * ```ts
 * import { createDualPrompt } from "./vit.ts";
 * const m = createDualPrompt({ eBlocks: [2, 3] }, { track: "vit" });
 * m.options().eLength; // 20
 * ```
 */
export function createDualPrompt(
  options: Record<string, unknown> = {},
  context: { track: Track } = { track: "vit" },
): ContinualMethod {
  if (context.track !== "vit") {
    throw new Error(
      `dualprompt: not built on the ${context.track} track by this module ` +
        "(lib/methods/dual_prompt/vit.ts is the ViT port)",
    );
  }
  const opts = resolve(options);
  const scope = uniqueScope("dualprompt");
  let gBlocks: number[] = [];
  let eBlocks: number[] = [];
  let dim = 0;
  let g: Variable | null = null; // [nG, 2, gLength, dim]; null without G blocks
  const ePrompts: Variable[] = []; // per task [nE, 2, eLength, dim]
  const eKeys: Variable[] = []; // per task [dim]
  let pull: Scalar | null = null;
  let choices: number[] = [];

  /** Resolve the blocks for a model of this depth (drop blocks it does not have). */
  function setShape(shape: { dim: number; depth: number }): void {
    if (dim !== 0) {
      if (shape.dim !== dim) {
        throw new Error(`DualPrompt: prompts of width ${dim}, model ${shape.dim}`);
      }
      return;
    }
    gBlocks = opts.gBlocks.filter((b) => b < shape.depth);
    eBlocks = opts.eBlocks.filter((b) => b < shape.depth);
    if (eBlocks.length === 0) {
      throw new Error(
        `DualPrompt: none of the E-prompt blocks [${opts.eBlocks}] exists in a model of depth ` +
          `${shape.depth}; set eBlocks`,
      );
    }
    dim = shape.dim;
  }

  function clear(): void {
    tf.dispose([...(g ? [g] : []), ...ePrompts, ...eKeys]);
    g = null;
    ePrompts.length = 0;
    eKeys.length = 0;
  }

  /** Key (kv 0) or value (kv 1) prefix of block slot j of one prompt [n, 2, L, dim], for b samples. */
  function shared(p: Tensor, j: number, kv: number, b: number): Tensor3D {
    const len = p.shape[2] as number;
    const one = tf.reshape(tf.slice(p, [j, kv, 0, 0], [1, 1, len, dim]), [1, len, dim]);
    // A broadcasting add, not tile/broadcastTo: their gradient is a slice and an add per repeat.
    return tf.add(one, tf.zeros([b, 1, 1])) as Tensor3D;
  }

  /** The same with E-prompt `idx[i]` for sample i (rank ≤ 4 slices: fast on wasm). */
  function perSample(j: number, kv: number, idx: Int32Array): Tensor3D {
    const len = opts.eLength;
    const table = stack(
      ePrompts.map((e) => tf.reshape(tf.slice(e, [j, kv, 0, 0], [1, 1, len, dim]), [len, dim])),
    ); // [tasks, L, dim]
    return selectRows(table, idx) as Tensor3D;
  }

  /**
   * The prefixes by block for a batch of b: the G-prompt for all, and the E-prompt of `task`
   * for all or, without a task, E-prompt `chosen[i]` for sample i.
   */
  function prefixes(
    b: number,
    e: { task: number } | { chosen: Int32Array },
  ): Map<number, PrefixPrompt> {
    const out = new Map<number, PrefixPrompt>();
    if (g !== null) {
      const gp = g;
      gBlocks.forEach((blk, j) =>
        out.set(blk, { key: shared(gp, j, 0, b), value: shared(gp, j, 1, b) })
      );
    }
    const part = (j: number, kv: number) =>
      "task" in e ? shared(ePrompts[e.task], j, kv, b) : perSample(j, kv, e.chosen);
    eBlocks.forEach((blk, j) => {
      const ep = { key: part(j, 0), value: part(j, 1) };
      const prev = out.get(blk);
      out.set(
        blk,
        prev
          ? {
            key: tf.concat([prev.key, ep.key], 1) as Tensor3D,
            value: tf.concat([prev.value, ep.value], 1) as Tensor3D,
          }
          : ep,
      );
    });
    return out;
  }

  return {
    name: "dualprompt",
    options: () => ({ ...opts, gBlocks: [...opts.gBlocks], eBlocks: [...opts.eBlocks] }),
    beginTask(ctx: MethodContext) {
      setShape(promptCapable(ctx.model, { who: "DualPrompt" }).promptShape);
      const rng = new Rng(ctx.rng.seed());
      if (g === null && gBlocks.length > 0) {
        g = uniformVariable([gBlocks.length, 2, opts.gLength, dim], {
          rng,
          low: -1,
          high: 1,
          name: `${scope}/g_prompt`,
        });
      }
      if (ctx.taskIndex < ePrompts.length) return; // resumed inside an already-begun task
      if (ctx.taskIndex !== ePrompts.length) {
        throw new Error(
          `DualPrompt: task ${ctx.taskIndex + 1} begins with ${ePrompts.length} E-prompts`,
        );
      }
      const t = ctx.taskIndex;
      const shape = [eBlocks.length, 2, opts.eLength, dim];
      const name = `${scope}/e_prompt.${t}`;
      if (opts.transferPrompt && t > 0) {
        const copy = tf.clone(ePrompts[t - 1]);
        ePrompts.push(tf.variable(copy, true, name));
        copy.dispose();
      } else {
        ePrompts.push(uniformVariable(shape, { rng, low: -1, high: 1, name }));
      }
      eKeys.push(uniformVariable([dim], { rng, low: -1, high: 1, name: `${scope}/e_key.${t}` }));
      choices = new Array<number>(ePrompts.length).fill(0);
    },
    trainableVariables(ctx) {
      const t = ctx.taskIndex;
      if (!ePrompts[t]) throw new Error("DualPrompt: beginTask creates the prompts");
      return [...(g ? [g] : []), ePrompts[t], eKeys[t], ...ctx.model.headVariables()];
    },
    forward(model, x, o) {
      const pm = promptCapable(model, { who: "DualPrompt" });
      if (ePrompts.length === 0) {
        throw new Error("DualPrompt.forward: no prompts yet (beginTask creates them)");
      }
      const b = x.shape[0];
      const task = o.taskIndex;
      if (task !== undefined && !(task >= 0 && task < ePrompts.length)) {
        throw new Error(
          `DualPrompt.forward: task ${task} has no E-prompt (${ePrompts.length} exist)`,
        );
      }
      const out = tf.tidy(() => {
        let prompts: Map<number, PrefixPrompt>;
        let term: Scalar | undefined;
        if (task !== undefined) {
          // The true task's E-prompt for every sample.
          prompts = prefixes(b, { task });
          if (o.training) {
            const key = tf.expandDims(eKeys[task], 0) as Tensor2D;
            const sim = cosineSimilarity(pm.queryFeatures(x), key);
            term = tf.mul(keyPullLoss(sim, new Int32Array(b), { k: 1 }), opts.pullWeight);
          }
        } else {
          // No task identity: the E-prompt of the nearest key, per sample.
          const n = ePrompts.length;
          const keys = stack(eKeys) as Tensor2D;
          const sim = cosineSimilarity(pm.queryFeatures(x), keys);
          const idx = topKIndices(sim.dataSync(), { rows: b, cols: n, k: 1 });
          if (!o.training) { for (const i of idx) choices[i] = (choices[i] ?? 0) + 1; }
          prompts = prefixes(b, { chosen: idx });
        }
        const logits = pm.promptedLogits(x, {
          training: o.training,
          seed: o.seed,
          prompts: { prefixes: prompts },
          pool: "cls",
        });
        return term ? { logits, term } : { logits };
      });
      if (o.training) pull = out.term ?? null;
      return out.logits;
    },
    loss(_ctx, taskLoss) {
      const term = pull;
      pull = null;
      if (term === null || term.isDisposed) return taskLossOnly(taskLoss);
      return { total: tf.add(taskLoss, term) as Scalar, terms: { key_pull: term } };
    },
    afterStep() {
      pull = null;
    },
    endTask() {
      choices = new Array<number>(ePrompts.length).fill(0);
    },
    taskSummary: () => ({
      gBlocks: [...gBlocks],
      eBlocks: [...eBlocks],
      evalChoices: [...choices],
    }),
    state(): MethodState {
      const arrays: MethodState["arrays"] = {};
      const put = (name: string, v: Variable) =>
        arrays[name] = { shape: v.shape, data: v.dataSync() as Float32Array };
      if (g !== null) put("g_prompt", g);
      ePrompts.forEach((v, t) => put(`e_prompt.${t}`, v));
      eKeys.forEach((v, t) => put(`e_key.${t}`, v));
      return { json: { options: opts, gBlocks, eBlocks, dim, tasks: ePrompts.length }, arrays };
    },
    restore(state: MethodState) {
      const tasks = (state.json.tasks ?? 0) as number;
      if (tasks === 0) return;
      clear();
      gBlocks = [...state.json.gBlocks as number[]];
      eBlocks = [...state.json.eBlocks as number[]];
      dim = state.json.dim as number;
      const gs = state.arrays.g_prompt;
      if (gBlocks.length > 0 && !gs) throw new Error("DualPrompt.restore: the G-prompt is missing");
      if (gs) g = makeVariable(gs.data, gs.shape, { name: `${scope}/g_prompt`, trainable: true });
      for (let t = 0; t < tasks; t++) {
        const e = state.arrays[`e_prompt.${t}`];
        const k = state.arrays[`e_key.${t}`];
        if (!e || !k) {
          throw new Error(`DualPrompt.restore: task ${t + 1}'s E-prompt or key is missing`);
        }
        ePrompts.push(
          makeVariable(e.data, e.shape, { name: `${scope}/e_prompt.${t}`, trainable: true }),
        );
        eKeys.push(makeVariable(k.data, k.shape, { name: `${scope}/e_key.${t}`, trainable: true }));
      }
      choices = new Array<number>(ePrompts.length).fill(0);
    },
    dispose() {
      clear();
      pull = null;
    },
  };
}
