/**
 * DualPrompt, language-model port (spec §8.3; Wang et al., ECCV 2022, as the
 * released TreeLoRA code runs it on LLMs): a learned general prompt G shared
 * by every task and one expert prompt E_t per task are prepended to the input
 * embeddings; the backbone (base weights and LoRA) is frozen and only the
 * prompts are trained.
 *
 * ```
 * beginTask (first)  G [2, d] and E_0..E_{N−1} [3, d] ← rows of the frozen token embedding,
 *                    drawn uniformly over the vocabulary with the method's rng (G first)
 * step (task t)      input = [E_t ; G ; embed(tokens)]; loss = task loss; trained: G, E_t
 * evaluation         the evaluated task's own E_j (task identity), with the final G
 * ```
 *
 * **What the released code does** (`model/Dynamic_network/DualPrompt.py` and
 * `training/main.py` of ZinYY/TreeLoRA): general length 2, expert length 3,
 * prompts initialised from random rows of `embed_tokens`; the input is
 * `cat([E_task, cat([G, embeds])])`, i.e. E first, then G, then the
 * left-padded tokens, with attention 1 on the prompt; only parameters named
 * "prompt" are trainable (no LoRA is attached); evaluation uses `e_prompts[task]`
 * of the evaluated task — the true task identity, no key matching.
 *
 * **Where this port differs.** (1) The released code also creates one key per
 * task, but it is frozen (its name has no "prompt") and never read; it is left
 * out here. (2) Initial rows come from the method's seeded stream, not
 * NumPy's global one. (3) The prefix is in the embedding table's space and is
 * scaled with the tokens by the model's `embeddingScale` (1 except Gemma, where
 * Hugging Face scales `inputs_embeds` the same way). (4) RoPE positions follow
 * the attention mask (the harness convention; see `decoder.ts`). (5) With one
 * Adam for the whole stream (`resetOptimizerPerTask: false`), TensorFlow.js
 * keys Adam's moments by position in the variable list, so E_t would inherit
 * E_{t−1}'s moments; the TRACE experiments reset the optimiser per task.
 *
 * The decoder's LoRA sites stay untouched (their B is 0, so they add nothing).
 *
 * The prompt initialisation from token embeddings ({@link randomTokenEmbeddings})
 * and the integer option check ({@link checkIntegers}) are shared with L2P's LM
 * port (`../l2p/lm.ts`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { AdaptedModel } from "../../models/backbone.ts";
import { makeVariable, uniqueScope } from "../../models/init.ts";
import type { Rng } from "../../random.ts";
import type { ContinualMethod, MethodState } from "../method.ts";
import { taskLossOnly } from "../method.ts";
import { resolveOptions } from "../o_lora.ts";
import type { Variable } from "../../tensor.ts";

/** DualPrompt-LM's options. */
export interface DualPromptLmOptions {
  /** Rows of the general prompt G, shared by every task (default 2). */
  generalLength: number;
  /** Rows of each task's expert prompt E_t (default 3). */
  taskLength: number;
}

/** The defaults: the released code's lengths (2 general + 3 per task). */
export const DUAL_PROMPT_LM_DEFAULTS: Readonly<DualPromptLmOptions> = Object.freeze({
  generalLength: 2,
  taskLength: 3,
});

/** Name of the token embedding among a decoder's base weights (Hugging Face LLaMA naming). */
const EMBEDDING = "model.embed_tokens.weight";

/**
 * `rows` random rows of the model's frozen token embedding (row index uniform over the
 * vocabulary, drawn with `rng`, one draw per row), row-major [rows, dim].
 *
 * @example
 * ```ts
 * import { Rng } from "../../random.ts";
 * import { createDecoder, DECODER_PRESETS, lmAdaptedModel } from "../../models/decoder.ts";
 * import { randomTokenEmbeddings } from "./lm.ts";
 * const lm = createDecoder(DECODER_PRESETS["byte-micro"], { rng: new Rng(0) });
 * const { data, dim } = randomTokenEmbeddings(lmAdaptedModel(lm), { rows: 5, rng: new Rng(1) });
 * // data.length === 5 * dim (dim 32)
 * lm.dispose();
 * ```
 */
export function randomTokenEmbeddings(
  model: AdaptedModel,
  options: { rows: number; rng: Rng },
): { data: Float32Array; dim: number; tokens: number[] } {
  const table = model.baseVariables?.().find((v) =>
    v.name === EMBEDDING || v.name.endsWith(`/${EMBEDDING}`)
  );
  if (!table || table.rank !== 2) {
    throw new Error(
      `prompt initialisation needs the decoder's token embedding ("${EMBEDDING}") among the ` +
        "model's base variables (the LM track)",
    );
  }
  const [vocab, dim] = table.shape;
  const values = table.dataSync() as Float32Array;
  const data = new Float32Array(options.rows * dim);
  const tokens: number[] = [];
  for (let r = 0; r < options.rows; r++) {
    const j = options.rng.int(vocab);
    tokens.push(j);
    data.set(values.subarray(j * dim, (j + 1) * dim), r * dim);
  }
  return { data, dim, tokens };
}

