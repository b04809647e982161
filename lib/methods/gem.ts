/**
 * GEM, Gradient Episodic Memory (Lopez-Paz & Ranzato 2017; spec §8.3): the gradient of
 * every step is checked against one gradient per finished task; when it conflicts with
 * any of them (a negative inner product) it is replaced by the solution of GEM's dual QP
 * ({@link gemDual} in `qp.ts`), g̃ = Gᵀv + g.
 *
 * ```
 * beforeStep   recompute: G[k] = ∇ loss(memory of task k), every past task k (the paper)
 * adjustGrads  ⟨G[k], g⟩ < 0 for some k → g ← g + Gᵀv,  v = argmin_{v ≥ margin} ½vᵀ(GGᵀ+eps·I)v + (Gg)ᵀv
 * endTask      recompute: memory of the task = `memoryPerTask` training examples drawn with the
 *              method's rng;  stored: G[task] = the gradient of its last training step
 * ```
 *
 * Options ({@link GemOptions}, defaults by track in {@link GEM_DEFAULTS}):
 * - `memoryGradient`: `"recompute"` (default; the paper: every step, the gradient of the loss
 *   on each past task's episodic memory, evaluation mode) or `"stored"` (TreeLoRA's released
 *   LLM code: one gradient per task, from its last training batch, as applied — after that
 *   step's projection, before clipping; no example memory).
 * - `memoryPerTask`: examples kept per task (`"recompute"` only; null with `"stored"`).
 *   ViT 100 (the paper's setting, spec §5.2 "memory 100 samples"); LM 8 (our choice: the
 *   memory's gradients are recomputed every step, so its cost is t·8 extra examples per step).
 * - `perTensor`: false (default; the paper: one QP on the flattened gradient of all trained
 *   variables) or true (the released code: an independent QP per variable, each checked
 *   for conflicts on its own slice).
 * - `margin`: lower bound of the dual variables, GEM's `memory_strength`. ViT 0.05 (spec
 *   §5.2 "strength 0.05"), LM 0.5 (the released code's `project2cone2(margin=0.5)`).
 * - `eps`: ridge on GGᵀ, 1e-3 (the released code). The constraints then hold as
 *   ⟨G[k], g̃⟩ ≥ −eps·v_k (exactly ≥ 0 with eps = 0).
 * - `params`: which parameters are trained and constrained, as EWC: `"lora"` (default: LoRA
 *   A/B + head), `"base"` (the released code's full fine-tuning: base weights + head), `"all"`.
 *   Under `"base"`/`"all"` the base weights go into the trainer checkpoint
 *   (`checkpointVariables`), so `--resume` continues from the fine-tuned base weights.
 *
 * Deviations: the released LLM code passes GEM's arguments to `qpth`, whose convention
 * (min ½vᵀPv + qᵀv s.t. Gv ≤ h) flips both the linear term and the bound, so its "projection"
 * moves g further against the memory; this module solves the QP of GEM's own
 * `project2cone2` (quadprog). The paper's ring-buffer memory (the last examples seen) is
 * replaced by a uniform draw from the task's training split at the end of the task.
 * Variables without a gradient in the step are left out (zero in the inner products).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { AdaptedModel } from "../models/backbone.ts";
import type {
  ContinualMethod,
  ExampleAccess,
  MethodContext,
  MethodState,
  Track,
} from "./method.ts";
import { taskLossOnly } from "./method.ts";
import { gemDual, gramMatrix } from "./qp.ts";
import type { Tensor, Tensor1D, Variable } from "../tensor.ts";

/** GEM's options (module doc). */
export interface GemOptions {
  /** Where the memory gradients come from: the episodic memory every step, or the task's last step. */
  memoryGradient: "recompute" | "stored";
  /** Training examples kept per task (`"recompute"`); null with `"stored"`. */
  memoryPerTask: number | null;
  /** One QP per trained variable (the released code) instead of one on the flat gradient. */
  perTensor: boolean;
  /** Lower bound of the dual variables (GEM's `memory_strength`). */
  margin: number;
  /** Ridge added to the diagonal of GGᵀ. */
  eps: number;
  /** Which parameters are fine-tuned and constrained. */
  params: "lora" | "base" | "all";
}

