/**
 * InfLoRA (Liang & Li, CVPR 2024; liangyanshuo/InfLoRA): a new adapter per
 * task whose down-projection A is fixed before training, in the subspace that
 * does not interfere with old tasks' inputs; only B (and the head) is trained.
 * Finished adapters stay frozen in the sites' pools (the same as merging them
 * into W, which InfLoRA does).
 *
 * Per site, with C = mean xᵀx of the site's inputs x and M = orthonormal rows
 * spanning old tasks' inputs (gradient-projection memory, GPM):
 *
 * ```
 * probe   (first `probeSteps` steps of task t; B gets no update there, and B = 0 so the forward
 *          is the old model) record C_new; A_t = top-r left singular vectors of (I − MᵀM)·C_new,
 *          as rows, ÷ √3 (task 0: of C_new)
 * train   only B and the head
 * memory  (steps of the last epoch, up to `memorySteps`) record C_old; after the task extend M
 *          with the top directions of (I − MᵀM)·C_old until the captured energy reaches
 *          ε_t = (lame − lamb)·t/T + lamb  (InfLoRA's `update_DualGPM`, "remove" branch)
 * ```
 *
 * Simplifications, documented: (1) the released code forwards the whole training
 * set before and after each task; here the inputs come from training steps (the
 * probe batches, and the last epoch's batches, so the memory sees the adapter
 * moving during that epoch); the probe steps do not move B. (2) Only GPM's
 * "remove" representation (a basis of the old-input space) is kept; DualGPM's
 * "retain" switch is a memory optimisation of the same projection. (3) When the
 * complement has fewer than r directions, the extra rows of A are 0 (that rank is
 * unused) rather than arbitrary. The energy criterion uses the singular values of
 * C (as the released code does, on xᵀx rather than on x).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LoraSite } from "../models/backbone.ts";
import { TaskAdapters } from "../models/adapter_pool.ts";
import type { ContinualMethod, MethodContext, MethodState } from "./method.ts";
import { taskLossOnly } from "./method.ts";
import { resolveOptions } from "./o_lora.ts";
import {
  dot,
  orthonormalizeInto,
  projectBothSides,
  squareSymmetric,
  symmetricEigen,
} from "./subspace.ts";
import type { Tensor2D } from "../tensor.ts";

/** InfLoRA's options. */
export interface InfLoraOptions {
  /** Energy threshold at task 0 (`lamb`, default 0.95). */
  lamb: number;
  /** Energy threshold reached at the last task (`lame`, default 1.0). */
  lame: number;
  /** Steps at the start of each task whose inputs design A (default 1). */
  probeSteps: number;
  /** Steps of the last epoch whose inputs update the memory; 0 = all (default 0). */
  memorySteps: number;
  /** Divisor of the designed A rows (default √3, the released code's). */
  aDivisor: number;
}

/** The defaults (InfLoRA's CIFAR-100 config: lamb 0.95, lame 1.0). */
export const INFLORA_DEFAULTS: Readonly<InfLoraOptions> = Object.freeze({
  lamb: 0.95,
  lame: 1.0,
  probeSteps: 1,
  memorySteps: 0,
  aDivisor: Math.sqrt(3),
});

/** Running Σ xᵀx and Σ rows per site, on the device. */
class InputMoments {
  sums = new Map<string, Tensor2D>();
  rows = new Map<string, number>();
  add(site: LoraSite, x: Tensor2D): void {
    const xtx = tf.matMul(tf.transpose(x), x) as Tensor2D;
    const old = this.sums.get(site.name);
    const next = tf.keep(old ? tf.add(old, xtx) : xtx) as Tensor2D;
    old?.dispose();
    this.sums.set(site.name, next);
    this.rows.set(site.name, (this.rows.get(site.name) ?? 0) + x.shape[0]);
  }
  /** Mean xᵀx of a site, float64 (or null when nothing was recorded). */
  async mean(site: LoraSite): Promise<Float64Array | null> {
    const s = this.sums.get(site.name);
    if (!s) return null;
    const n = this.rows.get(site.name)!;
    return Float64Array.from(await s.data(), (v) => v / n);
  }
  dispose(): void {
    for (const t of this.sums.values()) t.dispose();
    this.sums.clear();
    this.rows.clear();
  }
}

