/**
 * L2P, Learning to Prompt (Wang et al., CVPR 2022), on the ViT track
 * (class-incremental). A pool of M prompts, each P tokens long, with one key
 * each; the backbone and the LoRA adapters stay frozen.
 *
 * ```
 * query q   = final-LN [CLS] of the frozen pre-trained ViT (no prompts, no LoRA)
 * choice    = the N keys with the largest cos(q, key), per sample
 * input     = [CLS, N·P prompt tokens, patches]   (prompt tokens after the position embedding)
 * feature   = mean of the prompt tokens' final-LN outputs (L2P's head_type "prompt")
 * loss      = CE + λ·(1/B)·Σ_b Σ_{chosen j} (1 − cos(q_b, key_j))
 * trainable = prompts, keys, head
 * ```
 *
 * Choices (spec §5.2 fixes M = 30, P = 5; the rest follows the L2P code,
 * `JH-LEE-KR/l2p-pytorch` configs/cifar100_l2p.py):
 *
 * - N = 5 (`top_k`), λ = 0.1 (`pull_constraint_coeff`); the pull term is
 *   L2P's `−λ·reduce_sim` (Σ over the batch and the N chosen keys, divided by
 *   B) shifted by λ·N so it is ≥ 0: same gradient, so the λ is comparable.
 * - Batch-wise selection (`batchwise_prompt`, default on) in training only:
 *   the whole batch uses the N prompts chosen most often in it. Evaluation is
 *   always per sample (the L2P code also pools the choice over a test batch,
 *   which makes a prediction depend on the other test images). No frequency
 *   penalty.
 * - Prompts and keys start U[0, 1) (PyTorch's `nn.init.uniform_` in the L2P
 *   code); the prompt tokens get no position embedding (`vit.ts`).
 * - Training uses no task identity beyond the trainer's logit masking to the
 *   task's classes (L2P's `train_mask`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { promptCapable } from "../../models/image_classifier.ts";
import {
  batchwiseIndices,
  cosineSimilarity,
  keyPullLoss,
  selectRows,
  topKIndices,
  uniformVariable,
} from "../../models/prompt.ts";
import { makeVariable, uniqueScope } from "../../models/init.ts";
import { Rng } from "../../random.ts";
import type { ContinualMethod, MethodContext, MethodState, Track } from "../method.ts";
import { taskLossOnly } from "../method.ts";
import type { Scalar, Tensor, Tensor2D, Tensor3D, Variable } from "../../tensor.ts";

/** L2P's options. */
export interface L2pOptions {
  /** Prompts in the pool, M (spec §5.2: 30). */
  poolSize: number;
  /** Tokens per prompt, P (spec §5.2: 5). */
  promptLength: number;
  /** Prompts chosen per sample, N (L2P: 5). */
  topK: number;
  /** Weight λ of the key-pull term (L2P: 0.1). */
  pullWeight: number;
  /** Training: the batch shares its N most frequent choices (L2P's `batchwise_prompt`). */
  batchwise: boolean;
  /** Head input: `"prompts"` (mean of the prompt outputs, L2P) or `"cls"`. */
  pool: "prompts" | "cls";
}

/** The defaults. */
export const L2P_DEFAULTS: Readonly<L2pOptions> = Object.freeze({
  poolSize: 30,
  promptLength: 5,
  topK: 5,
  pullWeight: 0.1,
  batchwise: true,
  pool: "prompts",
});

function resolve(options: Record<string, unknown>): L2pOptions {
  const unknown = Object.keys(options).filter((k) => !(k in L2P_DEFAULTS));
  if (unknown.length > 0) {
    throw new Error(
      `unknown L2P option(s): ${unknown.join(", ")}; known: ${
        Object.keys(L2P_DEFAULTS).join(", ")
      }`,
    );
  }
  const o = { ...L2P_DEFAULTS, ...options } as L2pOptions;
  const posInt = (k: "poolSize" | "promptLength" | "topK") => {
    if (!Number.isInteger(o[k]) || o[k] < 1) {
      throw new Error(`L2P: ${k} must be a positive integer, got ${o[k]}`);
    }
  };
  posInt("poolSize");
  posInt("promptLength");
  posInt("topK");
  if (o.topK > o.poolSize) throw new Error(`L2P: topK ${o.topK} > poolSize ${o.poolSize}`);
  if (!(typeof o.pullWeight === "number" && o.pullWeight >= 0)) {
    throw new Error(`L2P: pullWeight must be a number ≥ 0, got ${o.pullWeight}`);
  }
  if (typeof o.batchwise !== "boolean") throw new Error(`L2P: batchwise must be true or false`);
  if (o.pool !== "prompts" && o.pool !== "cls") {
    throw new Error(`L2P: pool must be "prompts" or "cls", got ${JSON.stringify(o.pool)}`);
  }
  return o;
}

