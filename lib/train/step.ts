/**
 * One optimiser step: gradients of a scalar loss with respect to a variable
 * list, global-norm clipping, Adam. Shared by pre-training, the
 * class-incremental trainer and the language-model trainer.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { addN, stack } from "../models/many_inputs.ts";
import type { NamedTensorMap, Scalar, Tensor, Variable } from "../tensor.ts";
import { FlatAdam, isFlatAdam } from "./flat_adam.ts";
import { fusedOps } from "../models/fused_ops.ts";
import { variableGrads } from "./variable_grads.ts";

/** Result of {@link optimizerStep}: the loss terms read back as numbers and the gradient norm. */
export interface StepResult {
  /** Value of the differentiated total. */
  total: number;
  /** Values of the named terms the loss function returned. */
  terms: Record<string, number>;
  /** Global L2 norm of the gradient before clipping (after `adjustGradients`). */
  gradNorm: number;
  /**
   * Gradients of the total (before clipping and before `adjustGradients`) of the variables
   * listed in `readGradients`, in that order.
   */
  gradients: Float32Array[];
  /**
   * Per tapped term (see {@link GradientTap}): its gradient with respect to the same variables
   * (zeros where the term does not reach a variable), read in the same backward pass.
   */
  termGradients: Record<string, Float32Array[]>;
  /**
   * The gradients of the total minus every tapped term's: the task loss's own gradient when
   * every term a method adds to the task loss reaches the variables only through taps.
   */
  taskGradients: Float32Array[];
}

/**
 * Records, in the one backward pass of a step, the gradient that a named loss term sends into
 * a variable. A method builds a term on `tap.through(term, v)` instead of `v` (an identity
 * whose backward pass also stores the incoming gradient, summed over calls); the step then
 * reports that term's gradient and the task loss's gradient (total minus tapped terms) without
 * a second backward pass.
 */
export interface GradientTap {
  /** An identity of `v` whose gradient is also recorded under `term`. Call inside the tape. */
  through(term: string, v: Variable): Tensor;
}

/** The tap's recordings: term → variable name → gradient (kept tensors). */
type TapRecord = Map<string, Map<string, Tensor>>;

