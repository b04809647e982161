/**
 * EWC (Kirkpatrick et al. 2017) as the TreeLoRA repo's `EWC.py` runs it
 * (spec §8.3): a diagonal Fisher from squared gradients, a quadratic anchor
 * at the parameters of the previous task.
 *
 * ```
 * afterStep  F += g² / (steps of the task)     (accumulated over all tasks, never reset;
 *                                             g = ∂L_task/∂θ, the task loss's gradient)
 * endTask    θ* ← θ, freeze F for the next task's penalty
 * loss       task + (λ/2)·Σ F·(θ − θ*)²        (from the second task on)
 * ```
 *
 * Options ({@link EwcOptions}): `lambda` (default by track: ViT 50, LM 400,
 * i.e. the code's 0.5·400) and `params`, the parameters fine-tuned and
 * penalised: `"lora"` (the default, for speed: LoRA A/B + head), `"base"`
 * (the code's full fine-tuning: base weights + head), `"all"` (base + LoRA +
 * head). `"base"`/`"all"` need a model exposing `baseVariables()` and make
 * those weights trainable for the task; they are then handed to the trainer
 * checkpoint (`checkpointVariables`), so `--resume` continues from the
 * fine-tuned base weights.
 *
 * Deviations: the penalty uses the Fisher as it stood at the end of the
 * previous task (the code keeps adding the running sum into the live
 * penalty); the Fisher is built from the task loss's gradient alone (the
 * penalty is built on the trainer's gradient tap, so both come from one
 * backward pass). The released `model/Regular/EWC.py` records the gradient of
 * the total loss (its parameter hooks fire on `backward(loss)` after the
 * penalty was added), so its Fisher includes the penalty's own gradient:
 * `fisherFrom: "total"` reproduces that.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { addN } from "../models/many_inputs.ts";
import type { AdaptedModel } from "../models/backbone.ts";
import type { ContinualMethod, MethodState, Track } from "./method.ts";
import { taskLossOnly } from "./method.ts";
import type { Scalar, Tensor, Variable } from "../tensor.ts";

/** EWC's options. */
export interface EwcOptions {
  /** Penalty strength λ (the penalty is λ/2·Σ F·(θ − θ*)²). */
  lambda: number;
  /** Which parameters are fine-tuned and anchored. */
  params: "lora" | "base" | "all";
  /**
   * The gradient the diagonal Fisher squares: `"task"` (default; the task loss's, as EWC
   * defines it) or `"total"` (task loss + penalty, the released TreeLoRA `EWC.py`).
   */
  fisherFrom: "task" | "total";
}

/** Default λ per track (spec §8.3: ViT 50; LM 0.5·400 → λ = 400). */
export const EWC_LAMBDA: Readonly<Record<Track, number>> = Object.freeze({ vit: 50, lm: 400 });

/** The variables EWC trains for a `params` choice, in a fixed order. */
export function ewcVariables(model: AdaptedModel, params: EwcOptions["params"]): Variable[] {
  const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
  if (params === "lora") return [...lora, ...model.headVariables()];
  if (!model.baseVariables) throw new Error(`EWC: params "${params}" needs the base weights`);
  const base = model.baseVariables();
  return params === "base"
    ? [...base, ...model.headVariables()]
    : [...base, ...lora, ...model.headVariables()];
}

/**
 * The penalty (λ/2)·Σ_i F_i·(θ_i − θ*_i)², summed over all variables.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { ewcPenalty } from "./ewc.ts";
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const p = ewcPenalty([w], { fisher: [tf.tensor1d([1, 1])], anchor: [tf.tensor1d([0, 0])], lambda: 2 });
 * // (2/2)·(1 + 4) = 5
 * ```
 */
export function ewcPenalty(
  variables: readonly Tensor[],
  options: { fisher: Tensor[]; anchor: Tensor[]; lambda: number },
): Scalar {
  return tf.tidy(() => {
    const sums = variables.map((v, i) =>
      tf.sum(tf.mul(options.fisher[i], tf.square(tf.sub(v, options.anchor[i]))))
    );
    return tf.mul(addN(sums), options.lambda / 2) as Scalar;
  });
}

function resolve(options: Record<string, unknown>, track: Track): EwcOptions {
  const unknown = Object.keys(options).filter((k) =>
    !["lambda", "params", "fisherFrom"].includes(k)
  );
  if (unknown.length > 0) throw new Error(`unknown EWC option(s): ${unknown.join(", ")}`);
  const fisherFrom = (options.fisherFrom ?? "task") as EwcOptions["fisherFrom"];
  if (fisherFrom !== "task" && fisherFrom !== "total") {
    throw new Error(`EWC: fisherFrom must be "task" or "total", got ${fisherFrom}`);
  }
  const lambda = (options.lambda ?? EWC_LAMBDA[track]) as number;
  if (!(typeof lambda === "number" && lambda >= 0)) throw new Error(`EWC: bad lambda ${lambda}`);
  const params = (options.params ?? "lora") as EwcOptions["params"];
  if (!["lora", "base", "all"].includes(params)) throw new Error(`EWC: bad params ${params}`);
  return { lambda, params, fisherFrom };
}

