/**
 * Per-task signatures (spec §4.2–4.3) on plain typed arrays.
 *
 * Layout: M sites × D values each, row-major (site d occupies
 * `[d·D, (d+1)·D)`). Every LoRA site must have the same D, because the code
 * stacks the flattened A matrices into an M×D matrix.
 *
 * The accumulator keeps the code's running value
 *
 *     C_t = scale · Σ_{s ≤ t} G_s / T
 *
 * where T is the number of steps of the accumulation window (one epoch in
 * code mode, the whole task otherwise) and scale is M (`"modules"`, the
 * code's `insert_grad` bug) or 1 (`"one"`). After exactly T steps C is
 * scale × the mean of the G_s; that value is the task's stored vector. Mid
 * window C is a partial sum, which is what the code's bandit compares the
 * stored vectors with.
 *
 * What G_s is (the LoRA A values, or the gradients ∂L/∂A) is the caller's
 * business; the accumulator only records it in `source`.
 *
 * @module
 */

import type { AccumulatorScale, SignatureSource } from "./options.ts";

/** A float array of either precision. */
export type FloatArray = Float32Array | Float64Array;

/** The values of one LoRA site (its A matrix, or its gradient), flattened. */
export interface SiteValues {
  /** Site name, used in error messages (e.g. `blocks.0.attn.q`). */
  name: string;
  /** The flattened values, length D. */
  values: FloatArray;
}

/** M sites × D values, row-major. */
export interface FlatSites {
  /** The values, length M·D. */
  data: Float64Array;
  /** Number of sites M. */
  numSites: number;
  /** Values per site D. */
  dim: number;
}

/**
 * Stack the flattened values of M sites into one M×D row-major array (for a
 * LoRA site: `{ name: site.name, values: site.a.dataSync<"float32">() }`).
 * Throws if the list is empty or if a site's length differs from the first
 * site's, naming the site.
 *
 * @example
 * ```ts
 * import { flattenSites } from "./signature.ts";
 * const flat = flattenSites([
 *   { name: "blocks.0.q", values: new Float32Array([1, 2]) },
 *   { name: "blocks.0.v", values: new Float32Array([3, 4]) },
 * ]);
 * flat.data; // Float64Array [1, 2, 3, 4]; flat.numSites 2, flat.dim 2
 * ```
 */
export function flattenSites(sites: readonly SiteValues[]): FlatSites {
  if (sites.length === 0) throw new Error("flattenSites: no sites");
  const dim = sites[0].values.length;
  if (dim === 0) throw new Error(`flattenSites: site ${sites[0].name} has no values`);
  for (const site of sites) {
    if (site.values.length !== dim) {
      throw new Error(
        `flattenSites: site ${site.name} has ${site.values.length} values but site ` +
          `${sites[0].name} has ${dim}; TreeLoRA stacks all sites into an M×D matrix, so every ` +
          `A matrix must have the same size`,
      );
    }
  }
  const data = new Float64Array(sites.length * dim);
  sites.forEach((site, d) => data.set(site.values, d * dim));
  return { data, numSites: sites.length, dim };
}

/** Options of a {@link SignatureAccumulator}. */
export interface SignatureAccumulatorOptions {
  /** Number of sites M. */
  numSites: number;
  /** Values per site D. */
  dim: number;
  /** `"modules"`: each step adds M·G/T (code bug); `"one"`: G/T. */
  scale: AccumulatorScale;
  /** What the steps are (recorded only; the arithmetic is the same). */
  source: SignatureSource;
}

/** Checkpointable state of a {@link SignatureAccumulator}. */
export interface AccumulatorState {
  /** Window length T set by the last `reset`. */
  windowSteps: number;
  /** Steps added since the last `reset`. */
  added: number;
  /** The running value C (length M·D). */
  value: Float64Array;
  /** The unscaled running sum Σ G_s (length M·D). */
  sum: Float64Array;
}