function createTap(record: TapRecord): GradientTap {
  return {
    through(term, v) {
      const f = tf.customGrad((...inputs) => ({
        value: tf.clone(inputs[0] as Tensor),
        gradFunc: (dy: Tensor) => {
          const byVar = record.get(term) ?? new Map<string, Tensor>();
          record.set(term, byVar);
          const previous = byVar.get(v.name);
          byVar.set(v.name, tf.keep(previous ? tf.add(previous, dy) : tf.clone(dy)));
          previous?.dispose();
          return dy;
        },
      }));
      return f(v);
    },
  };
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
  variables: Variable[],
  lossFn: (tap: GradientTap) => { total: Scalar; terms: Record<string, Scalar> },
  options: {
    optimizer: tf.Optimizer;
    clipNorm: number;
    readGradients?: Variable[];
    /**
     * Rewrite the gradients before clipping (GEM/OGD-style projections). Called inside the
     * step's `tidy` with the gradients keyed by variable name; returns the map to apply.
     */
    adjustGradients?: (grads: NamedTensorMap) => NamedTensorMap;
  },
): Promise<StepResult> {
  if (variables.length === 0) throw new Error("optimizerStep: no trainable variables");
  let kept: Record<string, Scalar> = {};
  let wanted: Tensor[] = [];
  const taps: TapRecord = new Map();
  const tap = createTap(taps);
  let tapped: { term: string; grads: Tensor[] }[] = [];
  let taskWanted: Tensor[] = [];
  const out = tf.tidy(() => {
    const loss = () => {
      const parts = lossFn(tap);
      kept = Object.fromEntries(Object.entries(parts.terms).map(([k, v]) => [k, tf.keep(v)]));
      return parts.total;
    };
    // With the fused ops on, the backward pass frees each node's saved tensors and output
    // gradients once it has run (same gradients, bit for bit: ./variable_grads.ts).
    const { value, grads } = fusedOps()
      ? variableGrads(loss, variables)
      : tf.variableGrads(loss, variables);
    const names = Object.keys(grads);
    const adjusted = options.adjustGradients ? options.adjustGradients(grads) : grads;
    wanted = (options.readGradients ?? []).map((v) => {
      const g = grads[v.name];
      if (!g) {
        throw new Error(`optimizerStep: no gradient for ${v.name} (not in the trainable list)`);
      }
      return tf.keep(g.clone());
    });
    tapped = [...taps].map(([term, byVar]) => ({
      term,
      grads: (options.readGradients ?? []).map((v) =>
        tf.keep(byVar.get(v.name)?.clone() ?? tf.zerosLike(v))
      ),
    }));
    taskWanted = tapped.length === 0
      ? []
      : wanted.map((w, i) => tf.keep(tapped.reduce((g, t) => tf.sub(g, t.grads[i]), w)));
    if (isFlatAdam(options.optimizer)) {
      // Clipping and Adam in one pass over the gradients (lib/train/flat_adam.ts).
      const normValue = options.optimizer.applyClipped(adjusted, { clipNorm: options.clipNorm });
      return tf.stack([value, tf.scalar(normValue)]);
    }
    const sq = names.map((n) => tf.sum(tf.square(adjusted[n])));
    const norm = tf.sqrt(addN(sq));
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
    ? tf.tidy(() => stack(termNames.map((n) => kept[n])))
    : null;
  const [vals, termVals, ...gradients] = await Promise.all([
    out.data(),
    termValues ? termValues.data() : Promise.resolve(new Float32Array()),
    ...wanted.map((g) => g.data() as Promise<Float32Array>),
  ]);
  const read = (list: Tensor[]) => Promise.all(list.map((g) => g.data() as Promise<Float32Array>));
  const termGradients: Record<string, Float32Array[]> = {};
  for (const t of tapped) termGradients[t.term] = await read(t.grads);
  const taskGradients = tapped.length === 0 ? gradients : await read(taskWanted);
  out.dispose();
  for (const g of wanted) g.dispose();
  for (const t of tapped) tf.dispose(t.grads);
  tf.dispose(taskWanted);
  for (const byVar of taps.values()) for (const g of byVar.values()) g.dispose();
  termValues?.dispose();
  for (const t of Object.values(kept)) t.dispose();
  const terms: Record<string, number> = {};
  termNames.forEach((n, i) => (terms[n] = termVals[i]));
  return {
    total: vals[0],
    gradNorm: vals[1],
    terms,
    gradients: gradients as Float32Array[],
    termGradients,
    taskGradients: taskGradients as Float32Array[],
  };
}

/**
 * Adam as the harness uses it; `beta2` 0.999 (ViT) or 0.95 (the TreeLoRA LLM scripts). On the
 * `cpu` and `wasm` backends this is {@link FlatAdam} (the same float32 arithmetic in one
 * JavaScript pass, with the clipping of {@link optimizerStep} folded in); elsewhere (GPU
 * backends, whose tensors are not in main memory, or with the fused ops off:
 * lib/models/fused_ops.ts) tfjs's `tf.train.adam`.
 */
export function createAdam(
  options: { lr: number; beta1?: number; beta2?: number; epsilon?: number },
): tf.Optimizer {
  const backend = tf.getBackend();
  if (fusedOps() && (backend === "cpu" || backend === "wasm")) {
    return new FlatAdam({
      lr: options.lr,
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      epsilon: options.epsilon ?? 1e-8,
    });
  }
  return tf.train.adam(
    options.lr,
    options.beta1 ?? 0.9,
    options.beta2 ?? 0.999,
    options.epsilon ?? 1e-8,
  );
}