/**
 * The designed A of one site: top-`rank` left singular vectors of (I − MᵀM)·C,
 * as rows, divided by `divisor`; rows with no room left in the complement are 0.
 *
 * @example
 * ```ts
 * import { designA } from "./inflora.ts";
 * const a = designA(Float64Array.from([4, 0, 0, 1]), [], { rank: 1, divisor: 1 }); // ±[1, 0]
 * ```
 */
export function designA(
  c: Float64Array,
  memory: Float64Array[],
  options: { rank: number; divisor: number },
): Float32Array {
  const d = Math.round(Math.sqrt(c.length));
  // Left singular vectors of P·C are the eigenvectors of P·C·Cᵀ·P = P·C²·P (C symmetric).
  const { vectors } = symmetricEigen(projectBothSides(squareSymmetric(c, d), memory, d), d);
  const rows: Float64Array[] = [...memory];
  const out = new Float32Array(options.rank * d);
  let r = 0;
  for (const v of vectors) {
    if (r >= options.rank) break;
    if (orthonormalizeInto(rows, [v], { tol: 1e-3 }) === 0) continue;
    const u = rows[rows.length - 1];
    for (let i = 0; i < d; i++) out[r * d + i] = u[i] / options.divisor;
    r++;
  }
  return out;
}

/**
 * Extend the memory `m` (orthonormal rows) with C's top directions outside it,
 * until the energy fraction reaches `threshold` (InfLoRA's GPM update). Returns
 * the number of rows added.
 *
 * @example
 * ```ts
 * import { updateMemory } from "./inflora.ts";
 * const m: Float64Array[] = [];
 * updateMemory(m, Float64Array.from([4, 0, 0, 0.01]), { threshold: 0.95 }); // 1 row: ±[1, 0]
 * ```
 */
export function updateMemory(
  m: Float64Array[],
  c: Float64Array,
  options: { threshold: number },
): number {
  const d = Math.round(Math.sqrt(c.length));
  const c2 = squareSymmetric(c, d);
  const total = Math.max(0, symmetricEigen(c2, d).values.reduce((a, v) => a + Math.max(0, v), 0));
  if (!(total > 0)) return 0;
  const { values, vectors } = symmetricEigen(projectBothSides(c2, m, d), d);
  const sv = Array.from(values, (v) => Math.max(0, v));
  const hat = sv.reduce((a, v) => a + v, 0);
  let accumulated = (total - hat) / total;
  let r = 0;
  if (m.length === 0) {
    // First task: r = #{k : cumsum(ratio)_k < threshold}, at least 1.
    let cum = 0;
    for (const v of sv) {
      cum += v / total;
      if (cum < options.threshold) r++;
      else break;
    }
    r = Math.max(r, 1);
  } else {
    for (const v of sv) {
      if (accumulated >= options.threshold) break;
      accumulated += v / total;
      r++;
    }
  }
  return orthonormalizeInto(m, vectors.slice(0, Math.min(r, d)), { tol: 1e-3 });
}

/**
 * Create InfLoRA. Options: {@link InfLoraOptions}.
 *
 * @example
 * ```ts
 * import { createInfLora } from "./inflora.ts";
 * const m = createInfLora({ probeSteps: 2 });
 * m.options().lamb; // 0.95
 * ```
 */
