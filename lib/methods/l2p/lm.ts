/**
 * L2P (Learning to Prompt, Wang et al., CVPR 2022), language-model port: a
 * pool of M prompts, each L rows of input embeddings with a learned key; a
 * row's query q is a frozen feature of its prompt text, the N prompts whose
 * keys are nearest to q (cosine) are concatenated and prepended to the input
 * embeddings, and a surrogate term pulls the chosen keys towards their queries.
 * The backbone is frozen; only the prompts and keys are trained.
 *
 * ```
 * beginTask (first)  prompts [M, L, d] ← random rows of the frozen token embedding;
 *                    keys [M, d] ~ U(−1, 1) (both with the method's rng, prompts first)
 * every forward      q = decoder.features(ids, pooled over the BOS + prompt tokens)
 *                    s_m = cos(q, key_m); chosen = the N largest s_m (ties: lower m)
 *                    input = [prompt_{c1} ; … ; prompt_{cN} ; embed(tokens)]   (most similar first)
 * training step      loss = task loss − λ · (1/B) Σ_rows Σ_chosen s_m           (λ = pullCoefficient)
 * evaluation         the same query and selection; no task identity
 * ```
 *
 * **The query.** `Decoder.features`: the base model's final hidden state (the
 * LM head's input), averaged over the row's BOS and prompt tokens, with LoRA
 * bypassed and no prefix — the frozen pre-trained feature L2P queries with
 * (the [CLS] feature on a ViT). Attention is causal, so the query of a
 * training row (prompt + answer) equals the query of its test prompt (up to
 * truncation): the answer never leaks into the selection. It costs one extra
 * forward pass (no backward) per batch.
 *
 * **What the released LLM code does.** TreeLoRA's repository has no LLM L2P;
 * the TRACE benchmark's (`model/Dynamic_network/L2P.py` and `training/main.py`
 * of BeyonderXX/TRACE), which the LLM baselines follow, uses pool 10, length 5,
 * top-3, pull coefficient 0.5, prompts initialised from random token
 * embeddings, and selects by query at test time too. Its query is the mean of
 * the raw input token embeddings over the whole padded row — padding, and in
 * training also the answer — and its keys are the means of the *initial*
 * prompts, fixed thereafter. This port differs there: the query is the frozen
 * model's feature over the prompt tokens only (the paper's design; the same
 * for a row in training and at test), and the keys are separate learned
 * parameters initialised U(−1, 1) (the L2P reference code's default), trained
 * by the surrogate term.
 *
 * **Defaults for the byte-level models.** M = 10 prompts (≥ the 8 TRACE
 * tasks), L = 5, N = 3: the TRACE LLM values. The prefix is N·L = 15
 * positions, about 12 % of `byte-tiny`'s 128-token training window; the
 * paper's ViT setting (M 30, L 5) would mostly add prompts that a 8-task
 * stream never selects.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { makeVariable, uniqueScope } from "../../models/init.ts";
import { cosineSimilarity, topKIndices } from "../../models/prompt.ts";
import type { ContinualMethod, MethodState } from "../method.ts";
import { taskLossOnly } from "../method.ts";
import { checkIntegers, randomTokenEmbeddings } from "../dual_prompt/lm.ts";
import { resolveOptions } from "../o_lora.ts";
import type { Scalar, Tensor, Tensor2D, Variable } from "../../tensor.ts";

/** L2P-LM's options. */
export interface L2pLmOptions {
  /** Prompts in the pool, M (default 10). */
  poolSize: number;
  /** Rows (input-embedding positions) of each prompt, L (default 5). */
  promptLength: number;
  /** Prompts chosen per row, N (default 3); the prefix has N·L rows. */
  topN: number;
  /** Weight λ of the surrogate key-matching term (default 0.5). */
  pullCoefficient: number;
}

/** The defaults: the TRACE LLM L2P's values (see the module doc). */
export const L2P_LM_DEFAULTS: Readonly<L2pLmOptions> = Object.freeze({
  poolSize: 10,
  promptLength: 5,
  topN: 3,
  pullCoefficient: 0.5,
});

/**
 * Create L2P for the LM track. Options: {@link L2pLmOptions} (defaults
 * {@link L2P_LM_DEFAULTS}). The pool is made at the first `beginTask`.
 *
 * @example
 * ```ts
 * import { createL2pLm } from "./lm.ts";
 * const m = createL2pLm({ poolSize: 8 });
 * m.options(); // { poolSize: 8, promptLength: 5, topN: 3, pullCoefficient: 0.5 }
 * ```
 */