/**
 * The running per-task signature. Call `reset(T)` at the start of every
 * accumulation window (epoch start when `resetPerEpoch`, task start
 * otherwise), `add(G)` once per step, and `snapshot()` at task end.
 *
 * @example
 * ```ts
 * import { SignatureAccumulator } from "./signature.ts";
 * const acc = new SignatureAccumulator({ numSites: 2, dim: 1, scale: "modules", source: "lora_a_values" });
 * acc.reset(2);
 * acc.add(new Float64Array([1, 2]));
 * acc.add(new Float64Array([3, 4]));
 * acc.snapshot(); // [4, 6] = 2 (= M) × mean
 * ```
 */
export class SignatureAccumulator {
  /** Number of sites M. */
  readonly numSites: number;
  /** Values per site D. */
  readonly dim: number;
  /** The scale option. */
  readonly scale: AccumulatorScale;
  /** What the added steps are. */
  readonly source: SignatureSource;
  #windowSteps = 0;
  #added = 0;
  #value: Float64Array;
  #sum: Float64Array;

  /** Create an empty accumulator; call `reset(T)` before the first `add`. */
  constructor(options: SignatureAccumulatorOptions) {
    const { numSites, dim } = options;
    if (!Number.isInteger(numSites) || numSites < 1) {
      throw new Error(`SignatureAccumulator: numSites must be a positive integer, got ${numSites}`);
    }
    if (!Number.isInteger(dim) || dim < 1) {
      throw new Error(`SignatureAccumulator: dim must be a positive integer, got ${dim}`);
    }
    this.numSites = numSites;
    this.dim = dim;
    this.scale = options.scale;
    this.source = options.source;
    this.#value = new Float64Array(numSites * dim);
    this.#sum = new Float64Array(numSites * dim);
  }

  /** The per-step factor: M for `"modules"`, 1 for `"one"`. */
  get factor(): number {
    return this.scale === "modules" ? this.numSites : 1;
  }

  /** Window length T set by the last `reset` (0 before the first). */
  get windowSteps(): number {
    return this.#windowSteps;
  }

  /** Steps added since the last `reset`. */
  get added(): number {
    return this.#added;
  }

  /** Start a new window of `windowSteps` steps (the T of the code): zero C. */
  reset(windowSteps: number): void {
    if (!Number.isInteger(windowSteps) || windowSteps < 1) {
      throw new Error(
        `SignatureAccumulator.reset: windowSteps must be a positive integer, got ${windowSteps}`,
      );
    }
    this.#windowSteps = windowSteps;
    this.#added = 0;
    this.#value.fill(0);
    this.#sum.fill(0);
  }

  /**
   * Add one step's M×D values: C += factor · G / T. Throws before the first
   * `reset`, on a wrong length, or when more than T steps are added (the
   * window length was wrong, so the stored mean would be too).
   */
  add(step: FloatArray): void {
    if (this.#windowSteps === 0) {
      throw new Error("SignatureAccumulator.add: call reset(T) first");
    }
    if (step.length !== this.#value.length) {
      throw new Error(
        `SignatureAccumulator.add: expected ${this.#value.length} values ` +
          `(${this.numSites} sites × ${this.dim}), got ${step.length}`,
      );
    }
    if (this.#added >= this.#windowSteps) {
      throw new Error(
        `SignatureAccumulator.add: window of ${this.#windowSteps} steps is full; ` +
          `reset(T) was given the wrong T`,
      );
    }
    const k = this.factor / this.#windowSteps;
    for (let i = 0; i < step.length; i++) {
      this.#value[i] += k * step[i];
      this.#sum[i] += step[i];
    }
    this.#added++;
  }

  /** A copy of the running value C (the code's `current_grad`, used by the bandit). */
  value(): Float64Array {
    return this.#value.slice();
  }