export function createInfLora(options: Record<string, unknown> = {}): ContinualMethod {
  const opts = resolveOptions("inflora", options, INFLORA_DEFAULTS);
  if (!Number.isInteger(opts.probeSteps) || opts.probeSteps < 1) {
    throw new Error("inflora: probeSteps must be an integer ≥ 1");
  }
  const pool = new TaskAdapters();
  const memory = new Map<string, Float64Array[]>();
  const probe = new InputMoments();
  const old = new InputMoments();
  let probing = false;

  const probeEnd = (ctx: MethodContext) => Math.min(opts.probeSteps, ctx.stepsPerEpoch) - 1;
  const record = (sites: LoraSite[], on: { probe: boolean; memory: boolean }) => {
    for (const s of sites) {
      s.recordInput = on.probe || on.memory
        ? (x) => {
          if (on.probe) probe.add(s, x);
          if (on.memory) old.add(s, x);
        }
        : undefined;
    }
  };

  return {
    name: "inflora",
    options: () => ({ ...opts }),
    async beginTask(ctx) {
      const sites = ctx.model.loraSites();
      pool.attach(sites);
      if (ctx.taskIndex > 0 && pool.count < ctx.taskIndex) {
        await pool.freezeLive(sites, `task${ctx.taskIndex - 1}`);
      }
      tf.tidy(() => sites.forEach((s) => s.b.assign(tf.zeros(s.b.shape))));
      probe.dispose();
      old.dispose();
    },
    trainableVariables: (ctx) => [
      ...ctx.model.loraSites().map((s) => s.b),
      ...ctx.model.headVariables(),
    ],
    beforeStep(ctx) {
      probing = ctx.epoch === 0 && ctx.step <= probeEnd(ctx);
      const memoryStep = ctx.epoch === ctx.epochs - 1 &&
        (opts.memorySteps === 0 || ctx.step < opts.memorySteps);
      record(ctx.model.loraSites(), { probe: probing, memory: memoryStep });
    },
    loss: (_ctx, taskLoss) => taskLossOnly(taskLoss),
    adjustGradients(ctx, grads) {
      if (!probing) return grads;
      const out = { ...grads };
      for (const s of ctx.model.loraSites()) out[s.b.name] = tf.zerosLike(grads[s.b.name]);
      return out;
    },
    async afterStep(ctx) {
      if (!probing || ctx.step !== probeEnd(ctx)) return;
      probing = false;
      for (const s of ctx.model.loraSites()) {
        const c = await probe.mean(s);
        if (!c) throw new Error(`inflora: no inputs recorded at site ${s.name}`);
        const a = designA(c, memory.get(s.name) ?? [], {
          rank: s.a.shape[0],
          divisor: opts.aDivisor,
        });
        tf.tidy(() => s.a.assign(tf.tensor(a, s.a.shape, "float32")));
      }
      probe.dispose();
    },
    async endTask(ctx) {
      const sites = ctx.model.loraSites();
      record(sites, { probe: false, memory: false });
      const threshold = (opts.lame - opts.lamb) * ctx.taskIndex / ctx.numTasks + opts.lamb;
      for (const s of sites) {
        const c = await old.mean(s);
        if (!c) continue;
        const m = memory.get(s.name) ?? [];
        updateMemory(m, c, { threshold });
        // Rounded to float32 (the checkpoint's precision), so a resumed run continues exactly.
        memory.set(s.name, m.map((u) => Float64Array.from(Float32Array.from(u))));
      }
      old.dispose();
    },
    taskSummary: () => ({
      memoryDims: Object.fromEntries([...memory].map(([k, m]) => [k, m.length])),
      frozenAdapters: pool.count,
    }),
    state(): MethodState {
      const arrays = pool.arrays();
      for (const [site, m] of memory) {
        const d = m[0]?.length ?? 0;
        const data = new Float32Array(m.length * d);
        m.forEach((u, k) => data.set(u, k * d));
        arrays[`memory/${site}`] = { shape: [m.length, d], data };
      }
      return { json: { options: opts, frozenAdapters: pool.count }, arrays };
    },
    restore(state) {
      pool.restore(state.arrays);
      memory.clear();
      for (const [k, v] of Object.entries(state.arrays)) {
        if (!k.startsWith("memory/")) continue;
        const [n, d] = v.shape;
        memory.set(
          k.slice(7),
          Array.from(
            { length: n },
            (_, i) => Float64Array.from(v.data.subarray(i * d, (i + 1) * d)),
          ),
        );
      }
    },
    dispose() {
      probe.dispose();
      old.dispose();
      pool.dispose();
    },
  };
}

/** Largest |⟨a_i, m_k⟩| over the rows of `a` [r, d] and of the memory (for tests and reports). */
export function maxOverlap(a: Float32Array, memory: Float64Array[], d: number): number {
  let worst = 0;
  for (let i = 0; i < a.length / d; i++) {
    for (const m of memory) {
      worst = Math.max(worst, Math.abs(dot(a.subarray(i * d, (i + 1) * d), m)));
    }
  }
  return worst;
}