/**
 * Create L2P for the ViT track. Options: {@link L2pOptions} (defaults
 * {@link L2P_DEFAULTS}). On the LM track it throws: the LM port lives elsewhere.
 *
 * @example
 * ```ts
 * import { createL2p } from "./vit.ts";
 * const m = createL2p({}, { track: "vit" });
 * m.options(); // { poolSize: 30, promptLength: 5, topK: 5, pullWeight: 0.1, batchwise: true, pool: "prompts" }
 * ```
 */
export function createL2p(
  options: Record<string, unknown> = {},
  context: { track: Track } = { track: "vit" },
): ContinualMethod {
  if (context.track !== "vit") {
    throw new Error(
      `l2p: not built on the ${context.track} track by this module (lib/methods/l2p/vit.ts is the ViT port)`,
    );
  }
  const opts = resolve(options);
  const { poolSize: m, promptLength: len, topK: k } = opts;
  const scope = uniqueScope("l2p");
  let prompts: Variable | null = null; // [M, P, dim]
  let keys: Variable | null = null; // [M, dim]
  let pull: Scalar | null = null; // the key-pull term of the current training step
  let counts = new Array<number>(m).fill(0); // training choices in the current task

  function setPool(values: { dim: number; prompts: Float32Array; keys: Float32Array }): void {
    tf.dispose([prompts, keys].filter((v) => v !== null) as Variable[]);
    prompts = null;
    keys = null;
    const { dim } = values;
    prompts = makeVariable(values.prompts, [m, len, dim], {
      name: `${scope}/prompts`,
      trainable: true,
    });
    keys = makeVariable(values.keys, [m, dim], { name: `${scope}/keys`, trainable: true });
  }

  return {
    name: "l2p",
    options: () => ({ ...opts }),
    beginTask(ctx: MethodContext) {
      const { dim } = promptCapable(ctx.model, { who: "L2P" }).promptShape;
      if (prompts === null) {
        const rng = new Rng(ctx.rng.seed());
        prompts = uniformVariable([m, len, dim], {
          rng,
          low: 0,
          high: 1,
          name: `${scope}/prompts`,
        });
        keys = uniformVariable([m, dim], { rng, low: 0, high: 1, name: `${scope}/keys` });
      } else if (prompts.shape[2] !== dim) {
        throw new Error(`L2P: the prompts have width ${prompts.shape[2]}, the model ${dim}`);
      }
      counts = new Array<number>(m).fill(0);
    },
    trainableVariables(ctx) {
      if (prompts === null || keys === null) throw new Error("L2P: beginTask creates the pool");
      return [prompts, keys, ...ctx.model.headVariables()];
    },
    forward(model, x, o) {
      const pm = promptCapable(model, { who: "L2P" });
      if (prompts === null || keys === null) {
        throw new Error("L2P.forward: no prompt pool yet (beginTask creates it)");
      }
      const pool = prompts;
      const poolKeys = keys as Tensor as Tensor2D;
      const b = x.shape[0];
      const dim = pm.promptShape.dim;
      const out = tf.tidy(() => {
        const sim = cosineSimilarity(pm.queryFeatures(x), poolKeys);
        let idx = topKIndices(sim.dataSync(), { rows: b, cols: m, k });
        if (o.training && opts.batchwise) idx = batchwiseIndices(idx, { rows: b, k });
        const tokens = tf.reshape(selectRows(pool, idx), [b, k * len, dim]) as Tensor3D;
        const logits = pm.promptedLogits(x, {
          training: o.training,
          seed: o.seed,
          prompts: { tokens },
          pool: opts.pool,
        });
        if (!o.training) return { logits };
        for (const i of idx) counts[i]++;
        return { logits, pull: tf.mul(keyPullLoss(sim, idx, { k }), opts.pullWeight) as Scalar };
      });
      if (o.training) pull = out.pull ?? null;
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
    endTask() {},
    taskSummary: () => ({ promptChoices: [...counts] }),
    state(): MethodState {
      if (prompts === null || keys === null) return { json: { options: opts }, arrays: {} };
      return {
        json: { options: opts },
        arrays: {
          prompts: { shape: prompts.shape, data: prompts.dataSync() as Float32Array },
          keys: { shape: keys.shape, data: keys.dataSync() as Float32Array },
        },
      };
    },
    restore(state: MethodState) {
      const p = state.arrays.prompts;
      const kk = state.arrays.keys;
      if (!p || !kk) return;
      if (p.shape.length !== 3 || p.shape[0] !== m || p.shape[1] !== len) {
        throw new Error(`L2P.restore: prompts [${p.shape}] do not match [${m}, ${len}, dim]`);
      }
      setPool({ dim: p.shape[2], prompts: p.data, keys: kk.data });
    },
    dispose() {
      tf.dispose([prompts, keys].filter((v) => v !== null) as Variable[]);
      prompts = null;
      keys = null;
      pull = null;
    },
  };
}