/** Defaults per track (module doc for the sources). */
export const GEM_DEFAULTS: Readonly<Record<Track, Readonly<GemOptions>>> = Object.freeze({
  vit: Object.freeze({
    memoryGradient: "recompute",
    memoryPerTask: 100,
    perTensor: false,
    margin: 0.05,
    eps: 1e-3,
    params: "lora",
  }),
  lm: Object.freeze({
    memoryGradient: "recompute",
    memoryPerTask: 8,
    perTensor: false,
    margin: 0.5,
    eps: 1e-3,
    params: "lora",
  }),
});

/**
 * The variables GEM trains for a `params` choice, in a fixed order (LoRA A, B per site,
 * base weights, head).
 *
 * @example
 * ```ts ignore
 * gemVariables(model, "lora"); // [site0.a, site0.b, …, head weight, head bias]
 * ```
 */
export function gemVariables(model: AdaptedModel, params: GemOptions["params"]): Variable[] {
  const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
  if (params === "lora") return [...lora, ...model.headVariables()];
  if (!model.baseVariables) throw new Error(`GEM: params "${params}" needs the base weights`);
  const base = model.baseVariables();
  return params === "base"
    ? [...base, ...model.headVariables()]
    : [...base, ...lora, ...model.headVariables()];
}

function resolve(options: Record<string, unknown>, track: Track): GemOptions {
  const d = GEM_DEFAULTS[track];
  const unknown = Object.keys(options).filter((k) => !(k in d));
  if (unknown.length > 0) throw new Error(`unknown GEM option(s): ${unknown.join(", ")}`);
  const memoryGradient = (options.memoryGradient ?? d.memoryGradient) as GemOptions[
    "memoryGradient"
  ];
  if (memoryGradient !== "recompute" && memoryGradient !== "stored") {
    throw new Error(`GEM: memoryGradient must be "recompute" or "stored", got ${memoryGradient}`);
  }
  let memoryPerTask: number | null = null;
  if (memoryGradient === "stored") {
    if (options.memoryPerTask !== undefined && options.memoryPerTask !== null) {
      throw new Error(
        'GEM: memoryPerTask has no effect with memoryGradient "stored" (the stored gradient ' +
          "is the task's last training step's)",
      );
    }
  } else {
    memoryPerTask = (options.memoryPerTask ?? d.memoryPerTask) as number;
    if (!(Number.isInteger(memoryPerTask) && memoryPerTask > 0)) {
      throw new Error(`GEM: memoryPerTask must be a positive integer, got ${memoryPerTask}`);
    }
  }
  const perTensor = options.perTensor ?? d.perTensor;
  if (typeof perTensor !== "boolean") throw new Error(`GEM: perTensor must be boolean`);
  const margin = (options.margin ?? d.margin) as number;
  const eps = (options.eps ?? d.eps) as number;
  for (const [k, x] of [["margin", margin], ["eps", eps]] as const) {
    if (!(typeof x === "number" && Number.isFinite(x) && x >= 0)) {
      throw new Error(`GEM: ${k} must be a finite number >= 0, got ${x}`);
    }
  }
  const params = (options.params ?? d.params) as GemOptions["params"];
  if (!["lora", "base", "all"].includes(params)) throw new Error(`GEM: bad params ${params}`);
  return { memoryGradient, memoryPerTask, perTensor, margin, eps, params };
}

function examplesOf(ctx: MethodContext): ExampleAccess {
  if (!ctx.examples) throw new Error("GEM: the trainer gave no ctx.examples (stored examples)");
  return ctx.examples;
}

/** The gradients of `vars` in `grads`, concatenated (missing ones are zeros). */
function flatten(vars: Variable[], grads: Record<string, Tensor | null>): Tensor1D {
  return tf.concat(vars.map((v) => {
    const g = grads[v.name];
    return g ? tf.reshape(g, [-1]) : tf.zeros([v.size]);
  })) as Tensor1D;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i] * b[i];
  return s;
}

