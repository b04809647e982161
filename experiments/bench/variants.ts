/**
 * The bench's backend variants: their names, what each switches on, and which of the requested
 * ones can run on this machine.
 *
 * A variant is a backend (`wasm`, `cpu`, or a GPU backend: `webgpu`, `tensorflow`), `+blas` for
 * the system BLAS's matrix products, and `-unfused` for the plain tfjs compositions and
 * `tf.train.adam` instead of the fused ops and FlatAdam (lib/models/fused_ops.ts): `wasm+blas`,
 * `wasm+blas-unfused`, `webgpu`, …
 *
 * @module
 */

const BASE_VARIANTS = ["wasm", "wasm+blas", "cpu", "cpu+blas", "webgpu", "tensorflow"];

/** The GPU backends: run where they start, skipped with the reason where they do not. */
export const GPU_BACKENDS: readonly string[] = ["webgpu", "tensorflow"];

/** Every variant name `--variants` accepts. */
export const KNOWN_VARIANTS: readonly string[] = [
  ...BASE_VARIANTS,
  ...BASE_VARIANTS.map((v) => `${v}-unfused`),
];

/** A backend variant and how to switch to it. */
export interface Variant {
  /** As given to `--variants`. */
  name: string;
  /** The tfjs backend. */
  backend: "wasm" | "cpu" | "webgpu" | "tensorflow";
  /** Matrix products on the system BLAS. */
  blas: boolean;
  /** The fused ops and FlatAdam (true) or the plain tfjs compositions and tf.train.adam. */
  fused: boolean;
}

/**
 * The variant a `--variants` name stands for; an unknown name is an error that lists the known.
 *
 * @example
 * ```ts
 * import { variantOf } from "./variants.ts";
 * variantOf("wasm+blas-unfused"); // { name, backend: "wasm", blas: true, fused: false }
 * ```
 */
export function variantOf(name: string): Variant {
  if (!KNOWN_VARIANTS.includes(name)) {
    throw new Error(`--variants: unknown variant "${name}"; known: ${KNOWN_VARIANTS.join(", ")}`);
  }
  const fused = !name.endsWith("-unfused");
  const [backend, extra] = name.replace(/-unfused$/, "").split("+");
  return { name, backend: backend as Variant["backend"], blas: extra === "blas", fused };
}

/**
 * The requested variants that can run, in order, and the others with the reason: a GPU backend
 * that did not start (`gpuFailures`: backend → its error), or `+blas` without the system BLAS.
 *
 * @example
 * ```ts
 * import { chooseVariants, variantOf } from "./variants.ts";
 * chooseVariants(["wasm", "webgpu"].map(variantOf), {
 *   blas: { enabled: false, note: "no BLAS" },
 *   gpuFailures: new Map([["webgpu", "no navigator.gpu"]]),
 * }); // wasm runs; webgpu skipped: "no webgpu backend here: no navigator.gpu"
 * ```
 */
export function chooseVariants(
  requested: readonly Variant[],
  options: {
    blas: { enabled: boolean; note: string };
    gpuFailures: ReadonlyMap<string, string>;
  },
): { variants: Variant[]; skipped: { variant: string; reason: string }[] } {
  const variants: Variant[] = [];
  const skipped: { variant: string; reason: string }[] = [];
  for (const v of requested) {
    const gpuFailure = options.gpuFailures.get(v.backend);
    if (gpuFailure !== undefined) {
      skipped.push({ variant: v.name, reason: `no ${v.backend} backend here: ${gpuFailure}` });
    } else if (v.blas && !options.blas.enabled) {
      skipped.push({ variant: v.name, reason: options.blas.note });
    } else variants.push(v);
  }
  return { variants, skipped };
}
