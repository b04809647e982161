/**
 * Gradients of a scalar loss with respect to variables, holding no more memory than the
 * backward pass needs (issue 20).
 *
 * `tf.variableGrads` holds much more than PyTorch's autograd, for three reasons, and
 * {@link variableGrads} removes each:
 *
 * 1. **Everything until the end.** tfjs runs the whole backward pass inside one `tf.tidy`:
 *    every intermediate gradient (one per tensor of the forward pass), every tensor a custom
 *    op's gradient function makes on the way, and all the tensors the forward pass saved stay
 *    allocated until the pass ends. Here, once a node's backward has run, its saved tensors and
 *    the gradients of its outputs are disposed (a node's outputs are read only by later nodes,
 *    whose backward has already run), unless a gradient was handed on unchanged as an input's;
 *    a node's gradient function and its parts run in one scope of their own; and the saved
 *    tensors of nodes not on a variable-to-loss path are disposed before the pass starts.
 * 2. **Inputs saved for their shape.** `Add`, `Sub`, `Reshape`, `Concat`, `Slice` and `Sum`
 *    save their inputs, but their gradients read only the inputs' shapes ({@link SHAPE_ONLY}):
 *    each residual connection, bias add and reshape kept a whole activation alive. A disposed
 *    tensor keeps its shape, so these saves are disposed as each node is recorded.
 * 3. **Inputs saved for a gradient that is never computed.** `BatchMatMul` and `Multiply` save
 *    both operands, though the gradient of one reads only the other ({@link PAIRED}); when an
 *    operand does not depend on a trainable variable (a frozen weight under LoRA, a frozen
 *    LayerNorm scale), its gradient is not computed and the other operand's save is disposed
 *    as the node is recorded, as autograd does for a weight that does not require a gradient.
 *
 * (2) and (3) hook the engine's `addTapeNode` during the forward pass of {@link variableGrads}
 * only, only while the registered gradient is the one the rule was checked against, and not for
 * the nodes of a gradient computed inside the loss function (they serve that gradient).
 *
 * The gradients are tf.variableGrads's bit for bit: the same tape, the same nodes (those on a
 * path from a variable to the loss, each with only its inputs that depend on a variable, as
 * tfjs's own filter keeps them), the same gradient functions called in the same order, the same
 * accumulation (`tf.add` of the running sum and the new part). Only when tensors are released
 * differs. Tested on hand-computed cases and on the ViT and decoder, LoRA and full fine-tuning,
 * cpu and wasm (`tests/train/variable_grads_test.ts`).
 *
 * It reads and drives engine members that tfjs does not export as API (`state.activeTape`,
 * `startTape`, `endTape`, `addTapeNode`; pinned tfjs 4.22.0). Where they are not there, or when
 * a gradient is already being recorded (a gradient of a gradient), it calls `tf.variableGrads`.
 * With the fused ops off (`lib/models/fused_ops.ts`, the code before issue 20's changes)
 * `optimizerStep` calls `tf.variableGrads`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { NamedTensorMap, Scalar, Tensor, Variable } from "../tensor.ts";
import { FAST_MATMUL_GRADIENT, STOCK_MATMUL_GRADIENT } from "../models/fast_grads.ts";

/** A recorded tape node as tfjs 4.22 keeps it (`TapeNode`, not exported). */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, Tensor>;
  outputs: Tensor[];
  saved?: Tensor[];
  gradient?: (dys: Tensor[]) => Record<string, () => Tensor>;
}

/** The engine members used here; TypeScript-private in tfjs's typings. */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  addTapeNode(...args: unknown[]): void;
  tidy<T extends tf.TensorContainer>(name: string, fn: () => T): T;
}

function engineInternals(): EngineInternals | null {
  const e = tf.engine() as unknown as Partial<EngineInternals>;
  // `state.activeTape` is not defined until a first tape is started: not checked here.
  const ok = e.state !== undefined && typeof e.state.gradientDepth === "number" &&
    typeof e.startTape === "function" &&
    typeof e.addTapeNode === "function" &&
    typeof e.endTape === "function" && typeof e.tidy === "function";
  return ok ? e as EngineInternals : null;
}

/**
 * Whether {@link variableGrads} frees as it goes on this engine (false: it calls
 * `tf.variableGrads`).
 *
 * @example
 * ```ts
 * import { releasingBackwardAvailable } from "./variable_grads.ts";
 * releasingBackwardAvailable(); // true on tfjs 4.22
 * ```
 */
export function releasingBackwardAvailable(): boolean {
  const e = engineInternals();
  return e !== null && e.state.gradientDepth === 0;
}

/**
 * The nodes of `tape` on a path from `xs` to `y`, in tape order, each a copy that lists only
 * its inputs that depend on `xs` (the semantics of tfjs's `getFilteredNodesXToY`).
 */
