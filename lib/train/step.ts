/**
 * One optimiser step: gradients of a scalar loss with respect to a variable
 * list, global-norm clipping, Adam. Shared by pre-training, the
 * class-incremental trainer and the language-model trainer.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** Result of {@link optimizerStep}: the loss terms read back as numbers and the gradient norm. */
export interface StepResult {
  /** Value of the differentiated total. */
  total: number;
  /** Values of the named terms the loss function returned. */
  terms: Record<string, number>;
  /** Global L2 norm of the gradient before clipping (after `adjustGradients`). */
  gradNorm: number;
  /** Gradients (before clipping) of the variables listed in `readGradients`, in that order. */
  gradients: Float32Array[];
}

/**
 * Compute gradients of `lossFn` w.r.t. `variables`, clip them to a global L2
 * norm of `clipNorm` (when > 0) and apply them with `optimizer`. Everything
 * runs inside `tf.tidy`; the returned values are plain numbers, so the step
 * leaves no tensors behind. Reading them back synchronises the device.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { optimizerStep } from "./step.ts";
 * const w = tf.variable(tf.scalar(3));
 * const opt = tf.train.adam(0.1);
 * const r = await optimizerStep([w], () => ({ total: tf.square(w) as tf.Scalar, terms: {} }), {
 *   optimizer: opt,
 *   clipNorm: 1,
 * });
 * ```
 */
export async function optimizerStep(
  variables: tf.Variable[],
  lossFn: () => { total: tf.Scalar; terms: Record<string, tf.Scalar> },
  options: {
    optimizer: tf.Optimizer;
    clipNorm: number;
    readGradients?: tf.Variable[];
    /**
     * Rewrite the gradients before clipping (GEM/OGD-style projections). Called inside the
     * step's `tidy` with the gradients keyed by variable name; returns the map to apply.
     */
    adjustGradients?: (grads: tf.NamedTensorMap) => tf.NamedTensorMap;
  },
): Promise<StepResult> {
  if (variables.length === 0) throw new Error("optimizerStep: no trainable variables");
  let kept: Record<string, tf.Scalar> = {};
  let wanted: tf.Tensor[] = [];
  const out = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const parts = lossFn();
      kept = Object.fromEntries(Object.entries(parts.terms).map(([k, v]) => [k, tf.keep(v)]));
      return parts.total;
    }, variables);
    const names = Object.keys(grads);
    const adjusted = options.adjustGradients ? options.adjustGradients(grads) : grads;
    wanted = (options.readGradients ?? []).map((v) => {
      const g = grads[v.name];
      if (!g) {
        throw new Error(`optimizerStep: no gradient for ${v.name} (not in the trainable list)`);
      }
      return tf.keep(g.clone());
    });
    const sq = names.map((n) => tf.sum(tf.square(adjusted[n])));
    const norm = tf.sqrt(tf.addN(sq));
    let applied = adjusted;
    if (options.clipNorm > 0) {
      const scale = tf.minimum(tf.scalar(1), tf.div(options.clipNorm, tf.add(norm, 1e-6)));
      applied = Object.fromEntries(names.map((n) => [n, tf.mul(adjusted[n], scale)]));
    }
    options.optimizer.applyGradients(applied);
    return tf.stack([value, norm]);
  });
  const termNames = Object.keys(kept);
  const termValues = termNames.length > 0
    ? tf.tidy(() => tf.stack(termNames.map((n) => kept[n])))
    : null;
  const [vals, termVals, ...gradients] = await Promise.all([
    out.data(),
    termValues ? termValues.data() : Promise.resolve(new Float32Array()),
    ...wanted.map((g) => g.data() as Promise<Float32Array>),
  ]);
  out.dispose();
  for (const g of wanted) g.dispose();
  termValues?.dispose();
  for (const t of Object.values(kept)) t.dispose();
  const terms: Record<string, number> = {};
  termNames.forEach((n, i) => (terms[n] = termVals[i]));
  return { total: vals[0], gradNorm: vals[1], terms, gradients: gradients as Float32Array[] };
}

/** Adam as the harness uses it; `beta2` 0.999 (ViT) or 0.95 (the TreeLoRA LLM scripts). */
export function createAdam(
  options: { lr: number; beta1?: number; beta2?: number; epsilon?: number },
): tf.Optimizer {
  return tf.train.adam(
    options.lr,
    options.beta1 ?? 0.9,
    options.beta2 ?? 0.999,
    options.epsilon ?? 1e-8,
  );
}