/**
 * Check that the named options are integers `>= atLeast` (a clear error otherwise).
 *
 * @example
 * ```ts
 * import { checkIntegers } from "./lm.ts";
 * checkIntegers("l2p", { topN: 3 }, { atLeast: 1, keys: ["topN"] }); // ok
 * ```
 */
export function checkIntegers(
  method: string,
  options: Record<string, number>,
  names: { atLeast: number; keys: readonly string[] },
): void {
  for (const k of names.keys) {
    const v = options[k];
    if (!Number.isInteger(v) || v < names.atLeast) {
      throw new Error(`${method}: option ${k} must be an integer >= ${names.atLeast}, got ${v}`);
    }
  }
}

/**
 * Create DualPrompt for the LM track. Options: {@link DualPromptLmOptions}
 * (defaults {@link DUAL_PROMPT_LM_DEFAULTS}). The prompts are made at the first
 * `beginTask` (one expert prompt for each of `ctx.numTasks` tasks).
 *
 * @example
 * ```ts
 * import { createDualPromptLm } from "./lm.ts";
 * const m = createDualPromptLm({ taskLength: 4 });
 * m.options(); // { generalLength: 2, taskLength: 4 }
 * ```
 */
export function createDualPromptLm(options: Record<string, unknown> = {}): ContinualMethod {
  const opts = resolveOptions("dualprompt", options, DUAL_PROMPT_LM_DEFAULTS);
  checkIntegers("dualprompt", { ...opts }, {
    atLeast: 0,
    keys: ["generalLength", "taskLength"],
  });
  if (opts.generalLength + opts.taskLength === 0) {
    throw new Error("dualprompt: generalLength + taskLength must be >= 1");
  }
  const scope = uniqueScope("dualprompt-lm");
  let general: Variable | null = null;
  let experts: (Variable | null)[] = [];
  let made = false;

  const variable = (name: string, data: Float32Array, shape: number[]) =>
    shape[0] === 0
      ? null
      : makeVariable(data, shape, { name: `${scope}/${name}`, trainable: true });
  const free = () => {
    for (const v of [general, ...experts]) v?.dispose();
    general = null;
    experts = [];
    made = false;
  };
  const build = (g: Float32Array, e: Float32Array[], dim: number) => {
    free();
    general = variable("general", g, [opts.generalLength, dim]);
    experts = e.map((d, t) => variable(`task${t}`, d, [opts.taskLength, dim]));
    made = true;
  };
  const expertOf = (t: number) => {
    if (!made) throw new Error("dualprompt: the prompts do not exist yet (beginTask first)");
    if (!Number.isInteger(t) || t < 0 || t >= experts.length) {
      throw new Error(`dualprompt: no expert prompt for task ${t} (0..${experts.length - 1})`);
    }
    return experts[t];
  };

  return {
    name: "dualprompt",
    options: () => ({ ...opts }),
    beginTask(ctx) {
      if (made) {
        expertOf(ctx.taskIndex);
        return;
      }
      const { generalLength: g, taskLength: e } = opts;
      const { data, dim } = randomTokenEmbeddings(ctx.model, {
        rows: g + ctx.numTasks * e,
        rng: ctx.rng,
      });
      build(
        data.slice(0, g * dim),
        Array.from(
          { length: ctx.numTasks },
          (_, t) => data.slice((g + t * e) * dim, (g + (t + 1) * e) * dim),
        ),
        dim,
      );
    },
    trainableVariables(ctx) {
      const e = expertOf(ctx.taskIndex);
      return [general, e].filter((v): v is Variable => v !== null);
    },
    loss: (_ctx, taskLoss) => taskLossOnly(taskLoss),
    inputPrefix(at) {
      const parts = [expertOf(at.taskIndex), general].filter((v): v is Variable => v !== null);
      return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
    },
    endTask() {},
    taskSummary: () => ({ promptTokens: opts.generalLength + opts.taskLength }),
    state(): MethodState {
      const arrays: MethodState["arrays"] = {};
      const put = (name: string, v: Variable | null) => {
        if (v) arrays[name] = { shape: v.shape.slice(), data: v.dataSync() as Float32Array };
      };
      put("general", general);
      experts.forEach((v, t) => put(`task.${t}`, v));
      return { json: { options: { ...opts }, tasks: made ? experts.length : 0 }, arrays };
    },
    restore(state) {
      const tasks = Number(state.json.tasks ?? 0);
      if (tasks === 0) return free();
      const dims = Object.values(state.arrays).map((a) => a.shape[1]);
      if (dims.length === 0) throw new Error("dualprompt: restore: the state holds no prompts");
      const dim = dims[0];
      const get = (name: string, rows: number) => {
        if (rows === 0) return new Float32Array(0);
        const a = state.arrays[name];
        if (!a || a.shape[0] !== rows || a.shape[1] !== dim) {
          throw new Error(
            `dualprompt: restore: "${name}" should be [${rows}, ${dim}], got ${
              a ? `[${a.shape}]` : "nothing"
            }`,
          );
        }
        return a.data;
      };
      build(
        get("general", opts.generalLength),
        Array.from({ length: tasks }, (_, t) => get(`task.${t}`, opts.taskLength)),
        dim,
      );
    },
    dispose: free,
  };
}