export function createL2pLm(options: Record<string, unknown> = {}): ContinualMethod {
  const opts = resolveOptions("l2p", options, L2P_LM_DEFAULTS);
  checkIntegers("l2p", { ...opts }, { atLeast: 1, keys: ["poolSize", "promptLength", "topN"] });
  if (opts.topN > opts.poolSize) {
    throw new Error(`l2p: topN ${opts.topN} is larger than the pool (${opts.poolSize})`);
  }
  const { poolSize: m, promptLength: len, topN: n } = opts;
  const scope = uniqueScope("l2p-lm");
  let prompts: Variable | null = null; // [M, L, d]
  let keys: Variable | null = null; // [M, d]
  // The surrogate term of the current training step: set by inputPrefix, read by loss().
  let pending: Scalar | null = null;
  let use = new Array<number>(m).fill(0);

  const free = () => {
    prompts?.dispose();
    keys?.dispose();
    prompts = keys = null;
  };
  const build = (p: Float32Array, k: Float32Array, dim: number) => {
    free();
    prompts = makeVariable(p, [m, len, dim], { name: `${scope}/prompts`, trainable: true });
    keys = makeVariable(k, [m, dim], { name: `${scope}/keys`, trainable: true });
  };
  const pool = () => {
    if (!prompts || !keys) {
      throw new Error("l2p: the prompt pool does not exist yet (beginTask first)");
    }
    return { prompts, keys };
  };

  return {
    name: "l2p",
    options: () => ({ ...opts }),
    beginTask(ctx) {
      use = new Array<number>(m).fill(0);
      if (prompts) return;
      const { data, dim } = randomTokenEmbeddings(ctx.model, { rows: m * len, rng: ctx.rng });
      const k = Float32Array.from({ length: m * dim }, () => ctx.rng.uniform(-1, 1));
      build(data, k, dim);
    },
    trainableVariables: () => {
      const p = pool();
      return [p.prompts, p.keys];
    },
    inputPrefix(at, rows) {
      const p = pool();
      const dim = p.keys.shape[1]!;
      const b = rows.ids.shape[0];
      const query = rows.model.features(rows.ids, {
        attentionMask: rows.attentionMask,
        poolMask: rows.promptMask,
      });
      const sim = cosineSimilarity(query, p.keys as Tensor as Tensor2D);
      // The choice is read back, so no gradient path runs through it.
      // [b·n] pool indices, row by row, best first.
      const chosen = topKIndices(sim.dataSync(), { rows: b, cols: m, k: n });
      const onehot = new Float32Array(b * n * m);
      chosen.forEach((c, rj) => {
        onehot[rj * m + c] = 1;
        if (at.training) use[c]++;
      });
      const select = tf.tensor2d(onehot, [b * n, m]);
      if (at.training) {
        const picked = tf.sum(tf.reshape(select, [b, n, m]), 1);
        pending = tf.div(tf.sum(tf.mul(sim, picked)), b) as Scalar;
      }
      // One-hot rows times the pool (a matMul: the gather gradient does not run on wasm).
      const rowsOf = tf.matMul(select, tf.reshape(p.prompts, [m, len * dim]));
      return tf.reshape(rowsOf, [b, n * len, dim]);
    },
    loss(_ctx, taskLoss) {
      const match = pending;
      pending = null;
      if (match === null) return taskLossOnly(taskLoss);
      return {
        total: tf.sub(taskLoss, tf.mul(match, opts.pullCoefficient)) as Scalar,
        terms: { keyMatch: match },
      };
    },
    endTask() {},
    taskSummary: () => ({ promptUse: use.slice() }),
    state(): MethodState {
      const arrays: MethodState["arrays"] = {};
      if (prompts && keys) {
        arrays.prompts = { shape: prompts.shape.slice(), data: prompts.dataSync() as Float32Array };
        arrays.keys = { shape: keys.shape.slice(), data: keys.dataSync() as Float32Array };
      }
      return { json: { options: { ...opts } }, arrays };
    },
    restore(state) {
      const { prompts: p, keys: k } = state.arrays;
      if (!p && !k) return free();
      const dim = k?.shape[1];
      if (
        !p || !k || k.shape.length !== 2 || k.shape[0] !== m ||
        p.shape.join(",") !== [m, len, dim].join(",")
      ) {
        throw new Error(
          `l2p: restore: expected prompts [${m}, ${len}, d] and keys [${m}, d], got ${
            p ? `[${p.shape}]` : "none"
          } and ${k ? `[${k.shape}]` : "none"}`,
        );
      }
      build(p.data, k.data, dim!);
    },
    dispose() {
      free();
      pending = null;
    },
  };
}