/**
 * Create EWC.
 *
 * @example
 * ```ts
 * import { createEwc } from "./ewc.ts";
 * createEwc({}, { track: "vit" }).options(); // { lambda: 50, params: "lora", fisherFrom: "task" }
 * ```
 */
export function createEwc(
  options: Record<string, unknown> = {},
  context: { track: Track } = { track: "vit" },
): ContinualMethod {
  const opts = resolve(options, context.track);
  let fisher: Float32Array[] = [];
  let shapes: number[][] = [];
  let anchorData: Float32Array[] = [];
  let fisherT: Tensor[] = [];
  let anchorT: Tensor[] = [];
  let base: Variable[] = [];

  function rebuild(): void {
    tf.dispose([...fisherT, ...anchorT]);
    // Copies: the cpu backend keeps a typed array it is given by reference, so a tensor made
    // from the live `fisher` would keep growing with it (the penalty's Fisher must stay frozen).
    fisherT = fisher.map((f, i) => tf.tensor(f.slice(), shapes[i]));
    anchorT = anchorData.map((a, i) => tf.tensor(a, shapes[i]));
  }

  return {
    name: "ewc",
    options: () => ({ ...opts }),
    beginTask(ctx) {
      base = opts.params === "lora" ? [] : ctx.model.baseVariables!();
      for (const v of base) v.trainable = true;
      const vars = ewcVariables(ctx.model, opts.params);
      if (fisher.length === 0) {
        fisher = vars.map((v) => new Float32Array(v.size));
        shapes = vars.map((v) => v.shape.slice());
      }
    },
    trainableVariables: (ctx) => ewcVariables(ctx.model, opts.params),
    gradientVariables: (ctx) => ewcVariables(ctx.model, opts.params),
    checkpointVariables: (model) => opts.params === "lora" ? [] : model.baseVariables!(),
    loss(ctx, taskLoss, outputs) {
      if (anchorT.length === 0 || opts.lambda === 0) return taskLossOnly(taskLoss);
      const vars = ewcVariables(ctx.model, opts.params);
      // Built on the trainer's tap, so afterStep gets the task loss's gradient separately.
      const tap = outputs?.tap;
      const penalty = ewcPenalty(tap ? vars.map((v) => tap("ewc", v)) : vars, {
        fisher: fisherT,
        anchor: anchorT,
        lambda: opts.lambda,
      });
      return { total: tf.add(taskLoss, penalty) as Scalar, terms: { ewc: penalty } };
    },
    afterStep(ctx, info) {
      const g = opts.fisherFrom === "total" ? info.gradients : info.taskGradients;
      if (!g || g.length !== fisher.length) throw new Error("EWC: the trainer passed no gradients");
      const scale = 1 / (ctx.epochs * ctx.stepsPerEpoch);
      g.forEach((gi, i) => {
        const f = fisher[i];
        for (let k = 0; k < gi.length; k++) f[k] += gi[k] * gi[k] * scale;
      });
    },
    async endTask(ctx) {
      const vars = ewcVariables(ctx.model, opts.params);
      anchorData = await Promise.all(vars.map((v) => v.data() as Promise<Float32Array>));
      anchorData = anchorData.map((a) => a.slice());
      for (const v of base) v.trainable = false;
      rebuild();
    },
    taskSummary: () => ({
      ewcFisherMass: fisher.reduce((a, f) => a + f.reduce((x, y) => x + y, 0), 0),
    }),
    state(): MethodState {
      const arrays: MethodState["arrays"] = {};
      fisher.forEach((f, i) => (arrays[`fisher.${i}`] = { shape: shapes[i], data: f }));
      anchorData.forEach((a, i) => (arrays[`anchor.${i}`] = { shape: shapes[i], data: a }));
      return { json: { options: opts, variables: fisher.length }, arrays };
    },
    restore(state) {
      const n = (state.json.variables as number) ?? 0;
      fisher = [];
      anchorData = [];
      shapes = [];
      for (let i = 0; i < n; i++) {
        fisher.push(state.arrays[`fisher.${i}`].data.slice());
        shapes.push(state.arrays[`fisher.${i}`].shape);
        const a = state.arrays[`anchor.${i}`];
        if (a) anchorData.push(a.data.slice());
      }
      rebuild();
    },
    dispose() {
      tf.dispose([...fisherT, ...anchorT]);
      fisherT = [];
      anchorT = [];
    },
  };
}
