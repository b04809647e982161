/**
 * Weight initialisation in plain JavaScript, and variable naming.
 *
 * Initial values are drawn from an {@link Rng} into `Float32Array`s before
 * they become tensors, so a model built from the same seed has bit-identical
 * weights on every backend (tfjs's own initialisers draw on the backend).
 *
 * tfjs keeps variables in one global registry keyed by name, so names must be
 * unique across models alive at the same time. {@link uniqueScope} hands out
 * a fresh prefix (`vit0`, `vit1`, …) per model; variables are named
 * `<scope>/<local name>`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../random.ts";
import type { Variable } from "../tensor.ts";

/**
 * `n` draws of a normal with standard deviation `std`, truncated to ±2·std by
 * re-drawing (as timm's `trunc_normal_(std=0.02)`).
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { truncatedNormal } from "./init.ts";
 * const w = truncatedNormal(16, { rng: new Rng(0), std: 0.02 });
 * ```
 */
export function truncatedNormal(n: number, options: { rng: Rng; std: number }): Float32Array {
  const { rng, std } = options;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = rng.normal();
    while (z < -2 || z > 2) z = rng.normal();
    out[i] = z * std;
  }
  return out;
}

/**
 * `n` uniform draws in [-bound, bound).
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { uniformArray } from "./init.ts";
 * const a = uniformArray(8, { rng: new Rng(0), bound: 0.5 });
 * ```
 */
export function uniformArray(n: number, options: { rng: Rng; bound: number }): Float32Array {
  const { rng, bound } = options;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
  return out;
}

/**
 * A float32 variable holding `data` with `shape`.
 *
 * @example
 * ```ts
 * import { makeVariable } from "./init.ts";
 * const v = makeVariable(new Float32Array([1, 2]), [2], { name: "example/v", trainable: false });
 * v.dispose();
 * ```
 */
export function makeVariable(
  data: Float32Array,
  shape: number[],
  options: { name: string; trainable: boolean },
): Variable {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw new Error(`makeVariable ${options.name}: ${data.length} values for shape [${shape}]`);
  }
  const t = tf.tensor(data, shape, "float32");
  const v = tf.variable(t, options.trainable, options.name);
  t.dispose();
  return v;
}

const counters = new Map<string, number>();

/**
 * A variable-name prefix `<kind><n>` that no registered variable uses yet.
 *
 * @example
 * ```ts
 * import { uniqueScope } from "./init.ts";
 * const scope = uniqueScope("vit"); // "vit0", then "vit1", …
 * ```
 */
export function uniqueScope(kind: string): string {
  const registered = Object.keys(tf.engine().registeredVariables);
  for (;;) {
    const n = counters.get(kind) ?? 0;
    counters.set(kind, n + 1);
    const scope = `${kind}${n}`;
    if (!registered.some((name) => name.startsWith(`${scope}/`))) return scope;
  }
}