  /** The unscaled mean of the steps added so far, Σ G_s / added (zeros if none). */
  runningMean(): Float64Array {
    const out = new Float64Array(this.#sum.length);
    if (this.#added === 0) return out;
    for (let i = 0; i < out.length; i++) out[i] = this.#sum[i] / this.#added;
    return out;
  }

  /** The task's stored vector: a copy of C. Throws if no step was added. */
  snapshot(): Float64Array {
    if (this.#added === 0) {
      throw new Error("SignatureAccumulator.snapshot: no step was added since the last reset");
    }
    return this.#value.slice();
  }

  /** The state, for checkpoints (copies). */
  state(): AccumulatorState {
    return {
      windowSteps: this.#windowSteps,
      added: this.#added,
      value: this.#value.slice(),
      sum: this.#sum.slice(),
    };
  }

  /** Restore a state returned by {@link SignatureAccumulator.state}. */
  restore(state: AccumulatorState): void {
    const n = this.#value.length;
    if (state.value.length !== n || state.sum.length !== n) {
      throw new Error(`SignatureAccumulator.restore: expected arrays of length ${n}`);
    }
    this.#windowSteps = state.windowSteps;
    this.#added = state.added;
    this.#value.set(state.value);
    this.#sum.set(state.sum);
  }
}

function checkSelection(
  what: string,
  stored: readonly FloatArray[],
  selection: Int32Array,
  dim: number,
): void {
  const expected = selection.length * dim;
  selection.forEach((k, d) => {
    if (!Number.isInteger(k) || k < 0 || k >= stored.length) {
      throw new Error(`${what}: site ${d} selects task ${k}; ${stored.length} tasks are stored`);
    }
  });
  stored.forEach((v, k) => {
    if (v.length !== expected) {
      throw new Error(
        `${what}: stored vector of task ${k} has ${v.length} values, expected ${expected} ` +
          `(${selection.length} sites × ${dim})`,
      );
    }
  });
}

/**
 * The selected stored rows, one Float32Array of length D per site:
 * `out[d] = stored[selection[d]][d·D .. (d+1)·D)`. These are the regulariser's
 * targets P_{k_d, d}.
 *
 * @example
 * ```ts
 * import { selectedRows } from "./signature.ts";
 * const stored = [new Float64Array([1, 2, 3, 4]), new Float64Array([5, 6, 7, 8])];
 * selectedRows(stored, new Int32Array([1, 0]), { dim: 2 }); // [[5, 6], [3, 4]]
 * ```
 */
export function selectedRows(
  stored: readonly FloatArray[],
  selection: Int32Array,
  options: { dim: number },
): Float32Array[] {
  const { dim } = options;
  checkSelection("selectedRows", stored, selection, dim);
  return Array.from(
    selection,
    (k, d) => Float32Array.from(stored[k].subarray(d * dim, (d + 1) * dim)),
  );
}

/**
 * Per-site L1 distances between a current M×D vector and the selected stored
 * rows: `out[d] = ‖current[d] − stored[selection[d]][d]‖₁`. This is the
 * bandit's observation for the pulled arms (spec §4.5 step 10). In code mode
 * `current` is the accumulator's running value C *after* this step's `add`
 * (the code inserts before it searches).
 *
 * @example
 * ```ts
 * import { siteDistances } from "./signature.ts";
 * const stored = [new Float64Array([1, 2, 3, 4])];
 * siteDistances(new Float64Array([0, 0, 3, 5]), stored, new Int32Array([0, 0]), { dim: 2 }); // [3, 1]
 * ```
 */
export function siteDistances(
  current: FloatArray,
  stored: readonly FloatArray[],
  selection: Int32Array,
  options: { dim: number },
): Float64Array {
  const { dim } = options;
  checkSelection("siteDistances", stored, selection, dim);
  if (current.length !== selection.length * dim) {
    throw new Error(
      `siteDistances: current has ${current.length} values, expected ${selection.length * dim}`,
    );
  }
  const out = new Float64Array(selection.length);
  for (let d = 0; d < selection.length; d++) {
    const row = stored[selection[d]];
    let sum = 0;
    for (let i = d * dim; i < (d + 1) * dim; i++) sum += Math.abs(current[i] - row[i]);
    out[d] = sum;
  }
  return out;
}
