/**
 * OGD on the LoRA parameters (Farajtabar et al. 2020, as the TreeLoRA repo's
 * `OGD.py` applies it; spec §8.3): one LoRA adapter (and the head) trained
 * through all tasks, but each LoRA gradient is projected onto the orthogonal
 * complement of the gradient directions stored for finished tasks.
 *
 * ```
 * afterStep    last epoch of a task: store the step's LoRA gradient g (all sites' A, B, flat)
 * endTask      Gram–Schmidt the stored g's against the basis U, append (U stays orthonormal)
 * adjustGrads  g ← g − Uᵀ(U g)   (LoRA variables only; the head is not projected)
 * ```
 *
 * Options ({@link OgdOptions}): `maxDirectionsPerTask` (default null: every
 * step of the last epoch, as the released code; a number keeps only the last
 * N steps of that epoch, bounding memory at N × #LoRA-parameters floats per task).
 *
 * Differences from the released `OGD.py`, all deliberate: it appends the same
 * buffer every step (so all stored directions equal the last step's gradient)
 * and projects each parameter onto its own slice of the joint basis; here each
 * step's gradient is copied and the projection uses the joint basis. Stored
 * gradients are the raw ones (the repo stores projected ones; after
 * Gram–Schmidt against the old basis both span the same space).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LoraSite } from "../models/backbone.ts";
import type { ContinualMethod, MethodContext, MethodState } from "./method.ts";
import { taskLossOnly } from "./method.ts";
import { orthonormalizeInto } from "./subspace.ts";
import type { NamedTensorMap, Tensor2D, Variable } from "../tensor.ts";

/** OGD's options. */
export interface OgdOptions {
  /** Cap on stored gradient directions per task (the last N steps of the last epoch); null = all. */
  maxDirectionsPerTask: number | null;
}

/** The defaults: the released code's (every last-epoch step). */
export const OGD_DEFAULTS: Readonly<OgdOptions> = Object.freeze({ maxDirectionsPerTask: null });

function resolve(options: Record<string, unknown>): OgdOptions {
  const unknown = Object.keys(options).filter((k) => !(k in OGD_DEFAULTS));
  if (unknown.length > 0) throw new Error(`unknown OGD option(s): ${unknown.join(", ")}`);
  const cap = options.maxDirectionsPerTask ?? null;
  if (cap !== null && !(Number.isInteger(cap) && (cap as number) > 0)) {
    throw new Error(`OGD: maxDirectionsPerTask must be a positive integer or null, got ${cap}`);
  }
  return { maxDirectionsPerTask: cap as number | null };
}

/** The LoRA variables OGD projects, in a fixed order (A, B per site). */
function loraVariables(sites: LoraSite[]): Variable[] {
  return sites.flatMap((s) => [s.a, s.b]);
}

/**
 * Create OGD.
 *
 * @example
 * ```ts
 * import { createOgd } from "./ogd.ts";
 * const ogd = createOgd({ maxDirectionsPerTask: 50 });
 * ogd.options(); // { maxDirectionsPerTask: 50 }
 * ```
 */
export function createOgd(options: Record<string, unknown> = {}): ContinualMethod {
  const opts = resolve(options);
  let basis: Float64Array[] = [];
  let basisTensor: Tensor2D | null = null;
  let pending: Float32Array[] = [];

  function rebuild(): void {
    basisTensor?.dispose();
    basisTensor = null;
    if (basis.length === 0) return;
    const d = basis[0].length;
    const flat = new Float32Array(basis.length * d);
    basis.forEach((u, k) => flat.set(u, k * d));
    basisTensor = tf.tensor2d(flat, [basis.length, d]);
  }

  return {
    name: "ogd",
    options: () => ({ ...opts }),
    beginTask: () => {
      pending = [];
    },
    trainableVariables: (
      ctx,
    ) => [...loraVariables(ctx.model.loraSites()), ...ctx.model.headVariables()],
    gradientVariables: (ctx) => loraVariables(ctx.model.loraSites()),
    loss: (_ctx, taskLoss) => taskLossOnly(taskLoss),
    adjustGradients(ctx: MethodContext, grads: NamedTensorMap): NamedTensorMap {
      if (basisTensor === null) return grads;
      const vars = loraVariables(ctx.model.loraSites());
      const flat = tf.concat(vars.map((v) => tf.reshape(grads[v.name], [1, -1])), 1); // [1, D]
      if (flat.shape[1] !== basisTensor.shape[1]) {
        throw new Error(`OGD: gradient has ${flat.shape[1]} values, basis ${basisTensor.shape[1]}`);
      }
      const coeff = tf.matMul(flat, tf.transpose(basisTensor)); // [1, K]
      const projected = tf.sub(flat, tf.matMul(coeff, basisTensor)); // [1, D]
      const out: NamedTensorMap = { ...grads };
      let offset = 0;
      for (const v of vars) {
        out[v.name] = tf.reshape(tf.slice(projected, [0, offset], [1, v.size]), v.shape);
        offset += v.size;
      }
      return out;
    },
    afterStep(ctx, info) {
      if (ctx.epoch !== ctx.epochs - 1) return;
      const g = info.gradients;
      if (!g || g.length === 0) throw new Error("OGD: the trainer passed no LoRA gradients");
      const flat = new Float32Array(g.reduce((n, x) => n + x.length, 0));
      let o = 0;
      for (const x of g) {
        flat.set(x, o);
        o += x.length;
      }
      pending.push(flat);
      const cap = opts.maxDirectionsPerTask;
      if (cap !== null && pending.length > cap) pending.shift();
    },
    endTask() {
      // Rows are rounded to float32, the precision of the projection, so a restored basis
      // (stored as float32) continues exactly like the uninterrupted one.
      const all = [...basis];
      orthonormalizeInto(all, pending);
      basis = all.map((u) => Float64Array.from(Float32Array.from(u)));
      pending = [];
      rebuild();
    },
    taskSummary: () => ({ ogdDirections: basis.length }),
    state(): MethodState {
      const d = basis[0]?.length ?? 0;
      const data = new Float32Array(basis.length * d);
      basis.forEach((u, k) => data.set(u, k * d));
      return {
        json: { options: opts, directions: basis.length },
        arrays: basis.length > 0 ? { basis: { shape: [basis.length, d], data } } : {},
      };
    },
    restore(state) {
      const b = state.arrays.basis;
      basis = b
        ? Array.from(
          { length: b.shape[0] },
          (_, k) => Float64Array.from(b.data.subarray(k * b.shape[1], (k + 1) * b.shape[1])),
        )
        : [];
      rebuild();
    },
    dispose() {
      basisTensor?.dispose();
      basisTensor = null;
    },
  };
}