function filterTape(
  tape: readonly TapeNode[],
  xs: readonly Tensor[],
  y: Tensor,
): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set<number>([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  const kept: TapeNode[] = [];
  for (const node of tape) {
    if (!nodeFromX.has(node.id) || !nodeToY.has(node.id)) continue;
    const inputs: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    kept.push({ ...node, inputs });
  }
  return kept;
}

/**
 * The loss `f()` and its gradients with respect to the trainable variables of `variables`,
 * keyed by variable name, like `tf.variableGrads(f, variables)` and bit-identical to it, with
 * the backward pass releasing each node's saved tensors and output gradients as soon as that
 * node has run (module doc). Variables that do not reach the loss get no entry; non-trainable
 * ones get `null`, as in tfjs. Call it inside a `tf.tidy` (the returned tensors are not kept).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { variableGrads } from "./variable_grads.ts";
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const { value, grads } = variableGrads(() => tf.sum(tf.square(w)) as tf.Scalar, [w]);
 * // value 5, grads[w.name] = [2, 4]
 * ```
 */
export function variableGrads(
  f: () => Scalar,
  variables: Variable[],
): { value: Scalar; grads: NamedTensorMap } {
  const engine = engineInternals();
  if (engine === null || engine.state.gradientDepth > 0) return tf.variableGrads(f, variables);
  const trainable = variables.filter((v) => v.trainable);
  if (trainable.length === 0) {
    throw new Error(
      `variableGrads: none of the ${variables.length} variables is trainable`,
    );
  }
  const fromX = new Set<number>(trainable.map((v) => v.id));
  const recordNode = engine.addTapeNode;
  const ownRecord = Object.prototype.hasOwnProperty.call(engine, "addTapeNode");
  engine.addTapeNode = function (this: EngineInternals, ...args: unknown[]) {
    recordNode.apply(this, args);
    const tape = this.state.activeTape;
    // A gradient computed inside f (depth > 1) reads its own nodes' saves: those are kept.
    if (tape !== null && tape.length > 0) {
      pruneSaved(tape[tape.length - 1], fromX, this.state.gradientDepth === 1);
    }
  };
  engine.startTape();
  try {
    let y: Tensor;
    try {
      y = engine.tidy("forward", f);
    } finally {
      engine.endTape();
      if (ownRecord) engine.addTapeNode = recordNode;
      else delete (engine as Partial<EngineInternals>).addTapeNode;
    }
    if (!(y instanceof tf.Tensor) || y.rank !== 0) {
      const got = y instanceof tf.Tensor ? `rank ${y.rank}` : typeof y;
      tf.dispose(y);
      throw new Error(`variableGrads: the loss function must return a scalar tensor, got ${got}`);
    }
    const tape = engine.state.activeTape ?? [];
    const filtered = filterTape(tape, trainable, y);
    if (filtered.length === 0) {
      y.dispose();
      throw new Error(
        "variableGrads: no trainable variable reaches the loss (are the ops that use them inside f?)",
      );
    }
    const onPath = new Set(filtered.map((n) => n.id));
    for (const node of tape) if (!onPath.has(node.id)) disposeSaved(node);
    const grads = engine.tidy("backward", () => backward(filtered, y, trainable));
    const named: Record<string, Tensor | null> = {};
    trainable.forEach((v, i) => {
      const g = grads[i];
      if (g !== undefined) named[v.name] = g;
    });
    for (const v of variables) if (!v.trainable) named[v.name] = null;
    return { value: y as Scalar, grads: named as NamedTensorMap };
  } finally {
    for (const node of engine.state.activeTape ?? []) disposeSaved(node);
    engine.state.activeTape = null;
  }
}

/**
 * Kernels whose gradient reads only the shapes of the inputs it saves, with the gradient configs
 * this was checked against (tfjs-core 4.22's `Add_grad`, `Sub_grad`, `Reshape_grad`,
 * `Concat_grad`, `Slice_grad`, `Sum_grad`, as registered when this module loads). The rule
 * applies only while that config is the registered one.
 */
const SHAPE_ONLY: ReadonlyMap<string, tf.GradConfig | undefined> = new Map(
  ["Add", "Sub", "Reshape", "Concat", "Slice", "Sum"].map((k) => [k, tf.getGradient(k)]),
);

/**
 * Kernels of two inputs `a`, `b` whose gradient for one input reads only the other input's
 * values (and shapes): `Multiply` (da = dy·b, db = dy·a), `BatchMatMul` (da = dy·bᵀ, db = aᵀ·dy,
 * tfjs's gradient or `lib/models/fast_grads.ts`'s), `RealDiv` (da = dy/b; db reads a and b, so
 * `b` is always kept). `dropA`: `a` is not needed when `b` does not depend on a trainable
 * variable; `dropB` likewise. Each with the gradient configs it was checked against.
 */
const PAIRED: ReadonlyMap<string, { dropA: boolean; dropB: boolean; configs: unknown[] }> = new Map(
  [
    ["Multiply", { dropA: true, dropB: true, configs: [tf.getGradient("Multiply")] }],
    ["RealDiv", { dropA: true, dropB: false, configs: [tf.getGradient("RealDiv")] }],
    [
      "BatchMatMul",
      { dropA: true, dropB: true, configs: [STOCK_MATMUL_GRADIENT, FAST_MATMUL_GRADIENT] },
    ],
  ],
);

/**
 * Mark `node`'s outputs as depending on a trainable variable when an input does, and dispose the
 * saved tensors its backward pass cannot read ({@link SHAPE_ONLY}, {@link PAIRED}) when `prune`
 * (not inside a gradient computed within the loss function). Runs as each node is recorded, so
 * the forward pass never holds them.
 */
function pruneSaved(node: TapeNode, fromX: Set<number>, prune: boolean): void {
  const inputs = node.inputs;
  if (Object.values(inputs).some((t) => fromX.has(t.id))) {
    for (const o of node.outputs) fromX.add(o.id);
  }
  const saved = node.saved;
  if (!prune) return;
  if (saved === undefined || saved.length === 0) return;
  const config = tf.getGradient(node.kernelName);
  if (config === undefined) return;
  if (SHAPE_ONLY.has(node.kernelName)) {
    if (SHAPE_ONLY.get(node.kernelName) !== config) return;
    // Concat saves all its inputs; the others list theirs in inputsToSave. No outputs saved.
    const n = config.saveAllInputs ? Object.keys(inputs).length : config.inputsToSave?.length ?? 0;
    for (let i = 0; i < n && i < saved.length; i++) saved[i].dispose();
    return;
  }
  const pair = PAIRED.get(node.kernelName);
  if (pair === undefined || !pair.configs.includes(config)) return;
  const names = config.inputsToSave ?? [];
  if (names[0] !== "a" || names[1] !== "b") return;
  const aFromX = inputs.a !== undefined && fromX.has(inputs.a.id);
  const bFromX = inputs.b !== undefined && fromX.has(inputs.b.id);
  if (pair.dropA && !bFromX) saved[0].dispose();
  if (pair.dropB && !aFromX) saved[1].dispose();
}

/** Dispose a node's saved tensors and empty its list (shared with its gradient function). */
function disposeSaved(node: TapeNode): void {
  for (const t of node.saved ?? []) t.dispose();
  if (node.saved) node.saved.length = 0;
}

/**
 * Walk `nodes` backward from `y` (seeded with ones), accumulating each input's gradient, and
 * release what a node no longer needs once it has run. Returns the gradients of `xs` (undefined
 * where none reached).
 */
function backward(nodes: TapeNode[], y: Tensor, xs: Variable[]): (Tensor | undefined)[] {
  const grad = new Map<number, Tensor>();
  // How many map entries hold each gradient tensor (a gradient function may return its dy as
  // an input's gradient, so one tensor can be the entry of several ids).
  const holders = new Map<Tensor, number>();
  const hold = (id: number, g: Tensor) => {
    grad.set(id, g);
    holders.set(g, (holders.get(g) ?? 0) + 1);
  };
  const release = (id: number) => {
    const g = grad.get(id);
    if (g === undefined) return;
    grad.delete(id);
    const n = (holders.get(g) ?? 1) - 1;
    if (n > 0) holders.set(g, n);
    else {
      holders.delete(g);
      g.dispose();
    }
  };
  hold(y.id, tf.onesLike(y));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (node.gradient === undefined) {
      throw new Error(`variableGrads: no gradient function for ${node.kernelName}`);
    }
    const dys = node.outputs.map((o) => grad.get(o.id) ?? null) as Tensor[];
    const names = Object.keys(node.inputs);
    // The gradient function and each input's part in one scope: a custom op's gradient function
    // computes its parts eagerly, and what it made on the way is released here, not at the end
    // of the whole pass (tfjs scopes only each part).
    const dxs = tf.tidy(() => {
      const parts = node.gradient!(dys);
      return names.map((name) => {
        const part = parts[name];
        if (part === undefined) {
          throw new Error(
            `variableGrads: ${node.kernelName} has no gradient for its input '${name}' (it has ${
              Object.keys(parts).join(", ")
            })`,
          );
        }
        return part();
      });
    });
    for (let k = 0; k < names.length; k++) {
      const name = names[k];
      const x = node.inputs[name];
      const dx = dxs[k];
      if (dx.dtype !== "float32") {
        throw new Error(
          `variableGrads: the gradient of ${node.kernelName}'s input '${name}' is ${dx.dtype}, not float32`,
        );
      }
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(
          `variableGrads: the gradient of ${node.kernelName}'s input '${name}' has shape [${dx.shape}], the input [${x.shape}]`,
        );
      }
      const previous = grad.get(x.id);
      if (previous === undefined) hold(x.id, dx);
      else {
        const sum = tf.add(previous, dx);
        release(x.id);
        hold(x.id, sum);
        if (!holders.has(dx)) dx.dispose();
      }
    }
    for (const o of node.outputs) release(o.id);
    for (const t of node.saved ?? []) if (!holders.has(t)) t.dispose();
    if (node.saved) node.saved.length = 0;
  }
  return xs.map((x) => grad.get(x.id));
}