/**
 * Create GEM.
 *
 * @example
 * ```ts
 * import { createGem } from "./gem.ts";
 * createGem({}, { track: "vit" }).options();
 * // { memoryGradient: "recompute", memoryPerTask: 100, perTensor: false, margin: 0.05, eps: 0.001, params: "lora" }
 * ```
 */
export function createGem(
  options: Record<string, unknown> = {},
  context: { track: Track } = { track: "vit" },
): ContinualMethod {
  const opts = resolve(options, context.track);
  /** Layout of the trained variables: sizes in order (checked against every task's). */
  let sizes: number[] = [];
  /** recompute: memory[k] = positions in task k's training split. */
  let memory: number[][] = [];
  /** stored: stored[k] = the flat gradient of task k's last training step. */
  let stored: Float32Array[] = [];
  /** This step's (recompute) or this task's (stored) memory gradients, flat, one per past task. */
  let rows: Float32Array[] = [];
  /** Gram matrices of `rows`: one (flat) or one per variable (perTensor). */
  let grams: Float64Array[][] = [];
  let lastGradient: Float32Array | null = null;
  let base: Variable[] = [];
  let steps = 0;
  let projectedSteps = 0;
  let projectedTensors = 0;
  const projectedHistory: number[] = [];

  const offsets = () => sizes.reduce((o, s) => [...o, o[o.length - 1] + s], [0]);

  function setRows(next: Float32Array[]): void {
    rows = next;
    if (rows.length === 0) {
      grams = [];
      return;
    }
    if (!opts.perTensor) {
      grams = [gramMatrix(rows)];
      return;
    }
    const off = offsets();
    grams = sizes.map((_, j) => gramMatrix(rows.map((r) => r.subarray(off[j], off[j + 1]))));
  }

  function checkLayout(vars: Variable[]): void {
    const now = vars.map((v) => v.size);
    if (sizes.length === 0) sizes = now;
    if (now.length !== sizes.length || now.some((s, i) => s !== sizes[i])) {
      throw new Error(
        `GEM: the trained variables changed (sizes ${now.join(",")}; stored ${sizes.join(",")})`,
      );
    }
  }

  /** Project `g` (flat, all variables) in place; returns how many slices were projected. */
  function project(g: Float64Array, ctx: MethodContext): number {
    const off = opts.perTensor ? offsets() : [0, g.length];
    let count = 0;
    for (let j = 0; j + 1 < off.length; j++) {
      const dots = rows.map((r) => dot(r, g, off[j], off[j + 1]));
      const bad = dots.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) {
        throw new Error(
          `GEM: non-finite inner product with task ${bad + 1}'s memory gradient at task ${
            ctx.taskIndex + 1
          }, epoch ${ctx.epoch + 1}, step ${ctx.step + 1}`,
        );
      }
      if (!dots.some((x) => x < 0)) continue;
      const v = gemDual(grams[j], dots, { margin: opts.margin, eps: opts.eps });
      rows.forEach((r, k) => {
        for (let i = off[j]; i < off[j + 1]; i++) g[i] += v[k] * r[i];
      });
      count++;
    }
    return count;
  }

  return {
    name: "gem",
    options: () => ({ ...opts }),
    beginTask(ctx) {
      steps = 0;
      projectedSteps = 0;
      projectedTensors = 0;
      lastGradient = null;
      base = opts.params === "lora" ? [] : ctx.model.baseVariables!();
      for (const v of base) v.trainable = true;
      checkLayout(gemVariables(ctx.model, opts.params));
      const t = ctx.taskIndex;
      if (opts.memoryGradient === "stored") {
        if (stored.length < t) {
          throw new Error(`GEM: task ${t + 1} starts with stored gradients of ${stored.length}`);
        }
        setRows(stored.slice(0, t));
      } else {
        if (memory.length < t) {
          throw new Error(`GEM: task ${t + 1} starts with the memory of ${memory.length} tasks`);
        }
        setRows([]);
      }
    },
    trainableVariables: (ctx) => gemVariables(ctx.model, opts.params),
    checkpointVariables: (model) => opts.params === "lora" ? [] : model.baseVariables!(),
    loss: (_ctx, taskLoss) => taskLossOnly(taskLoss),
    async beforeStep(ctx) {
      if (opts.memoryGradient !== "recompute" || ctx.taskIndex === 0) return;
      const ex = examplesOf(ctx);
      const vars = gemVariables(ctx.model, opts.params);
      const next: Float32Array[] = [];
      for (let k = 0; k < ctx.taskIndex; k++) {
        const set = ex.select(k, memory[k]);
        const flat = tf.tidy(() => flatten(vars, tf.variableGrads(() => ex.loss(set), vars).grads));
        const data = (await flat.data()) as Float32Array;
        flat.dispose();
        const bad = data.findIndex((x) => !Number.isFinite(x));
        if (bad >= 0) {
          throw new Error(`GEM: task ${k + 1}'s memory gradient has ${data[bad]} at ${bad}`);
        }
        next.push(data);
      }
      setRows(next);
    },
    adjustGradients(ctx, grads) {
      steps++;
      const record = opts.memoryGradient === "stored" && ctx.epoch === ctx.epochs - 1;
      if (rows.length === 0 && !record) return grads;
      const vars = gemVariables(ctx.model, opts.params);
      const off = offsets();
      const g = new Float64Array(off[off.length - 1]);
      vars.forEach((v, j) => {
        const t = grads[v.name];
        if (t) g.set(t.dataSync() as Float32Array, off[j]);
      });
      let out = grads;
      if (rows.length > 0) {
        const n = project(g, ctx);
        if (n > 0) {
          projectedSteps++;
          projectedTensors += n;
          out = { ...grads };
          vars.forEach((v, j) => {
            if (!grads[v.name]) return;
            out[v.name] = tf.tensor(Float32Array.from(g.subarray(off[j], off[j + 1])), v.shape);
          });
        }
      }
      if (record) lastGradient = Float32Array.from(g);
      return out;
    },
    endTask(ctx) {
      const t = ctx.taskIndex;
      if (opts.memoryGradient === "stored") {
        if (lastGradient === null) {
          throw new Error(`GEM: task ${t + 1} ended without a training step to store`);
        }
        stored[t] = lastGradient;
        lastGradient = null;
      } else {
        const ex = examplesOf(ctx);
        const n = ex.trainSize(t);
        const k = Math.min(opts.memoryPerTask!, n);
        const picked = ctx.rng.permutation(n).slice(0, k).sort((a, b) => a - b);
        memory[t] = ex.select(t, picked).indices.slice();
      }
      for (const v of base) v.trainable = false;
      projectedHistory[t] = projectedSteps;
      setRows([]);
    },
    taskSummary: () => ({
      gemSteps: steps,
      gemProjectedSteps: projectedSteps,
      ...(opts.perTensor ? { gemProjectedTensors: projectedTensors } : {}),
      gemMemoryTasks: opts.memoryGradient === "stored" ? stored.length : memory.length,
    }),
    state(): MethodState {
      const arrays: MethodState["arrays"] = {};
      stored.forEach((g, k) => (arrays[`grad.${k}`] = { shape: [g.length], data: g.slice() }));
      return {
        json: {
          options: opts,
          sizes: sizes.slice(),
          memory: memory.map((m) => m.slice()),
          storedTasks: stored.length,
          projectedSteps: projectedHistory.slice(),
        },
        arrays,
      };
    },
    restore(state) {
      const o = state.json.options as GemOptions | undefined;
      if (o && o.memoryGradient !== opts.memoryGradient) {
        throw new Error(
          `GEM: the state is of memoryGradient "${o.memoryGradient}", this GEM "${opts.memoryGradient}"`,
        );
      }
      sizes = ((state.json.sizes as number[] | undefined) ?? []).slice();
      memory = ((state.json.memory as number[][] | undefined) ?? []).map((m) => m.slice());
      const n = (state.json.storedTasks as number | undefined) ?? 0;
      stored = Array.from({ length: n }, (_, k) => {
        const a = state.arrays[`grad.${k}`];
        if (!a) throw new Error(`GEM: the state has no stored gradient of task ${k + 1}`);
        return a.data.slice();
      });
      projectedHistory.length = 0;
      projectedHistory.push(...((state.json.projectedSteps as number[] | undefined) ?? []));
      setRows([]);
    },
    dispose() {
      setRows([]);
    },
  };
}
